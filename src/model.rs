//! The model bundle: the trained critic, its calibration and everything a
//! scorer needs to read a volume the way the model was trained, in one
//! safetensors file with JSON metadata (see `tensor_file`).

use crate::config::PatchSampling;
use crate::config::{check_critic_shape, Normalisation, TrainConfig};
use crate::error::{Error, Result};
use crate::metrics::quantile;
use crate::nets::{Critic, PATCH};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

/// Identifies our files among other safetensors files.
pub const FORMAT: &str = "adgan-model";
/// Version of the bundle layout; a reader refuses newer versions. 2: the
/// critic may be an ensemble or of another width than the paper's
/// (`critic_members`, `critic_width`); files of the paper's critic are
/// still written as 1, so that older libraries read them.
pub const FORMAT_VERSION: u32 = 2;

/// The format version a model trained with `config` is written as: the
/// oldest that holds its critic.
pub fn format_version_for(config: &TrainConfig) -> u32 {
    if config.critic_members > 1 || config.critic_width != crate::config::PAPER_WIDTH {
        2
    } else {
        1
    }
}

/// How raw critic outputs become anomaly scores.
///
/// Held-out normal training patches (never trained on) give the critic's
/// mean `mean` and standard deviation `std`. A patch's anomaly score is
/// `(mean - raw) / std`: how many standard deviations of normal variation
/// the critic rates it below a typical normal patch. ~0 is normal; 3 and
/// above is rarer than about 1 in 700 normal patches if normal scores were
/// Gaussian (the measured quantiles are stored too).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub mean: f64,
    pub std: f64,
    /// Number of held-out patches used.
    pub samples: usize,
    /// Measured quantiles of the held-out scores: `(q, score)`.
    pub quantiles: Vec<(f64, f64)>,
    /// Suggested threshold for "anomalous" (the 99th percentile of held-out
    /// normal scores, at least 2) for window scores and maps painted with
    /// the window means; maps of `map.painting` have their own.
    pub threshold: f64,
    /// The voxel values of maps of the held-out normal slices (models
    /// trained on volumes; older files have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<MapCalibration>,
}

/// What maps of normal tissue look like: the held-out normal slices of the
/// training volumes painted as scoring paints a volume, at the training
/// stride. A painting that concentrates a window's score on a few pixels
/// (attribution) gives normal tissue a longer tail than the window scores
/// have, so its maps need a threshold of their own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MapCalibration {
    /// The painting (`attribution:5`, as `--painting` takes it).
    pub painting: String,
    /// Whether the maps were gated by the model's intensity gate.
    #[serde(default)]
    pub gated: bool,
    /// Window stride of the painting.
    pub stride: usize,
    /// Brain voxels of the held-out slices that windows covered.
    pub voxels: usize,
    /// Measured quantiles of their values: `(q, value)`.
    pub quantiles: Vec<(f64, f64)>,
    /// Suggested threshold: the [`map_threshold_quantile`] of the
    /// model's training, at least the window threshold.
    pub threshold: f64,
}

/// Quantile of held-out normal voxels that sets the map threshold of a
/// model trained with `augment`.
///
/// - Critics trained on patches as they are score normal tissue of a
///   volume training never saw higher than held-out slices of the
///   training volumes (the brain MR benchmark's test volumes,
///   docs/BENCHMARKS.md: 4% to 8% of their normal voxels above the held-out
///   99.5th percentile, 0.5% to 3.6% above the 99.9th), so their threshold
///   sits far in the held-out tail: the 99.9th percentile.
/// - Critics trained with dihedral augmentation carry the held-out
///   quantiles over to new subjects (0.53% to 0.67% of TCGA-FG-6692's
///   normal voxels above the held-out 99.5th percentile, three seeds), and
///   the 99.9th percentile rests on the few hundred most anomalous voxels of
///   the held-out slices: unlabelled abnormal tissue among them (oedema
///   beyond a model-made label's edge, a periventricular cap) moved it from
///   4.6 to 10.3 between seeds. The 99.5th percentile tolerates five times
///   as much of it, and is what they use.
pub fn map_threshold_quantile(augment: crate::config::Augment) -> f64 {
    match augment {
        crate::config::Augment::None => 0.999,
        crate::config::Augment::Dihedral => 0.995,
    }
}

impl Calibration {
    /// The identity (score = -raw) with the default threshold: what a critic
    /// has before its held-out patches calibrate it.
    pub fn uncalibrated() -> Calibration {
        Calibration {
            mean: 0.0,
            std: 1.0,
            samples: 0,
            quantiles: vec![],
            threshold: 3.0,
            map: None,
        }
    }

    /// Calibration from the raw critic outputs of held-out normal patches.
    pub fn from_raw(raw: &[f64]) -> Result<Calibration> {
        if raw.len() < 2 {
            return Err(Error::invalid(
                "calibration needs at least 2 held-out normal patches",
            ));
        }
        let n = raw.len() as f64;
        let mean = raw.iter().sum::<f64>() / n;
        let var = raw.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt().max(1e-12);
        let mut z: Vec<f64> = raw.iter().map(|r| (mean - r) / std).collect();
        z.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| quantile(&z, p);
        let quantiles: Vec<(f64, f64)> = [0.5, 0.9, 0.95, 0.99, 0.999]
            .iter()
            .map(|&p| (p, q(p)))
            .collect();
        Ok(Calibration {
            mean,
            std,
            samples: raw.len(),
            threshold: q(0.99).max(2.0),
            quantiles,
            map: None,
        })
    }

    /// The threshold for maps painted with `painting` (its name, as
    /// `--painting` takes it), `gated` or not: the map calibration's when
    /// it was made so, else the window threshold.
    pub fn threshold_for(&self, painting: &str, gated: bool) -> f64 {
        match &self.map {
            Some(m) if m.painting == painting && m.gated == gated => m.threshold,
            _ => self.threshold,
        }
    }

    /// Anomaly score of a raw critic output.
    pub fn score(&self, raw: f64) -> f64 {
        (self.mean - raw) / self.std
    }
}

/// What was actually run to make the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Budget {
    pub phase1_iterations: u64,
    pub phase2_iterations: u64,
    pub phase1_seconds: f64,
    pub phase2_seconds: f64,
    pub device: String,
    pub train_patches: usize,
    pub calibration_patches: usize,
    pub pool_size: usize,
    pub pool_draws: usize,
    /// Iterations resumed from a checkpoint rather than run in this process.
    pub resumed_at: Option<String>,
}

/// The JSON metadata of a model file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format: String,
    pub format_version: u32,
    pub library_version: String,
    pub channels: usize,
    pub channel_names: Vec<String>,
    pub patch_size: usize,
    pub slice_axis: usize,
    pub normalisation: String,
    /// Output range of the generator the critic was trained against.
    pub generator_scale: f64,
    pub calibration: Calibration,
    pub training: TrainConfig,
    pub budget: Budget,
    /// Phase 2's validation curve and the snapshot chosen (training with
    /// validation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::selection::SelectionReport>,
    /// The gate scoring applies to maps ([`crate::gate`]); `None`: maps as
    /// the critic paints them (and every file from before the gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity_gate: Option<crate::gate::IntensityGate>,
}

impl ModelMeta {
    /// Patch sampling the model was trained with.
    pub fn sampling(&self) -> PatchSampling {
        self.training.sampling
    }
}

struct CriticState {
    // Kept alive: owns the variables `net` uses.
    _vs: nn::VarStore,
    net: Critic,
}

/// A trained adGAN critic with its metadata. Scoring takes `&self` and may
/// run from several threads at once (the network is behind a lock).
pub struct Model {
    pub meta: ModelMeta,
    critic: Mutex<CriticState>,
    device: Device,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("meta", &self.meta)
            .field("device", &self.device)
            .finish()
    }
}

fn critic_var_store(
    device: Device,
    channels: usize,
    config: &TrainConfig,
) -> (nn::VarStore, Critic) {
    let vs = nn::VarStore::new(device);
    let net = Critic::of(&vs.root(), channels as i64, config);
    (vs, net)
}

/// Move every variable of `vs` to `device` in place (the modules share
/// them), as `VarStore::set_device` does but with libtorch's failures
/// returned.
fn move_variables(vs: &nn::VarStore, device: Device) -> Result<()> {
    if device == Device::Cpu {
        return Ok(());
    }
    let _guard = tch::no_grad_guard();
    for (_, mut var) in vs.variables() {
        let moved = var.f_to_device(device)?;
        var.f_set_data(&moved)?;
    }
    Ok(())
}

impl Model {
    /// Wrap a trained critic (used by training).
    pub(crate) fn from_parts(meta: ModelMeta, vs: nn::VarStore, net: Critic) -> Model {
        let device = vs.device();
        Model {
            meta,
            critic: Mutex::new(CriticState { _vs: vs, net }),
            device,
        }
    }

    /// The device the critic runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Number of input channels (modalities) the model needs.
    pub fn channels(&self) -> usize {
        self.meta.channels
    }

    /// Check that a case has the model's channel count.
    pub fn check_channels(&self, got: usize, what: &str) -> Result<()> {
        if got != self.meta.channels {
            return Err(Error::invalid(format!(
                "{what}: the model needs {} channel(s) ({}), got {got}",
                self.meta.channels,
                self.meta.channel_names.join(", ")
            )));
        }
        Ok(())
    }

    /// Save to one file, atomically (a crash never leaves half a model).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(&self.meta)
            .map_err(|e| Error::invalid(format!("cannot encode metadata: {e}")))?;
        let state = self.lock();
        let tensors = crate::io::tensor_file::named(&state._vs, "critic.");
        crate::io::tensor_file::write(path, &tensors, &json)
    }

    /// Load a model file onto `device`, checking everything; a message says
    /// what is wrong with a file that is not a usable model.
    pub fn load(path: &Path, device: Device) -> Result<Model> {
        let file = crate::io::tensor_file::read(path, "adGAN model")?;
        let meta: ModelMeta = serde_json::from_str(&file.json)
            .map_err(|e| Error::format(path, format!("model metadata is not valid: {e}")))?;
        let bad = |m: String| Err(Error::format(path, m));
        if meta.format != FORMAT {
            return bad(format!("format '{}', expected '{FORMAT}'", meta.format));
        }
        if meta.format_version > FORMAT_VERSION {
            return bad(format!(
                "written by a newer adGAN (model format {}, library {}); this library ({}) reads format {FORMAT_VERSION} and older",
                meta.format_version,
                meta.library_version,
                crate::VERSION
            ));
        }
        if meta.channels == 0 || meta.channels != meta.channel_names.len() {
            return bad(format!(
                "{} channel(s) but {} channel name(s)",
                meta.channels,
                meta.channel_names.len()
            ));
        }
        if meta.patch_size != PATCH as usize {
            return bad(format!(
                "patch size {}, this library scores {PATCH}x{PATCH} patches",
                meta.patch_size
            ));
        }
        if meta.slice_axis > 2 {
            return bad(format!("slice axis {}", meta.slice_axis));
        }
        if let Err(e) = Normalisation::parse(&meta.normalisation) {
            return bad(e.to_string());
        }
        let c = &meta.calibration;
        if !(c.mean.is_finite() && c.std.is_finite() && c.std > 0.0) {
            return bad(format!(
                "calibration mean {} std {} is unusable",
                c.mean, c.std
            ));
        }
        let t = &meta.training;
        if let Err(e) = check_critic_shape(t.critic_members, t.critic_width) {
            return bad(e.to_string());
        }
        // Built and filled on the CPU, then moved with fallible calls: a
        // device libtorch cannot use is an error, not a panic.
        let (vs, net) = critic_var_store(Device::Cpu, meta.channels, &meta.training);
        crate::io::tensor_file::load_into(path, &vs, "critic.", &file.tensors)?;
        move_variables(&vs, device)?;
        let mut model = Model::from_parts(meta, vs, net);
        model.device = device;
        Ok(model)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CriticState> {
        // A panic while scoring cannot leave the weights half-written
        // (scoring only reads them), so a poisoned lock is safe to reuse.
        self.critic.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the patches `[N, C, 32, 32]` (any device) in batches of
    /// `batch`, each moved to the model's device as floats, with the critic
    /// locked for the whole walk.
    fn for_batches(
        &self,
        patches: &Tensor,
        batch: usize,
        mut f: impl FnMut(&Critic, Tensor) -> Result<()>,
    ) -> Result<()> {
        let n = patches.size()[0];
        let c = patches.size().get(1).copied().unwrap_or(0) as usize;
        self.check_channels(c, "patches")?;
        let batch = batch.max(1) as i64;
        let state = self.lock();
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let x = patches
                .f_narrow(0, start, len)?
                .f_to_device(self.device)?
                .f_to_kind(Kind::Float)?;
            f(&state.net, x)?;
            start += len;
        }
        Ok(())
    }

    /// Raw critic outputs for patches `[N, C, 32, 32]` (any device), in
    /// batches of `batch`; returned on the CPU as `[N]`.
    pub fn raw_scores(&self, patches: &Tensor, batch: usize) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::new();
        self.for_batches(patches, batch, |net, x| {
            out.push(net.f_forward(&x)?.f_to_device(Device::Cpu)?);
            Ok(())
        })?;
        if out.is_empty() {
            return Ok(Tensor::zeros([0], (Kind::Float, Device::Cpu)));
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }

    /// Raw critic outputs `[N]` and per-pixel attributions `[N, K, 32, 32]`
    /// of the anomaly to the input, one for each of the critic's `K`
    /// members (1 for the paper's critic): `relu(-dD_k/dx * x)` summed over
    /// channels (gradient times input, the baseline being the brain's mean
    /// intensity, 0 after normalisation), both on the CPU. Each member of
    /// an ensemble is fed its own copy of the window, so its attribution is
    /// its own gradient's, not the averaged critic's: measured, the
    /// averaged critic's gradient localises worse than either member's
    /// (docs/BENCHMARKS.md, "Other attributions").
    pub fn raw_scores_and_attributions(
        &self,
        patches: &Tensor,
        batch: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (mut raw, mut attr) = (Vec::new(), Vec::new());
        self.for_batches(patches, batch, |net, x| {
            // Each member gets its own copy of the window (the paper's one
            // critic: the window itself, through its own forward pass).
            let k = net.members();
            let (b, c) = (x.size()[0], x.size()[1]);
            let copies = if k > 1 {
                x.f_repeat([1, k, 1, 1])?
            } else {
                x.f_detach()?
            }
            .f_set_requires_grad(true)?;
            let (d, out) = if k > 1 {
                let each = net.f_forward_members(&copies)?;
                (each.f_mean_dim(1, false, None)?, each)
            } else {
                let d = net.f_forward(&copies)?;
                (d.shallow_clone(), d)
            };
            let g = Tensor::f_run_backward(&[out.f_sum(Kind::Float)?], &[&copies], false, false)?;
            let a = g[0]
                .f_view([b, k, c, PATCH, PATCH])?
                .f_mul(&x.f_unsqueeze(1)?)?
                .f_neg()?
                .f_relu()?
                .f_sum_dim_intlist(2, false, Kind::Float)?;
            raw.push(d.detach().f_to_device(Device::Cpu)?);
            attr.push(a.detach().f_to_device(Device::Cpu)?);
            Ok(())
        })?;
        if raw.is_empty() {
            return Ok((
                Tensor::zeros([0], (Kind::Float, Device::Cpu)),
                Tensor::zeros([0, 1, PATCH, PATCH], (Kind::Float, Device::Cpu)),
            ));
        }
        Ok((Tensor::f_cat(&raw, 0)?, Tensor::f_cat(&attr, 0)?))
    }

    /// The intensity normalisation this model's volumes and images get
    /// (checked when the model was loaded).
    pub fn normalisation(&self) -> Normalisation {
        Normalisation::parse(&self.meta.normalisation).unwrap_or_default()
    }

    /// Calibrated anomaly scores for patches, as `f64`.
    pub fn scores(&self, patches: &Tensor, batch: usize) -> Result<Vec<f64>> {
        let raw = self.raw_scores(patches, batch)?;
        let raw = crate::io::tensor_file::to_f32_vec(&raw)?;
        Ok(raw
            .iter()
            .map(|&r| self.meta.calibration.score(r as f64))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An untrained critic of `members` members of width 8 on one channel
    /// with the weights of `like` (when given), member `silenced`'s output
    /// weights set to 0 (its output constant).
    fn critic(members: usize, like: Option<&Model>, silenced: Option<i64>) -> Model {
        let training = TrainConfig {
            critic_members: members,
            critic_width: 8,
            ..TrainConfig::default()
        };
        let (mut vs, net) = critic_var_store(Device::Cpu, 1, &training);
        if let Some(like) = like {
            vs.copy(&like.lock()._vs).unwrap();
        }
        if let Some(j) = silenced {
            let _guard = tch::no_grad_guard();
            let _ = vs.variables()["fc.weight"].get(j).fill_(0.0);
        }
        let meta = ModelMeta {
            format: FORMAT.to_string(),
            format_version: format_version_for(&training),
            library_version: crate::VERSION.to_string(),
            channels: 1,
            channel_names: vec!["flair".into()],
            patch_size: PATCH as usize,
            slice_axis: 2,
            normalisation: training.normalisation.file_name().to_string(),
            generator_scale: 1.0,
            calibration: Calibration::uncalibrated(),
            training,
            budget: Budget::default(),
            selection: None,
            intensity_gate: None,
        };
        Model::from_parts(meta, vs, net)
    }

    #[test]
    fn each_member_of_an_ensemble_is_attributed_by_its_own_gradient() {
        let x = Tensor::linspace(-3.0, 3.0, 6 * 32 * 32, (Kind::Float, Device::Cpu))
            .view([6, 1, PATCH, PATCH])
            .sin();
        let ensemble = critic(2, None, None);
        let (raw, attr) = ensemble.raw_scores_and_attributions(&x, 4).unwrap();
        assert_eq!(attr.size(), vec![6, 2, PATCH, PATCH]);
        // The window score is the ensemble's, the mean of its members'.
        let whole = ensemble.raw_scores(&x, 4).unwrap();
        assert!((&raw - whole).abs().max().double_value(&[]) < 1e-5);
        // Both members point somewhere.
        for j in 0..2 {
            assert!(attr.select(1, j).sum(Kind::Float).double_value(&[]) > 0.0);
        }
        // Silencing member 1 takes its attribution away and leaves member
        // 0's as it was: neither is the averaged critic's gradient, which
        // would change with any member.
        let (_, quiet) = critic(2, Some(&ensemble), Some(1))
            .raw_scores_and_attributions(&x, 4)
            .unwrap();
        assert!(quiet.select(1, 0).equal(&attr.select(1, 0)));
        assert_eq!(
            quiet.select(1, 1).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        // The paper's single critic: one attribution a window.
        let (_, one) = critic(1, None, None)
            .raw_scores_and_attributions(&x, 4)
            .unwrap();
        assert_eq!(one.size(), vec![6, 1, PATCH, PATCH]);
    }
}
