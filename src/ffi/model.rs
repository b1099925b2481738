//! C API: model files and what a model tells about itself
//! (`adgan_model_*`).

#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

use super::*;

// ---------------------------------------------------------------------------
// Models.
// ---------------------------------------------------------------------------

/// Load a model file written by `adgan_model_save()` or `adgan train` onto a
/// device: `device` is "auto", "cpu", "cuda" or "cuda:N"; NULL means "auto".
///
/// On success `*out_model` receives a new model owned by the caller (free it
/// with `adgan_model_free()`); on failure it is set to NULL. Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL path or out_model, bad
/// device name), `ADGAN_STATUS_IO` (missing or unreadable file),
/// `ADGAN_STATUS_FORMAT` (not an adGAN model, corrupt, or newer format),
/// `ADGAN_STATUS_DEVICE`.
#[no_mangle]
pub unsafe extern "C" fn adgan_model_load(
    path_utf8: *const c_char,
    device: *const c_char,
    out_model: *mut *mut AdganModel,
) -> i32 {
    guard(|| {
        let out = reference_mut(out_model, "out_model")?;
        *out = std::ptr::null_mut();
        let p = path(path_utf8, "path")?;
        let device = if device.is_null() {
            "auto".to_string()
        } else {
            string(device, "device")?
        };
        let device = parse_device(&device)?;
        let model = Model::load(&p, device)?;
        *out = Box::into_raw(Box::new(AdganModel { model }));
        Ok(())
    })
}

/// Save a model to one file, atomically (a crash never leaves a partial
/// file; an existing file is replaced). Thread-safe; may run while other
/// threads score with the same model.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL), `ADGAN_STATUS_IO`.
#[no_mangle]
pub unsafe extern "C" fn adgan_model_save(
    model: *const AdganModel,
    path_utf8: *const c_char,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        let p = path(path_utf8, "path")?;
        m.save(&p)
    })
}

/// Free a model. NULL is accepted (nothing happens). No other thread may be
/// using the model; the handle must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn adgan_model_free(model: *mut AdganModel) {
    catch((), || {
        if !model.is_null() {
            drop(Box::from_raw(model));
        }
    })
}

/// Number of input channels (modalities) the model needs. Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_channels(model: *const AdganModel, out: *mut usize) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        *reference_mut(out, "out")? = m.channels();
        Ok(())
    })
}

/// Side of the square patches the model scores, in pixels (32). Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_patch_size(model: *const AdganModel, out: *mut usize) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        *reference_mut(out, "out")? = m.meta.patch_size;
        Ok(())
    })
}

/// Slice axis the model was trained on: 0 (x), 1 (y) or 2 (z). Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_slice_axis(model: *const AdganModel, out: *mut i32) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        *reference_mut(out, "out")? = m.meta.slice_axis as i32;
        Ok(())
    })
}

/// The model's calibration: the mean and standard deviation of the raw
/// critic output on held-out normal patches (a window's anomaly score is
/// `(mean - raw) / std`, in standard deviations of normal variation), and
/// the suggested threshold for "anomalous" in the maps of
/// `adgan_score_volume()`: a high percentile of the maps of the held-out
/// normal slices (the 99.5th for models trained with dihedral augmentation,
/// as the quick preset's, 1 normal voxel in 200 above it; the 99.9th for
/// models trained on patches as they are), at least the window threshold
/// (for models trained on images, and model files older than this calibration:
/// the 99th percentile of the held-out window scores). All three pointers must
/// be non-NULL. Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_calibration(
    model: *const AdganModel,
    mean: *mut f64,
    std: *mut f64,
    threshold: *mut f64,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        let (mean, std, threshold) = (
            reference_mut(mean, "mean")?,
            reference_mut(std, "std")?,
            reference_mut(threshold, "threshold")?,
        );
        let c = &m.meta.calibration;
        // What adgan_score_volume() paints: the model's painting, gated
        // where the model has a gate.
        let opts = crate::score::ScoreOptions::default();
        (*mean, *std, *threshold) = (c.mean, c.std, m.map_threshold(&opts));
        Ok(())
    })
}

/// Name of the device the model runs on ("cpu" or "cuda:N") into the
/// caller's buffer of `buf_len` bytes, NUL-terminated. Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL, or `buf_len` too small:
/// then `buf` receives "" when `buf_len` >= 1).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_device_name(
    model: *const AdganModel,
    buf: *mut c_char,
    buf_len: usize,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        check_ptr(buf, "buf")?;
        let buf_len = size(buf_len, "buf_len")?;
        write_c_string(&device_name(m.device()), buf, buf_len, "device name")
    })
}

/// Name of channel `index` (0-based, below `adgan_model_channels()`), e.g.
/// "flair", into the caller's buffer of `buf_len` bytes, NUL-terminated.
/// Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL, index out of range,
/// `buf_len` too small).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_channel_name(
    model: *const AdganModel,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        check_ptr(buf, "buf")?;
        let buf_len = size(buf_len, "buf_len")?;
        let Some(name) = m.meta.channel_names.get(index) else {
            return invalid(format!(
                "channel index {index} (the model has {} channel(s))",
                m.channels()
            ));
        };
        write_c_string(name, buf, buf_len, "channel name")
    })
}

/// The model's metadata (format, channels, calibration, training options
/// and budget) as a UTF-8 JSON object, into the caller's buffer of
/// `buf_len` bytes, NUL-terminated.
///
/// `*needed` (when `needed` is not NULL) always receives the size the text
/// needs, terminator included. Pass `buf` = NULL to only query the size
/// (`needed` must then be non-NULL). Thread-safe.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` (NULL model, both buf and needed
/// NULL, `buf_len` < needed).
#[no_mangle]
pub unsafe extern "C" fn adgan_model_metadata_json(
    model: *const AdganModel,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> i32 {
    guard(|| {
        let m = model_ref(model)?;
        let json = serde_json::to_string(&m.meta)
            .map_err(|e| Error::invalid(format!("cannot encode the metadata: {e}")))?;
        if !needed.is_null() {
            *reference_mut(needed, "needed")? = json.len() + 1;
        }
        if buf.is_null() {
            if needed.is_null() {
                return invalid("buf and needed are both NULL");
            }
            return Ok(());
        }
        let buf_len = size(buf_len, "buf_len")?;
        write_c_string(&json, buf, buf_len, "metadata")
    })
}
