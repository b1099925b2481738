//! C API: scoring volumes into anomaly maps (`adgan_score_*`).

#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

use super::*;

// ---------------------------------------------------------------------------
// Scoring.
// ---------------------------------------------------------------------------

fn score_options(stride: u32, slice_axis: Option<usize>) -> FfiResult<ScoreOptions> {
    if !(1..=32).contains(&stride) {
        return invalid(format!("stride {stride} (expected 1 to 32)"));
    }
    Ok(ScoreOptions {
        stride: stride as usize,
        slice_axis,
        ..ScoreOptions::default()
    })
}

/// Score a volume from the caller's buffers into the caller's anomaly map.
///
/// - `channels`: `n_channels` pointers (must equal `adgan_model_channels()`,
///   in the model's channel order), each `nx * ny * nz` floats, x fastest
///   (`index = x + nx * (y + ny * z)`, the layout of NIfTI files and ITK
///   buffers), finite values in the units of the training data (each volume
///   is normalised inside its brain, so any linear scaling is fine).
/// - `nx, ny, nz`: each 1 to `ADGAN_MAX_DIM`, at most `ADGAN_MAX_VOXELS`.
/// - `brain_mask`: NULL (brain = voxels where any channel is non-zero) or
///   `nx * ny * nz` bytes, non-zero = brain.
/// - `stride`: step between scored windows in pixels, 1 to 32 (`adgan score`
///   uses 8 by default; smaller is sharper and slower, windows grow as
///   1/stride^2).
/// - `slice_axis`: 0, 1 or 2, or -1 for the model's.
/// - `map_out`: the caller's buffer of `nx * ny * nz` floats, same layout,
///   receives each voxel's anomaly score (standard deviations of normal
///   variation; ~0 normal, above `adgan_model_calibration()`'s threshold
///   anomalous), 0 outside the brain. Written only on success. Painted as
///   the model's maps were calibrated (`adgan info`, "map calibration"),
///   as `adgan score` paints by default: each window's score is spread
///   over its pixels by the critic's gradient times the input; for a model
///   with an intensity gate that map is averaged with the mean score of the
///   windows covering each voxel, then gated.
/// - `progress` (may be NULL): called after each slice with stage
///   `ADGAN_STAGE_SCORE`; returning non-zero cancels.
///
/// The input buffers are only read. Thread-safe: several threads may score
/// with the same model at once (the network itself runs one batch at a
/// time).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL, sizes, stride, axis,
/// channel count), `ADGAN_STATUS_FORMAT` (NaN/infinite voxels, empty
/// brain), `ADGAN_STATUS_CANCELLED`, `ADGAN_STATUS_TORCH`.
#[no_mangle]
pub unsafe extern "C" fn adgan_score_volume(
    model: *const AdganModel,
    channels: *const *const f32,
    n_channels: usize,
    nx: usize,
    ny: usize,
    nz: usize,
    brain_mask: *const u8,
    stride: u32,
    slice_axis: i32,
    map_out: *mut f32,
    progress: AdganProgressFn,
    user_data: *mut c_void,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        m.check_channels(n_channels, "n_channels")?;
        let buffers = array(channels, n_channels, "channels")?;
        let dims = check_dims(nx, ny, nz, "volume")?;
        check_ptr(map_out, "map_out")?;
        let axis = match slice_axis {
            -1 => None,
            0..=2 => Some(slice_axis as usize),
            _ => return invalid(format!("slice axis {slice_axis} (expected -1, 0, 1 or 2)")),
        };
        let opts = score_options(stride, axis)?;
        let case = case_from_buffers(
            "volume".to_string(),
            buffers,
            dims,
            brain_mask,
            std::ptr::null(),
        )?;
        let mut report = progress_fn(progress, user_data);
        let result = m.score_case(&case, &opts, &mut report)?;
        let n = case.voxels();
        if result.map.len() != n {
            return Err(Error::Torch(format!(
                "the map has {} voxels, expected {n}",
                result.map.len()
            )));
        }
        std::ptr::copy_nonoverlapping(result.map.as_ptr(), map_out, n);
        Ok(())
    })
}

/// Score NIfTI files and write the anomaly map as a NIfTI float32 file on
/// the input's grid (same dims, affine, spacing and orientation), as
/// `adgan score` does; atomic; gzip-compressed when `out_path` ends with
/// ".gz".
///
/// - `channel_paths`: `n_channels` paths (= `adgan_model_channels()`, in the
///   model's channel order), on one grid.
/// - `mask_path`: brain mask file (non-zero = brain) or NULL (non-zero
///   voxels).
/// - `stride`, `progress`, `user_data`: as for `adgan_score_volume()`; the
///   slice axis is the model's.
///
/// Thread-safe, like `adgan_score_volume()`.
///
/// NaN or infinite voxels are read as background (see
/// `adgan_train_files()`); the map is 0 there.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT`, `ADGAN_STATUS_IO`,
/// `ADGAN_STATUS_FORMAT`, `ADGAN_STATUS_CANCELLED`, `ADGAN_STATUS_TORCH`.
#[no_mangle]
pub unsafe extern "C" fn adgan_score_file(
    model: *const AdganModel,
    channel_paths: *const *const c_char,
    n_channels: usize,
    mask_path: *const c_char,
    out_path: *const c_char,
    stride: u32,
    progress: AdganProgressFn,
    user_data: *mut c_void,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        m.check_channels(n_channels, "n_channels")?;
        let list = array(channel_paths, n_channels, "channel_paths")?;
        let paths = list
            .iter()
            .enumerate()
            .map(|(c, &p)| path(p, &format!("channel_paths[{c}]")))
            .collect::<FfiResult<Vec<_>>>()?;
        let mask = if mask_path.is_null() {
            None
        } else {
            Some(path(mask_path, "mask_path")?)
        };
        let out = path(out_path, "out_path")?;
        let opts = score_options(stride, None)?;
        let (case, like) = Case::from_files(&paths, mask.as_deref(), None)?;
        let mut report = progress_fn(progress, user_data);
        let result = m.score_case(&case, &opts, &mut report)?;
        crate::io::nifti::write_map(&out, &like, &result.map)
    })
}
