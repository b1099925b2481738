//! 2-D images (PNG, JPEG; grey or colour) as single-slice cases, as in the
//! paper's ISIC and ab-MNIST experiments.
//!
//! Conventions. An image of `W x H` pixels is a [`Case`] with dims
//! `[W, H, 1]`: x is the column, y the row, one axial slice (slice axis 2),
//! so every volume function applies unchanged and a map has the image's
//! layout. A grey image is one channel; a colour image three (red, green,
//! blue); an alpha channel is dropped; a colour image whose three channels
//! are equal everywhere counts as grey. The "brain" of an image is all its
//! pixels (never only the non-zero ones: MNIST-like backgrounds are 0).
//!
//! Normalisation is the volumes' (the model's: `zscore-in-brain` unless
//! trained otherwise): each image, each channel, to zero mean and unit
//! variance over all its pixels. A model file records one normalisation,
//! which keeps images and volumes alike; what it does to a bright square (it stays the brightest thing in
//! its image, only the image's overall level and contrast shift) is
//! measured in docs/BENCHMARKS.md.
//!
//! An image of at most 32 x 32 pixels is exactly one window (padded at its
//! far edges with the value raw 0 maps to) and gets one score; a larger one
//! gets a map, and its image score is the largest score of its windows.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::nets::PATCH;
use crate::preprocess::{
    background_tensor, normalise, training_patches, Case, Normalisation, PatchSampling,
};
use crate::progress::{Progress, ProgressFn, Stage};
use crate::score::ScoreOptions;
use crate::windows::{plane_windows, take_slice};
use serde::Serialize;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Images scored per critic call when they are one window each.
const BATCH: usize = 1024;

/// Largest image read, in pixels (8192 x 8192): a header claiming more is
/// refused before anything is allocated for it.
pub const MAX_IMAGE_PIXELS: usize = 1 << 26;

/// Refuse an image whose header claims more than [`MAX_IMAGE_PIXELS`].
fn check_claimed_size(path: &Path, width: usize, height: usize) -> Result<()> {
    match width.checked_mul(height) {
        Some(n) if n <= MAX_IMAGE_PIXELS => Ok(()),
        _ => Err(Error::format(
            path,
            format!(
                "the header claims {width}x{height} pixels, more than adGAN reads \
                 ({MAX_IMAGE_PIXELS} pixels)"
            ),
        )),
    }
}

/// Whether a path names an image file (by its extension).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        .unwrap_or(false)
}

fn is_jpeg(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
        .unwrap_or(false)
}

/// One decoded image.
#[derive(Debug, Clone)]
pub struct Image {
    pub path: PathBuf,
    pub width: usize,
    pub height: usize,
    /// One buffer per channel (1: grey, 3: red, green, blue), x fastest
    /// (row-major), in the file's units (0-255, or 0-65535 for 16 bits).
    pub channels: Vec<Vec<f32>>,
}

impl Image {
    /// Number of pixels.
    pub fn pixels(&self) -> usize {
        self.width * self.height
    }

    /// Whether the image has colour (three channels that differ somewhere).
    pub fn is_colour(&self) -> bool {
        self.channels.len() == 3
    }

    /// The image's pixels as `n` channels: 1 (colour becomes its luma,
    /// ITU-R BT.601) or 3 (grey is repeated).
    pub fn to_channels(&self, n: usize) -> Result<Vec<Vec<f32>>> {
        match (self.channels.len(), n) {
            (a, b) if a == b => Ok(self.channels.clone()),
            (3, 1) => {
                let (r, g, b) = (&self.channels[0], &self.channels[1], &self.channels[2]);
                Ok(vec![(0..self.pixels())
                    .map(|i| 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i])
                    .collect()])
            }
            (1, 3) => Ok(vec![self.channels[0].clone(); 3]),
            (_, n) => Err(Error::format(
                &self.path,
                format!(
                    "cannot make {n} channel(s) of a {}-channel image",
                    self.channels.len()
                ),
            )),
        }
    }

    /// The image as a case of `n` channels, dims `[W, H, 1]`, all pixels
    /// "brain".
    pub fn to_case(&self, n: usize) -> Result<Case> {
        Ok(Case {
            warnings: Vec::new(),
            name: self.path.display().to_string(),
            dims: [self.width, self.height, 1],
            channels: self.to_channels(n)?,
            brain: Some(vec![true; self.pixels()]),
            exclude: None,
        })
    }
}

/// Samples of a decoded image, interleaved, as `f32`.
struct Decoded {
    width: usize,
    height: usize,
    /// Samples per pixel (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA or CMYK).
    samples: usize,
    cmyk: bool,
    data: Vec<f32>,
}

fn decode_png(path: &Path) -> Result<Decoded> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // Palette to RGB(A), grey below 8 bits to 8 bits, tRNS to alpha; 16
    // bits stay 16 bits.
    decoder.set_transformations(png::Transformations::EXPAND);
    let bad = |e: png::DecodingError| Error::format(path, format!("not a readable PNG: {e}"));
    let mut reader = decoder.read_info().map_err(bad)?;
    let header = reader.info();
    check_claimed_size(path, header.width as usize, header.height as usize)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let samples = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(Error::format(path, "palette PNG was not expanded"));
        }
    };
    let (width, height) = (info.width as usize, info.height as usize);
    let wide = info.bit_depth == png::BitDepth::Sixteen;
    let bytes = if wide { 2 } else { 1 };
    let mut data = Vec::with_capacity(width * height * samples);
    for row in buf.chunks(info.line_size).take(height) {
        let row = &row[..width * samples * bytes];
        if wide {
            data.extend(
                row.chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32),
            );
        } else {
            data.extend(row.iter().map(|&b| b as f32));
        }
    }
    Ok(Decoded {
        width,
        height,
        samples,
        cmyk: false,
        data,
    })
}

fn decode_jpeg(path: &Path) -> Result<Decoded> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut decoder = jpeg_decoder::Decoder::new(BufReader::new(file));
    decoder
        .read_info()
        .map_err(|e| Error::format(path, format!("not a readable JPEG: {e}")))?;
    if let Some(header) = decoder.info() {
        check_claimed_size(path, header.width as usize, header.height as usize)?;
    }
    // At most 4 bytes (CMYK) per pixel.
    decoder.set_max_decoding_buffer_size(4 * MAX_IMAGE_PIXELS);
    let pixels = decoder
        .decode()
        .map_err(|e| Error::format(path, format!("not a readable JPEG: {e}")))?;
    let info = decoder
        .info()
        .ok_or_else(|| Error::format(path, "JPEG without image information"))?;
    let (width, height) = (info.width as usize, info.height as usize);
    let (samples, cmyk, data) = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => (1, false, pixels.iter().map(|&b| b as f32).collect()),
        jpeg_decoder::PixelFormat::L16 => (
            1,
            false,
            pixels
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]) as f32)
                .collect(),
        ),
        jpeg_decoder::PixelFormat::RGB24 => (3, false, pixels.iter().map(|&b| b as f32).collect()),
        jpeg_decoder::PixelFormat::CMYK32 => (4, true, pixels.iter().map(|&b| b as f32).collect()),
    };
    Ok(Decoded {
        width,
        height,
        samples,
        cmyk,
        data,
    })
}

fn decode(path: &Path) -> Result<Decoded> {
    let d = if is_jpeg(path) {
        decode_jpeg(path)?
    } else {
        decode_png(path)?
    };
    if d.width == 0 || d.height == 0 {
        return Err(Error::format(path, "the image has no pixel"));
    }
    if d.data.len() != d.width * d.height * d.samples {
        return Err(Error::format(
            path,
            format!(
                "decoded {} samples, {}x{} pixels of {} need {}",
                d.data.len(),
                d.width,
                d.height,
                d.samples,
                d.width * d.height * d.samples
            ),
        ));
    }
    Ok(d)
}

/// Read a PNG or JPEG image (by extension: .jpg/.jpeg are JPEG, anything
/// else is read as PNG).
pub fn read_image(path: &Path) -> Result<Image> {
    let d = decode(path)?;
    let n = d.width * d.height;
    let plane = |c: usize| -> Vec<f32> { (0..n).map(|i| d.data[i * d.samples + c]).collect() };
    let channels = match d.samples {
        1 | 2 => vec![plane(0)],
        _ if d.cmyk => {
            // Adobe's inverted CMYK as jpeg-decoder returns it: R = C * K / 255.
            let (c, m, y, k) = (plane(0), plane(1), plane(2), plane(3));
            vec![
                (0..n).map(|i| c[i] * k[i] / 255.0).collect(),
                (0..n).map(|i| m[i] * k[i] / 255.0).collect(),
                (0..n).map(|i| y[i] * k[i] / 255.0).collect(),
            ]
        }
        _ => {
            let (r, g, b) = (plane(0), plane(1), plane(2));
            if r == g && g == b {
                vec![r]
            } else {
                vec![r, g, b]
            }
        }
    };
    Ok(Image {
        path: path.to_path_buf(),
        width: d.width,
        height: d.height,
        channels,
    })
}

/// Read a label or mask image of `width x height` pixels: a pixel is set
/// where any channel (alpha aside) is non-zero in a PNG, or at least half
/// the full scale in a JPEG (lossy compression turns 0 into small values).
pub fn read_image_mask(path: &Path, width: usize, height: usize) -> Result<Vec<bool>> {
    let d = decode(path)?;
    if (d.width, d.height) != (width, height) {
        return Err(Error::format(
            path,
            format!(
                "the mask is {}x{} pixels, the image {width}x{height}",
                d.width, d.height
            ),
        ));
    }
    let colour = match d.samples {
        1 | 2 => 1,
        _ => 3,
    };
    let cut = if is_jpeg(path) { 127.5 } else { 0.0 };
    Ok((0..width * height)
        .map(|i| (0..colour).any(|c| d.data[i * d.samples + c] > cut))
        .collect())
}

/// Image files named by `specs`: an image file is itself; a folder gives
/// its image files (not its subfolders), sorted by name; a `.txt` or
/// `.lst` file lists paths one per line (relative ones from the list's
/// folder; empty lines and lines starting with `#` are skipped).
pub fn list_images(specs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for spec in specs {
        if spec.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(spec)
                .map_err(|e| Error::io(spec, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image_path(p))
                .collect();
            if found.is_empty() {
                return Err(Error::io(spec, "no PNG or JPEG image in this folder"));
            }
            found.sort();
            out.extend(found);
        } else if is_image_path(spec) {
            if !spec.is_file() {
                return Err(Error::io(spec, "no such image file"));
            }
            out.push(spec.clone());
        } else {
            let ext = spec.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !(ext.eq_ignore_ascii_case("txt") || ext.eq_ignore_ascii_case("lst")) {
                return Err(Error::invalid(format!(
                    "{}: not a folder, an image (.png, .jpg, .jpeg) or a list (.txt, .lst)",
                    spec.display()
                )));
            }
            let text = std::fs::read_to_string(spec).map_err(|e| Error::io(spec, e))?;
            let base = spec.parent().map(Path::to_path_buf).unwrap_or_default();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let p = PathBuf::from(line);
                out.push(if p.is_absolute() { p } else { base.join(p) });
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("no image given"));
    }
    Ok(out)
}

/// Default channel names of images: `grey`, or `red,green,blue` (other
/// counts: those of volumes, `ch0,ch1,...`).
pub fn default_channel_names(channels: usize) -> Vec<String> {
    match channels {
        1 => vec!["grey".into()],
        3 => vec!["red".into(), "green".into(), "blue".into()],
        n => crate::preprocess::default_channel_names(n),
    }
}

/// Training patches of images, `[N, C, 32, 32]`: each image normalised on
/// its own and cut into windows like a volume's slice. `channels`: 1 or 3
/// (`None`: 3 when any image has colour). Constant images (nothing to
/// normalise) are skipped and returned by name.
pub fn training_patches_of_images(
    paths: &[PathBuf],
    channels: Option<usize>,
    sampling: &PatchSampling,
    normalisation: Normalisation,
    progress: &mut ProgressFn,
) -> Result<(Tensor, usize, Vec<PathBuf>)> {
    if sampling.slice_axis != 2 {
        return Err(Error::invalid(
            "images are single slices: train them with slice axis 2",
        ));
    }
    let images: Vec<Image> = paths.iter().map(|p| read_image(p)).collect::<Result<_>>()?;
    let channels = channels.unwrap_or(if images.iter().any(Image::is_colour) {
        3
    } else {
        1
    });
    let mut all = Vec::with_capacity(images.len());
    let mut skipped = Vec::new();
    for (k, image) in images.iter().enumerate() {
        let case = image.to_case(channels)?;
        let small = image.width <= PATCH as usize && image.height <= PATCH as usize;
        if is_constant(&case) {
            skipped.push(image.path.clone());
        } else if small {
            // One window, whatever its brain fraction.
            all.push(single_window(&case, normalisation)?.unsqueeze(0));
        } else {
            all.push(training_patches(
                &normalise(&case, normalisation)?,
                sampling,
            )?);
        }
        if !progress(&Progress::new(
            Stage::Prepare,
            k as u64 + 1,
            images.len() as u64,
        )) {
            return Err(Error::Cancelled);
        }
    }
    if all.is_empty() {
        return Err(Error::invalid(
            "every image is constant: nothing to train on",
        ));
    }
    Ok((Tensor::cat(&all, 0), channels, skipped))
}

fn is_constant(case: &Case) -> bool {
    case.channels.iter().any(|c| c.iter().all(|&v| v == c[0]))
}

/// The score of one image.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageScore {
    pub path: PathBuf,
    pub width: usize,
    pub height: usize,
    /// Windows scored (1 for images of at most 32 x 32 pixels).
    pub windows: usize,
    /// The image's anomaly score: its one window's calibrated score, or the
    /// largest of its windows' (`None`: the image is constant and cannot be
    /// normalised).
    pub score: Option<f64>,
    /// Mean calibrated score of its windows.
    pub mean_window_score: Option<f64>,
    /// Mean raw intensity of each channel (before normalisation): the plain
    /// intensity baseline at the image level.
    pub mean_intensity: Vec<f64>,
    /// Why there is no score.
    pub note: Option<String>,
}

/// What scoring images gives: one row per image, and the maps of images
/// larger than one window (in the order of the images; `None` for small
/// or constant ones).
#[derive(Debug)]
pub struct ImageScores {
    pub scores: Vec<ImageScore>,
    pub maps: Vec<Option<Vec<f32>>>,
}

/// The normalised one-window patch `[C, 32, 32]` of an image of at most
/// 32 x 32 pixels, exactly as training cut it.
pub fn single_window(case: &Case, normalisation: Normalisation) -> Result<Tensor> {
    let norm = normalise(case, normalisation)?;
    let bg = background_tensor(&norm);
    let w = plane_windows(&take_slice(&norm.data, 2, 0), &bg, PATCH as usize);
    Ok(w.patches.get(0))
}

/// Score images with a model. Images of at most 32 x 32 pixels are one
/// window each and are scored in batches; larger ones are scored like a
/// volume (`opts`; the slice axis is always 2) and keep their map when
/// `keep_maps`.
pub fn score_images(
    model: &Model,
    paths: &[PathBuf],
    opts: &ScoreOptions,
    keep_maps: bool,
    progress: &mut ProgressFn,
) -> Result<ImageScores> {
    let channels = model.channels();
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(format!(
            "images have 1 or 3 channels; this model needs {channels}"
        )));
    }
    let p = PATCH as usize;
    let opts = ScoreOptions {
        slice_axis: Some(2),
        patch_table: true,
        ..*opts
    };
    let mut scores: Vec<ImageScore> = Vec::with_capacity(paths.len());
    let mut maps = Vec::with_capacity(paths.len());
    let mut pending: Vec<(usize, Tensor)> = Vec::new();
    let flush = |pending: &mut Vec<(usize, Tensor)>, scores: &mut Vec<ImageScore>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let batch = Tensor::stack(
            &pending
                .iter()
                .map(|x| x.1.shallow_clone())
                .collect::<Vec<_>>(),
            0,
        );
        let s = model.scores(&batch, opts.batch_size.max(1))?;
        for ((k, _), v) in pending.iter().zip(s) {
            scores[*k].score = Some(v);
            scores[*k].mean_window_score = Some(v);
        }
        pending.clear();
        Ok(())
    };
    for (k, path) in paths.iter().enumerate() {
        let image = read_image(path)?;
        let case = image.to_case(channels)?;
        let mean_intensity = image
            .channels
            .iter()
            .map(|c| c.iter().map(|&v| v as f64).sum::<f64>() / c.len() as f64)
            .collect();
        let mut row = ImageScore {
            path: path.clone(),
            width: image.width,
            height: image.height,
            windows: 0,
            score: None,
            mean_window_score: None,
            mean_intensity,
            note: None,
        };
        let mut map = None;
        if is_constant(&case) {
            row.note = Some("constant image: cannot be normalised".into());
        } else if image.width <= p && image.height <= p {
            row.windows = 1;
            pending.push((k, single_window(&case, model.normalisation())?));
        } else {
            let r = model.score_case(&case, &opts, &mut |_| true)?;
            let min_frac = opts
                .min_brain_fraction
                .unwrap_or(model.meta.training.sampling.min_brain_fraction);
            let strong: Vec<f64> = r
                .patches
                .iter()
                .filter(|w| w.brain_fraction as f64 >= min_frac - 1e-6)
                .map(|w| w.score as f64)
                .collect();
            let all: Vec<f64> = r.patches.iter().map(|w| w.score as f64).collect();
            let pick = if strong.is_empty() { &all } else { &strong };
            row.windows = r.windows_scored;
            row.score = pick
                .iter()
                .cloned()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            row.mean_window_score =
                (!pick.is_empty()).then(|| pick.iter().sum::<f64>() / pick.len() as f64);
            if keep_maps {
                map = Some(r.map);
            }
        }
        scores.push(row);
        maps.push(map);
        if pending.len() >= BATCH {
            flush(&mut pending, &mut scores)?;
        }
        if !progress(&Progress::new(
            Stage::Score,
            k as u64 + 1,
            paths.len() as u64,
        )) {
            return Err(Error::Cancelled);
        }
    }
    flush(&mut pending, &mut scores)?;
    Ok(ImageScores { scores, maps })
}

/// A batch of small images as the `[N, C, 32, 32]` tensor the critic sees
/// (for external baselines and tests), normalised by `normalisation`.
pub fn image_windows(
    paths: &[PathBuf],
    channels: usize,
    normalisation: Normalisation,
) -> Result<Tensor> {
    let mut v = Vec::with_capacity(paths.len());
    for p in paths {
        let image = read_image(p)?;
        if image.width > PATCH as usize || image.height > PATCH as usize {
            return Err(Error::format(
                p,
                format!(
                    "{}x{} pixels: larger than one 32x32 window",
                    image.width, image.height
                ),
            ));
        }
        v.push(single_window(&image.to_case(channels)?, normalisation)?);
    }
    if v.is_empty() {
        return Ok(Tensor::zeros(
            [0, channels as i64, PATCH, PATCH],
            (Kind::Float, tch::Device::Cpu),
        ));
    }
    Ok(Tensor::stack(&v, 0))
}
