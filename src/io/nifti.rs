//! NIfTI volume input (NIfTI-1 and NIfTI-2) and output (NIfTI-1).
//!
//! Volumes are held as `f32` in memory with `x` varying fastest
//! (`index = x + nx * (y + ny * z)`), which is also the order of the voxels in a
//! NIfTI file, so no reordering ever happens.
//!
//! Reading accepts single-file NIfTI-1 and NIfTI-2 (`.nii`, gzip-compressed or
//! not: gzip is detected from the content, not from the name) in either byte
//! order and with every common integer and floating-point datatype; the
//! header's `scl_slope`/`scl_inter` are applied. A NIfTI-1 header is parsed by
//! the `nifti` crate, which reads no NIfTI-2, so a NIfTI-2 header is decoded
//! here (module `nifti2`) into the same struct; the voxel data are decoded
//! here so that every check (truncation, datatype, dimensionality) gives an
//! error that names the file instead of a panic. NaN and infinite voxels are
//! kept and described; [`Case::from_files`] reads them as background.
//!
//! Writing produces `FLOAT32` single-file NIfTI-1 (gzip when the path ends with
//! `.gz`) on the grid of a reference header, and is atomic: the file is written
//! next to its destination under a temporary name, synced, then renamed over
//! it, so that readers never see a half-written file.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use nifti::{Endianness, NiftiHeader};

use super::atomic::{io_error, write_atomically};
use crate::error::{Error, Result};
use crate::preprocess::Case;

/// Size of a NIfTI-1 header in bytes (`sizeof_hdr`).
const HEADER_SIZE: usize = 348;
/// Offset of the voxel data in the single files this module writes
/// (header + 4-byte extender without extensions).
const DATA_OFFSET: usize = 352;
/// Magic of a single-file NIfTI-1.
const MAGIC_SINGLE_FILE: [u8; 4] = *b"n+1\0";
/// Magic of a header-only NIfTI-1 (`.hdr` + `.img` pair).
const MAGIC_PAIR: [u8; 4] = *b"ni1\0";
/// First two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// NIfTI datatype code of `FLOAT32`.
const DT_FLOAT32: i16 = 16;
/// `NIFTI_UNITS_MM` in `xyzt_units`.
const UNITS_MM: u8 = 2;
/// `NIFTI_XFORM_ALIGNED_ANAT`, used for the identity header.
const XFORM_ALIGNED_ANAT: i16 = 2;
/// Largest dimension a NIfTI-1 header can hold (`dim` is a signed short).
const MAX_DIM: usize = i16::MAX as usize;
/// Description written into anomaly maps by [`write_map`].
const MAP_DESCRIPTION: &str = "adGAN anomaly map";
/// Number of voxels converted per write call when writing.
const WRITE_CHUNK_VOXELS: usize = 1 << 16;

/// One scalar 3-D volume.
///
/// `data` holds `dims[0] * dims[1] * dims[2]` values with `x` varying fastest:
/// the voxel `(x, y, z)` is `data[x + nx * (y + ny * z)]`. Values are the
/// stored values with `scl_slope`/`scl_inter` applied, as `f32`.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Number of voxels along x, y and z.
    pub dims: [usize; 3],
    /// Voxel values, x fastest, scaling applied.
    pub data: Vec<f32>,
    /// The header as read from the file (orientation, spacing, units, ...).
    pub header: NiftiHeader,
    /// The file the volume was read from.
    pub path: PathBuf,
}

impl Volume {
    /// The volume's NaN and infinite values, counted and the first one
    /// located; `None` when every value is finite.
    pub fn non_finite(&self) -> Option<String> {
        describe_non_finite(&self.data, self.dims)
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the volume holds no voxel (never the case for a volume returned
    /// by [`read_volume`], which rejects zero-length dimensions).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Voxel spacing along x, y and z in millimetres.
    ///
    /// This is `|pixdim[1..4]|`, converted to millimetres when the header's
    /// spatial unit is metres or micrometres (an unknown unit is taken as
    /// millimetres).
    pub fn spacing(&self) -> [f32; 3] {
        let to_mm = match self.header.xyzt_units & 0x07 {
            1 => 1000.0, // NIFTI_UNITS_METER
            3 => 0.001,  // NIFTI_UNITS_MICRON
            _ => 1.0,    // NIFTI_UNITS_MM or unknown
        };
        let p = &self.header.pixdim;
        [p[1].abs() * to_mm, p[2].abs() * to_mm, p[3].abs() * to_mm]
    }
}

/// Read a `.nii` or `.nii.gz` volume.
///
/// Gzip is detected from the magic bytes, not only from the name. Every common
/// NIfTI datatype is accepted (`u8`, `i8`, `u16`, `i16`, `u32`, `i32`, `u64`,
/// `i64`, `f32`, `f64`, either byte order) and `scl_slope`/`scl_inter` are
/// applied (a slope of 0 or a non-finite slope means "no scaling", as in the
/// NIfTI standard and nibabel). 3-D data are accepted; 2-D data are read as
/// `nz = 1`; data with more dimensions only when every dimension above the
/// third is 1. `bitpix` is not trusted: the datatype code decides the voxel size.
///
/// # Errors
///
/// Every error names the file:
/// - [`Error::Io`]: the file is missing or unreadable;
/// - [`Error::Format`]: corrupt or truncated gzip, a header that is not
///   single-file NIfTI-1, a data block shorter than the header says, more than
///   three non-singleton dimensions, a zero-length dimension, an unsupported
///   datatype.
///
/// NaN and infinite voxel values are kept as read ([`Volume::non_finite`]
/// describes them): a resampled volume has NaN outside its field of view,
/// and what they mean is for the caller ([`Case::from_files`] reads them as
/// background, [`read_mask`] as outside the mask).
pub fn read_volume(path: &Path) -> Result<Volume> {
    let bytes = read_maybe_gzipped(path)?;
    let header = parse_header(path, &bytes)?;
    let dims = volume_dims(path, &header)?;
    let dtype = DataType::from_code(header.datatype).ok_or_else(|| {
        format_error(
            path,
            format!(
                "unsupported NIfTI datatype {} ({}); supported are uint8, int8, uint16, int16, \
                 uint32, int32, uint64, int64, float32 and float64",
                header.datatype,
                datatype_name(header.datatype)
            ),
        )
    })?;
    let offset = data_offset(path, &header)?;

    let n_voxels = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format_error(path, format!("dims {} are too large", join_dims(&dims))))?;
    let n_bytes = n_voxels
        .checked_mul(dtype.size())
        .and_then(|n| n.checked_add(offset))
        .ok_or_else(|| format_error(path, format!("dims {} are too large", join_dims(&dims))))?;
    let raw = bytes.get(offset..n_bytes).ok_or_else(|| {
        format_error(
            path,
            format!(
                "truncated file: {} voxels of {} ({} bytes) expected from offset {}, but the \
                 (decompressed) file has only {} bytes",
                n_voxels,
                dtype.name(),
                n_voxels.saturating_mul(dtype.size()),
                offset,
                bytes.len()
            ),
        )
    })?;

    let scaling = Scaling::from_header(&header);
    let big_endian = header.endianness == Endianness::Big;
    let data = decode_voxels(raw, dtype, big_endian, scaling);

    Ok(Volume {
        dims,
        data,
        header,
        path: path.to_path_buf(),
    })
}

/// Read the co-registered volumes that are the channels of one case.
///
/// # Errors
///
/// Any error of [`read_volume`]; [`Error::Format`] naming the offending file
/// and both dims when a volume's dims differ from the first one's;
/// [`Error::InvalidArgument`] when `paths` is empty.
pub fn read_channels(paths: &[PathBuf]) -> Result<Vec<Volume>> {
    let Some((first_path, rest)) = paths.split_first() else {
        return Err(Error::InvalidArgument(
            "no channel file given: at least one volume is needed".to_string(),
        ));
    };
    let first = read_volume(first_path)?;
    let mut volumes = Vec::with_capacity(paths.len());
    let dims = first.dims;
    volumes.push(first);
    for path in rest {
        let volume = read_volume(path)?;
        if volume.dims != dims {
            return Err(format_error(
                path,
                format!(
                    "dims {} differ from the dims {} of the first channel {}",
                    join_dims(&volume.dims),
                    join_dims(&dims),
                    first_path.display()
                ),
            ));
        }
        volumes.push(volume);
    }
    Ok(volumes)
}

/// Read a label or mask volume as one boolean per voxel (x fastest).
///
/// A voxel is `true` when its (scaled) value is non-zero and finite, so
/// multi-label segmentations (e.g. BraTS labels 1, 2, 4) become "any label"
/// masks and NaN voxels are outside.
///
/// # Errors
///
/// Any error of [`read_volume`]; [`Error::Format`] naming the file when its dims
/// differ from `dims`.
pub fn read_mask(path: &Path, dims: [usize; 3]) -> Result<Vec<bool>> {
    let volume = read_volume(path)?;
    if volume.dims != dims {
        return Err(format_error(
            path,
            format!(
                "mask dims {} differ from the image dims {}",
                join_dims(&volume.dims),
                join_dims(&dims)
            ),
        ));
    }
    Ok(volume
        .data
        .iter()
        .map(|&v| v.is_finite() && v != 0.0)
        .collect())
}

/// Write a `float32` map on the grid of `like`.
///
/// The output keeps `like`'s dims, affine (sform and qform), `pixdim`, units and
/// orientation; it is `FLOAT32` (`bitpix` 32) with `scl_slope` 1, `scl_inter` 0,
/// `cal_min`/`cal_max` set to the range of the finite values of `data` and the
/// description "adGAN anomaly map". The file is gzip-compressed when the path
/// ends with `.gz`. The write is atomic (see [`write_atomically`]).
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `data.len()` differs from `like.len()`
/// (nothing is written then); [`Error::Io`] when the file cannot be written.
pub fn write_map(path: &Path, like: &Volume, data: &[f32]) -> Result<()> {
    if data.len() != like.len() {
        return Err(Error::InvalidArgument(format!(
            "{}: the map has {} values but the reference volume {} has {} voxels",
            path.display(),
            data.len(),
            like.path.display(),
            like.len()
        )));
    }
    write_f32_volume(path, like.dims, Some(&like.header), data, MAP_DESCRIPTION)
}

/// Write a `float32` volume from dims and an optional reference header.
///
/// With `header`, its geometry (sform, qform, `pixdim`, units, orientation) is
/// kept and the data-related fields are rewritten as in [`write_map`]; intent
/// fields are cleared. Without, an identity-affine, 1 mm isotropic header is
/// made (sform and qform code "aligned anatomical"). `descrip` is truncated to
/// the 80 bytes NIfTI-1 allows. The write is atomic and gzip-compressed when the
/// path ends with `.gz`.
///
/// The caller is responsible for `header` describing a grid of `dims`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when a dimension is 0 or larger than 32767 or
/// `data.len()` is not the number of voxels of `dims` (nothing is written then);
/// [`Error::Io`] when the file cannot be written.
pub fn write_f32_volume(
    path: &Path,
    dims: [usize; 3],
    header: Option<&NiftiHeader>,
    data: &[f32],
    descrip: &str,
) -> Result<()> {
    if dims.iter().any(|&d| d == 0 || d > MAX_DIM) {
        return Err(Error::InvalidArgument(format!(
            "{}: dims {} must each be between 1 and {}",
            path.display(),
            join_dims(&dims),
            MAX_DIM
        )));
    }
    // Each dim is at most 32767, so the product fits in u64 and (on 64-bit)
    // in usize; checked anyway for 32-bit targets.
    let n_voxels = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if n_voxels != Some(data.len()) {
        return Err(Error::InvalidArgument(format!(
            "{}: {} values given for dims {}",
            path.display(),
            data.len(),
            join_dims(&dims)
        )));
    }

    let hdr = output_header(dims, header, data, descrip);
    let head = encode_header(&hdr, false);
    let gzip = has_gz_extension(path);
    write_atomically(path, |file| {
        let buffered = BufWriter::with_capacity(1 << 20, file);
        if gzip {
            let mut encoder = GzEncoder::new(buffered, Compression::fast());
            write_payload(&mut encoder, &head, data)?;
            finish_buffer(encoder.finish()?)
        } else {
            let mut buffered = buffered;
            write_payload(&mut buffered, &head, data)?;
            finish_buffer(buffered)
        }
    })
}

/// Cases from files: the channels, brain mask and exclusion label of one
/// case, read here so that preprocessing never touches a file.
impl Case {
    /// Read a case from files: one NIfTI per channel (same grid), an
    /// optional brain mask and an optional exclusion label. Returns the case
    /// and the first channel's volume (its header serves for output).
    pub fn from_files(
        channels: &[std::path::PathBuf],
        brain: Option<&std::path::Path>,
        exclude: Option<&std::path::Path>,
    ) -> Result<(Case, Volume)> {
        let mut vols = read_channels(channels)?;
        let dims = vols[0].dims;
        let brain_path = brain;
        let brain = brain.map(|p| read_mask(p, dims)).transpose()?;
        let exclude = exclude.map(|p| read_mask(p, dims)).transpose()?;
        let warnings = non_finite_as_background(&mut vols, brain.as_deref(), brain_path)?;
        let name = vols[0].path.display().to_string();
        let data: Vec<Vec<f32>> = vols
            .iter_mut()
            .map(|v| std::mem::take(&mut v.data))
            .collect();
        let mut first = vols.swap_remove(0);
        first.data = data[0].clone();
        let case = Case {
            warnings,
            name,
            dims,
            channels: data,
            brain,
            exclude,
        };
        Ok((case, first))
    }
}

/// NaN and infinite voxels of a case's channels, as background: a voxel
/// that is not finite in any channel becomes 0 in every channel (0 is
/// background when no brain mask is given). With a brain mask such voxels
/// must all lie outside it (a NaN inside the brain has no intensity to
/// score): else an error names the channel file and the mask. Returns one
/// warning per channel file that had any.
fn non_finite_as_background(
    vols: &mut [Volume],
    brain: Option<&[bool]>,
    brain_path: Option<&Path>,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut bad = vec![false; vols[0].data.len()];
    for vol in vols.iter() {
        let Some(what) = vol.non_finite() else {
            continue;
        };
        if let (Some(mask), Some(mask_path)) = (brain, brain_path) {
            let inside = vol
                .data
                .iter()
                .zip(mask)
                .filter(|(v, &m)| m && !v.is_finite())
                .count();
            if inside > 0 {
                return Err(format_error(
                    &vol.path,
                    format!(
                        "{what}; {inside} of them inside the brain mask {}: adGAN needs finite \
                         intensities in the brain",
                        mask_path.display()
                    ),
                ));
            }
        }
        for (b, v) in bad.iter_mut().zip(&vol.data) {
            *b |= !v.is_finite();
        }
        let place = if brain.is_some() {
            "all outside the brain mask, "
        } else {
            ""
        };
        warnings.push(format!(
            "{}: {what}: {place}read as background",
            vol.path.display()
        ));
    }
    if !warnings.is_empty() {
        for vol in vols.iter_mut() {
            for (v, &b) in vol.data.iter_mut().zip(&bad) {
                if b {
                    *v = 0.0;
                }
            }
        }
    }
    Ok(warnings)
}

// ---------------------------------------------------------------------------
// Reading helpers
// ---------------------------------------------------------------------------

/// The voxel datatypes the reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl DataType {
    /// The datatype of a NIfTI `datatype` code, if supported.
    fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            2 => Self::U8,
            256 => Self::I8,
            512 => Self::U16,
            4 => Self::I16,
            768 => Self::U32,
            8 => Self::I32,
            1280 => Self::U64,
            1024 => Self::I64,
            16 => Self::F32,
            64 => Self::F64,
            _ => return None,
        })
    }

    /// Bytes per voxel.
    fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
        }
    }

    /// Lower-case NIfTI name.
    fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }
}

/// Name of any NIfTI datatype code, for error messages.
fn datatype_name(code: i16) -> &'static str {
    match code {
        0 => "unknown",
        1 => "binary",
        32 => "complex64",
        128 => "rgb24",
        1536 => "float128",
        1792 => "complex128",
        2048 => "complex256",
        2304 => "rgba32",
        other => DataType::from_code(other).map_or("not a NIfTI datatype", DataType::name),
    }
}

/// Linear scaling of the stored values (`None` = identity).
#[derive(Debug, Clone, Copy)]
struct Scaling(Option<(f64, f64)>);

impl Scaling {
    /// Scaling of a header: identity when `scl_slope` is 0 or not finite (NIfTI
    /// standard, nibabel); a non-finite `scl_inter` counts as 0.
    fn from_header(header: &NiftiHeader) -> Self {
        let slope = f64::from(header.scl_slope);
        let inter = f64::from(header.scl_inter);
        if slope == 0.0 || !slope.is_finite() {
            return Self(None);
        }
        let inter = if inter.is_finite() { inter } else { 0.0 };
        if slope == 1.0 && inter == 0.0 {
            Self(None)
        } else {
            Self(Some((slope, inter)))
        }
    }

    #[inline]
    fn apply(self, value: f64) -> f32 {
        match self.0 {
            None => value as f32,
            Some((slope, inter)) => (value * slope + inter) as f32,
        }
    }
}

/// Read a whole file, decompressing it when it starts with the gzip magic.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| io_error(path, "cannot open", &e))?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)
        .map_err(|e| io_error(path, "cannot read", &e))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut decompressed = Vec::new();
    // The last 4 bytes hold the uncompressed size modulo 2^32: a hint only.
    if let Some(trailer) = raw.len().checked_sub(4).and_then(|start| raw.get(start..)) {
        let mut size = [0u8; 4];
        size.copy_from_slice(trailer);
        let hint = u32::from_le_bytes(size) as usize;
        // Never trust the hint beyond a plausible compression ratio.
        let _ = decompressed.try_reserve_exact(hint.min(raw.len().saturating_mul(64)));
    }
    MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut decompressed)
        .map_err(|e| format_error(path, format!("corrupt or truncated gzip data: {e}")))?;
    Ok(decompressed)
}

/// Parse and sanity-check a single-file NIfTI-1 header.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    if let Some(header) = nifti2::parse(path, bytes)? {
        return Ok(header);
    }
    if bytes.len() < HEADER_SIZE {
        return Err(format_error(
            path,
            format!(
                "not a NIfTI-1 file: {} bytes is shorter than a NIfTI-1 header ({} bytes)",
                bytes.len(),
                HEADER_SIZE
            ),
        ));
    }
    let header = NiftiHeader::from_reader(bytes)
        .map_err(|e| format_error(path, format!("bad NIfTI-1 header: {e}")))?;
    if header.sizeof_hdr != HEADER_SIZE as i32 {
        return Err(format_error(
            path,
            format!(
                "not a NIfTI file (sizeof_hdr is {}, expected {HEADER_SIZE} or 540)",
                header.sizeof_hdr
            ),
        ));
    }
    if header.magic == MAGIC_PAIR {
        return Err(format_error(
            path,
            "header-only NIfTI-1 (.hdr/.img pair) is not supported; convert it to a single \
             .nii or .nii.gz file",
        ));
    }
    if header.magic != MAGIC_SINGLE_FILE {
        return Err(format_error(
            path,
            format!(
                "bad NIfTI-1 magic {:?} (expected \"n+1\")",
                String::from_utf8_lossy(&header.magic)
            ),
        ));
    }
    Ok(header)
}

/// NIfTI-2 (540-byte header, 64-bit dims and offsets, double-precision
/// geometry), read into the NIfTI-1 header struct the rest of this module
/// uses: the `nifti` crate reads NIfTI-1 only, and a NIfTI-2 header is a
/// fixed layout of 27 fields, so it is decoded here. Dims above NIfTI-1's
/// 32767 are refused with a message (maps are written as NIfTI-1);
/// geometry is rounded to `f32`, as NIfTI-1 stores it.
mod nifti2 {
    use super::{format_error, Result, MAGIC_SINGLE_FILE};
    use nifti::{Endianness, NiftiHeader};
    use std::path::Path;

    const SIZE: usize = 540;
    const MAGIC: &[u8; 8] = b"n+2\0\r\n\x1a\n";

    struct Fields<'a> {
        bytes: &'a [u8],
        big: bool,
    }

    impl Fields<'_> {
        fn take<const N: usize>(&self, at: usize) -> [u8; N] {
            let mut b = [0u8; N];
            b.copy_from_slice(&self.bytes[at..at + N]);
            if self.big {
                b.reverse();
            }
            b
        }
        fn i16(&self, at: usize) -> i16 {
            i16::from_le_bytes(self.take(at))
        }
        fn i32(&self, at: usize) -> i32 {
            i32::from_le_bytes(self.take(at))
        }
        fn i64(&self, at: usize) -> i64 {
            i64::from_le_bytes(self.take(at))
        }
        fn f64(&self, at: usize) -> f64 {
            f64::from_le_bytes(self.take(at))
        }
        fn f32s<const N: usize>(&self, at: usize) -> [f32; N] {
            std::array::from_fn(|i| self.f64(at + 8 * i) as f32)
        }
        fn text<const N: usize>(&self, at: usize) -> [u8; N] {
            let mut b = [0u8; N];
            b.copy_from_slice(&self.bytes[at..at + N]);
            b
        }
    }

    /// The header of a NIfTI-2 file, or `None` when `bytes` do not start
    /// with one (then it is NIfTI-1 or nothing).
    pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Option<NiftiHeader>> {
        let Some(head) = bytes.get(0..4) else {
            return Ok(None);
        };
        let size = i32::from_le_bytes(head.try_into().unwrap());
        let big = if size == SIZE as i32 {
            false
        } else if size.swap_bytes() == SIZE as i32 {
            true
        } else {
            return Ok(None);
        };
        let bad = |m: String| Err(format_error(path, format!("bad NIfTI-2 header: {m}")));
        if bytes.len() < SIZE {
            return bad(format!(
                "{} bytes is shorter than a NIfTI-2 header ({SIZE} bytes)",
                bytes.len()
            ));
        }
        if &bytes[4..12] != MAGIC {
            return bad(format!(
                "magic {:?} (expected \"n+2\"; a .hdr/.img pair is not supported)",
                String::from_utf8_lossy(&bytes[4..7])
            ));
        }
        let f = Fields { bytes, big };
        let ndim = f.i64(16);
        if !(1..=7).contains(&ndim) {
            return bad(format!("dim[0] is {ndim}, expected 1 to 7"));
        }
        let mut dim = [0u16; 8];
        dim[0] = ndim as u16;
        for (i, d) in dim.iter_mut().enumerate().skip(1) {
            let v = f.i64(16 + 8 * i);
            if i as i64 <= ndim {
                if !(0..=i16::MAX as i64).contains(&v) {
                    return bad(format!(
                        "dim[{i}] is {v}: adGAN reads dims of 0 to {} (NIfTI-1's limit, which \
                         its maps are written in)",
                        i16::MAX
                    ));
                }
                *d = v as u16;
            } else {
                *d = 1;
            }
        }
        let vox_offset = f.i64(168);
        if !(SIZE as i64..=u32::MAX as i64).contains(&vox_offset) {
            return bad(format!(
                "vox_offset {vox_offset} is not a valid data offset"
            ));
        }
        let mut descrip = f.text::<80>(240).to_vec();
        if let Some(end) = descrip.iter().position(|&c| c == 0) {
            descrip.truncate(end);
        }
        Ok(Some(NiftiHeader {
            sizeof_hdr: super::HEADER_SIZE as i32,
            dim_info: bytes[524],
            dim,
            intent_p1: f.f64(80) as f32,
            intent_p2: f.f64(88) as f32,
            intent_p3: f.f64(96) as f32,
            intent_code: f.i32(504) as i16,
            datatype: f.i16(12),
            bitpix: f.i16(14),
            slice_start: f.i64(224) as i16,
            pixdim: f.f32s::<8>(104),
            vox_offset: vox_offset as f32,
            scl_slope: f.f64(176) as f32,
            scl_inter: f.f64(184) as f32,
            slice_end: f.i64(232) as i16,
            slice_code: f.i32(496) as u8,
            xyzt_units: f.i32(500) as u8,
            cal_max: f.f64(192) as f32,
            cal_min: f.f64(200) as f32,
            slice_duration: f.f64(208) as f32,
            toffset: f.f64(216) as f32,
            descrip,
            aux_file: f.text::<24>(320),
            qform_code: f.i32(344) as i16,
            sform_code: f.i32(348) as i16,
            quatern_b: f.f64(352) as f32,
            quatern_c: f.f64(360) as f32,
            quatern_d: f.f64(368) as f32,
            quatern_x: f.f64(376) as f32,
            quatern_y: f.f64(384) as f32,
            quatern_z: f.f64(392) as f32,
            srow_x: f.f32s::<4>(400),
            srow_y: f.f32s::<4>(432),
            srow_z: f.f32s::<4>(464),
            intent_name: f.text::<16>(508),
            magic: MAGIC_SINGLE_FILE,
            endianness: if big {
                Endianness::Big
            } else {
                Endianness::Little
            },
            ..NiftiHeader::default()
        }))
    }
}

/// The 3-D dims of a header, after checking dimensionality and sizes.
fn volume_dims(path: &Path, header: &NiftiHeader) -> Result<[usize; 3]> {
    let ndim = usize::from(header.dim[0]);
    if !(1..=7).contains(&ndim) {
        return Err(format_error(
            path,
            format!(
                "bad NIfTI-1 header: dim[0] is {}, expected 1 to 7",
                header.dim[0] as i16
            ),
        ));
    }
    // `dim` is a signed short on disk: values above i16::MAX are negative.
    let dims: Vec<i64> = header.dim[1..=ndim]
        .iter()
        .map(|&d| i64::from(d as i16))
        .collect();
    let shown = dims
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x");
    if dims.iter().any(|&d| d < 0) {
        return Err(format_error(
            path,
            format!("bad NIfTI-1 header: negative dimension (dims {shown})"),
        ));
    }
    if dims.contains(&0) {
        return Err(format_error(
            path,
            format!("zero-length dimension (dims {shown}): the volume holds no voxel"),
        ));
    }
    if dims.iter().skip(3).any(|&d| d != 1) {
        return Err(format_error(
            path,
            format!("{ndim}-D data (dims {shown}) is not supported: adGAN reads 3-D volumes"),
        ));
    }
    let dim = |i: usize| dims.get(i).map_or(1, |&d| d as usize);
    Ok([dim(0), dim(1), dim(2)])
}

/// Byte offset of the voxel data in a single-file NIfTI-1.
fn data_offset(path: &Path, header: &NiftiHeader) -> Result<usize> {
    let offset = header.vox_offset;
    if offset == 0.0 {
        // Some old writers leave vox_offset at 0 in single files.
        return Ok(DATA_OFFSET);
    }
    if !offset.is_finite() || offset < HEADER_SIZE as f32 || offset > u32::MAX as f32 {
        return Err(format_error(
            path,
            format!("bad NIfTI-1 header: vox_offset {offset} is not a valid data offset"),
        ));
    }
    Ok(offset as usize)
}

/// Decode raw voxel bytes into scaled `f32` values.
fn decode_voxels(raw: &[u8], dtype: DataType, big_endian: bool, scaling: Scaling) -> Vec<f32> {
    macro_rules! decode {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            raw.chunks_exact(N)
                .map(|chunk| {
                    let mut bytes = [0u8; N];
                    bytes.copy_from_slice(chunk);
                    let value = if big_endian {
                        <$t>::from_be_bytes(bytes)
                    } else {
                        <$t>::from_le_bytes(bytes)
                    };
                    scaling.apply(value as f64)
                })
                .collect()
        }};
    }
    match dtype {
        DataType::U8 => decode!(u8),
        DataType::I8 => decode!(i8),
        DataType::U16 => decode!(u16),
        DataType::I16 => decode!(i16),
        DataType::U32 => decode!(u32),
        DataType::I32 => decode!(i32),
        DataType::U64 => decode!(u64),
        DataType::I64 => decode!(i64),
        DataType::F32 => decode!(f32),
        DataType::F64 => decode!(f64),
    }
}

/// How many NaN and infinite values `data` holds and where the first is
/// (`2 NaN and 1 infinite voxel value(s) (after scaling; first at voxel
/// (1, 1, 0))`); `None` when all are finite.
fn describe_non_finite(data: &[f32], dims: [usize; 3]) -> Option<String> {
    let mut n_nan = 0usize;
    let mut n_inf = 0usize;
    let mut first = None;
    for (i, v) in data.iter().enumerate() {
        if v.is_nan() {
            n_nan += 1;
        } else if v.is_infinite() {
            n_inf += 1;
        } else {
            continue;
        }
        first.get_or_insert(i);
    }
    let first = first?;
    let [nx, ny, _] = dims;
    let (x, y, z) = (first % nx, (first / nx) % ny, first / (nx * ny));
    Some(format!(
        "{n_nan} NaN and {n_inf} infinite voxel value(s) (after scaling; first at voxel \
         ({x}, {y}, {z}))"
    ))
}

// ---------------------------------------------------------------------------
// Writing helpers
// ---------------------------------------------------------------------------

/// An identity-affine, 1 mm isotropic header.
fn identity_header() -> NiftiHeader {
    NiftiHeader {
        pixdim: [1.0; 8],
        xyzt_units: UNITS_MM,
        qform_code: XFORM_ALIGNED_ANAT,
        sform_code: XFORM_ALIGNED_ANAT,
        quatern_b: 0.0,
        quatern_c: 0.0,
        quatern_d: 0.0,
        quatern_x: 0.0,
        quatern_y: 0.0,
        quatern_z: 0.0,
        srow_x: [1.0, 0.0, 0.0, 0.0],
        srow_y: [0.0, 1.0, 0.0, 0.0],
        srow_z: [0.0, 0.0, 1.0, 0.0],
        ..NiftiHeader::default()
    }
}

/// The header of a `FLOAT32` volume of `dims` on the grid of `reference`.
fn output_header(
    dims: [usize; 3],
    reference: Option<&NiftiHeader>,
    data: &[f32],
    descrip: &str,
) -> NiftiHeader {
    let mut h = reference.cloned().unwrap_or_else(identity_header);
    h.sizeof_hdr = HEADER_SIZE as i32;
    // Dims were checked to be in 1..=32767 by the caller.
    let d = |i: usize| u16::try_from(dims[i]).unwrap_or(u16::MAX);
    h.dim = [3, d(0), d(1), d(2), 1, 1, 1, 1];
    h.datatype = DT_FLOAT32;
    h.bitpix = 32;
    h.vox_offset = DATA_OFFSET as f32;
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    h.magic = MAGIC_SINGLE_FILE;
    h.intent_code = 0;
    h.intent_p1 = 0.0;
    h.intent_p2 = 0.0;
    h.intent_p3 = 0.0;
    h.intent_name = [0; 16];
    h.glmax = 0;
    h.glmin = 0;
    // qfac must be -1 or 1; anything else means 1 (NIfTI standard).
    if h.pixdim[0] != -1.0 {
        h.pixdim[0] = 1.0;
    }
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc: Option<(f32, f32)>, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
        .unwrap_or((0.0, 0.0));
    h.cal_min = lo;
    h.cal_max = hi;
    h.descrip = description_bytes(descrip);
    h.endianness = Endianness::Little;
    h
}

/// `descrip` as the 80 bytes of the header field (truncated at a character
/// boundary, NUL padded).
fn description_bytes(descrip: &str) -> Vec<u8> {
    let mut end = descrip.len().min(80);
    while !descrip.is_char_boundary(end) {
        end -= 1;
    }
    let mut bytes = descrip.as_bytes()[..end].to_vec();
    bytes.resize(80, 0);
    bytes
}

/// Serialise a header as the 348 header bytes followed by a 4-byte extender
/// announcing no extension (352 bytes in all).
fn encode_header(h: &NiftiHeader, big_endian: bool) -> Vec<u8> {
    struct Out {
        bytes: Vec<u8>,
        big: bool,
    }
    impl Out {
        fn put<const N: usize>(&mut self, le: [u8; N], be: [u8; N]) {
            self.bytes
                .extend_from_slice(if self.big { &be } else { &le });
        }
        fn i16(&mut self, v: i16) {
            self.put(v.to_le_bytes(), v.to_be_bytes());
        }
        fn u16(&mut self, v: u16) {
            self.put(v.to_le_bytes(), v.to_be_bytes());
        }
        fn i32(&mut self, v: i32) {
            self.put(v.to_le_bytes(), v.to_be_bytes());
        }
        fn f32(&mut self, v: f32) {
            self.put(v.to_le_bytes(), v.to_be_bytes());
        }
        fn raw(&mut self, v: &[u8]) {
            self.bytes.extend_from_slice(v);
        }
        fn fixed(&mut self, v: &[u8], len: usize) {
            let n = v.len().min(len);
            self.bytes.extend_from_slice(&v[..n]);
            self.bytes.resize(self.bytes.len() + (len - n), 0);
        }
    }

    let mut o = Out {
        bytes: Vec::with_capacity(DATA_OFFSET),
        big: big_endian,
    };
    o.i32(h.sizeof_hdr);
    o.raw(&h.data_type);
    o.raw(&h.db_name);
    o.i32(h.extents);
    o.i16(h.session_error);
    o.raw(&[h.regular, h.dim_info]);
    for &d in &h.dim {
        o.u16(d);
    }
    o.f32(h.intent_p1);
    o.f32(h.intent_p2);
    o.f32(h.intent_p3);
    o.i16(h.intent_code);
    o.i16(h.datatype);
    o.i16(h.bitpix);
    o.i16(h.slice_start);
    for &p in &h.pixdim {
        o.f32(p);
    }
    o.f32(h.vox_offset);
    o.f32(h.scl_slope);
    o.f32(h.scl_inter);
    o.i16(h.slice_end);
    o.raw(&[h.slice_code, h.xyzt_units]);
    o.f32(h.cal_max);
    o.f32(h.cal_min);
    o.f32(h.slice_duration);
    o.f32(h.toffset);
    o.i32(h.glmax);
    o.i32(h.glmin);
    o.fixed(&h.descrip, 80);
    o.raw(&h.aux_file);
    o.i16(h.qform_code);
    o.i16(h.sform_code);
    for v in [
        h.quatern_b,
        h.quatern_c,
        h.quatern_d,
        h.quatern_x,
        h.quatern_y,
        h.quatern_z,
    ] {
        o.f32(v);
    }
    for &v in h.srow_x.iter().chain(&h.srow_y).chain(&h.srow_z) {
        o.f32(v);
    }
    o.raw(&h.intent_name);
    o.raw(&h.magic);
    debug_assert_eq!(o.bytes.len(), HEADER_SIZE);
    // Extender: no extension follows.
    o.raw(&[0, 0, 0, 0]);
    o.bytes
}

/// Write the header bytes then the voxels as little-endian `f32`.
fn write_payload(out: &mut impl Write, head: &[u8], data: &[f32]) -> io::Result<()> {
    out.write_all(head)?;
    let mut buffer = Vec::with_capacity(WRITE_CHUNK_VOXELS * 4);
    for chunk in data.chunks(WRITE_CHUNK_VOXELS) {
        buffer.clear();
        for v in chunk {
            buffer.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&buffer)?;
    }
    Ok(())
}

/// Flush a buffered writer, reporting the error a plain drop would swallow.
fn finish_buffer(buffered: BufWriter<&mut File>) -> io::Result<()> {
    buffered.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// Whether a path names a gzip file (`*.gz`, any case).
fn has_gz_extension(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"))
}

// ---------------------------------------------------------------------------
// Error helpers
// ---------------------------------------------------------------------------

fn format_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn join_dims(dims: &[usize]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use nifti::writer::WriterOptions;
    use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
    use std::fs;

    /// A header for `dims` (1 to 7 of them) and `datatype`, with scaling.
    fn header(dims: &[u16], datatype: i16, bitpix: i16, slope: f32, inter: f32) -> NiftiHeader {
        let mut dim = [1u16; 8];
        dim[0] = dims.len() as u16;
        dim[1..=dims.len()].copy_from_slice(dims);
        NiftiHeader {
            dim,
            datatype,
            bitpix,
            scl_slope: slope,
            scl_inter: inter,
            vox_offset: DATA_OFFSET as f32,
            magic: MAGIC_SINGLE_FILE,
            ..NiftiHeader::default()
        }
    }

    /// Write header + payload bytes as a .nii, optionally gzip-compressed.
    fn write_raw(path: &Path, h: &NiftiHeader, payload: &[u8], gzip: bool, big_endian: bool) {
        let mut bytes = encode_header(h, big_endian);
        bytes.extend_from_slice(payload);
        if gzip {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(&bytes).unwrap();
            bytes = enc.finish().unwrap();
        }
        fs::write(path, bytes).unwrap();
    }

    fn f32_payload(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A header with a non-trivial geometry (oblique affine, anisotropic
    /// voxels, negative qfac, units mm + s).
    fn oblique_header(dims: &[u16]) -> NiftiHeader {
        NiftiHeader {
            pixdim: [-1.0, 0.9, 1.1, 2.5, 3.0, 0.0, 0.0, 0.0],
            xyzt_units: 10,
            qform_code: 1,
            sform_code: 2,
            quatern_b: 0.1,
            quatern_c: -0.2,
            quatern_d: 0.3,
            quatern_x: -90.5,
            quatern_y: 126.25,
            quatern_z: -72.0,
            srow_x: [-0.9, 0.01, 0.02, 90.5],
            srow_y: [0.03, 1.1, -0.04, -126.25],
            srow_z: [0.0, 0.05, 2.5, -72.0],
            ..header(dims, 4, 16, 1.0, 0.0)
        }
    }

    fn code(x: usize, y: usize, z: usize) -> f32 {
        (x + 100 * y + 10_000 * z) as f32
    }

    #[test]
    fn voxel_order_is_x_fastest_against_the_nifti_crate_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xyz.nii");
        let (nx, ny, nz) = (5, 4, 3);
        let array = Array3::from_shape_fn((nx, ny, nz), |(x, y, z)| code(x, y, z));
        WriterOptions::new(&path).write_nifti(&array).unwrap();

        let volume = read_volume(&path).unwrap();
        assert_eq!(volume.dims, [nx, ny, nz]);
        assert_eq!(volume.len(), nx * ny * nz);
        assert!(!volume.is_empty());
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    assert_eq!(volume.data[x + nx * (y + ny * z)], code(x, y, z));
                }
            }
        }
    }

    #[test]
    fn written_voxel_order_is_x_fastest_for_the_nifti_crate_reader() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["map.nii", "map.nii.gz"] {
            let path = dir.path().join(name);
            let (nx, ny, nz) = (3, 5, 2);
            let mut data = vec![0.0; nx * ny * nz];
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        data[x + nx * (y + ny * z)] = code(x, y, z);
                    }
                }
            }
            write_f32_volume(&path, [nx, ny, nz], None, &data, "test").unwrap();
            let object = ReaderOptions::new().read_file(&path).unwrap();
            let array = object.into_volume().into_ndarray::<f32>().unwrap();
            assert_eq!(array.shape(), &[nx, ny, nz]);
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        assert_eq!(array[[x, y, z]], code(x, y, z), "{name}");
                    }
                }
            }
        }
    }

    #[test]
    fn header_encoding_matches_the_nifti_crate_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.nii");
        let mut reference = oblique_header(&[2, 3, 4]);
        reference.descrip = b"encoding check".to_vec();
        reference.endianness = Endianness::Little;
        let array = Array3::<f32>::zeros((2, 3, 4));
        WriterOptions::new(&path)
            .reference_header(&reference)
            .write_nifti(&array)
            .unwrap();
        let written = fs::read(&path).unwrap();

        let mut expected = reference.clone();
        expected.dim = [3, 2, 3, 4, 1, 1, 1, 1];
        expected.datatype = DT_FLOAT32;
        expected.bitpix = 32;
        expected.vox_offset = 352.0;
        expected.scl_slope = 1.0;
        expected.scl_inter = 0.0;
        expected.magic = MAGIC_SINGLE_FILE;
        assert_eq!(&written[..DATA_OFFSET], encode_header(&expected, false));
    }

    #[test]
    fn round_trip_keeps_geometry_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.nii");
        let dims = [4usize, 3, 2];
        let h = oblique_header(&[4, 3, 2]);
        let stored: Vec<i16> = (0..24).map(|i| i * 10 - 50).collect();
        let payload: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
        write_raw(&src, &h, &payload, false, false);
        let like = read_volume(&src).unwrap();
        assert_eq!(like.dims, dims);
        assert_eq!(like.spacing(), [0.9, 1.1, 2.5]);

        let map: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 1.0).collect();
        for name in ["map.nii", "map.nii.gz"] {
            let out = dir.path().join(name);
            write_map(&out, &like, &map).unwrap();
            let back = read_volume(&out).unwrap();
            let (a, b) = (&like.header, &back.header);
            assert_eq!(back.dims, dims, "{name}");
            assert_eq!(back.data, map, "{name}");
            assert_eq!(b.dim, [3, 4, 3, 2, 1, 1, 1, 1]);
            assert_eq!(b.srow_x, a.srow_x);
            assert_eq!(b.srow_y, a.srow_y);
            assert_eq!(b.srow_z, a.srow_z);
            assert_eq!(b.sform_code, a.sform_code);
            assert_eq!(b.qform_code, a.qform_code);
            assert_eq!(
                [b.quatern_b, b.quatern_c, b.quatern_d],
                [a.quatern_b, a.quatern_c, a.quatern_d]
            );
            assert_eq!(
                [b.quatern_x, b.quatern_y, b.quatern_z],
                [a.quatern_x, a.quatern_y, a.quatern_z]
            );
            assert_eq!(b.pixdim[..4], a.pixdim[..4]);
            assert_eq!(b.xyzt_units, a.xyzt_units);
            assert_eq!(back.spacing(), like.spacing());
            assert_eq!((b.datatype, b.bitpix), (DT_FLOAT32, 32));
            assert_eq!((b.scl_slope, b.scl_inter), (1.0, 0.0));
            assert_eq!((b.cal_min, b.cal_max), (-1.0, 4.75));
            assert!(b.descrip.starts_with(b"adGAN anomaly map\0"));
            assert_eq!(b.descrip.len(), 80);
        }
        // Gzip when the name says so.
        let gz = fs::read(dir.path().join("map.nii.gz")).unwrap();
        assert!(gz.starts_with(&GZIP_MAGIC));
        let plain = fs::read(dir.path().join("map.nii")).unwrap();
        assert_eq!(plain.len(), DATA_OFFSET + 24 * 4);
    }

    #[test]
    fn identity_header_when_none_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.nii.gz");
        let data = vec![1.5f32; 2 * 2 * 3];
        let long = "x".repeat(100);
        write_f32_volume(&path, [2, 2, 3], None, &data, &long).unwrap();
        let v = read_volume(&path).unwrap();
        assert_eq!(v.dims, [2, 2, 3]);
        assert_eq!(v.data, data);
        assert_eq!(v.spacing(), [1.0, 1.0, 1.0]);
        let h = &v.header;
        assert_eq!(h.srow_x, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(h.srow_y, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(h.srow_z, [0.0, 0.0, 1.0, 0.0]);
        assert!(h.sform_code > 0 && h.qform_code > 0);
        assert_eq!([h.quatern_b, h.quatern_c, h.quatern_d], [0.0; 3]);
        assert_eq!(h.xyzt_units & 7, UNITS_MM);
        assert_eq!(h.descrip, vec![b'x'; 80]);
    }

    #[test]
    fn every_datatype_is_read_with_scaling() {
        let dir = tempfile::tempdir().unwrap();
        // (datatype code, bitpix, stored values as f64, encoder)
        type Encode = fn(f64, bool) -> Vec<u8>;
        macro_rules! enc {
            ($t:ty) => {
                (|v: f64, big: bool| {
                    let v = v as $t;
                    if big {
                        v.to_be_bytes().to_vec()
                    } else {
                        v.to_le_bytes().to_vec()
                    }
                }) as Encode
            };
        }
        let cases: [(i16, i16, [f64; 8], Encode); 10] = [
            (2, 8, [0., 1., 2., 3., 127., 128., 200., 255.], enc!(u8)),
            (256, 8, [-128., -1., 0., 1., 2., 50., 100., 127.], enc!(i8)),
            (
                512,
                16,
                [0., 1., 2., 3., 1000., 30000., 50000., 65535.],
                enc!(u16),
            ),
            (
                4,
                16,
                [-32768., -1., 0., 1., 2., 3., 1000., 32767.],
                enc!(i16),
            ),
            (768, 32, [0., 1., 2., 3., 4., 70000., 1e6, 4e9], enc!(u32)),
            (
                8,
                32,
                [-2e9, -70000., -1., 0., 1., 2., 70000., 2e9],
                enc!(i32),
            ),
            (1280, 64, [0., 1., 2., 3., 4., 5., 1e6, 1e15], enc!(u64)),
            (1024, 64, [-1e15, -1., 0., 1., 2., 3., 4., 1e12], enc!(i64)),
            (
                16,
                32,
                [-1.5, -0.25, 0., 0.5, 1., 2., 3.75, 1e20],
                enc!(f32),
            ),
            (
                64,
                64,
                [-1.5, -0.25, 0., 0.5, 1., 2., 3.75, 1e30],
                enc!(f64),
            ),
        ];
        for (datatype, bitpix, values, encode) in cases {
            for (gzip, big) in [(false, false), (true, true)] {
                let path = dir.path().join(format!("dt{datatype}-{gzip}-{big}.nii"));
                let h = NiftiHeader {
                    endianness: if big {
                        Endianness::Big
                    } else {
                        Endianness::Little
                    },
                    ..header(&[2, 2, 2], datatype, bitpix, 2.0, -1.0)
                };
                let payload: Vec<u8> = values.iter().flat_map(|&v| encode(v, big)).collect();
                write_raw(&path, &h, &payload, gzip, big);
                let v = read_volume(&path).unwrap();
                assert_eq!(v.dims, [2, 2, 2]);
                assert_eq!(v.header.datatype, datatype);
                let expected: Vec<f32> = values.iter().map(|&s| (s * 2.0 - 1.0) as f32).collect();
                for (got, want) in v.data.iter().zip(&expected) {
                    let tolerance = want.abs() * 1e-6;
                    assert!(
                        (got - want).abs() <= tolerance,
                        "datatype {datatype} gzip {gzip} big {big}: {got} != {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_slope_means_no_scaling() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noscale.nii");
        let h = header(&[2, 1, 1], 4, 16, 0.0, 5.0);
        let payload: Vec<u8> = [7i16, -3].iter().flat_map(|v| v.to_le_bytes()).collect();
        write_raw(&path, &h, &payload, false, false);
        assert_eq!(read_volume(&path).unwrap().data, vec![7.0, -3.0]);
    }

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let h = header(&[2, 2, 1], 16, 32, 1.0, 0.0);
        let payload = f32_payload(&[1.0, 2.0, 3.0, 4.0]);
        let gz_named_plain = dir.path().join("gz_content.nii");
        write_raw(&gz_named_plain, &h, &payload, true, false);
        let plain_named_gz = dir.path().join("plain_content.nii.gz");
        write_raw(&plain_named_gz, &h, &payload, false, false);
        for path in [gz_named_plain, plain_named_gz] {
            let v = read_volume(&path).unwrap();
            assert_eq!(v.dims, [2, 2, 1]);
            assert_eq!(v.data, vec![1.0, 2.0, 3.0, 4.0]);
        }
    }

    #[test]
    fn two_and_four_dimensional_data_with_singleton_extra_dims() {
        let dir = tempfile::tempdir().unwrap();
        let payload = f32_payload(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let path = dir.path().join("2d.nii");
        write_raw(
            &path,
            &header(&[3, 2], 16, 32, 1.0, 0.0),
            &payload,
            false,
            false,
        );
        assert_eq!(read_volume(&path).unwrap().dims, [3, 2, 1]);
        let path = dir.path().join("4d.nii");
        write_raw(
            &path,
            &header(&[1, 3, 2, 1, 1], 16, 32, 1.0, 0.0),
            &payload,
            false,
            false,
        );
        let v = read_volume(&path).unwrap();
        assert_eq!(v.dims, [1, 3, 2]);
        assert_eq!(v.data[5], 6.0);
    }

    fn format_message(result: Result<Volume>) -> String {
        match result {
            Err(e @ Error::Format { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("does-not-exist.nii.gz");
        match read_volume(&path) {
            Err(e @ Error::Io { .. }) => {
                assert!(e.to_string().contains(&path.display().to_string()), "{e}")
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_and_truncated_gzip_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corrupt.nii.gz");
        let mut bytes = GZIP_MAGIC.to_vec();
        bytes.extend_from_slice(b"\x08\x00this is not deflate data at all, sorry");
        fs::write(&path, &bytes).unwrap();
        let message = format_message(read_volume(&path));
        assert!(message.contains("gzip"), "{message}");
        assert!(message.contains("corrupt.nii.gz"), "{message}");

        let good = dir.path().join("good.nii.gz");
        let data: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
        write_f32_volume(&good, [10, 10, 10], None, &data, "").unwrap();
        let bytes = fs::read(&good).unwrap();
        for cut in [bytes.len() / 2, bytes.len() - 3] {
            let path = dir.path().join(format!("cut{cut}.nii.gz"));
            fs::write(&path, &bytes[..cut]).unwrap();
            let message = format_message(read_volume(&path));
            assert!(message.contains("gzip"), "{message}");
        }
    }

    #[test]
    fn truncated_and_short_files_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.nii");
        write_f32_volume(&path, [4, 4, 4], None, &[0.5; 64], "").unwrap();
        let bytes = fs::read(&path).unwrap();
        let cut = dir.path().join("cut.nii");
        fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let message = format_message(read_volume(&cut));
        assert!(message.contains("truncated"), "{message}");
        let tiny = dir.path().join("tiny.nii");
        fs::write(&tiny, &bytes[..100]).unwrap();
        assert!(format_message(read_volume(&tiny)).contains("header"));
        let empty = dir.path().join("empty.nii");
        fs::write(&empty, b"").unwrap();
        format_message(read_volume(&empty));
        let text = dir.path().join("text.nii");
        fs::write(&text, "x".repeat(1000)).unwrap();
        assert!(format_message(read_volume(&text)).contains("NIfTI"));
    }

    #[test]
    fn bad_headers_are_format_errors() {
        let dir = tempfile::tempdir().unwrap();
        let payload = f32_payload(&[0.0; 8]);
        let cases = [
            ("zero", header(&[2, 0, 2], 16, 32, 1.0, 0.0), "zero-length"),
            ("5d", header(&[2, 2, 2, 2, 3], 16, 32, 1.0, 0.0), "5-D"),
            ("4d", header(&[2, 2, 1, 2], 16, 32, 1.0, 0.0), "4-D"),
            ("c64", header(&[2, 2, 2], 32, 64, 1.0, 0.0), "complex64"),
            ("rgb", header(&[2, 2, 2], 128, 24, 1.0, 0.0), "rgb24"),
            (
                "pair",
                NiftiHeader {
                    magic: MAGIC_PAIR,
                    ..header(&[2, 2, 2], 16, 32, 1.0, 0.0)
                },
                ".hdr/.img",
            ),
            (
                "magic",
                NiftiHeader {
                    magic: *b"abc\0",
                    ..header(&[2, 2, 2], 16, 32, 1.0, 0.0)
                },
                "magic",
            ),
            (
                "offset",
                NiftiHeader {
                    vox_offset: 100.0,
                    ..header(&[2, 2, 2], 16, 32, 1.0, 0.0)
                },
                "vox_offset",
            ),
        ];
        for (name, h, expected) in cases {
            let path = dir.path().join(format!("{name}.nii"));
            write_raw(&path, &h, &payload, false, false);
            let message = format_message(read_volume(&path));
            assert!(message.contains(expected), "{name}: {message}");
            assert!(
                message.contains(&format!("{name}.nii")),
                "{name}: {message}"
            );
        }
    }

    #[test]
    fn non_finite_voxels_are_background_outside_the_brain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.nii");
        let mut values = [1.0f32; 8];
        values[3] = f32::NAN;
        values[5] = f32::NAN;
        values[6] = f32::INFINITY;
        write_raw(
            &path,
            &header(&[2, 2, 2], 16, 32, 1.0, 0.0),
            &f32_payload(&values),
            false,
            false,
        );
        // Read as they are, and described.
        let what = read_volume(&path).unwrap().non_finite().unwrap();
        assert!(
            what.contains("2 NaN") && what.contains("1 infinite"),
            "{what}"
        );
        assert!(what.contains("(1, 1, 0)"), "{what}");
        // A case without a mask: background (0), with a warning naming the file.
        let (case, _) = Case::from_files(std::slice::from_ref(&path), None, None).unwrap();
        let expect: Vec<f32> = values
            .iter()
            .map(|v| if v.is_finite() { *v } else { 0.0 })
            .collect();
        assert_eq!(case.channels[0], expect);
        assert_eq!(case.warnings.len(), 1, "{:?}", case.warnings);
        assert!(case.warnings[0].contains("nan.nii") && case.warnings[0].contains("background"));
        // A brain mask that keeps them out: the same, said so.
        let mask = |name: &str, on: [u8; 8]| {
            let p = dir.path().join(name);
            write_raw(&p, &header(&[2, 2, 2], 2, 8, 0.0, 0.0), &on, false, false);
            p
        };
        let outside = mask("outside.nii", [1, 1, 1, 0, 1, 0, 0, 1]);
        let (case, _) =
            Case::from_files(std::slice::from_ref(&path), Some(&outside), None).unwrap();
        assert!(
            case.warnings[0].contains("outside the brain mask"),
            "{:?}",
            case.warnings
        );
        // A brain mask holding one: refused, naming the file and the mask.
        let inside = mask("inside.nii", [1, 1, 1, 1, 1, 0, 0, 1]);
        let e = Case::from_files(std::slice::from_ref(&path), Some(&inside), None).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("nan.nii") && m.contains("inside.nii"), "{m}");
        assert!(m.contains("1 of them inside the brain mask"), "{m}");
        // NaN in a label is outside it.
        let label = dir.path().join("label.nii");
        write_raw(
            &label,
            &header(&[2, 2, 1], 16, 32, 1.0, 0.0),
            &f32_payload(&[1.0, f32::NAN, 0.0, 2.0]),
            false,
            false,
        );
        assert_eq!(
            read_mask(&label, [2, 2, 1]).unwrap(),
            vec![true, false, false, true]
        );
    }

    #[test]
    fn channels_must_share_dims() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("t1.nii.gz");
        let b = dir.path().join("t2.nii.gz");
        let c = dir.path().join("flair.nii.gz");
        write_f32_volume(&a, [2, 3, 4], None, &[1.0; 24], "").unwrap();
        write_f32_volume(&b, [2, 3, 4], None, &[2.0; 24], "").unwrap();
        write_f32_volume(&c, [3, 2, 4], None, &[3.0; 24], "").unwrap();
        let ok = read_channels(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].data[0], 2.0);
        assert_eq!(ok[1].path, b);
        match read_channels(&[a, b, c.clone()]) {
            Err(e @ Error::Format { .. }) => {
                let message = e.to_string();
                assert!(message.contains(&c.display().to_string()), "{message}");
                assert!(message.contains("3x2x4"), "{message}");
                assert!(message.contains("2x3x4"), "{message}");
            }
            other => panic!("expected a format error, got {other:?}"),
        }
        assert!(matches!(read_channels(&[]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn masks_are_non_zero_voxels_and_dims_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.nii.gz");
        let h = header(&[3, 2, 1], 2, 8, 0.0, 0.0);
        write_raw(&path, &h, &[0, 1, 2, 0, 4, 0], true, false);
        let mask = read_mask(&path, [3, 2, 1]).unwrap();
        assert_eq!(mask, vec![false, true, true, false, true, false]);
        match read_mask(&path, [2, 3, 1]) {
            Err(e @ Error::Format { .. }) => assert!(e.to_string().contains("seg.nii.gz")),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file_and_keep_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.nii.gz");
        write_f32_volume(&path, [2, 2, 2], None, &[1.0; 8], "").unwrap();
        let like = read_volume(&path).unwrap();
        write_map(&path, &like, &[2.0; 8]).unwrap();
        assert_eq!(dir_entries(dir.path()), vec!["map.nii.gz".to_string()]);
        let before = fs::read(&path).unwrap();

        // Wrong data length: rejected before anything is written.
        assert!(matches!(
            write_map(&path, &like, &[3.0; 7]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            write_f32_volume(&path, [2, 2, 0], None, &[], ""),
            Err(Error::InvalidArgument(_))
        ));
        // A writer failing half-way.
        let result = write_atomically(&path, |file| {
            file.write_all(b"half a file")?;
            Err(io::Error::other("disk on fire"))
        });
        match result {
            Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("disk on fire")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert_eq!(fs::read(&path).unwrap(), before);
        assert_eq!(read_volume(&path).unwrap().data, vec![2.0; 8]);
        assert_eq!(dir_entries(dir.path()), vec!["map.nii.gz".to_string()]);

        // A panicking writer also leaves nothing behind.
        let panicked = std::panic::catch_unwind(|| {
            let _ = write_atomically(&path, |_| panic!("boom"));
        });
        assert!(panicked.is_err());
        assert_eq!(dir_entries(dir.path()), vec!["map.nii.gz".to_string()]);

        // Unwritable destination: an I/O error naming it.
        let missing_dir = dir.path().join("no-such-dir").join("map.nii");
        match write_f32_volume(&missing_dir, [1, 1, 1], None, &[0.0], "") {
            Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("no-such-dir")),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_real_brain_volume_if_present() {
        let path = Path::new("/work/shared/data/brain-mr/TCGA-DU-7294/fla_bet.nii.gz");
        if !path.exists() {
            eprintln!("skipping: {} is absent", path.display());
            return;
        }
        let v = read_volume(path).unwrap();
        assert_eq!(v.dims, [240, 240, 155]);
        assert_eq!(v.header.datatype, 4);
        assert_eq!(v.len(), 240 * 240 * 155);
        let non_zero = v.data.iter().filter(|&&x| x != 0.0).count();
        assert!(non_zero > 100_000, "{non_zero} non-zero voxels");
        // The brain sits in the middle of the field of view, not at the corner.
        assert_eq!(v.data[0], 0.0);
        let centre = 120 + 240 * (120 + 240 * 77);
        assert!(v.data[centre] != 0.0);
        // Same voxels, same order, as the nifti crate's own reader.
        let reference = ReaderOptions::new()
            .read_file(path)
            .unwrap()
            .into_volume()
            .into_ndarray::<f32>()
            .unwrap();
        assert_eq!(reference.shape(), &[240, 240, 155]);
        for (z, y, x) in [(77, 120, 120), (60, 100, 150), (90, 130, 90), (0, 0, 0)] {
            assert_eq!(v.data[x + 240 * (y + 240 * z)], reference[[x, y, z]]);
        }
        let reference_sum: f64 = reference.iter().map(|&x| f64::from(x)).sum();
        let sum: f64 = v.data.iter().map(|&x| f64::from(x)).sum();
        assert_eq!(sum, reference_sum);
    }
}
