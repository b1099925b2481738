//! Every option of training, with its presets and checks, and the option
//! types it is made of: patch sampling, Adam, the kinds of counterfeit
//! anomaly. Serde only (no tch, no argument parser): the model file keeps a
//! `TrainConfig`, training reads one, the command line and the C API build
//! one, and none of them is needed to name an option.

use crate::error::{Error, Result};
use crate::gate::GateChoice;
use serde::{Deserialize, Serialize};

/// Side of the square patches the networks take and make.
pub const PATCH: i64 = 32;

/// Maps in the first layer of the paper's critic (Fig. 1).
pub const PAPER_WIDTH: usize = 64;

/// The most critics a model may average.
pub const MAX_CRITIC_MEMBERS: usize = 16;

/// The maps a critic's first layer may have.
pub const CRITIC_WIDTHS: std::ops::RangeInclusive<usize> = 4..=256;

/// Whether a critic of `members` critics of `width` first-layer maps can be
/// built; the message names the bad number. Training options, model files
/// and the C API all check with this.
pub fn check_critic_shape(members: usize, width: usize) -> Result<()> {
    if !(1..=MAX_CRITIC_MEMBERS).contains(&members) {
        return Err(Error::invalid(format!(
            "critic_members = {members} (expected 1 to {MAX_CRITIC_MEMBERS})"
        )));
    }
    if !CRITIC_WIDTHS.contains(&width) {
        return Err(Error::invalid(format!(
            "critic_width = {width} (expected {} to {} maps)",
            CRITIC_WIDTHS.start(),
            CRITIC_WIDTHS.end()
        )));
    }
    Ok(())
}

/// Phase 2's starting point for the critic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CriticInit {
    /// adGAN(c): continue from the phase-1 critic (the paper's choice on real data).
    FineTune,
    /// adGAN: re-initialise the critic at random.
    Reset,
}

/// How a volume's intensities are put on a common scale, per channel,
/// from its brain voxels (each volume by its own statistics, at training
/// and at scoring alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Normalisation {
    /// Zero mean, unit variance over the brain (the paper's BraTS
    /// protocol). A large bright lesion raises the mean and the standard
    /// deviation, so the same healthy tissue lands at a different place
    /// in a volume with a large lesion than in one without.
    #[default]
    #[serde(rename = "zscore-in-brain")]
    ZScore,
    /// Zero mean, unit variance over the brain voxels that are not bright
    /// outliers: starting from the median and the MAD, voxels above
    /// mean + 3 SD are left out and the statistics recomputed until nothing
    /// changes (sigma clipping of the upper tail). Healthy tissue gets the
    /// same scale whatever the lesion load: on the brain MR cases of
    /// ../shared (lesions 2% to 14% of the brain) its standard deviation is
    /// 0.97 to 1.00 here against 0.52 to 0.97 with `ZScore`, and a bright
    /// slab of 15% of the brain moves the healthy tissue's mean by 0.06 SD
    /// and its scale by 1% (tests/detector.rs). The dark tail (CSF,
    /// hypointense lesions) is kept: it is part of normal tissue on FLAIR and
    /// T1 alike. Measured over three seeds on the brain MR benchmark it is
    /// better on two and much worse on one than `ZScore`, so no preset uses
    /// it (docs/BENCHMARKS.md).
    #[serde(rename = "zscore-in-brain-clipped")]
    ClippedZScore,
}

impl Normalisation {
    /// Every normalisation, by its short name.
    pub const ALL: [(Normalisation, &'static str); 2] = [
        (Normalisation::ZScore, "zscore"),
        (Normalisation::ClippedZScore, "clipped"),
    ];

    /// The name model files record (`zscore-in-brain`, ...).
    pub fn file_name(self) -> &'static str {
        match self {
            Normalisation::ZScore => "zscore-in-brain",
            Normalisation::ClippedZScore => "zscore-in-brain-clipped",
        }
    }

    /// The short name (`zscore`, `clipped`) options take.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == self)
            .map(|(_, s)| *s)
            .unwrap_or("zscore")
    }

    /// From a short name or a model file's name.
    pub fn parse(s: &str) -> Result<Normalisation> {
        let s = s.trim();
        Self::ALL
            .iter()
            .find(|(n, short)| s.eq_ignore_ascii_case(short) || s == n.file_name())
            .map(|(n, _)| *n)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown normalisation '{s}' (expected zscore or clipped)"
                ))
            })
    }
}

/// How normal training patches are varied before the critic (and the
/// counterfeiters) see them. The critic learns what normal tissue looks
/// like from a handful of subjects; what it has not seen of normal anatomy
/// (a new subject's skull base, cerebellum, temporal poles) it marks as
/// abnormal. Rotating and mirroring patches shows it each structure in
/// every orientation, so orientation stops being evidence. Intensities are
/// never changed: they are what anomalies are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// The patches as they are (the paper; files from before this option).
    #[default]
    None,
    /// Each patch in one of its eight orientations (the dihedral group of
    /// the square: transposed or not, mirrored up-down or not, mirrored
    /// left-right or not), drawn uniformly per patch.
    Dihedral,
}

impl Augment {
    /// Every augmentation, by name.
    pub const ALL: [(Augment, &'static str); 2] =
        [(Augment::None, "none"), (Augment::Dihedral, "dihedral")];

    /// The name options take and model files record.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, s)| *s)
            .unwrap_or("none")
    }

    /// From a name (`none`, `dihedral`).
    pub fn parse(s: &str) -> Result<Augment> {
        let s = s.trim();
        Self::ALL
            .iter()
            .find(|(_, name)| s.eq_ignore_ascii_case(name))
            .map(|(a, _)| *a)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown augmentation '{s}' (expected none or dihedral)"
                ))
            })
    }
}

/// Named sets of options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The paper's budget: N = 200,000, M = 150,000, batch 64 (a GPU job).
    Paper,
    /// The detector for a CPU, in minutes: N = 0, M = 600, batch 32; phase
    /// 2 trains a fresh critic against synthetic counterfeits (blend and
    /// intensity) instead of a fake pool, keeps a moving average of its
    /// weights (decay 0.995) and validates it every 50 iterations on
    /// held-out slices against counterfeits of a seed of their own; its
    /// normal patches are turned and mirrored at random (dihedral
    /// augmentation) and its maps gated by intensity (see
    /// docs/BENCHMARKS.md for what each part measured).
    Quick,
    /// The paper's method at the quick budget: N = 200, M = 300, batch 32,
    /// a pool draw every 10 iterations (the "adGAN (paper)" row of the
    /// CPU benchmarks).
    PaperQuick,
}

/// Every option of training. The defaults are the paper's (Sec. IV).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// N: phase-1 (WGAN-GP) iterations, each `n_critic` critic updates and
    /// one generator update.
    pub phase1_iterations: u64,
    /// M: phase-2 critic iterations with the concentration loss.
    pub phase2_iterations: u64,
    /// m: patches per batch.
    pub batch_size: usize,
    /// Critic updates per generator update in phase 1.
    pub n_critic: usize,
    /// lambda: weight of the gradient penalty.
    pub lambda_gp: f64,
    /// alpha: weight of the concentration term in phase 2.
    pub alpha: f64,
    /// Weight of the concentration term inside phase 1's critic loss: 0 in
    /// Algorithm 1. With `phase2_iterations` 0 and this set to alpha the
    /// model is the paper's stdWGAN ablation (Table 5: Eq. 2 in a plain
    /// WGAN-GP, no fake pool).
    #[serde(default)]
    pub phase1_alpha: f64,
    /// k: collect generator samples into the fake pool every k iterations.
    pub pool_every: u64,
    /// n: samples collected each time.
    pub pool_draw: usize,
    /// Phase 2 starts from the phase-1 critic (fine-tune) or afresh (reset).
    pub critic_init: CriticInit,
    /// Adam's learning rate and moments.
    pub adam: AdamConfig,
    /// Where training patches come from.
    pub sampling: PatchSampling,
    /// Fraction of the normal patches held out to calibrate scores.
    pub calibration_fraction: f64,
    /// Use at most this many training patches (a random subset); 0 = all.
    pub max_patches: usize,
    /// Seed of every random choice; runs with the same seed, data and
    /// options give the same model on the CPU.
    pub seed: u64,
    /// Write a checkpoint every this many iterations (0: only when phase 2 starts).
    pub checkpoint_every: u64,
    /// Measure losses (a device sync) every this many iterations.
    pub log_every: u64,
    /// Synthetic counterfeit kinds mixed into phase 2's fake batches
    /// (empty: the paper's generator pool only). See `counterfeit`.
    #[serde(default)]
    pub counterfeits: Vec<Counterfeit>,
    /// Share of each phase-2 fake batch that is synthetic: 0 is the paper
    /// (fake pool only), 1 is synthetic only (no fake pool needed, so
    /// phase 1 may be skipped with `phase1_iterations` 0).
    #[serde(default)]
    pub synthetic_fraction: f64,
    /// Decay of an exponential moving average of the phase-2 critic's
    /// weights (0: off). The average is what is validated and kept.
    #[serde(default)]
    pub ema_decay: f64,
    /// Validate the critic every this many phase-2 iterations on held-out
    /// normal patches against synthetic anomalies of `validation_kinds`,
    /// and keep the best snapshot (0: off, the last critic is the model).
    #[serde(default)]
    pub validate_every: u64,
    /// Kinds of the validation anomalies, made from the held-out normal
    /// slices with a seed of their own. Measured: a critic scores kinds it
    /// never trained on at about 0.5 throughout (no signal to select on),
    /// so the quick preset validates on its training kinds: what changes
    /// is the normal tissue (slices never trained on), which is what
    /// over-fitting shows in.
    #[serde(default)]
    pub validation_kinds: Vec<Counterfeit>,
    /// Intensity normalisation of every volume (training and scoring);
    /// files from before this option are `ZScore`.
    #[serde(default)]
    pub normalisation: Normalisation,
    /// The intensity gate of the maps ([`crate::gate`]): off, or bright on
    /// a channel; files from before this option are off.
    #[serde(default)]
    pub intensity_gate: GateChoice,
    /// How normal training patches are varied ([`Augment`]); files from
    /// before this option are `None`.
    #[serde(default)]
    pub augment: Augment,
    /// Critics trained side by side from their own initial weights and
    /// averaged into the model (1: the paper's one critic); see
    /// [`crate::nets`]. Files from before this option have one. Measured
    /// (docs/BENCHMARKS.md, "Each member's own attribution, landed"): two
    /// of width 64 move the demo's map less from seed to seed at about
    /// twice the training and scoring and a little lower on average, so no
    /// preset uses more.
    #[serde(default = "one_member")]
    pub critic_members: usize,
    /// Maps in the first layer of each critic (64: the paper's; the later
    /// layers have 2, 4 and 8 times as many). Files from before this
    /// option have 64. Width 32 trains and scores in about a third of the
    /// time; measured better on the one-subject demo and worse on brain MR,
    /// so no preset uses it.
    #[serde(default = "paper_width")]
    pub critic_width: usize,
}

fn one_member() -> usize {
    1
}

fn paper_width() -> usize {
    PAPER_WIDTH
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig::preset(Preset::Paper)
    }
}

impl TrainConfig {
    /// The options of a preset.
    pub fn preset(preset: Preset) -> TrainConfig {
        let paper = TrainConfig {
            phase1_iterations: 200_000,
            phase2_iterations: 150_000,
            batch_size: 64,
            n_critic: 5,
            lambda_gp: 10.0,
            alpha: 1.0,
            phase1_alpha: 0.0,
            pool_every: 100,
            pool_draw: 64,
            critic_init: CriticInit::FineTune,
            adam: AdamConfig::default(),
            sampling: PatchSampling::default(),
            calibration_fraction: 0.1,
            max_patches: 0,
            seed: 0,
            checkpoint_every: 5000,
            log_every: 50,
            counterfeits: Vec::new(),
            synthetic_fraction: 0.0,
            ema_decay: 0.0,
            validate_every: 0,
            validation_kinds: Vec::new(),
            normalisation: Normalisation::ZScore,
            intensity_gate: GateChoice::Off,
            augment: Augment::None,
            critic_members: 1,
            critic_width: PAPER_WIDTH,
        };
        let paper_quick = TrainConfig {
            phase1_iterations: 200,
            phase2_iterations: 300,
            batch_size: 32,
            pool_every: 10,
            pool_draw: 64,
            checkpoint_every: 100,
            log_every: 10,
            ..paper.clone()
        };
        match preset {
            Preset::Paper => paper,
            Preset::PaperQuick => paper_quick,
            Preset::Quick => TrainConfig {
                phase1_iterations: 0,
                phase2_iterations: 600,
                counterfeits: vec![Counterfeit::Blend, Counterfeit::Intensity],
                synthetic_fraction: 1.0,
                // 0.99 until 2026-12-05: 0.995 measured a little better on
                // the dev cases' maps, every demo seed and two of three on
                // brain MR (docs/BENCHMARKS.md, "A longer moving average").
                ema_decay: 0.995,
                validate_every: 50,
                validation_kinds: vec![Counterfeit::Blend, Counterfeit::Intensity],
                intensity_gate: GateChoice::Bright(0),
                augment: Augment::Dihedral,
                ..paper_quick
            },
        }
    }

    /// Check every option; the message names the bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(m.to_string()));
        if self.batch_size < 2 {
            return bad(
                "batch size must be at least 2 (the concentration term is a standard deviation)",
            );
        }
        check_critic_shape(self.critic_members, self.critic_width)?;
        if self.n_critic == 0 {
            return bad("n_critic must be at least 1");
        }
        if self.pool_every == 0 || self.pool_draw == 0 {
            return bad("pool_every and pool_draw must be at least 1");
        }
        if self.phase2_iterations > 0
            && self.phase1_iterations == 0
            && self.synthetic_fraction < 1.0
        {
            return bad(
                "phase 2 needs a fake pool: phase1_iterations must be at least 1 \
                 (or synthetic_fraction 1: synthetic counterfeits only)",
            );
        }
        if !(0.0..=1.0).contains(&self.synthetic_fraction) {
            return Err(Error::invalid(format!(
                "synthetic_fraction = {} (expected 0 to 1)",
                self.synthetic_fraction
            )));
        }
        if self.synthetic_fraction > 0.0 && self.counterfeits.is_empty() {
            return bad("synthetic_fraction > 0 needs at least one counterfeit kind");
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::invalid(format!(
                "ema_decay = {} (expected 0 to below 1; 0 is off)",
                self.ema_decay
            )));
        }
        if self.validate_every > 0 && self.validation_kinds.is_empty() {
            return bad("validate_every > 0 needs at least one validation kind");
        }
        if self.phase2_iterations == 0 && self.critic_init == CriticInit::Reset {
            return bad("a reset critic with no phase 2 would be untrained: \
                 give phase2_iterations >= 1 or critic_init fine-tune");
        }
        for (name, v) in [
            ("lambda_gp", self.lambda_gp),
            ("alpha", self.alpha),
            ("phase1_alpha", self.phase1_alpha),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(format!(
                    "{name} = {v} (must be finite and >= 0)"
                )));
            }
        }
        if !(self.adam.lr.is_finite() && self.adam.lr > 0.0) {
            return bad("learning rate must be > 0");
        }
        if !(0.0..1.0).contains(&self.adam.beta1) || !(0.0..1.0).contains(&self.adam.beta2) {
            return bad("Adam betas must be in [0, 1)");
        }
        if !(self.calibration_fraction > 0.0 && self.calibration_fraction < 1.0) {
            return bad("calibration fraction must be between 0 and 1");
        }
        self.sampling.validate()
    }
}

/// Where training patches come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatchSampling {
    /// Slices across this axis (0, 1, 2; the paper's axial slices: 2).
    pub slice_axis: usize,
    /// Step between window origins, in pixels.
    pub stride: usize,
    /// A window is kept when at least this fraction of it is brain.
    pub min_brain_fraction: f64,
}

impl Default for PatchSampling {
    fn default() -> Self {
        PatchSampling {
            slice_axis: 2,
            stride: 8,
            min_brain_fraction: 0.5,
        }
    }
}

impl PatchSampling {
    pub fn validate(&self) -> Result<()> {
        if self.slice_axis > 2 {
            return Err(Error::invalid(format!(
                "slice axis {} (expected 0, 1 or 2)",
                self.slice_axis
            )));
        }
        if self.stride == 0 || self.stride > PATCH as usize {
            return Err(Error::invalid(format!(
                "patch stride {} (expected 1 to {PATCH})",
                self.stride
            )));
        }
        if !(0.0..=1.0).contains(&self.min_brain_fraction) || self.min_brain_fraction.is_nan() {
            return Err(Error::invalid(format!(
                "brain fraction {} (expected 0 to 1)",
                self.min_brain_fraction
            )));
        }
        Ok(())
    }
}

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        // The paper's learning rate; betas as in the WGAN-GP reference code
        // and ../shared/reference/ref_adgan.py.
        AdamConfig {
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.9,
            eps: 1e-8,
        }
    }
}

/// A kind of synthetic local anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Counterfeit {
    /// Foreign-patch interpolation: a soft region of another normal patch.
    Blend,
    /// A soft region brighter or darker than it was.
    Intensity,
    /// A soft region blurred or made noisy.
    Texture,
    /// A soft region whose fine structure is smoothed away and whose level
    /// is shifted brighter or darker: what oedema or a tumour does to
    /// tissue (homogeneous, another intensity), where `Intensity` keeps
    /// the tissue's structure under the shift.
    Fill,
}

impl Counterfeit {
    pub const ALL: [Counterfeit; 4] = [
        Counterfeit::Blend,
        Counterfeit::Intensity,
        Counterfeit::Texture,
        Counterfeit::Fill,
    ];

    /// The name used on the command line, in the C API and in model files.
    pub fn name(self) -> &'static str {
        match self {
            Counterfeit::Blend => "blend",
            Counterfeit::Intensity => "intensity",
            Counterfeit::Texture => "texture",
            Counterfeit::Fill => "fill",
        }
    }

    /// Parse one name.
    pub fn parse(name: &str) -> Result<Counterfeit> {
        Counterfeit::ALL
            .into_iter()
            .find(|k| k.name() == name.trim())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown counterfeit kind '{}' (expected blend, intensity, texture or fill)",
                    name.trim()
                ))
            })
    }

    /// Parse a comma-separated list ("blend,intensity"); "none" or "" is empty.
    pub fn parse_list(list: &str) -> Result<Vec<Counterfeit>> {
        let list = list.trim();
        if list.is_empty() || list == "none" {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for name in list.split(',') {
            let k = Counterfeit::parse(name)?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(out)
    }

    /// The names of a list, comma-separated ("none" when empty).
    pub fn list_name(kinds: &[Counterfeit]) -> String {
        if kinds.is_empty() {
            return "none".into();
        }
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    }
}

/// What a variant trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantKind {
    /// Algorithm 1 (phase 2 with `phase2_iterations` 0 is the plain WGAN-GP
    /// critic).
    AdGan,
    /// The paper's stdWGAN (Table 5): a WGAN-GP whose critic loss carries
    /// the concentration term from the start (Eq. 2 with the generator's
    /// samples as fakes), no fake pool, no phase 2.
    StdWgan,
}

/// One model of an ablation: the base options with some overridden.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Variant {
    pub name: String,
    pub kind: VariantKind,
    /// N; `None`: the base's. A smaller N forks from a phase-1 snapshot
    /// (it must be a multiple of the base's `checkpoint_every`).
    pub phase1_iterations: Option<u64>,
    pub phase2_iterations: Option<u64>,
    pub alpha: Option<f64>,
    pub critic_init: Option<CriticInit>,
}

impl Variant {
    /// The variant's training options.
    pub fn config(&self, base: &TrainConfig) -> TrainConfig {
        let mut c = base.clone();
        if let Some(n) = self.phase1_iterations {
            c.phase1_iterations = n;
        }
        if let Some(m) = self.phase2_iterations {
            c.phase2_iterations = m;
        }
        if let Some(a) = self.alpha {
            c.alpha = a;
        }
        if let Some(i) = self.critic_init {
            c.critic_init = i;
        }
        if self.kind == VariantKind::StdWgan {
            c.phase2_iterations = 0;
        }
        c
    }

    /// Parse `NAME[:KEY=VALUE,...]` with keys `n`, `m`, `alpha`, `init`
    /// (`fine-tune` or `reset`) and `kind` (`adgan` or `std-wgan`).
    pub fn parse(spec: &str) -> Result<Variant> {
        let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid(format!("variant '{spec}' has no name")));
        }
        let mut v = Variant {
            name: name.to_string(),
            kind: VariantKind::AdGan,
            phase1_iterations: None,
            phase2_iterations: None,
            alpha: None,
            critic_init: None,
        };
        for kv in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, val) = kv.split_once('=').ok_or_else(|| {
                Error::invalid(format!("variant '{spec}': '{kv}' is not KEY=VALUE"))
            })?;
            let bad = || Error::invalid(format!("variant '{spec}': bad value in '{kv}'"));
            match k.trim() {
                "n" => v.phase1_iterations = Some(val.trim().parse().map_err(|_| bad())?),
                "m" => v.phase2_iterations = Some(val.trim().parse().map_err(|_| bad())?),
                "alpha" => v.alpha = Some(val.trim().parse().map_err(|_| bad())?),
                "init" => {
                    v.critic_init = Some(match val.trim() {
                        "fine-tune" | "finetune" | "c" => CriticInit::FineTune,
                        "reset" => CriticInit::Reset,
                        _ => return Err(bad()),
                    })
                }
                "kind" => {
                    v.kind = match val.trim() {
                        "adgan" => VariantKind::AdGan,
                        "std-wgan" | "stdwgan" => VariantKind::StdWgan,
                        _ => return Err(bad()),
                    }
                }
                other => {
                    return Err(Error::invalid(format!(
                        "variant '{spec}': unknown key '{other}' (n, m, alpha, init, kind)"
                    )))
                }
            }
        }
        Ok(v)
    }
}
