//! C API: the training options handle (`adgan_train_options_*`): one
//! setter per option, each checking its value as the C header says.

#![allow(clippy::missing_safety_doc)]
#![allow(clippy::too_many_arguments)]

use super::*;

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
/// (brighter or darker regions), "texture" (blurred or noisy regions) and
/// "fill" (regions smoothed to a brighter or darker homogeneous level), or
/// "none"; `synthetic_fraction` in [0, 1] is their share of each fake
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

/// The critic's shape: `members` critics trained side by side, each from
/// its own initial weights, and averaged into the model (1: the paper's
/// one critic; at most 16), each with `width` maps in its first layer (64:
/// the paper's; 4 to 256; the later layers have 2, 4 and 8 times as many).
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or a value
/// out of range; the options are then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_critic(
    options: *mut AdganTrainOptions,
    members: u32,
    width: u32,
) -> i32 {
    set(options, |o| {
        let (members, width) = (members as usize, width as usize);
        if let Err(e) = crate::config::check_critic_shape(members, width) {
            return invalid(e.to_string());
        }
        o.config.critic_members = members;
        o.config.critic_width = width;
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

/// Intensity normalisation of every volume, per channel over the brain:
/// "zscore" (mean and standard deviation; the paper's, and every
/// preset's) or "clipped" (mean and standard deviation of the voxels below
/// mean + 3 SD, recomputed from the median and MAD until stable, so that a
/// large bright lesion does not set the scale; measured less stable across
/// seeds, docs/BENCHMARKS.md). The model records it and scoring applies the
/// same.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or method or
/// an unknown method; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_normalisation(
    options: *mut AdganTrainOptions,
    method: *const c_char,
) -> i32 {
    set(options, |o| {
        o.config.normalisation = Normalisation::parse(&string(method, "normalisation")?)?;
        Ok(())
    })
}

/// The intensity gate of the maps: "bright" (on the first channel),
/// "bright:N" (on channel N) or "off". Gated, a voxel's score is the
/// critic's map (0 when negative) times how far the voxel is brighter than
/// the training volumes' normal tissue (0 up to its median, 1 at its 99.9th
/// percentile). The quick preset: "bright"; the paper's presets: "off".
/// The model records it and scoring applies it; window scores are never
/// gated. Training fails with `ADGAN_STATUS_INVALID_ARGUMENT` when N is
/// not a channel of the data.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or gate or an
/// unknown gate; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_intensity_gate(
    options: *mut AdganTrainOptions,
    gate: *const c_char,
) -> i32 {
    set(options, |o| {
        o.config.intensity_gate = GateChoice::parse(&string(gate, "intensity gate")?)?;
        Ok(())
    })
}

/// How normal training patches are varied: "none" or "dihedral" (each
/// patch rotated by a multiple of 90 degrees and mirrored at random, so
/// the critic sees normal structures in every orientation; intensities are
/// never changed). The model records it.
///
/// Errors: `ADGAN_STATUS_INVALID_ARGUMENT` for a NULL handle or name or an
/// unknown name; the option is then unchanged.
/// Not thread-safe on one handle: do not modify a handle another thread
/// is using.
#[no_mangle]
pub unsafe extern "C" fn adgan_train_options_set_augment(
    options: *mut AdganTrainOptions,
    augment: *const c_char,
) -> i32 {
    set(options, |o| {
        o.config.augment = Augment::parse(&string(augment, "augmentation")?)?;
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
