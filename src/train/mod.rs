//! Algorithm 1 of the paper: phase 1 trains a WGAN-GP on normal patches and
//! collects the fake pool; phase 2 trains the critic (fresh: adGAN, or
//! continued: adGAN(c)) on normal vs. fake-pool patches with the
//! concentration loss. Training checkpoints itself and resumes exactly.

pub use crate::config::{CriticInit, Preset, TrainConfig};
pub mod checkpoint;
pub mod variants;

use crate::augment::{self, Augment};
use crate::counterfeit;
use crate::error::{Error, Result};
use crate::fake_pool::FakePool;
use crate::gate::{GateChoice, IntensityGate, IntensityReference, GATE_SAMPLE_STEP};
use crate::io::tensor_file::to_f32_vec;
use crate::losses;
use crate::model::{format_version_for, Budget, Calibration, Model, ModelMeta, FORMAT};
use crate::nets::{Critic, Generator, LATENT, PATCH};
use crate::optim::Adam;
use crate::preprocess::{normalise, training_patches_by_slice, Case, Normalised};
use crate::progress::{Progress, ProgressFn, Stage};
use crate::rng::Rng;
use crate::selection::{self, snapshot, Ema, SelectionReport, Validator, Weights};
use checkpoint::{load_checkpoint, save_checkpoint, CheckpointState};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// Normal patches ready for training, `[N, C, 32, 32]` on the CPU.
#[derive(Debug)]
pub struct TrainingData {
    pub patches: Tensor,
    pub channel_names: Vec<String>,
    /// For each patch, the slice (or image) it was cut from: normal
    /// patches are held out for calibration and validation by whole
    /// groups, so that they never overlap a training window. `None`: each
    /// patch is its own group.
    pub groups: Option<Vec<u32>>,
    /// Where each patch lies in its slice, for patches cut from volumes
    /// (with `groups`): calibration paints the held-out slices from them as
    /// scoring paints a volume. `None`: the model keeps only its window
    /// threshold.
    pub layout: Option<PatchLayout>,
}

/// Append every [`GATE_SAMPLE_STEP`]-th normal voxel (brain, not
/// excluded) of each channel of `norm` to `into`.
fn sample_normal_voxels(norm: &Normalised, into: &mut [Vec<f32>]) -> Result<()> {
    let brain = to_f32_vec(&norm.brain)?;
    let exclude = match &norm.exclude {
        Some(e) => Some(to_f32_vec(e)?),
        None => None,
    };
    let normal: Vec<usize> = (0..brain.len())
        .filter(|&i| brain[i] > 0.0 && exclude.as_ref().map_or(true, |e| e[i] == 0.0))
        .step_by(GATE_SAMPLE_STEP)
        .collect();
    for (c, values) in into.iter_mut().enumerate() {
        let data = to_f32_vec(&norm.data.get(c as i64))?;
        values.extend(normal.iter().map(|&i| data[i]));
    }
    Ok(())
}

/// Where the patches of [`TrainingData`] lie.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchLayout {
    /// Per patch: its case (an index into `backgrounds`) and its window's
    /// origin `(row, col)` in its slice (its group).
    pub origins: Vec<(u32, u32, u32)>,
    /// Per case: each channel's value outside the brain after
    /// normalisation (how a patch's brain pixels are told apart).
    pub backgrounds: Vec<Vec<f32>>,
    /// Per channel: where the normal voxels of all cases (brain, not
    /// excluded) lie after normalisation, for the intensity gate; `None`
    /// for a channel without spread.
    pub intensity: Vec<Option<IntensityReference>>,
}

impl TrainingData {
    /// Training patches of several cases, each normalised on its own by
    /// `config.normalisation` and cut as `config.sampling` says.
    pub fn from_cases(
        cases: &[Case],
        channel_names: Vec<String>,
        config: &TrainConfig,
    ) -> Result<TrainingData> {
        Self::from_cases_with_progress(cases, channel_names, config, &mut |_| true)
    }

    /// [`TrainingData::from_cases`], reporting each case done as the
    /// `Prepare` stage; `progress` returning false cancels
    /// ([`Error::Cancelled`]) before the next case is cut.
    pub fn from_cases_with_progress(
        cases: &[Case],
        channel_names: Vec<String>,
        config: &TrainConfig,
        progress: &mut ProgressFn,
    ) -> Result<TrainingData> {
        let sampling = &config.sampling;
        if cases.is_empty() {
            return Err(Error::invalid("no training volumes"));
        }
        let channels = cases[0].channels.len();
        let mut all = Vec::with_capacity(cases.len());
        let mut groups = Vec::new();
        let mut layout = PatchLayout {
            origins: Vec::new(),
            backgrounds: Vec::new(),
            intensity: Vec::new(),
        };
        let mut normal_values: Vec<Vec<f32>> = vec![Vec::new(); channels];
        let mut next_group = 0u32;
        for case in cases {
            if case.channels.len() != channels {
                return Err(Error::format(
                    &case.name,
                    format!(
                        "{} channel(s), the first case has {channels}",
                        case.channels.len()
                    ),
                ));
            }
            let norm = normalise(case, config.normalisation)?;
            sample_normal_voxels(&norm, &mut normal_values)?;
            let crate::preprocess::SlicePatches {
                patches,
                slices,
                origins,
            } = training_patches_by_slice(&norm, sampling)?;
            groups.extend(slices.iter().map(|&s| next_group + s));
            let case_index = layout.backgrounds.len() as u32;
            layout
                .origins
                .extend(origins.iter().map(|&(r, c)| (case_index, r, c)));
            layout
                .backgrounds
                .push(norm.stats.iter().map(|s| s.background as f32).collect());
            next_group += crate::windows::slice_count(norm.dims, sampling.slice_axis) as u32;
            all.push(patches);
            let done = Progress::new(Stage::Prepare, all.len() as u64, cases.len() as u64);
            if !progress(&done) {
                return Err(Error::Cancelled);
            }
        }
        let patches = Tensor::cat(&all, 0);
        layout.intensity = normal_values
            .into_iter()
            .map(IntensityReference::of)
            .collect();
        if channel_names.len() != channels {
            return Err(Error::invalid(format!(
                "{} channel name(s) for {channels} channel(s)",
                channel_names.len()
            )));
        }
        Ok(TrainingData {
            patches,
            channel_names,
            groups: Some(groups),
            layout: Some(layout),
        })
    }

    pub fn len(&self) -> usize {
        self.patches.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn channels(&self) -> usize {
        self.patches.size()[1] as usize
    }
}

/// Where to keep checkpoints.
#[derive(Debug, Clone, Default)]
pub struct Checkpointing {
    /// Checkpoint file; `None`: no checkpoints.
    pub path: Option<PathBuf>,
    /// Ignore an existing checkpoint and start over.
    pub restart: bool,
    /// Keep the checkpoint after a successful training.
    pub keep: bool,
}

/// Held-out normal patches for calibration and validation, at most this many
/// of which validate.
const VALIDATION_PATCHES: usize = 1024;

/// Fewer groups than this and patches are held out one by one.
const MIN_GROUPS: usize = 10;

/// Split the patches into held-out (calibration and validation) and
/// training indices, seeded. Whole groups (slices) are held out when the
/// data has at least `MIN_GROUPS` of them, so that no held-out patch
/// overlaps a training window.
pub fn held_out_split(data: &TrainingData, config: &TrainConfig) -> (Vec<i64>, Vec<i64>) {
    let n_all = data.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let budget = if config.max_patches > 0 {
        n_all.min(config.max_patches)
    } else {
        n_all
    };
    let target = ((budget as f64 * config.calibration_fraction).round() as usize).max(2);
    // Patches per group, when every patch has one.
    let sizes = data.groups.as_ref().filter(|g| g.len() == n_all).map(|g| {
        let mut sizes = std::collections::BTreeMap::new();
        for id in g {
            *sizes.entry(*id).or_insert(0usize) += 1;
        }
        (g, sizes)
    });
    let (mut held, mut train) = (Vec::new(), Vec::new());
    match sizes.filter(|(_, sizes)| sizes.len() >= MIN_GROUPS) {
        Some((groups, sizes)) => {
            let mut ids: Vec<u32> = sizes.keys().copied().collect();
            ids.shuffle(&mut rng);
            let mut chosen = std::collections::BTreeSet::new();
            let mut count = 0;
            for id in ids {
                if count >= target {
                    break;
                }
                chosen.insert(id);
                count += sizes[&id];
            }
            for (i, g) in groups.iter().enumerate() {
                if chosen.contains(g) {
                    held.push(i as i64);
                } else {
                    train.push(i as i64);
                }
            }
            held.shuffle(&mut rng);
            train.shuffle(&mut rng);
        }
        None => {
            let mut order: Vec<i64> = (0..n_all as i64).collect();
            order.shuffle(&mut rng);
            let cut = target.min(n_all);
            held = order[..cut].to_vec();
            train = order[cut..].to_vec();
        }
    }
    train.truncate(budget.saturating_sub(held.len()));
    (held, train)
}

/// Phase 2's selection state: the moving average, the best snapshot and
/// the validation curve.
#[derive(Default)]
struct Chooser {
    ema: Option<Ema>,
    best: Option<Weights>,
    report: SelectionReport,
}

struct Nets {
    vs_g: nn::VarStore,
    g: Generator,
    vs_d: nn::VarStore,
    d: Critic,
    adam_g: Adam,
    adam_d: Adam,
}

/// Phase 2's fresh critic (adGAN, `critic_init` reset): its own random
/// stream, so that a forked checkpoint (see [`checkpoint::fork`]) gets the
/// critic an uninterrupted training would.
fn reset_critic(channels: usize, config: &TrainConfig, device: Device) -> (nn::VarStore, Critic) {
    let vs_d = nn::VarStore::new(device);
    let d = Critic::of(&vs_d.root(), channels as i64, config);
    Rng::stream(config.seed, 2, u64::MAX).init(&vs_d);
    (vs_d, d)
}

/// The critic loss of `critic`: the paper's for one critic, each member's
/// summed for an ensemble (the report's loss is per member).
fn critic_loss(
    critic: &Critic,
    real: &Tensor,
    fake: &Tensor,
    mix: &Tensor,
    alpha: f64,
    lambda: f64,
) -> (Tensor, [Tensor; 3]) {
    if critic.members() == 1 {
        let one = |x: &Tensor| critic.forward(x);
        return losses::critic_loss(&one, real, fake, mix, alpha, lambda);
    }
    let members = |x: &Tensor| critic.forward_members(x);
    losses::ensemble_critic_loss(&members, critic.members(), real, fake, mix, alpha, lambda)
}

/// Put an ensemble's members on one scale (each member's output minus its
/// mean, over its SD, on the held-out normal patches), so that the mean
/// over members weighs each alike whatever scale its training left it at.
fn standardise_members(d: &Critic, held_out: &Tensor, device: Device) -> Result<()> {
    let k = d.members();
    let mut outs = Vec::new();
    tch::no_grad(|| {
        for chunk in held_out.split(1024, 0) {
            let x = chunk.to_device(device).to_kind(Kind::Float);
            outs.push(d.forward_members(&x.repeat([1, k, 1, 1])));
        }
    });
    if outs.is_empty() {
        return Err(Error::invalid(
            "no held-out normal patch to put the critics on one scale",
        ));
    }
    let all = Tensor::cat(&outs, 0).to_kind(Kind::Double);
    let mean = Vec::<f64>::try_from(all.mean_dim(0, false, Kind::Double))
        .map_err(|e| Error::Torch(e.to_string()))?;
    let std = Vec::<f64>::try_from(all.std_dim(0, false, false))
        .map_err(|e| Error::Torch(e.to_string()))?;
    let std: Vec<f64> = std.into_iter().map(|s| s.max(1e-6)).collect();
    d.standardise_members(&mean, &std);
    Ok(())
}

fn data_fingerprint(patches: &Tensor) -> String {
    let n = patches.size()[0];
    let s = patches.sum(Kind::Double).double_value(&[]);
    let s2 = patches.square().sum(Kind::Double).double_value(&[]);
    format!("{n}:{s:.6e}:{s2:.6e}")
}

fn mean_f64(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// Train a model on normal patches. `progress` is called after every
/// iteration; returning `false` stops training with [`Error::Cancelled`]
/// (the last checkpoint stays, so the run can be resumed).
pub fn train(
    data: &TrainingData,
    config: &TrainConfig,
    device: Device,
    checkpointing: &Checkpointing,
    progress: &mut ProgressFn,
) -> Result<Model> {
    config.validate()?;
    let channels = data.channels();
    if channels == 0 {
        return Err(Error::invalid("training patches have no channel"));
    }
    // Before training, so that a bad channel is refused at once.
    let intensity_gate = intensity_gate_of(config.intensity_gate, data, channels)?;
    // Patches of volumes are augmented as asked; 2-D images never are (a
    // photograph's orientation can be what is normal about it), and the
    // model records what was done.
    let augment = if data.layout.is_some() {
        config.augment
    } else {
        Augment::None
    };
    let n_all = data.len();
    let (held, train_order) = held_out_split(data, config);
    let n_cal = held.len();
    if train_order.len() < config.batch_size {
        return Err(Error::invalid(format!(
            "only {n_all} normal training patch(es): need at least {} (batch {} + {n_cal} held out to calibrate); add volumes, lower the brain fraction or the stride",
            n_cal + config.batch_size,
            config.batch_size
        )));
    }
    let cal_idx = Tensor::from_slice(&held);
    let train_idx = Tensor::from_slice(&train_order);
    let cal_patches = data.patches.index_select(0, &cal_idx);
    let real = data.patches.index_select(0, &train_idx).to_device(device);
    let n_train = real.size()[0];
    let fingerprint = data_fingerprint(&real);
    // The generator must be able to reach the data's range (see nets.rs).
    let generator_scale = real.abs().max().double_value(&[]).max(1.0);

    // Random streams restart at every checkpoint boundary from (seed,
    // phase, iteration), so a resumed run draws what an uninterrupted one
    // would; they never touch libtorch's global generator.
    let mut rng = Rng::stream(config.seed, 0, 0);
    let vs_g = nn::VarStore::new(device);
    let g = Generator::new(&vs_g.root(), channels as i64, generator_scale);
    rng.init(&vs_g);
    let vs_d = nn::VarStore::new(device);
    let d = Critic::of(&vs_d.root(), channels as i64, config);
    rng.init(&vs_d);
    let adam_g = Adam::new(vs_g.trainable_variables(), config.adam);
    let adam_d = Adam::new(vs_d.trainable_variables(), config.adam);
    let mut nets = Nets {
        vs_g,
        g,
        vs_d,
        d,
        adam_g,
        adam_d,
    };
    let mut pool = FakePool::new(config.pool_every, config.pool_draw);
    let mut chooser = Chooser::default();
    let mut budget = Budget {
        device: crate::device::device_name(device),
        train_patches: n_train as usize,
        calibration_patches: n_cal,
        ..Default::default()
    };

    // Resume?
    let (mut phase, mut start) = (1u64, 0u64);
    if let Some(path) = &checkpointing.path {
        if path.exists() && !checkpointing.restart {
            let meta = load_checkpoint(
                path,
                config,
                &fingerprint,
                &mut nets,
                &mut pool,
                &mut chooser,
            )?;
            phase = meta.phase;
            start = meta.iteration;
            budget.phase1_seconds = meta.phase1_seconds;
            budget.phase2_seconds = meta.phase2_seconds;
            budget.resumed_at = Some(format!("phase {phase}, iteration {start}"));
        }
    }
    let ckpt = |phase: u64,
                it: u64,
                nets: &Nets,
                pool: &FakePool,
                chooser: &Chooser,
                budget: &Budget|
     -> Result<()> {
        if let Some(path) = &checkpointing.path {
            let state = CheckpointState {
                phase,
                iteration: it,
                fingerprint: &fingerprint,
                generator_scale,
            };
            save_checkpoint(path, &state, config, nets, pool, chooser, budget)?;
        }
        Ok(())
    };
    let boundary = |it: u64| config.checkpoint_every > 0 && it % config.checkpoint_every == 0;
    let bs = config.batch_size as i64;
    let sample_real = |rng: &mut Rng, n: i64| {
        let x = real.index_select(0, &rng.indices(n_train, n, device));
        augment::apply(&x, augment, rng)
    };
    let z = |rng: &mut Rng, n: i64| rng.normal(&[n, LATENT], device);
    let mix = |rng: &mut Rng, n: i64| rng.uniform(&[n, 1, 1, 1], 0.0, 1.0, device);

    // Phase 1: WGAN-GP and the fake pool.
    if phase == 1 {
        let t0 = Instant::now();
        let base = budget.phase1_seconds;
        let mut report = Progress::new(Stage::Wgan, start, config.phase1_iterations);
        for i in start..config.phase1_iterations {
            if boundary(i) || i == start {
                rng = Rng::stream(config.seed, 1, i);
                if boundary(i) && i > start {
                    budget.phase1_seconds = base + t0.elapsed().as_secs_f64();
                    ckpt(1, i, &nets, &pool, &chooser, &budget)?;
                }
            }
            let log = config.log_every > 0
                && (i % config.log_every == 0 || i + 1 == config.phase1_iterations);
            let mut terms = None;
            for _ in 0..config.n_critic {
                let x = sample_real(&mut rng, bs);
                let f = tch::no_grad(|| nets.g.forward_t(&z(&mut rng, bs), true));
                let a = mix(&mut rng, bs);
                let (loss, t) =
                    critic_loss(&nets.d, &x, &f, &a, config.phase1_alpha, config.lambda_gp);
                nets.adam_d.zero_grad();
                loss.backward();
                nets.adam_d.step();
                terms = Some((loss, t));
            }
            let f = nets.g.forward_t(&z(&mut rng, bs), true);
            let lg = losses::generator_loss(&nets.d.forward(&f));
            nets.adam_g.zero_grad();
            lg.backward();
            nets.adam_g.step();
            if pool.due(i) {
                let samples = tch::no_grad(|| {
                    nets.g
                        .forward_t(&z(&mut rng, config.pool_draw as i64), true)
                });
                pool.add(i, samples);
            }
            report.iteration = i + 1;
            if log {
                if let Some((loss, t)) = &terms {
                    report.critic_loss = mean_f64(loss) / nets.d.members() as f64;
                    report.wasserstein = -mean_f64(&t[0]);
                }
                report.generator_loss = mean_f64(&lg);
                if !report.critic_loss.is_finite() {
                    return Err(Error::Torch(format!(
                        "training diverged at phase-1 iteration {i} (critic loss {})",
                        report.critic_loss
                    )));
                }
            }
            if !progress(&report) {
                budget.phase1_seconds = base + t0.elapsed().as_secs_f64();
                return Err(Error::Cancelled);
            }
        }
        budget.phase1_seconds = base + t0.elapsed().as_secs_f64();
        start = 0;
        // Phase 2's critic: carried over (adGAN(c)) or fresh (adGAN).
        if config.critic_init == CriticInit::Reset {
            (nets.vs_d, nets.d) = reset_critic(channels, config, device);
        }
        nets.adam_d = Adam::new(nets.vs_d.trainable_variables(), config.adam);
        if config.ema_decay > 0.0 {
            chooser.ema = Some(Ema::new(config.ema_decay, &nets.vs_d));
        }
        if config.phase2_iterations > 0 {
            ckpt(2, 0, &nets, &pool, &chooser, &budget)?;
        }
    }
    budget.phase1_iterations = config.phase1_iterations;
    budget.pool_size = pool.len();
    budget.pool_draws = pool.iterations.len();

    // Phase 2: the critic against the fake pool, with the concentration loss.
    if config.phase2_iterations > 0 {
        // Each fake batch: `n_pool_batch` generator samples from the fake
        // pool (all of it in the paper) and the rest synthetic counterfeits
        // of real normal patches.
        let n_syn = (bs as f64 * config.synthetic_fraction).round() as i64;
        let n_pool_batch = bs - n_syn;
        let fake = if n_pool_batch > 0 {
            Some(
                pool.tensor()
                    .ok_or_else(|| Error::invalid("the fake pool is empty"))?
                    .to_device(device),
            )
        } else {
            None
        };
        let n_pool = fake.as_ref().map_or(0, |f| f.size()[0]);
        let validator = if config.validate_every > 0 {
            let v = cal_idx.narrow(0, 0, n_cal.min(VALIDATION_PATCHES) as i64);
            Some(Validator::new(
                &data.patches.index_select(0, &v),
                config,
                device,
            ))
        } else {
            None
        };
        if let Some(v) = &validator {
            chooser.report.validation_kinds = config.validation_kinds.clone();
            chooser.report.validation_patches = v.len();
            chooser.report.ema = config.ema_decay > 0.0;
        }
        let t0 = Instant::now();
        let base = budget.phase2_seconds;
        let mut report = Progress::new(Stage::Critic, start, config.phase2_iterations);
        for j in start..config.phase2_iterations {
            if boundary(j) || j == start {
                rng = Rng::stream(config.seed, 2, j);
                if boundary(j) && j > start {
                    budget.phase2_seconds = base + t0.elapsed().as_secs_f64();
                    ckpt(2, j, &nets, &pool, &chooser, &budget)?;
                }
            }
            let x = sample_real(&mut rng, bs);
            let f = match &fake {
                Some(fake) if n_syn == 0 => fake.index_select(0, &rng.indices(n_pool, bs, device)),
                _ => {
                    let mut parts = Vec::with_capacity(2);
                    if let Some(fake) = &fake {
                        parts
                            .push(fake.index_select(0, &rng.indices(n_pool, n_pool_batch, device)));
                    }
                    let base = sample_real(&mut rng, n_syn);
                    parts.push(counterfeit::make(&base, &config.counterfeits, &mut rng));
                    Tensor::cat(&parts, 0)
                }
            };
            let a = mix(&mut rng, bs);
            let (loss, t) = critic_loss(&nets.d, &x, &f, &a, config.alpha, config.lambda_gp);
            nets.adam_d.zero_grad();
            loss.backward();
            nets.adam_d.step();
            if let Some(ema) = &mut chooser.ema {
                ema.update(&nets.vs_d);
            }
            if let Some(v) = &validator {
                let done = j + 1;
                if done % config.validate_every == 0 || done == config.phase2_iterations {
                    // The moving average when there is one, else the weights as they are.
                    let current;
                    let weights = match &chooser.ema {
                        Some(ema) => &ema.weights,
                        None => {
                            current = snapshot(&nets.vs_d);
                            &current
                        }
                    };
                    let auroc = v.auroc(weights)?;
                    if chooser.report.record(done, auroc) {
                        chooser.best = Some(selection::copy(weights));
                    }
                    report.validation_auroc = Some(auroc);
                }
            }
            report.iteration = j + 1;
            if config.log_every > 0
                && (j % config.log_every == 0 || j + 1 == config.phase2_iterations)
            {
                report.critic_loss = mean_f64(&loss) / nets.d.members() as f64;
                report.wasserstein = -mean_f64(&t[0]);
                if !report.critic_loss.is_finite() {
                    return Err(Error::Torch(format!(
                        "training diverged at phase-2 iteration {j} (critic loss {})",
                        report.critic_loss
                    )));
                }
            }
            if !progress(&report) {
                return Err(Error::Cancelled);
            }
        }
        budget.phase2_seconds = base + t0.elapsed().as_secs_f64();
        // The model: the best validated snapshot, else the moving average,
        // else the last weights.
        if let Some(best) = &chooser.best {
            selection::restore(&nets.vs_d, best);
        } else if let Some(ema) = &chooser.ema {
            selection::restore(&nets.vs_d, &ema.weights);
        }
    }
    budget.phase2_iterations = config.phase2_iterations;

    // Calibrate on the held-out normal patches; the map calibration paints
    // them gated as scoring will.
    let _ = progress(&Progress::new(Stage::Calibrate, 0, 1));
    let meta = ModelMeta {
        format: FORMAT.to_string(),
        format_version: format_version_for(config),
        library_version: crate::VERSION.to_string(),
        channels,
        channel_names: data.channel_names.clone(),
        patch_size: PATCH as usize,
        slice_axis: config.sampling.slice_axis,
        normalisation: config.normalisation.file_name().to_string(),
        generator_scale,
        calibration: Calibration::uncalibrated(),
        training: TrainConfig {
            augment,
            ..config.clone()
        },
        budget,
        selection: (config.validate_every > 0 && config.phase2_iterations > 0)
            .then(|| chooser.report.clone()),
        intensity_gate,
    };
    let Nets { vs_d, d, .. } = nets;
    if d.members() > 1 {
        standardise_members(&d, &cal_patches, vs_d.device())?;
    }
    let mut model = Model::from_parts(meta, vs_d, d);
    let raw = model.raw_scores(&cal_patches, 1024)?;
    let raw = crate::io::tensor_file::to_f32_vec(&raw)?;
    let raw: Vec<f64> = raw.into_iter().map(f64::from).collect();
    model.meta.calibration = Calibration::from_raw(&raw)?;
    if let (Some(layout), Some(groups)) = (&data.layout, &data.groups) {
        let pick = |v: &[u32]| held.iter().map(|&i| v[i as usize]).collect::<Vec<u32>>();
        let origins: Vec<(u32, u32, u32)> =
            held.iter().map(|&i| layout.origins[i as usize]).collect();
        if layout.origins.len() == n_all && groups.len() == n_all {
            model.meta.calibration.map = model.calibrate_map(
                &cal_patches,
                &pick(groups),
                &origins,
                &layout.backgrounds,
                crate::score::painting_for(model.meta.intensity_gate.is_some()),
                config.sampling.stride,
                1024,
            )?;
        }
    }
    let _ = progress(&Progress::new(Stage::Calibrate, 1, 1));
    if let Some(path) = &checkpointing.path {
        if !checkpointing.keep {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(model)
}

/// The gate `choice` asks for, from the normal voxels `data` holds: `None`
/// when off, and for 2-D images (whose brightness says nothing of
/// abnormality) or a channel without spread.
fn intensity_gate_of(
    choice: GateChoice,
    data: &TrainingData,
    channels: usize,
) -> Result<Option<IntensityGate>> {
    let GateChoice::Bright(channel) = choice else {
        return Ok(None);
    };
    if channel >= channels {
        return Err(Error::invalid(format!(
            "intensity gate on channel {channel}: the model has {channels} channel(s) (0 to {})",
            channels - 1
        )));
    }
    Ok(data
        .layout
        .as_ref()
        .and_then(|l| l.intensity.get(channel).copied().flatten())
        .map(|reference| IntensityGate { channel, reference }))
}
