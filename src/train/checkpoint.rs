//! Training checkpoints, typed: one file (safetensors + JSON) with the
//! networks, both optimizers' state, the fake pool, phase 2's moving
//! average and best snapshot, and where training stands. Training writes
//! and resumes them; [`fork`] and [`fits`] are what the ablation variants
//! (`train::variants`) need: no other module reads or writes their JSON.

use super::{reset_critic, Chooser, Nets};
use crate::config::{CriticInit, TrainConfig};
use crate::error::{Error, Result};
use crate::fake_pool::FakePool;
use crate::model::Budget;
use crate::selection::{Ema, SelectionReport, Weights};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Where a checkpoint stands.
pub(super) struct CheckpointState<'a> {
    pub(super) phase: u64,
    pub(super) iteration: u64,
    pub(super) fingerprint: &'a str,
    pub(super) generator_scale: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CheckpointMeta {
    pub(super) kind: String,
    pub(super) library_version: String,
    /// 1 or 2: the phase the next iteration belongs to.
    pub(super) phase: u64,
    /// Next iteration to run in that phase.
    pub(super) iteration: u64,
    pub(super) adam_g_step: i64,
    pub(super) adam_d_step: i64,
    pub(super) pool_iterations: Vec<u64>,
    pub(super) config: TrainConfig,
    pub(super) data_fingerprint: String,
    pub(super) generator_scale: f64,
    pub(super) phase1_seconds: f64,
    pub(super) phase2_seconds: f64,
    /// Phase 2's validation so far (training with validation).
    #[serde(default)]
    pub(super) selection: SelectionReport,
    /// Whether `best.*` tensors hold the best snapshot so far.
    #[serde(default)]
    pub(super) has_best: bool,
}

pub(super) fn save_checkpoint(
    path: &Path,
    state: &CheckpointState,
    config: &TrainConfig,
    nets: &Nets,
    pool: &FakePool,
    chooser: &Chooser,
    budget: &Budget,
) -> Result<()> {
    let meta = CheckpointMeta {
        kind: "adgan-checkpoint".into(),
        library_version: crate::VERSION.into(),
        phase: state.phase,
        iteration: state.iteration,
        adam_g_step: nets.adam_g.step,
        adam_d_step: nets.adam_d.step,
        pool_iterations: pool.iterations.clone(),
        config: config.clone(),
        data_fingerprint: state.fingerprint.to_string(),
        generator_scale: state.generator_scale,
        phase1_seconds: budget.phase1_seconds,
        phase2_seconds: budget.phase2_seconds,
        selection: chooser.report.clone(),
        has_best: chooser.best.is_some(),
    };
    let mut tensors = crate::io::tensor_file::named(&nets.vs_g, "g.");
    tensors.extend(crate::io::tensor_file::named(&nets.vs_d, "d."));
    tensors.extend(nets.adam_g.state("adam_g"));
    tensors.extend(nets.adam_d.state("adam_d"));
    if let Some(p) = pool.tensor() {
        tensors.push(("pool".into(), p));
    }
    // Phase 2's moving average and best snapshot, named like the critic's.
    for (prefix, weights) in [
        ("ema.", chooser.ema.as_ref().map(|e| &e.weights)),
        ("best.", chooser.best.as_ref()),
    ] {
        for (k, t) in weights.into_iter().flatten() {
            tensors.push((format!("{prefix}{k}"), t.shallow_clone()));
        }
    }
    let json = serde_json::to_string(&meta).map_err(|e| Error::invalid(e.to_string()))?;
    crate::io::tensor_file::write(path, &tensors, &json)
}

/// A checkpoint file's tensors and metadata; an error names the file when
/// it is not an adGAN training checkpoint.
fn read(path: &Path) -> Result<(crate::io::tensor_file::TensorFile, CheckpointMeta)> {
    let file = crate::io::tensor_file::read(path, "adGAN training checkpoint")?;
    let meta: CheckpointMeta = serde_json::from_str(&file.json)
        .map_err(|e| Error::format(path, format!("checkpoint metadata is not valid: {e}")))?;
    if meta.kind != "adgan-checkpoint" {
        return Err(Error::format(path, "not an adGAN training checkpoint"));
    }
    Ok((file, meta))
}

pub(super) fn load_checkpoint(
    path: &Path,
    config: &TrainConfig,
    fingerprint: &str,
    nets: &mut Nets,
    pool: &mut FakePool,
    chooser: &mut Chooser,
) -> Result<CheckpointMeta> {
    let (file, meta) = read(path)?;
    let refuse = |what: &str| {
        Err(Error::format(
            path,
            format!(
                "this checkpoint was made with other {what}; delete it or train with --restart"
            ),
        ))
    };
    if &meta.config != config {
        return refuse("training options");
    }
    if meta.data_fingerprint != fingerprint {
        return refuse("training data");
    }
    crate::io::tensor_file::load_into(path, &nets.vs_g, "g.", &file.tensors)?;
    crate::io::tensor_file::load_into(path, &nets.vs_d, "d.", &file.tensors)?;
    let device = nets.vs_d.device();
    let mut get = |name: &str| file.tensors.get(name).map(|t| t.to_device(device));
    nets.adam_g
        .load_state("adam_g", meta.adam_g_step, &mut get)
        .map_err(|m| Error::format(path, m))?;
    nets.adam_d
        .load_state("adam_d", meta.adam_d_step, &mut get)
        .map_err(|m| Error::format(path, m))?;
    let p = match file.tensors.get("pool") {
        Some(t) => t.shallow_clone(),
        None => Tensor::zeros([0], (Kind::Float, Device::Cpu)),
    };
    pool.restore(p, meta.pool_iterations.clone());
    // Phase 2's moving average and best snapshot, named like the critic's.
    let copy_of = |prefix: &str| -> Result<Weights> {
        crate::io::tensor_file::named(&nets.vs_d, "")
            .into_iter()
            .map(|(name, _)| {
                let key = format!("{prefix}{name}");
                file.tensors
                    .get(&key)
                    .map(|t| (name, t.to_device(device)))
                    .ok_or_else(|| Error::format(path, format!("tensor {key} is missing")))
            })
            .collect()
    };
    if meta.phase == 2 && config.ema_decay > 0.0 {
        chooser.ema = Some(Ema {
            decay: config.ema_decay,
            weights: copy_of("ema.")?,
        });
    }
    if meta.has_best {
        chooser.best = Some(copy_of("best.")?);
    }
    chooser.report = meta.selection.clone();
    Ok(meta)
}

/// Copy a phase-2 starting checkpoint for another variant: its options
/// replaced, and for `reset` the critic re-initialised exactly as training
/// does it (same stream), so that resuming it runs that variant's phase 2.
pub fn fork(from: &Path, to: &Path, config: &TrainConfig, channels: usize) -> Result<()> {
    let (file, mut meta) = read(from)?;
    meta.config = config.clone();
    let mut tensors: Vec<(String, Tensor)> = file.tensors.into_iter().collect();
    if config.critic_init == CriticInit::Reset && meta.phase == 2 {
        let (vs, _critic) = reset_critic(channels, config, Device::Cpu);
        let fresh = crate::io::tensor_file::named(&vs, "d.");
        tensors.retain(|(k, _)| !k.starts_with("d."));
        tensors.extend(fresh);
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let json = serde_json::to_string(&meta).map_err(|e| Error::invalid(e.to_string()))?;
    crate::io::tensor_file::write(to, &tensors, &json)
}

/// Whether `path` is a checkpoint at `(phase, iteration)` of a training
/// with `config`'s phase-1 options (phase-2 options may differ).
pub fn fits(path: &Path, config: &TrainConfig, phase: u64, iteration: u64) -> bool {
    let Ok((_, meta)) = read(path) else {
        return false;
    };
    let mut c = meta.config;
    c.phase2_iterations = config.phase2_iterations;
    c.alpha = config.alpha;
    c.critic_init = config.critic_init;
    meta.phase == phase && meta.iteration == iteration && &c == config
}
