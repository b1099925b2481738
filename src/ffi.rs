//! The stable C ABI of adGAN (`include/adgan.h` is generated from this file
//! by cbindgen; `make header` regenerates it, `tests/header.rs` checks it).
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

use crate::config::Counterfeit;
use crate::config::{CriticInit, Preset, TrainConfig};
use crate::device::{cuda_device_count, device_name, parse_device};
use crate::error::Error;
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

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
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
        Err(payload) => {
            set_last_error(&format!(
                "internal error (panic): {}",
                panic_message(payload.as_ref())
            ));
            AdganStatus::Panic as i32
        }
    }
}

/// [`guard`] for functions that return a value rather than a status:
/// `fallback` on panic.
fn catch<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            set_last_error(&format!(
                "internal error (panic): {}",
                panic_message(payload.as_ref())
            ));
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

// ---------------------------------------------------------------------------
// Training options.
// ---------------------------------------------------------------------------

/// New training options holding the paper's defaults (preset "paper":
/// N = 200000, M = 150000, batch 64, ...), device "auto", no checkpoint,
/// default channel names.
///
/// Returns a handle owned by the caller (free it with
/// `adgan_train_options_free()`), or NULL only if memory ran out. A handle
/// may be read by several threads at once (e.g. several trainings) but must
/// not be modified while another thread uses it.
#[no_mangle]
pub extern "C" fn adgan_train_options_new() -> *mut AdganTrainOptions {
    clear_last_error();
    catch(std::ptr::null_mut(), || {
        Box::into_raw(Box::new(AdganTrainOptions::preset(Preset::Paper)))
    })
}

/// Free training options. NULL is accepted (nothing happens). The handle
/// must not be used afterwards.
///
/// Not thread-safe on one handle: no other thread may be using it.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_free(options: *mut AdganTrainOptions) {
    catch((), || {
        if !options.is_null() {
            drop(Box::from_raw(options));
        }
    })
}

/// Reset every option (device, checkpoint, restart and channel names
/// included) to a named preset: "paper" (the paper's method and budget, a
/// GPU job), "quick" (N = 0, M = 600, batch 32: minutes on a CPU, with
/// synthetic counterfeits and label-free selection) or "paper-quick" (the
/// paper's method at N = 200, M = 300, batch 32).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for NULL or an unknown name.
///
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_preset(
    options: *mut AdganTrainOptions,
    name: *const c_char,
) -> i32 {
    guard(|| {
        let o = reference_mut(options, "options")?;
        let preset = match string(name, "preset name")?.as_str() {
            "paper" => Preset::Paper,
            "quick" => Preset::Quick,
            "paper-quick" => Preset::PaperQuick,
            other => {
                return invalid(format!(
                    "preset '{other}' (expected paper, quick or paper-quick)"
                ))
            }
        };
        *o = AdganTrainOptions::preset(preset);
        Ok(())
    })
}

/// Check the options together (as training does first), e.g. that phase 2
/// has a phase 1 to take its fake pool from.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` naming the bad option.
///
/// Thread-safe (reads the handle only).
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_validate(options: *const AdganTrainOptions) -> i32 {
    guard(|| reference(options, "options")?.config.validate())
}

/// The body of a setter: checks the handle, then runs `set`.
unsafe fn set(
    options: *mut AdganTrainOptions,
    set: impl FnOnce(&mut AdganTrainOptions) -> FfiResult,
) -> i32 {
    guard(|| set(reference_mut(options, "options")?))
}

fn usize_of(v: u64, what: &str) -> FfiResult<usize> {
    usize::try_from(v).or_else(|_| invalid(format!("{what} = {v} is too large")))
}

fn at_least_one(v: u64, what: &str) -> FfiResult<usize> {
    if v == 0 {
        return invalid(format!("{what} must be at least 1"));
    }
    usize_of(v, what)
}

fn finite_non_negative(v: f64, what: &str) -> FfiResult<f64> {
    if !(v.is_finite() && v >= 0.0) {
        return invalid(format!("{what} = {v} (must be finite and >= 0)"));
    }
    Ok(v)
}

/// N: phase-1 (WGAN-GP) iterations (paper: 200000). 0 skips training
/// (then phase 2 must be 0 too).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_phase1_iterations(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.phase1_iterations = value;
        Ok(())
    })
}

/// M: phase-2 critic iterations with the concentration loss (paper: 150000).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_phase2_iterations(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.phase2_iterations = value;
        Ok(())
    })
}

/// m: patches per batch, at least 2 (paper: 64).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_batch_size(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        if value < 2 {
            return invalid(format!("batch size {value} (must be at least 2)"));
        }
        o.config.batch_size = usize_of(value, "batch size")?;
        Ok(())
    })
}

/// Critic updates per generator update in phase 1, at least 1 (paper: 5).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_n_critic(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.n_critic = at_least_one(value, "n_critic")?;
        Ok(())
    })
}

/// lambda: gradient-penalty weight, finite and >= 0 (paper: 10).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_lambda_gp(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        o.config.lambda_gp = finite_non_negative(value, "lambda_gp")?;
        Ok(())
    })
}

/// alpha: concentration-loss weight, finite and >= 0 (paper: 1; 0 gives
/// the plain critic loss).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_alpha(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        o.config.alpha = finite_non_negative(value, "alpha")?;
        Ok(())
    })
}

/// Concentration-loss weight inside phase 1's critic loss, finite and >= 0
/// (Algorithm 1: 0). With phase 2 iterations 0 and this set to alpha the
/// model is the paper's stdWGAN ablation (Eq. 2 in a plain WGAN-GP).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_phase1_alpha(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        o.config.phase1_alpha = finite_non_negative(value, "phase1_alpha")?;
        Ok(())
    })
}

/// k: add generator samples to the fake pool every k phase-1 iterations,
/// at least 1 (paper: 100).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_pool_every(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        at_least_one(value, "pool_every")?;
        o.config.pool_every = value;
        Ok(())
    })
}

/// n: samples added to the fake pool each time, at least 1 (paper: 64).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_pool_draw(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.pool_draw = at_least_one(value, "pool_draw")?;
        Ok(())
    })
}

/// Phase-2 critic: `ADGAN_CRITIC_INIT_FINE_TUNE` (0, adGAN(c), the
/// default) or `ADGAN_CRITIC_INIT_RESET` (1, adGAN). Other values:
/// `ADGAN_STATUS_INVALID_ARGUMENT`.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_critic_init(
    options: *mut AdganTrainOptions,
    value: i32,
) -> i32 {
    set(options, |o| {
        o.config.critic_init = match value {
            0 => CriticInit::FineTune,
            1 => CriticInit::Reset,
            _ => {
                return invalid(format!(
                    "critic_init {value} (expected 0 fine-tune or 1 reset)"
                ))
            }
        };
        Ok(())
    })
}

/// Adam learning rate, finite and > 0 (paper: 1e-4).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_learning_rate(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(value.is_finite() && value > 0.0) {
            return invalid(format!("learning rate {value} (must be finite and > 0)"));
        }
        o.config.adam.lr = value;
        Ok(())
    })
}

/// Adam beta1, in [0, 1) (default 0.5).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_beta1(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(0.0..1.0).contains(&value) {
            return invalid(format!("beta1 {value} (expected 0 <= beta1 < 1)"));
        }
        o.config.adam.beta1 = value;
        Ok(())
    })
}

/// Adam beta2, in [0, 1) (default 0.9).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_beta2(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(0.0..1.0).contains(&value) {
            return invalid(format!("beta2 {value} (expected 0 <= beta2 < 1)"));
        }
        o.config.adam.beta2 = value;
        Ok(())
    })
}

/// Slice axis of the 2-D patches: 0 (x), 1 (y) or 2 (z, the default: axial
/// slices on BraTS-like grids). The model remembers it for scoring.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_slice_axis(
    options: *mut AdganTrainOptions,
    value: i32,
) -> i32 {
    set(options, |o| {
        if !(0..=2).contains(&value) {
            return invalid(format!("slice axis {value} (expected 0, 1 or 2)"));
        }
        o.config.sampling.slice_axis = value as usize;
        Ok(())
    })
}

/// Step between training windows, in pixels, 1 to 32 (default 8).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_patch_stride(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        if !(1..=32).contains(&value) {
            return invalid(format!("patch stride {value} (expected 1 to 32)"));
        }
        o.config.sampling.stride = value as usize;
        Ok(())
    })
}

/// Keep training windows with at least this fraction of brain, 0 to 1
/// (default 0.5). Scoring paints the map with windows of the same fraction.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_min_brain_fraction(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(0.0..=1.0).contains(&value) {
            return invalid(format!("min brain fraction {value} (expected 0 to 1)"));
        }
        o.config.sampling.min_brain_fraction = value;
        Ok(())
    })
}

/// Fraction of normal patches held out to calibrate scores, strictly
/// between 0 and 1 (default 0.1).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_calibration_fraction(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(value > 0.0 && value < 1.0) {
            return invalid(format!("calibration fraction {value} (expected 0 < f < 1)"));
        }
        o.config.calibration_fraction = value;
        Ok(())
    })
}

/// Use at most this many training patches, a random subset (0: all, the
/// default).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_max_patches(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.max_patches = usize_of(value, "max patches")?;
        Ok(())
    })
}

/// Random seed (default 0). The same seed, data and options give the same
/// model on the CPU.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_seed(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.seed = value;
        Ok(())
    })
}

/// Write a checkpoint every this many iterations (0: only when phase 2 starts; default 5000).
/// Only effective with a checkpoint path.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_checkpoint_every(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.checkpoint_every = value;
        Ok(())
    })
}

/// Restart (1) or resume (0, the default) when the checkpoint file exists.
/// Other values: `ADGAN_STATUS_INVALID_ARGUMENT`.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_restart(
    options: *mut AdganTrainOptions,
    value: i32,
) -> i32 {
    set(options, |o| {
        o.restart = match value {
            0 => false,
            1 => true,
            _ => return invalid(format!("restart {value} (expected 0 or 1)")),
        };
        Ok(())
    })
}

/// Measure losses (a device sync) and report them to the progress callback
/// every this many iterations (0: never; default 50).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_log_every(
    options: *mut AdganTrainOptions,
    value: u64,
) -> i32 {
    set(options, |o| {
        o.config.log_every = value;
        Ok(())
    })
}

/// Checkpoint file of training (UTF-8 or raw bytes path, copied), or NULL
/// for no checkpoint (the default). An existing checkpoint for the same data
/// and options is resumed from unless restart is set; it is deleted after a
/// successful training.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or "" path.
///
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_checkpoint_path(
    options: *mut AdganTrainOptions,
    path_or_null: *const c_char,
) -> i32 {
    guard(|| {
        let o = reference_mut(options, "options")?;
        o.checkpoint = if path_or_null.is_null() {
            None
        } else {
            Some(path(path_or_null, "checkpoint path")?)
        };
        Ok(())
    })
}

/// Compute device of training: "auto" (the first CUDA device when there is
/// one, else the CPU; the default), "cpu", "cuda" or "cuda:N" (copied).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for NULL or an unknown name,
/// `ADGAN_STATUS_DEVICE` when the CUDA device does not exist.
///
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_device(
    options: *mut AdganTrainOptions,
    device: *const c_char,
) -> i32 {
    guard(|| {
        let o = reference_mut(options, "options")?;
        let name = string(device, "device")?;
        parse_device(&name)?;
        o.device = name;
        Ok(())
    })
}

/// Synthetic counterfeit anomalies in phase 2's fake batches: `kinds`
/// comma separated from "blend" (foreign-patch interpolation), "intensity"
/// (brighter or darker regions) and "texture" (blurred or noisy regions),
/// or "none"; `synthetic_fraction` in [0, 1] is their share of each fake
/// batch (0: the paper's fake pool only; 1: synthetic only, and phase 1
/// may then be 0 iterations). The quick preset uses them; the paper's
/// preset does not.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or kinds, an
/// unknown kind or a fraction out of range; the options are then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_counterfeits(
    options: *mut AdganTrainOptions,
    kinds: *const c_char,
    synthetic_fraction: f64,
) -> i32 {
    set(options, |o| {
        let list = Counterfeit::parse_list(&string(kinds, "counterfeit kinds")?)?;
        if !(0.0..=1.0).contains(&synthetic_fraction) {
            return invalid(format!(
                "synthetic_fraction = {synthetic_fraction} (expected 0 to 1)"
            ));
        }
        o.config.counterfeits = list;
        o.config.synthetic_fraction = synthetic_fraction;
        Ok(())
    })
}

/// Decay of an exponential moving average of the phase-2 critic's weights,
/// in [0, 1) (0: off). The average is what is validated and kept.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_ema_decay(
    options: *mut AdganTrainOptions,
    value: f64,
) -> i32 {
    set(options, |o| {
        if !(0.0..1.0).contains(&value) {
            return invalid(format!("ema_decay = {value} (expected 0 to below 1)"));
        }
        o.config.ema_decay = value;
        Ok(())
    })
}

/// Choose phase 2's critic without labels: every `every` iterations (0:
/// off, the last critic is the model) score normal patches held out by
/// whole slices against synthetic anomalies of `kinds` (as for
/// `adgan_train_options_set_counterfeits()`; best not among the training
/// kinds), and keep the best snapshot. The model records the curve.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or kinds or an
/// unknown kind; the options are then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_validation(
    options: *mut AdganTrainOptions,
    every: u64,
    kinds: *const c_char,
) -> i32 {
    set(options, |o| {
        o.config.validation_kinds = Counterfeit::parse_list(&string(kinds, "validation kinds")?)?;
        o.config.validate_every = every;
        Ok(())
    })
}

/// Names of the channels, comma separated (e.g. "flair,t2"; copied), stored
/// in the model. NULL restores the default: "flair" for one channel,
/// "ch0,ch1,..." for several. Training fails with
/// `ADGAN_STATUS_INVALID_ARGUMENT` when the count differs from the data's.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_channel_names(
    options: *mut AdganTrainOptions,
    names_or_null: *const c_char,
) -> i32 {
    guard(|| {
        let o = reference_mut(options, "options")?;
        o.channel_names = if names_or_null.is_null() {
            None
        } else {
            let s = string(names_or_null, "channel names")?;
            let names: Vec<String> = s.split(',').map(|n| n.trim().to_string()).collect();
            if names.iter().any(String::is_empty) {
                return invalid(format!("channel names '{s}': a name is empty"));
            }
            Some(names)
        };
        Ok(())
    })
}

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
    let data = TrainingData::from_cases(cases, names, &o.config.sampling)?;
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
///   returning non-zero cancels.
/// - On success `*out_model` receives a new model owned by the caller (free
///   it with `adgan_model_free()`); on failure it is set to NULL.
///
/// Blocks for the whole training (seconds to hours). Thread-safe; several
/// trainings may run at once (they share the CPU threads or the GPU).
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
        let o = reference(options, "options")?;
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
        let o = reference(options, "options")?;
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
/// critic output on held-out normal patches (a voxel's anomaly score is
/// `(mean - raw) / std`, in standard deviations of normal variation), and
/// the suggested threshold for "anomalous" on that score scale. All three
/// pointers must be non-NULL. Thread-safe.
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
        (*mean, *std, *threshold) = (c.mean, c.std, c.threshold);
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
///   anomalous), 0 outside the brain. Written only on success.
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
