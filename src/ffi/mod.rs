//! The stable C ABI of adGAN (`include/adgan.h` is generated from this
//! module's files by cbindgen; `make header` regenerates it,
//! `tests/header.rs` checks it). This file holds the types, constants and
//! the boundary (errors, panics, pointer and size checks) and the version,
//! error and device functions; options.rs, train.rs, model.rs and score.rs
//! the rest of the exported functions.
//!
//! This module only converts and delegates: every exported function checks
//! its pointers, sizes and enum values, turns them into the engine's types,
//! calls the engine and turns the result into a status code. Every exported
//! function body runs inside [`guard`] (or [`catch`]), so a Rust panic
//! never unwinds into C: it becomes `ADGAN_STATUS_PANIC` with a message.
//!
//! Conventions (shared/DESIGN.md, "C API conventions"): names `adgan_*`,
//! types `Adgan*`, constants `ADGAN_*`; fallible functions return an
//! `int32_t` status (an [`AdganStatus`] value whose numbers never change)
//! and leave a message for `adgan_last_error_message()` on the calling
//! thread; opaque handles with `_new`/`_free` (NULL-safe); the caller
//! allocates output buffers; long calls take a cancellable progress callback.

// The functions below are C entry points: their contract is written for a C
// reader in each doc comment (it becomes the header's documentation).
#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

use crate::config::{Augment, Counterfeit, Normalisation};
use crate::config::{CriticInit, Preset, TrainConfig};
use crate::device::{cuda_device_count, device_name, parse_device};
use crate::error::Error;
use crate::gate::GateChoice;
use crate::model::Model;
use crate::preprocess::Case;
use crate::progress::Progress;
use crate::score::ScoreOptions;
use crate::train::{Checkpointing, TrainingData};
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Version of the binary interface. It changes only when a function's
/// signature or meaning, a status number or a layout changes incompatibly;
/// new functions do not change it. Compare `adgan_abi_version()` with this
/// macro to detect a header/library mismatch at run time.
pub const ADGAN_ABI_VERSION: u32 = 1;

/// Largest accepted length of one volume axis, in voxels.
pub const ADGAN_MAX_DIM: usize = 1 << 20;

/// Largest accepted number of voxels of one volume (one channel).
pub const ADGAN_MAX_VOXELS: usize = 2_147_483_648;

/// Status returned (as `int32_t`) by every fallible function. The numbers
/// are part of the ABI and never change; new codes may be added.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdganStatus {
    /// Success.
    Ok = 0,
    /// A NULL pointer, a size out of range (a negative size converted to
    /// `size_t` is out of range), an unknown enum value, a bad option value,
    /// or a model/volume mismatch (e.g. the wrong number of channels).
    InvalidArgument = 1,
    /// A file is missing, unreadable or unwritable.
    Io = 2,
    /// A file or buffer was read but its content is unusable (corrupt or
    /// truncated file, not a model, NaN voxels, mismatched grids, ...).
    Format = 3,
    /// The requested compute device is not available.
    Device = 4,
    /// The progress callback returned non-zero.
    Cancelled = 5,
    /// An internal error (a bug): the library caught it and stays usable.
    Panic = 6,
    /// libtorch reported an error (e.g. out of memory).
    Torch = 7,
}

/// Stage of long work, as passed to an `AdganProgressFn`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdganStage {
    /// Reading volumes and cutting training patches.
    Prepare = 0,
    /// Training phase 1 (WGAN-GP and fake-pool collection).
    Wgan = 1,
    /// Training phase 2 (critic with the concentration loss).
    Critic = 2,
    /// Calibrating scores on held-out normal patches.
    Calibrate = 3,
    /// Scoring a volume (iteration = slices done, total = slices).
    Score = 4,
}

/// Starting point of the critic in training phase 2, for
/// `adgan_train_options_set_critic_init()`.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdganCriticInit {
    /// adGAN(c): fine-tune the phase-1 critic (the default).
    FineTune = 0,
    /// adGAN: re-initialise the critic at random.
    Reset = 1,
}

/// Progress callback of long calls (training, scoring).
///
/// `user_data` is the pointer given to the call, passed through untouched.
/// `stage` is an `AdganStage` value; `iteration` of `total` steps of that
/// stage are done. `critic_loss` and `generator_loss` are the latest
/// measured losses, NaN when unknown (the generator loss is only known in
/// phase 1). Return 0 to continue, non-zero to cancel: the call then
/// returns `ADGAN_STATUS_CANCELLED` soon after.
///
/// The callback runs on the thread that made the call, synchronously. It
/// must not call `longjmp`, throw a C++ exception out of itself, or free
/// anything the running call uses; it may call other adGAN functions
/// (except freeing the model being used).
pub type AdganProgressFn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        stage: i32,
        iteration: u64,
        total: u64,
        critic_loss: f64,
        generator_loss: f64,
    ) -> i32,
>;

/// Training options: an opaque handle made by
/// `adgan_train_options_new()` and freed by `adgan_train_options_free()`.
#[derive(Clone)]
pub struct AdganTrainOptions {
    config: TrainConfig,
    device: String,
    checkpoint: Option<PathBuf>,
    restart: bool,
    channel_names: Option<Vec<String>>,
}

impl AdganTrainOptions {
    fn preset(preset: Preset) -> AdganTrainOptions {
        AdganTrainOptions {
            config: TrainConfig::preset(preset),
            device: "auto".to_string(),
            checkpoint: None,
            restart: false,
            channel_names: None,
        }
    }
}

/// A trained model: an opaque handle made by `adgan_train_files()`,
/// `adgan_train_buffers()` or `adgan_model_load()` and freed by
/// `adgan_model_free()`.
pub struct AdganModel {
    model: Model,
}

// ---------------------------------------------------------------------------
// The boundary: errors, panics, argument checks.
// ---------------------------------------------------------------------------

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

fn clear_last_error() {
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        if !e.as_bytes().is_empty() {
            *e = CString::default();
        }
    });
}

/// The status code of an engine error.
fn status_of(e: &Error) -> AdganStatus {
    match e {
        Error::Io { .. } => AdganStatus::Io,
        Error::Format { .. } => AdganStatus::Format,
        Error::InvalidArgument(_) => AdganStatus::InvalidArgument,
        Error::Device(_) => AdganStatus::Device,
        Error::Cancelled => AdganStatus::Cancelled,
        Error::Torch(_) => AdganStatus::Torch,
    }
}

fn message_of(e: &Error) -> String {
    match e {
        Error::Cancelled => "cancelled by the progress callback".to_string(),
        e => e.to_string(),
    }
}

type FfiResult<T = ()> = std::result::Result<T, Error>;

/// Run the body of an exported function: clear the thread's last error,
/// catch any panic, turn the outcome into a status code and keep the
/// message for `adgan_last_error_message()`.
fn guard(body: impl FnOnce() -> FfiResult) -> i32 {
    clear_last_error();
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => AdganStatus::Ok as i32,
        Ok(Err(e)) => {
            set_last_error(&message_of(&e));
            status_of(&e) as i32
        }
        Err(payload) => status_of_panic(payload.as_ref()) as i32,
    }
}

/// Keep a caught panic's message for `adgan_last_error_message()` and give
/// its status: libtorch's failures (raised through tch's panicking methods)
/// are `ADGAN_STATUS_TORCH` with libtorch's message, anything else a bug
/// (`ADGAN_STATUS_PANIC`).
fn status_of_panic(payload: &(dyn Any + Send)) -> AdganStatus {
    let message = crate::error::panic_message(payload);
    match crate::error::torch_error_of_panic(&message) {
        Some(e) => {
            set_last_error(&message_of(&e));
            status_of(&e)
        }
        None => {
            set_last_error(&format!("internal error (panic): {message}"));
            AdganStatus::Panic
        }
    }
}

/// [`guard`] for functions that return a value rather than a status:
/// `fallback` on panic.
fn catch<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            status_of_panic(payload.as_ref());
            fallback
        }
    }
}

fn invalid<T>(message: impl Into<String>) -> FfiResult<T> {
    Err(Error::invalid(message))
}

/// A size from C: rejects what a negative number converted to `size_t`
/// becomes (anything above `isize::MAX`).
fn size(n: usize, what: &str) -> FfiResult<usize> {
    if n > isize::MAX as usize {
        return invalid(format!("{what} = {n} is negative or too large"));
    }
    Ok(n)
}

/// A count from C in `1..=max`.
fn count(n: usize, max: usize, what: &str) -> FfiResult<usize> {
    if n == 0 || n > max {
        return invalid(format!(
            "{what} = {} (expected 1 to {max}; a negative value is out of range)",
            n as isize
        ));
    }
    Ok(n)
}

fn check_ptr<T>(p: *const T, what: &str) -> FfiResult<()> {
    if p.is_null() {
        return invalid(format!("{what} is NULL"));
    }
    if (p as usize) % std::mem::align_of::<T>() != 0 {
        return invalid(format!("{what} is not aligned for its type"));
    }
    Ok(())
}

unsafe fn reference<'a, T>(p: *const T, what: &str) -> FfiResult<&'a T> {
    check_ptr(p, what)?;
    Ok(&*p)
}

unsafe fn reference_mut<'a, T>(p: *mut T, what: &str) -> FfiResult<&'a mut T> {
    check_ptr(p, what)?;
    Ok(&mut *p)
}

/// A C array of `n` elements (n already checked).
unsafe fn array<'a, T>(p: *const T, n: usize, what: &str) -> FfiResult<&'a [T]> {
    check_ptr(p, what)?;
    match n.checked_mul(std::mem::size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => {}
        _ => return invalid(format!("{what}: {n} elements is too large")),
    }
    Ok(std::slice::from_raw_parts(p, n))
}

unsafe fn model_ref<'a>(p: *const AdganModel) -> FfiResult<&'a Model> {
    Ok(&reference(p, "model")?.model)
}

unsafe fn string(p: *const c_char, what: &str) -> FfiResult<String> {
    check_ptr(p, what)?;
    match CStr::from_ptr(p).to_str() {
        Ok(s) => Ok(s.to_string()),
        Err(_) => invalid(format!("{what} is not valid UTF-8")),
    }
}

unsafe fn path(p: *const c_char, what: &str) -> FfiResult<PathBuf> {
    check_ptr(p, what)?;
    let bytes = CStr::from_ptr(p).to_bytes();
    if bytes.is_empty() {
        return invalid(format!("{what} is an empty path"));
    }
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

fn check_dims(nx: usize, ny: usize, nz: usize, what: &str) -> FfiResult<[usize; 3]> {
    for (axis, n) in [("nx", nx), ("ny", ny), ("nz", nz)] {
        count(n, ADGAN_MAX_DIM, &format!("{what}: {axis}"))?;
    }
    match nx.checked_mul(ny).and_then(|v| v.checked_mul(nz)) {
        Some(v) if v <= ADGAN_MAX_VOXELS => Ok([nx, ny, nz]),
        _ => invalid(format!(
            "{what}: {nx} x {ny} x {nz} voxels is more than the {ADGAN_MAX_VOXELS} accepted"
        )),
    }
}

/// Copy one case from caller buffers (sizes already checked).
unsafe fn case_from_buffers(
    name: String,
    channels: &[*const f32],
    dims: [usize; 3],
    brain: *const u8,
    exclude: *const u8,
) -> FfiResult<Case> {
    let n = dims[0] * dims[1] * dims[2];
    let mut data = Vec::with_capacity(channels.len());
    for (c, &p) in channels.iter().enumerate() {
        data.push(array(p, n, &format!("{name}: channel {c}"))?.to_vec());
    }
    let mask = |p: *const u8, what: &str| -> FfiResult<Option<Vec<bool>>> {
        if p.is_null() {
            return Ok(None);
        }
        Ok(Some(
            array(p, n, &format!("{name}: {what}"))?
                .iter()
                .map(|&v| v != 0)
                .collect(),
        ))
    };
    let brain = mask(brain, "brain mask")?;
    let exclude = mask(exclude, "exclusion mask")?;
    let case = Case {
        warnings: Vec::new(),
        name,
        dims,
        channels: data,
        brain,
        exclude,
    };
    case.validate()?;
    Ok(case)
}

/// The engine's progress closure around a C callback.
fn progress_fn(callback: AdganProgressFn, user_data: *mut c_void) -> impl FnMut(&Progress) -> bool {
    move |p: &Progress| match callback {
        None => true,
        Some(f) => {
            let r = unsafe {
                f(
                    user_data,
                    p.stage.code(),
                    p.iteration,
                    p.total,
                    p.critic_loss,
                    p.generator_loss,
                )
            };
            r == 0
        }
    }
}

fn channel_names(spec: &Option<Vec<String>>, n: usize) -> FfiResult<Vec<String>> {
    match spec {
        Some(names) if names.len() != n => invalid(format!(
            "{} channel name(s) set for {n} channel(s)",
            names.len()
        )),
        Some(names) => Ok(names.clone()),
        None => Ok(crate::preprocess::default_channel_names(n)),
    }
}

fn write_c_string(s: &str, buf: *mut c_char, buf_len: usize, what: &str) -> FfiResult {
    let needed = s.len() + 1;
    if buf_len < needed {
        if buf_len > 0 {
            unsafe { *buf = 0 };
        }
        return invalid(format!(
            "{what}: buf_len = {buf_len} but {needed} bytes are needed"
        ));
    }
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Version, errors, devices.
// ---------------------------------------------------------------------------

/// The library's version, e.g. "0.1.0" (semantic versioning; compare with
/// the `ADGAN_VERSION_*` macros of the header you compiled against).
///
/// Returns a static NUL-terminated string: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn adgan_version_string() -> *const c_char {
    catch(std::ptr::null(), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
    })
}

/// The library's ABI version; equals `ADGAN_ABI_VERSION` when the header
/// and the library match. Thread-safe.
#[no_mangle]
pub extern "C" fn adgan_abi_version() -> u32 {
    catch(0, || ADGAN_ABI_VERSION)
}

/// The message of the last failed adGAN call on the calling thread, or ""
/// when it succeeded (each call clears it first).
///
/// Returns a NUL-terminated UTF-8 string owned by the library: never free
/// it; it stays valid until the next adGAN call on the same thread (copy it
/// to keep it). Thread-safe: each thread has its own message.
#[no_mangle]
pub extern "C" fn adgan_last_error_message() -> *const c_char {
    static EMPTY: &[u8; 1] = b"\0";
    catch(EMPTY.as_ptr() as *const c_char, || {
        LAST_ERROR
            .try_with(|e| e.borrow().as_ptr())
            .unwrap_or(EMPTY.as_ptr() as *const c_char)
    })
}

/// Number of CUDA devices libtorch can use: 0 on a machine without a usable
/// GPU or with a CPU-only libtorch. Thread-safe.
#[no_mangle]
pub extern "C" fn adgan_cuda_device_count() -> i32 {
    clear_last_error();
    catch(0, || cuda_device_count().min(i32::MAX as usize) as i32)
}

/// Set the number of CPU threads libtorch uses for one operation
/// (process-wide; `n` >= 1). Returns `ADGAN_STATUS_INVALID_ARGUMENT` when
/// `n` < 1. Call it before training or scoring, not while another thread is
/// inside the library.
#[no_mangle]
pub extern "C" fn adgan_set_num_threads(n: i32) -> i32 {
    guard(|| {
        if n < 1 {
            return invalid(format!("number of threads {n} (expected 1 or more)"));
        }
        tch::set_num_threads(n);
        Ok(())
    })
}

// The exported functions by room, in the header's order: cbindgen reads
// this file's items, then these modules in the order declared here (kept
// apart so that rustfmt does not sort them).

// adgan_train_options_*: the options handle and its setters.
mod options;

// adgan_train_files, adgan_train_buffers.
mod train;

// adgan_model_*: load, save, free, queries.
mod model;

// adgan_score_volume, adgan_score_file.
mod score;

pub use model::*;
pub use options::*;
pub use score::*;
pub use train::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        unsafe { CStr::from_ptr(adgan_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_a_status_and_a_message() {
        let code = guard(|| panic!("boom"));
        assert_eq!(code, AdganStatus::Panic as i32);
        assert!(last_error().contains("boom"), "{}", last_error());
        assert_eq!(guard(|| Ok(())), 0);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn libtorch_failures_are_torch_errors_not_panics() {
        // A libtorch failure raised through a panicking tch method (an
        // impossible allocation) ...
        let code = guard(|| {
            let _t = tch::Tensor::zeros([1 << 50], (tch::Kind::Float, tch::Device::Cpu));
            Ok(())
        });
        assert_eq!(code, AdganStatus::Torch as i32, "{}", last_error());
        let m = last_error();
        assert!(m.starts_with("torch: ") && m.contains("allocate"), "{m}");
        // ... and through an f_ method returning it.
        let code = guard(|| {
            let _t = tch::Tensor::f_zeros([1 << 50], (tch::Kind::Float, tch::Device::Cpu))?;
            Ok(())
        });
        assert_eq!(code, AdganStatus::Torch as i32, "{}", last_error());
        assert!(last_error().contains("allocate"), "{}", last_error());
        // Functions returning a value keep their fallback and say why.
        let v = catch(-1, || {
            let _t = tch::Tensor::zeros([1 << 50], (tch::Kind::Float, tch::Device::Cpu));
            0
        });
        assert_eq!(v, -1);
        assert!(last_error().starts_with("torch: "), "{}", last_error());
    }

    #[test]
    fn errors_map_to_fixed_numbers() {
        let cases = [
            (Error::io("f", "x"), 2),
            (Error::format("f", "x"), 3),
            (Error::invalid("x"), 1),
            (Error::Device("x".into()), 4),
            (Error::Cancelled, 5),
            (Error::Torch("x".into()), 7),
        ];
        for (e, n) in cases {
            assert_eq!(status_of(&e) as i32, n);
        }
    }

    #[test]
    fn negative_sizes_are_rejected() {
        assert!(size(-1isize as usize, "n").is_err());
        assert!(check_dims(-1isize as usize, 2, 2, "v").is_err());
        assert!(check_dims(1 << 20, 1 << 20, 1, "v").is_err());
        assert!(check_dims(0, 2, 2, "v").is_err());
        assert_eq!(check_dims(3, 4, 5, "v").unwrap(), [3, 4, 5]);
    }

    #[test]
    fn options_setters_check_handle_and_values() {
        unsafe {
            assert_eq!(
                adgan_train_options_set_batch_size(std::ptr::null_mut(), 8),
                1
            );
            assert!(last_error().contains("options is NULL"));
            let o = adgan_train_options_new();
            assert!(!o.is_null());
            assert_eq!(adgan_train_options_set_batch_size(o, 1), 1);
            assert_eq!(adgan_train_options_set_batch_size(o, 8), 0);
            assert_eq!((*o).config.batch_size, 8);
            assert_eq!(adgan_train_options_set_critic_init(o, 2), 1);
            assert_eq!(adgan_train_options_set_critic_init(o, 1), 0);
            assert_eq!((*o).config.critic_init, CriticInit::Reset);
            assert_eq!(adgan_train_options_set_lambda_gp(o, f64::NAN), 1);
            assert_eq!(adgan_train_options_set_device(o, c"tpu".as_ptr()), 1);
            assert_eq!(adgan_train_options_set_device(o, c"cpu".as_ptr()), 0);
            assert_eq!(adgan_train_options_set_preset(o, c"quick".as_ptr()), 0);
            assert_eq!((*o).config, TrainConfig::preset(Preset::Quick));
            assert_eq!((*o).device, "auto");
            assert_eq!(adgan_train_options_set_preset(o, c"fast".as_ptr()), 1);
            assert_eq!(
                adgan_train_options_set_channel_names(o, c"a,,b".as_ptr()),
                1
            );
            assert_eq!(
                adgan_train_options_set_channel_names(o, c"flair, t2".as_ptr()),
                0
            );
            assert_eq!(
                (*o).channel_names.as_deref(),
                Some(&["flair".to_string(), "t2".to_string()][..])
            );
            assert_eq!(adgan_train_options_validate(o), 0);
            // The detector's options: kinds by name, ranges checked, the
            // option unchanged on error.
            assert_eq!(
                adgan_train_options_set_preset(o, c"paper-quick".as_ptr()),
                0
            );
            assert_eq!((*o).config, TrainConfig::preset(Preset::PaperQuick));
            assert_eq!(
                adgan_train_options_set_counterfeits(o, c"blend,square".as_ptr(), 1.0),
                1
            );
            assert!(last_error().contains("square"));
            assert_eq!(
                adgan_train_options_set_counterfeits(o, c"intensity".as_ptr(), 1.5),
                1
            );
            assert!((*o).config.counterfeits.is_empty());
            assert_eq!(
                adgan_train_options_set_counterfeits(o, c"intensity,blend".as_ptr(), 0.5),
                0
            );
            assert_eq!(
                (*o).config.counterfeits,
                vec![Counterfeit::Intensity, Counterfeit::Blend]
            );
            assert_eq!((*o).config.synthetic_fraction, 0.5);
            assert_eq!(adgan_train_options_set_ema_decay(o, 1.0), 1);
            assert_eq!(adgan_train_options_set_ema_decay(o, 0.95), 0);
            assert_eq!(adgan_train_options_set_critic(o, 0, 64), 1);
            assert_eq!(adgan_train_options_set_critic(o, 3, 2), 1);
            assert_eq!((*o).config.critic_members, 1);
            assert_eq!(adgan_train_options_set_critic(o, 3, 32), 0);
            assert_eq!(
                ((*o).config.critic_members, (*o).config.critic_width),
                (3, 32)
            );
            assert_eq!(
                adgan_train_options_set_validation(o, 25, std::ptr::null()),
                1
            );
            assert_eq!(
                adgan_train_options_set_validation(o, 25, c"texture".as_ptr()),
                0
            );
            assert_eq!((*o).config.validate_every, 25);
            assert_eq!(adgan_train_options_validate(o), 0);
            adgan_train_options_free(o);
            adgan_train_options_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn model_functions_reject_null() {
        unsafe {
            let mut n = 0usize;
            assert_eq!(adgan_model_channels(std::ptr::null(), &mut n), 1);
            assert!(last_error().contains("model is NULL"));
            let mut m: *mut AdganModel = 1 as *mut AdganModel;
            assert_eq!(
                adgan_model_load(std::ptr::null(), std::ptr::null(), &mut m),
                1
            );
            assert!(m.is_null());
            assert_eq!(
                adgan_model_load(
                    c"/nonexistent/model.safetensors".as_ptr(),
                    c"cpu".as_ptr(),
                    &mut m
                ),
                2
            );
            adgan_model_free(std::ptr::null_mut());
        }
    }
}
