//! Ablations: several variants trained from one shared phase 1
//! ([`train_variants`]: the phase-1 run is done once, every other variant
//! resumes a fork of its checkpoint, see [`super::checkpoint`]) and the
//! paper's stdWGAN ([`train_std_wgan`]).

use super::{checkpoint, Checkpointing, TrainingData};
use crate::config::{CriticInit, TrainConfig, Variant, VariantKind};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::progress::{Progress, ProgressFn, Stage};
use std::path::Path;
use tch::Device;

/// Train several variants that share one phase 1 (the same seed and data
/// give every variant the same phase 1, so it is run once): the first
/// fine-tune variant with the base's N and some phase 2 runs in full, its
/// phase-2 starting checkpoint (and phase-1 snapshots for variants with a
/// smaller N) is kept in `workdir`, and every other variant resumes from a
/// copy of it with its own options. Each model equals the one
/// [`crate::train::train`] gives for the variant's options alone (tested).
/// stdWGAN variants train on their own. `on_model` gets each model as soon
/// as it is trained (to save it). The working files stay in `workdir` until
/// every variant is done: a run interrupted after its phase 1 reuses it.
/// Returns `(name, model)` in order.
pub fn train_variants(
    data: &TrainingData,
    base: &TrainConfig,
    variants: &[Variant],
    device: Device,
    workdir: &Path,
    progress: &mut dyn FnMut(&str, &Progress) -> bool,
    on_model: &mut dyn FnMut(&str, &Model) -> Result<()>,
) -> Result<Vec<(String, Model)>> {
    base.validate()?;
    std::fs::create_dir_all(workdir).map_err(|e| Error::io(workdir, e))?;
    let n = base.phase1_iterations;
    for v in variants {
        let c = v.config(base);
        c.validate().map_err(|e| match e {
            Error::InvalidArgument(m) => Error::invalid(format!("variant {}: {m}", v.name)),
            other => other,
        })?;
        if v.kind == VariantKind::AdGan {
            if c.phase1_iterations > n {
                return Err(Error::invalid(format!(
                    "variant {}: N = {} is more than the shared phase 1 (N = {n})",
                    v.name, c.phase1_iterations
                )));
            }
            if c.phase1_iterations < n
                && (base.checkpoint_every == 0 || c.phase1_iterations % base.checkpoint_every != 0)
            {
                return Err(Error::invalid(format!(
                    "variant {}: N = {} must be a multiple of checkpoint_every ({})",
                    v.name, c.phase1_iterations, base.checkpoint_every
                )));
            }
        }
    }
    let snapshots: Vec<u64> = {
        let mut s: Vec<u64> = variants
            .iter()
            .filter(|v| v.kind == VariantKind::AdGan)
            .map(|v| v.config(base).phase1_iterations)
            .filter(|&b| b < n)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let snap_path = |b: u64| workdir.join(format!("phase1-{b}.ckpt"));
    let shared = workdir.join("phase2-start.ckpt");
    let running = workdir.join("running.ckpt");
    let channels = data.channels();
    let mut out: Vec<Option<Model>> = (0..variants.len()).map(|_| None).collect();

    // The main run: a fine-tune variant with the full N and some phase 2,
    // or a stand-in (fine-tune, M = max(M, 1)) whose model is dropped.
    let main = variants.iter().position(|v| {
        let c = v.config(base);
        v.kind == VariantKind::AdGan
            && c.phase1_iterations == n
            && c.phase2_iterations > 0
            && c.critic_init == CriticInit::FineTune
    });
    let needs_shared = variants.iter().any(|v| v.kind == VariantKind::AdGan);
    let (name, cfg) = match main {
        Some(k) => (variants[k].name.clone(), variants[k].config(base)),
        None => {
            let mut c = base.clone();
            c.critic_init = CriticInit::FineTune;
            c.phase2_iterations = c.phase2_iterations.max(1);
            ("shared phase 1".to_string(), c)
        }
    };
    // The phase 1 of an interrupted run with the same options is reused
    // (resuming checks the data too).
    let reuse = needs_shared
        && checkpoint::fits(&shared, &cfg, 2, 0)
        && snapshots
            .iter()
            .all(|&b| checkpoint::fits(&snap_path(b), &cfg, 1, b));
    if needs_shared && !reuse {
        let ckpt = Checkpointing {
            path: Some(running.clone()),
            restart: true,
            keep: false,
        };
        let mut copy_err: Option<Error> = None;
        let mut copied_shared = false;
        let model = crate::train::train(data, &cfg, device, &ckpt, &mut |p: &Progress| {
            // After phase-1 iteration b (reported as b + 1) the file holds the checkpoint of
            // boundary b; after the first phase-2 iteration it still holds
            // the one written when phase 2 started.
            let copy = |to: &Path| {
                std::fs::copy(&running, to)
                    .map(|_| ())
                    .map_err(|e| Error::io(to, e))
            };
            if p.stage == Stage::Wgan && p.iteration > 0 && snapshots.contains(&(p.iteration - 1)) {
                if let Err(e) = copy(&snap_path(p.iteration - 1)) {
                    copy_err = Some(e);
                    return false;
                }
            }
            if p.stage == Stage::Critic && p.iteration == 1 && !copied_shared {
                copied_shared = true;
                if let Err(e) = copy(&shared) {
                    copy_err = Some(e);
                    return false;
                }
            }
            progress(&name, p)
        });
        if let Some(e) = copy_err {
            return Err(e);
        }
        let model = model?;
        if let Some(k) = main {
            on_model(&variants[k].name, &model)?;
            out[k] = Some(model);
        }
    }
    for (k, v) in variants.iter().enumerate() {
        if out[k].is_some() {
            continue;
        }
        let cfg = v.config(base);
        let model = match v.kind {
            VariantKind::StdWgan => {
                train_std_wgan(data, &cfg, device, &mut |p| progress(&v.name, p))?
            }
            VariantKind::AdGan => {
                let from = if cfg.phase1_iterations < n {
                    snap_path(cfg.phase1_iterations)
                } else {
                    shared.clone()
                };
                let fork = workdir.join("fork.ckpt");
                checkpoint::fork(&from, &fork, &cfg, channels)?;
                let ckpt = Checkpointing {
                    path: Some(fork),
                    restart: false,
                    keep: false,
                };
                crate::train::train(data, &cfg, device, &ckpt, &mut |p| progress(&v.name, p))?
            }
        };
        on_model(&v.name, &model)?;
        out[k] = Some(model);
    }
    for b in &snapshots {
        let _ = std::fs::remove_file(snap_path(*b));
    }
    let _ = std::fs::remove_file(&shared);
    Ok(variants
        .iter()
        .zip(out)
        .filter_map(|(v, m)| m.map(|m| (v.name.clone(), m)))
        .collect())
}

/// The paper's stdWGAN (Sec. IV-E 2): a WGAN-GP trained for
/// `phase1_iterations` with the concentration term `alpha * S(D(real))` in
/// its critic loss from the start (Eq. 2 with the generator's current
/// samples as fakes), no phase 2; its critic is the detector. This is
/// [`crate::train::train`] with `phase1_alpha = alpha` and no phase 2 (the
/// fake pool it collects is never used).
pub fn train_std_wgan(
    data: &TrainingData,
    config: &TrainConfig,
    device: Device,
    progress: &mut ProgressFn,
) -> Result<Model> {
    let mut c = config.clone();
    c.phase1_alpha = config.alpha;
    c.phase2_iterations = 0;
    c.critic_init = CriticInit::FineTune;
    let no_checkpoints = Checkpointing {
        path: None,
        restart: false,
        keep: false,
    };
    crate::train::train(data, &c, device, &no_checkpoints, progress)
}
