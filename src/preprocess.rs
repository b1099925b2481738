//! From voxels to patches: brain mask, intensity normalisation and the
//! 32x32 windows of the slices (for training and for scoring alike).
//!
//! Conventions. A volume's voxels are `f32` with x varying fastest
//! (`index = x + nx * (y + ny * z)`), the layout of NIfTI files, ITK
//! buffers and Slicer arrays. As a tensor it is `[C, nz, ny, nx]`. A slice
//! across `slice_axis` is a plane of `H x W` pixels: axis 2 (axial, the
//! default) gives `H = y, W = x`; axis 1 gives `H = z, W = x`; axis 0 gives
//! `H = z, W = y`. Windows are `32 x 32` at a stride, their origins on a grid
//! starting at (0, 0); the plane is padded at its far edges (with each
//! channel's background value) so that the windows cover every pixel.

pub use crate::config::{Normalisation, PatchSampling};
use crate::error::{Error, Result};
use crate::nets::PATCH;
use tch::{Kind, Tensor};

/// One case: co-registered channels on one grid, optional masks.
#[derive(Debug, Clone)]
pub struct Case {
    /// A name for messages (usually the first channel's file).
    pub name: String,
    /// `[nx, ny, nz]`.
    pub dims: [usize; 3],
    /// One buffer per channel (modality), x fastest.
    pub channels: Vec<Vec<f32>>,
    /// Brain mask; `None`: the voxels where any channel is non-zero.
    pub brain: Option<Vec<bool>>,
    /// Voxels to keep out of training patches (e.g. lesion labels).
    pub exclude: Option<Vec<bool>>,
    /// What reading changed that a user should hear about (NaN voxels
    /// read as background); the command line prints them as warnings.
    pub warnings: Vec<String>,
}

/// The channel names of volume cases when none are given (the command
/// line and the C API alike): `flair` for one channel, the paper's
/// modality; `ch0,ch1,...` for several. Images have their own
/// (`images::default_channel_names`).
pub fn default_channel_names(channels: usize) -> Vec<String> {
    match channels {
        1 => vec!["flair".to_string()],
        n => (0..n).map(|i| format!("ch{i}")).collect(),
    }
}

impl Case {
    /// Number of voxels of one channel.
    pub fn voxels(&self) -> usize {
        self.dims.iter().product()
    }

    /// Check sizes and values; the error names the case.
    pub fn validate(&self) -> Result<()> {
        let n = self.voxels();
        let bad = |m: String| Error::format(&self.name, m);
        if self.dims.contains(&0) {
            return Err(bad(format!("zero-length dimension in {:?}", self.dims)));
        }
        if self.channels.is_empty() {
            return Err(bad("no channels".into()));
        }
        for (i, c) in self.channels.iter().enumerate() {
            if c.len() != n {
                return Err(bad(format!(
                    "channel {i} has {} voxels, dims {:?} need {n}",
                    c.len(),
                    self.dims
                )));
            }
            let nonfinite = c.iter().filter(|v| !v.is_finite()).count();
            if nonfinite > 0 {
                return Err(bad(format!(
                    "channel {i} has {nonfinite} NaN or infinite voxel(s)"
                )));
            }
        }
        for (what, m) in [
            ("brain mask", &self.brain),
            ("exclusion label", &self.exclude),
        ] {
            if let Some(m) = m {
                if m.len() != n {
                    return Err(bad(format!(
                        "{what} has {} voxels, dims {:?} need {n}",
                        m.len(),
                        self.dims
                    )));
                }
            }
        }
        Ok(())
    }

    /// The brain mask: the given one, else the non-zero voxels of any channel.
    pub fn brain_mask(&self) -> Vec<bool> {
        match &self.brain {
            Some(m) => m.clone(),
            None => (0..self.voxels())
                .map(|i| self.channels.iter().any(|c| c[i] != 0.0))
                .collect(),
        }
    }
}

/// Mean and standard deviation of one channel inside the brain.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelStats {
    pub mean: f64,
    pub std: f64,
    /// Value that voxels outside the brain take after normalisation
    /// (where raw 0 maps to).
    pub background: f64,
}

/// A case normalised to zero mean, unit variance inside the brain, per
/// channel (by one of the [`Normalisation`]s), as tensors on the CPU.
#[derive(Debug)]
pub struct Normalised {
    pub dims: [usize; 3],
    /// `[C, nz, ny, nx]`, outside the brain set to each channel's background.
    pub data: Tensor,
    /// `[nz, ny, nx]`, 1.0 inside the brain, 0.0 outside.
    pub brain: Tensor,
    /// `[nz, ny, nx]`, 1.0 on voxels to exclude from training.
    pub exclude: Option<Tensor>,
    pub stats: Vec<ChannelStats>,
    /// Number of brain voxels.
    pub brain_voxels: usize,
}

fn bool_tensor(m: &[bool], dims: [usize; 3]) -> Tensor {
    let v: Vec<f32> = m.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    Tensor::from_slice(&v).view([dims[2] as i64, dims[1] as i64, dims[0] as i64])
}

/// Mean and standard deviation of `values` by `method` (see
/// [`Normalisation`]).
fn centre_and_scale(values: &[f32], method: Normalisation) -> (f64, f64) {
    let below = |upper: f64| {
        let (mut n, mut s, mut s2) = (0usize, 0f64, 0f64);
        for &v in values {
            let v = v as f64;
            if v <= upper {
                n += 1;
                s += v;
                s2 += v * v;
            }
        }
        let mean = s / n.max(1) as f64;
        let var = (s2 / n.max(1) as f64 - mean * mean).max(0.0);
        (n, mean, var.sqrt())
    };
    match method {
        Normalisation::ZScore => {
            let (_, mean, std) = below(f64::INFINITY);
            (mean, std)
        }
        Normalisation::ClippedZScore => {
            // Start from the median and the MAD (as an SD), which a bright
            // lesion of up to half the brain cannot drag: started from the
            // plain mean and SD, a lesion of 10% or more of the brain
            // inflates the SD enough to sit below its own cut and is never
            // clipped. Then clip and recompute until no voxel changes side
            // (about 10 rounds on brain MR; the cap guards an oscillation).
            let (median, mad) = median_and_mad(values);
            let (mut mean, mut std) = (median, 1.4826 * mad);
            let mut n = usize::MAX;
            for _ in 0..100 {
                let (n2, m2, s2) = below(mean + CLIP_SD * std);
                if n2 == n || n2 < 2 {
                    break;
                }
                (n, mean, std) = (n2, m2, s2);
            }
            if n == usize::MAX || std <= 0.0 {
                // Fewer than 2 voxels below the first cut (a brain of
                // nearly one value): the plain statistics.
                let (_, m, s) = below(f64::INFINITY);
                (mean, std) = (m, s);
            }
            (mean, std)
        }
    }
}

/// Median and median absolute deviation of `values` (not empty).
fn median_and_mad(values: &[f32]) -> (f64, f64) {
    let mut v = values.to_vec();
    let mid = v.len() / 2;
    let median = *v.select_nth_unstable_by(mid, f32::total_cmp).1 as f64;
    for x in v.iter_mut() {
        *x = (*x as f64 - median).abs() as f32;
    }
    let mad = *v.select_nth_unstable_by(mid, f32::total_cmp).1 as f64;
    (median, mad)
}

/// Where [`Normalisation::ClippedZScore`] cuts the upper tail, in SD.
pub const CLIP_SD: f64 = 3.0;

/// Normalise a case by `method` (validates it first).
pub fn normalise(case: &Case, method: Normalisation) -> Result<Normalised> {
    case.validate()?;
    let brain = case.brain_mask();
    let n_brain = brain.iter().filter(|&&b| b).count();
    if n_brain < 2 {
        return Err(Error::format(
            &case.name,
            "the brain mask is empty (no non-zero voxel): nothing to normalise",
        ));
    }
    let [nx, ny, nz] = case.dims;
    let mut stats = Vec::with_capacity(case.channels.len());
    let mut out = Vec::with_capacity(case.voxels() * case.channels.len());
    for (ci, c) in case.channels.iter().enumerate() {
        let inside: Vec<f32> = c
            .iter()
            .zip(&brain)
            .filter(|(_, &b)| b)
            .map(|(v, _)| *v)
            .collect();
        let (mean, std) = centre_and_scale(&inside, method);
        if std <= f64::EPSILON * mean.abs().max(1.0) {
            return Err(Error::format(
                &case.name,
                format!("channel {ci} is constant inside the brain: cannot normalise"),
            ));
        }
        let background = -mean / std;
        stats.push(ChannelStats {
            mean,
            std,
            background,
        });
        out.extend(c.iter().zip(&brain).map(|(v, &b)| {
            if b {
                ((*v as f64 - mean) / std) as f32
            } else {
                background as f32
            }
        }));
    }
    let data = Tensor::from_slice(&out).view([
        case.channels.len() as i64,
        nz as i64,
        ny as i64,
        nx as i64,
    ]);
    Ok(Normalised {
        dims: case.dims,
        data,
        brain: bool_tensor(&brain, case.dims),
        exclude: case.exclude.as_ref().map(|m| bool_tensor(m, case.dims)),
        stats,
        brain_voxels: n_brain,
    })
}

/// Background values of a normalised case as a `[C]` tensor.
pub fn background_tensor(norm: &Normalised) -> Tensor {
    let v: Vec<f32> = norm.stats.iter().map(|s| s.background as f32).collect();
    Tensor::from_slice(&v)
}

/// The training patches of a normalised case: windows with at least
/// `min_brain_fraction` brain and no excluded voxel, `[N, C, 32, 32]`.
pub fn training_patches(norm: &Normalised, sampling: &PatchSampling) -> Result<Tensor> {
    Ok(training_patches_by_slice(norm, sampling)?.patches)
}

/// Training patches with where each was cut.
#[derive(Debug)]
pub struct SlicePatches {
    /// `[N, C, 32, 32]`.
    pub patches: Tensor,
    /// Per patch: the index of its slice.
    pub slices: Vec<u32>,
    /// Per patch: its window's origin `(row, col)` in the slice.
    pub origins: Vec<(u32, u32)>,
}

/// [`training_patches`] with the slice and origin of each.
pub fn training_patches_by_slice(
    norm: &Normalised,
    sampling: &PatchSampling,
) -> Result<SlicePatches> {
    sampling.validate()?;
    let mut slices = Vec::new();
    let mut origins = Vec::new();
    let bg = background_tensor(norm);
    let mut kept = Vec::new();
    let walk = crate::windows::slices(
        norm.dims,
        &norm.brain,
        &norm.data,
        &bg,
        sampling.slice_axis,
        sampling.stride,
    );
    for sw in walk {
        let sw = sw?;
        if !sw.has_brain() {
            continue;
        }
        let excluded = match &norm.exclude {
            Some(ex) => Some(sw.fractions(ex)?),
            None => None,
        };
        let keep: Vec<i64> = (0..sw.brain_fraction.len())
            .filter(|&i| {
                let f = sw.brain_fraction[i];
                f as f64 >= sampling.min_brain_fraction - 1e-6
                    && f > 0.0
                    && excluded.as_ref().map_or(true, |e| e[i] == 0.0)
            })
            .map(|i| i as i64)
            .collect();
        if keep.is_empty() {
            continue;
        }
        slices.extend(std::iter::repeat(sw.index as u32).take(keep.len()));
        origins.extend(keep.iter().map(|&i| {
            let (r, c) = sw.origin(i as usize);
            (r as u32, c as u32)
        }));
        kept.push(sw.patches(&keep));
    }
    if kept.is_empty() {
        let c = norm.stats.len() as i64;
        return Ok(SlicePatches {
            patches: Tensor::zeros([0, c, PATCH, PATCH], (Kind::Float, tch::Device::Cpu)),
            slices,
            origins,
        });
    }
    Ok(SlicePatches {
        patches: Tensor::cat(&kept, 0),
        slices,
        origins,
    })
}
