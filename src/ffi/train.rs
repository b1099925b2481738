//! C API: training from files or from caller buffers (`adgan_train_*`).

#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

use super::*;

// ---------------------------------------------------------------------------
// Training.
// ---------------------------------------------------------------------------

fn run_training(
    o: &AdganTrainOptions,
    cases: &[Case],
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> FfiResult<Model> {
    let device = parse_device(&o.device)?;
    let names = channel_names(&o.channel_names, cases[0].channels.len())?;
    // Cutting patches reports (and may be cancelled) case by case too.
    let data = TrainingData::from_cases_with_progress(cases, names, &o.config, progress)?;
    let checkpointing = Checkpointing {
        path: o.checkpoint.clone(),
        restart: o.restart,
        keep: false,
    };
    crate::train::train(&data, &o.config, device, &checkpointing, progress)
}

/// NULL, or an array of `n_cases` pointers (each may be NULL).
unsafe fn per_case<'a, T>(
    p: *const *const T,
    n_cases: usize,
    what: &str,
) -> FfiResult<Option<&'a [*const T]>> {
    if p.is_null() {
        Ok(None)
    } else {
        array(p, n_cases, what).map(Some)
    }
}

/// The common part of the two training entry points: read each case with
/// `read_case` (reporting it as the "prepare" stage, cancellable), train,
/// and hand the new model to `out`.
fn train_cases(
    o: &AdganTrainOptions,
    n_cases: usize,
    progress: AdganProgressFn,
    user_data: *mut c_void,
    out: &mut *mut AdganModel,
    mut read_case: impl FnMut(usize) -> FfiResult<Case>,
) -> FfiResult {
    o.config.validate()?;
    let mut report = progress_fn(progress, user_data);
    let mut cases = Vec::with_capacity(n_cases);
    for i in 0..n_cases {
        cases.push(read_case(i)?);
        let p = Progress::new(
            crate::progress::Stage::Prepare,
            i as u64 + 1,
            n_cases as u64,
        );
        if !report(&p) {
            return Err(Error::Cancelled);
        }
    }
    let model = run_training(o, &cases, &mut report)?;
    *out = Box::into_raw(Box::new(AdganModel { model }));
    Ok(())
}

/// Up to this many cases per training call.
const MAX_CASES: usize = 1 << 20;
/// Up to this many channels per case.
const MAX_CHANNELS: usize = 1024;

/// Train a model on normal data from NIfTI files (.nii or .nii.gz).
///
/// - `volume_paths`: `n_cases * n_channels` paths, case-major (all channels
///   of case 0, then of case 1, ...); the channels of a case must share a
///   grid, and every case has its channels in the same order.
/// - `mask_paths`: NULL (brain = non-zero voxels) or `n_cases` entries, each
///   a brain-mask file (non-zero = brain) or NULL.
/// - `exclude_paths`: NULL or `n_cases` entries, each a label file of voxels
///   to keep out of training (non-zero = exclude, e.g. lesions) or NULL.
/// - `progress` (may be NULL) is called with `user_data` during the work;
///   returning non-zero cancels. `ADGAN_STAGE_PREPARE` counts the cases
///   twice: once as each is read, once as its patches are cut; either may
///   be cancelled.
/// - On success `*out_model` receives a new model owned by the caller (free
///   it with `adgan_model_free()`); on failure it is set to NULL.
///
/// Blocks for the whole training (seconds to hours). Thread-safe; several
/// trainings may run at once (they share the CPU threads or the GPU).
/// `options` is copied when the call starts: changing or freeing the
/// handle afterwards (from the progress callback too) leaves this run as
/// it began.
///
/// NaN or infinite voxels of a file (a resampled volume's outside) are read
/// as background, in every channel of that voxel; inside a given brain mask
/// they are an error.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL, counts of 0 or out of
/// range, bad options), `ADGAN_STATUS_IO` / `ADGAN_STATUS_FORMAT` (files),
/// `ADGAN_STATUS_DEVICE`, `ADGAN_STATUS_CANCELLED`, `ADGAN_STATUS_TORCH`.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_files(
    options: *const AdganTrainOptions,
    volume_paths: *const *const c_char,
    n_cases: usize,
    n_channels: usize,
    mask_paths: *const *const c_char,
    exclude_paths: *const *const c_char,
    progress: AdganProgressFn,
    user_data: *mut c_void,
    out_model: *mut *mut AdganModel,
) -> i32 {
    guard(|| {
        let out = reference_mut(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        // A copy: the caller may change or free its handle (from the
        // progress callback too) without touching this run.
        let o = &reference(options, "options")?.clone();
        let n_cases = count(n_cases, MAX_CASES, "n_cases")?;
        let n_channels = count(n_channels, MAX_CHANNELS, "n_channels")?;
        let volumes = array(volume_paths, n_cases * n_channels, "volume_paths")?;
        let masks = per_case(mask_paths, n_cases, "mask_paths")?;
        let excludes = per_case(exclude_paths, n_cases, "exclude_paths")?;
        let optional =
            |list: Option<&[*const c_char]>, i: usize, what: &str| -> FfiResult<Option<PathBuf>> {
                match list.map(|l| l[i]) {
                    Some(p) if !p.is_null() => path(p, &format!("{what}[{i}]")).map(Some),
                    _ => Ok(None),
                }
            };
        train_cases(o, n_cases, progress, user_data, out, |i| {
            let paths = volumes[i * n_channels..(i + 1) * n_channels]
                .iter()
                .enumerate()
                .map(|(c, &p)| path(p, &format!("volume_paths[{}]", i * n_channels + c)))
                .collect::<FfiResult<Vec<_>>>()?;
            let mask = optional(masks, i, "mask_paths")?;
            let exclude = optional(excludes, i, "exclude_paths")?;
            Ok(Case::from_files(&paths, mask.as_deref(), exclude.as_deref())?.0)
        })
    })
}

/// Train a model on normal data from the caller's buffers.
///
/// - `channels`: `n_cases * n_channels` pointers, case-major; channel `c` of
///   case `i` is `channels[i * n_channels + c]`, `nx * ny * nz` floats with x
///   fastest (`index = x + nx * (y + ny * z)`, the layout of NIfTI files and
///   ITK buffers), finite values in any unit (each case is normalised to
///   zero mean, unit variance inside its brain).
/// - `dims`: `n_cases * 3` sizes, `nx, ny, nz` of each case (each 1 to
///   `ADGAN_MAX_DIM`, at most `ADGAN_MAX_VOXELS` voxels).
/// - `brain_masks`: NULL (brain = voxels where any channel is non-zero) or
///   `n_cases` entries, each NULL or `nx * ny * nz` bytes (non-zero = brain).
/// - `exclude_masks`: NULL or `n_cases` entries, each NULL or `nx * ny * nz`
///   bytes (non-zero = keep out of training, e.g. lesions).
/// - `progress`, `user_data`, `out_model`: as for `adgan_train_files()`.
///
/// The buffers are copied before training starts and never modified; the
/// caller keeps ownership. Thread-safe.
///
/// Errors: as `adgan_train_files()`; `ADGAN_STATUS_FORMAT` for NaN or
/// infinite values or an empty brain.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_buffers(
    options: *const AdganTrainOptions,
    channels: *const *const f32,
    dims: *const usize,
    n_cases: usize,
    n_channels: usize,
    brain_masks: *const *const u8,
    exclude_masks: *const *const u8,
    progress: AdganProgressFn,
    user_data: *mut c_void,
    out_model: *mut *mut AdganModel,
) -> i32 {
    guard(|| {
        let out = reference_mut(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        // A copy: the caller may change or free its handle (from the
        // progress callback too) without touching this run.
        let o = &reference(options, "options")?.clone();
        let n_cases = count(n_cases, MAX_CASES, "n_cases")?;
        let n_channels = count(n_channels, MAX_CHANNELS, "n_channels")?;
        let buffers = array(channels, n_cases * n_channels, "channels")?;
        let dims = array(dims, n_cases * 3, "dims")?;
        let brains = per_case(brain_masks, n_cases, "brain_masks")?;
        let excludes = per_case(exclude_masks, n_cases, "exclude_masks")?;
        train_cases(o, n_cases, progress, user_data, out, |i| {
            let name = format!("case {i}");
            let d = check_dims(dims[3 * i], dims[3 * i + 1], dims[3 * i + 2], &name)?;
            case_from_buffers(
                name,
                &buffers[i * n_channels..(i + 1) * n_channels],
                d,
                brains.map_or(std::ptr::null(), |b| b[i]),
                excludes.map_or(std::ptr::null(), |b| b[i]),
            )
        })
    })
}
