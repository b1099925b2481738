//! Evaluation against lesion labels: the paper's patch-level protocol
//! (healthy patch: no lesion voxel; lesion patch: more than 75% lesion),
//! voxel-level metrics of the anomaly map inside the brain, and the plain
//! intensity baseline of each channel on the same patches and voxels
//! ([`evaluate`]); image-level AUROC for images labelled normal or abnormal
//! as a whole ([`evaluate_images`]); and, for ablations and benchmarks,
//! several phase-2 variants trained from one shared phase 1
//! ([`train_variants`]) and the paper's stdWGAN ([`train_std_wgan`]).
//!
//! Conventions of [`crate::metrics`]: a higher score is more anomalous, a
//! `true` label is a lesion. The intensity baseline of a channel is its
//! normalised intensity (z-score inside the brain), so for FLAIR it is
//! plain hyperintensity thresholding; for a channel where lesions are dark
//! its AUROC falls below 0.5.

use crate::config::CriticInit;
use crate::error::{Error, Result};
use crate::images;
use crate::metrics;
use crate::model::Model;
use crate::nets::PATCH;
use crate::preprocess::{normalise, Case};
use crate::progress::ProgressFn;
use crate::score::ScoreOptions;
use serde::Serialize;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// The paper's patch labelling.
pub const LESION_PATCH_FRACTION: f64 = 0.75;

/// Patch-level results of one case.
#[derive(Debug, Clone, Serialize)]
pub struct PatchEvaluation {
    pub stride: usize,
    pub healthy_patches: usize,
    pub lesion_patches: usize,
    /// AUROC of the model's anomaly score.
    pub auroc_model: Option<f64>,
    /// AUROC of each channel's mean normalised intensity over the patch's
    /// brain voxels (higher = more anomalous, right for FLAIR hyperintensity).
    pub auroc_intensity: Vec<Option<f64>>,
    #[serde(skip)]
    pub model_scores: Vec<f64>,
    #[serde(skip)]
    pub intensity_scores: Vec<Vec<f64>>,
    #[serde(skip)]
    pub labels: Vec<bool>,
    /// Where each patch lies (to score it by a map, [`map_means`]).
    #[serde(skip)]
    pub at: Vec<WindowAt>,
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    crate::io::tensor_file::to_f32_vec(t)
}

/// Where a window of a [`PatchTable`] lies.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct WindowAt {
    /// Index of the case in the evaluated list.
    pub case: usize,
    pub slice: usize,
    /// Window origin in the plane (row, column), as in `score`.
    pub row: usize,
    pub col: usize,
}

/// Windows of labelled cases with what the protocol needs: lesion
/// fraction, the model's score and each channel's mean intensity.
#[derive(Debug, Default)]
pub struct PatchTable {
    pub stride: usize,
    pub at: Vec<WindowAt>,
    /// Fraction of the window's 32x32 pixels that are lesion.
    pub lesion_fraction: Vec<f64>,
    /// The model's calibrated anomaly score.
    pub model_scores: Vec<f64>,
    /// Per channel: mean normalised intensity over the window's brain voxels.
    pub intensity_scores: Vec<Vec<f64>>,
    /// The model's voxel map averaged over the window's brain voxels, as
    /// the intensity baseline averages intensity ([`map_means`]); empty
    /// when no map was scored.
    pub map_scores: Vec<f64>,
    /// The normalised windows `[K, C, 32, 32]` (CPU) when asked for.
    pub patches: Option<Tensor>,
}

impl PatchTable {
    fn append(&mut self, other: PatchTable) {
        self.at.extend(other.at);
        self.lesion_fraction.extend(other.lesion_fraction);
        self.model_scores.extend(other.model_scores);
        self.map_scores.extend(other.map_scores);
        if self.intensity_scores.is_empty() {
            self.intensity_scores = other.intensity_scores;
        } else {
            for (a, b) in self.intensity_scores.iter_mut().zip(other.intensity_scores) {
                a.extend(b);
            }
        }
        self.patches = match (self.patches.take(), other.patches) {
            (Some(a), Some(b)) => Some(Tensor::cat(&[a, b], 0)),
            (a, b) => a.or(b),
        };
    }

    /// Rows of the protocol "healthy: no lesion voxel; lesion: more than
    /// `fraction` lesion", with their labels.
    pub fn select(&self, fraction: f64) -> (Vec<usize>, Vec<bool>) {
        let rows: Vec<usize> = (0..self.lesion_fraction.len())
            .filter(|&i| self.lesion_fraction[i] == 0.0 || self.lesion_fraction[i] > fraction)
            .collect();
        let labels = rows
            .iter()
            .map(|&i| self.lesion_fraction[i] > 0.0)
            .collect();
        (rows, labels)
    }
}

fn mask_tensor(m: &[bool], dims: [usize; 3]) -> Tensor {
    Tensor::from_slice(
        &m.iter()
            .map(|&b| if b { 1f32 } else { 0.0 })
            .collect::<Vec<_>>(),
    )
    .view([dims[2] as i64, dims[1] as i64, dims[0] as i64])
}

/// The mean of `map` over the brain voxels of each window `at` (slices
/// across `axis` of a volume of `dims`): the patch score of a map, the way
/// the intensity baseline scores a patch by its mean intensity. The map
/// of a window-based model at a voxel already pools the windows around it,
/// so this score sees the window's surroundings: a lesion interior as even
/// as normal tissue scores high when the lesion around it does
/// (docs/BENCHMARKS.md, "Patches scored by the map"). Windows without a
/// brain voxel score 0.
pub fn map_means(
    map: &[f32],
    brain: &[bool],
    dims: [usize; 3],
    axis: usize,
    at: &[WindowAt],
) -> Vec<f64> {
    let (h, w) = crate::windows::plane_dims(dims, axis);
    let p = PATCH as usize;
    at.iter()
        .map(|a| {
            let (mut sum, mut n) = (0f64, 0usize);
            for r in a.row..(a.row + p).min(h) {
                for c in a.col..(a.col + p).min(w) {
                    let [x, y, z] = crate::windows::voxel_of(axis, a.slice, r, c);
                    let i = x + dims[0] * (y + dims[1] * z);
                    if brain[i] {
                        sum += map[i] as f64;
                        n += 1;
                    }
                }
            }
            if n == 0 {
                0.0
            } else {
                sum / n as f64
            }
        })
        .collect()
}

/// The windows of `case` at `stride` with at least the model's brain
/// fraction that are healthy (no lesion voxel) or more than
/// `min_lesion_fraction` lesion, scored by the model and by intensity.
pub fn patch_table(
    model: &Model,
    case: &Case,
    lesion: &[bool],
    stride: usize,
    min_lesion_fraction: f64,
    keep_patches: bool,
) -> Result<PatchTable> {
    if lesion.len() != case.voxels() {
        return Err(Error::invalid(format!(
            "{}: lesion label has {} voxels, the case {}",
            case.name,
            lesion.len(),
            case.voxels()
        )));
    }
    if stride == 0 || stride > PATCH as usize {
        return Err(Error::invalid(format!(
            "patch stride {stride} (expected 1 to {PATCH})"
        )));
    }
    model.check_channels(case.channels.len(), &case.name)?;
    let axis = model.meta.slice_axis;
    if case.dims[2] == 1 && axis != 2 {
        return Err(Error::invalid(format!(
            "{}: a 2-D image needs a model with slice axis 2 (this one has {axis})",
            case.name
        )));
    }
    let min_frac = model.meta.training.sampling.min_brain_fraction;
    let norm = normalise(case, model.normalisation())?;
    let lesion_t = mask_tensor(lesion, case.dims);
    let bg = crate::preprocess::background_tensor(&norm);
    let channels = case.channels.len();
    let mut t = PatchTable {
        stride,
        intensity_scores: vec![Vec::new(); channels],
        ..Default::default()
    };
    let mut kept = Vec::new();
    for sw in crate::windows::slices(case.dims, &norm.brain, &norm.data, &bg, axis, stride) {
        let sw = sw?;
        if !sw.has_brain() {
            continue;
        }
        let frac = &sw.brain_fraction;
        let les = sw.fractions(&lesion_t)?;
        let keep: Vec<i64> = (0..frac.len())
            .filter(|&i| {
                frac[i] as f64 >= min_frac - 1e-6
                    && frac[i] > 0.0
                    && (les[i] == 0.0 || les[i] as f64 > min_lesion_fraction)
            })
            .map(|i| i as i64)
            .collect();
        if keep.is_empty() {
            continue;
        }
        let patches = sw.patches(&keep);
        t.model_scores.extend(model.scores(&patches, 1024)?);
        // Mean intensity over each window's brain voxels, per channel.
        let brain_w = sw.brain_patches(&keep).unsqueeze(1); // [K, 1, 32, 32]
        let denom = brain_w
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
            .clamp_min(1.0);
        for (c, out) in t.intensity_scores.iter_mut().enumerate() {
            let ch = patches.narrow(1, c as i64, 1);
            let m = (&ch * &brain_w).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float)
                / &denom;
            out.extend(to_vec(&m)?.into_iter().map(f64::from));
        }
        for &i in &keep {
            let i = i as usize;
            t.lesion_fraction.push(les[i] as f64);
            let (row, col) = sw.origin(i);
            t.at.push(WindowAt {
                case: 0,
                slice: sw.index,
                row,
                col,
            });
        }
        if keep_patches {
            kept.push(patches);
        }
    }
    if keep_patches {
        t.patches = Some(if kept.is_empty() {
            Tensor::zeros(
                [0, channels as i64, PATCH, PATCH],
                (Kind::Float, Device::Cpu),
            )
        } else {
            Tensor::cat(&kept, 0)
        });
    }
    Ok(t)
}

/// Score the windows of `case` at `stride` (those with at least the model's
/// brain fraction) and compare healthy with lesion windows of `lesion`.
pub fn patch_protocol(
    model: &Model,
    case: &Case,
    lesion: &[bool],
    stride: usize,
) -> Result<PatchEvaluation> {
    let t = patch_table(model, case, lesion, stride, LESION_PATCH_FRACTION, false)?;
    let labels: Vec<bool> = t.lesion_fraction.iter().map(|&f| f > 0.0).collect();
    let lesion_patches = labels.iter().filter(|&&l| l).count();
    Ok(PatchEvaluation {
        stride,
        healthy_patches: labels.len() - lesion_patches,
        lesion_patches,
        auroc_model: metrics::auroc(&t.model_scores, &labels),
        auroc_intensity: t
            .intensity_scores
            .iter()
            .map(|s| metrics::auroc(s, &labels))
            .collect(),
        model_scores: t.model_scores,
        intensity_scores: t.intensity_scores,
        labels,
        at: t.at,
    })
}

/// Voxel-level results inside the brain: AUROC, AUPRC and best Dice of a
/// map against a lesion label.
#[derive(Debug, Clone, Serialize)]
pub struct VoxelEvaluation {
    pub brain_voxels: usize,
    pub lesion_voxels: usize,
    pub auroc: Option<f64>,
    pub auprc: Option<f64>,
    pub best_dice: f64,
    pub best_dice_threshold: f64,
    /// Dice of `map >= threshold` at the model's calibrated threshold.
    pub dice_at_threshold: Option<f64>,
    pub threshold: Option<f64>,
}

/// Evaluate a voxel map inside `brain` against `lesion`.
pub fn voxel_metrics(
    map: &[f32],
    brain: &[bool],
    lesion: &[bool],
    threshold: Option<f64>,
) -> VoxelEvaluation {
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for ((&m, &b), &l) in map.iter().zip(brain).zip(lesion) {
        if b {
            scores.push(m as f64);
            labels.push(l);
        }
    }
    voxel_metrics_of(&scores, &labels, threshold)
}

/// [`voxel_metrics`] of scores and labels already restricted to the brain.
pub fn voxel_metrics_of(
    scores: &[f64],
    labels: &[bool],
    threshold: Option<f64>,
) -> VoxelEvaluation {
    let (best_dice, best_dice_threshold) = metrics::best_dice(scores, labels);
    let dice_at_threshold = threshold.map(|t| {
        let pred: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
        metrics::dice(&pred, labels)
    });
    VoxelEvaluation {
        brain_voxels: scores.len(),
        lesion_voxels: labels.iter().filter(|&&l| l).count(),
        auroc: metrics::auroc(scores, labels),
        auprc: metrics::auprc(scores, labels),
        best_dice,
        best_dice_threshold,
        dice_at_threshold,
        threshold,
    }
}

// ---------------------------------------------------------------------------
// Evaluation of a model on labelled cases.

/// A case with its lesion label (and, in `case.brain`, its brain mask).
#[derive(Debug, Clone)]
pub struct LabelledCase {
    pub case: Case,
    pub lesion: Vec<bool>,
}

/// Options of [`evaluate`].
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Stride of the protocol's windows (the training stride, 8, by default).
    pub patch_stride: usize,
    /// Lesion-patch definitions: "more than this fraction lesion". The
    /// first is the headline (the paper's 0.75).
    pub lesion_fractions: Vec<f64>,
    /// How to score the voxel map; `None`: no voxel metrics.
    pub map: Option<ScoreOptions>,
    /// Threshold for "Dice at the threshold"; `None`: the model's calibrated one.
    pub threshold: Option<f64>,
    /// Keep the protocol's normalised windows (for external baselines).
    pub keep_patches: bool,
    /// Keep the maps (to write them).
    pub keep_maps: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            patch_stride: 8,
            lesion_fractions: vec![LESION_PATCH_FRACTION, 0.10],
            map: Some(ScoreOptions {
                stride: 4,
                ..Default::default()
            }),
            threshold: None,
            keep_patches: false,
            keep_maps: false,
        }
    }
}

/// AUROC and AUPRC of one scorer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scored {
    pub name: String,
    pub auroc: Option<f64>,
    pub auprc: Option<f64>,
}

fn scored(name: &str, scores: &[f64], labels: &[bool]) -> Scored {
    Scored {
        name: name.to_string(),
        auroc: metrics::auroc(scores, labels),
        auprc: metrics::auprc(scores, labels),
    }
}

/// Patch-level results for one lesion-patch definition.
#[derive(Debug, Clone, Serialize)]
pub struct PatchLevel {
    /// Lesion patch: more than this fraction of lesion voxels.
    pub lesion_fraction: f64,
    pub healthy_patches: usize,
    pub lesion_patches: usize,
    /// The model's window score first (the paper's protocol), then each
    /// channel's intensity, then, when the map was scored, the model's map
    /// averaged over each patch's brain voxels ([`map_means`]).
    pub scorers: Vec<Scored>,
}

/// Voxel-level results of one scorer.
#[derive(Debug, Clone, Serialize)]
pub struct NamedVoxel {
    pub name: String,
    #[serde(flatten)]
    pub metrics: VoxelEvaluation,
}

/// Per-case summary.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSummary {
    pub name: String,
    pub brain_voxels: usize,
    pub lesion_voxels: usize,
    pub healthy_patches: usize,
    pub lesion_patches: usize,
    pub patch_auroc_model: Option<f64>,
    /// The same patches scored by the model's map ([`map_means`]).
    pub patch_auroc_map: Option<f64>,
    pub voxel_auprc_model: Option<f64>,
    pub voxel_best_dice_model: Option<f64>,
    pub windows_scored: usize,
}

/// What [`evaluate`] measures, pooled over the cases (patches and voxels of
/// all cases together, as the paper pools its test patches).
#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub model_name: String,
    pub channel_names: Vec<String>,
    pub patch_stride: usize,
    pub patches: Vec<PatchLevel>,
    /// Stride of the voxel map (`None`: no voxel metrics).
    pub map_stride: Option<usize>,
    /// The model's map first, then each channel's intensity.
    pub voxels: Vec<NamedVoxel>,
    pub threshold: f64,
    pub cases: Vec<CaseSummary>,
    /// All protocol windows (lesion fraction 0 or above the smallest
    /// definition), pooled.
    #[serde(skip)]
    pub table: PatchTable,
    /// The maps, when kept.
    #[serde(skip)]
    pub maps: Vec<Vec<f32>>,
}

impl Evaluation {
    /// Model and intensity scores of the protocol with lesion fraction
    /// `fraction`, with labels: `(labels, model, per-channel intensity)`.
    pub fn protocol_scores(&self, fraction: f64) -> (Vec<bool>, Vec<f64>, Vec<Vec<f64>>) {
        let (rows, labels) = self.table.select(fraction);
        let model = rows.iter().map(|&i| self.table.model_scores[i]).collect();
        let intensity = self
            .table
            .intensity_scores
            .iter()
            .map(|s| rows.iter().map(|&i| s[i]).collect())
            .collect();
        (labels, model, intensity)
    }

    /// The map scores of the same protocol's patches, in the order of
    /// [`Evaluation::protocol_scores`]; `None` when no map was scored.
    pub fn protocol_map_scores(&self, fraction: f64) -> Option<Vec<f64>> {
        if self.table.map_scores.len() != self.table.model_scores.len() {
            return None;
        }
        let (rows, _) = self.table.select(fraction);
        Some(rows.iter().map(|&i| self.table.map_scores[i]).collect())
    }
}

/// A short name of a model's variant: `adGAN(c)`, `adGAN` or `WGAN critic`.
pub fn variant_name(model: &Model) -> String {
    let t = &model.meta.training;
    if model.meta.budget.phase2_iterations == 0 && t.phase1_alpha > 0.0 {
        "stdWGAN".into()
    } else if model.meta.budget.phase2_iterations == 0 {
        "WGAN critic".into()
    } else if t.synthetic_fraction >= 1.0 {
        "adGAN (counterfeits)".into()
    } else if t.synthetic_fraction > 0.0 {
        format!(
            "{} + counterfeits",
            if t.critic_init == CriticInit::Reset {
                "adGAN"
            } else {
                "adGAN(c)"
            }
        )
    } else if t.critic_init == CriticInit::Reset {
        "adGAN".into()
    } else {
        "adGAN(c)".into()
    }
}

/// Evaluate a model on labelled cases: the patch protocol for each lesion
/// definition, voxel metrics of the map inside the brain, each next to the
/// intensity of every channel on the same patches and voxels.
pub fn evaluate(
    model: &Model,
    cases: &[LabelledCase],
    opts: &EvalOptions,
    progress: &mut ProgressFn,
) -> Result<Evaluation> {
    if cases.is_empty() {
        return Err(Error::invalid("no case to evaluate"));
    }
    if opts.lesion_fractions.is_empty()
        || opts
            .lesion_fractions
            .iter()
            .any(|f| !(0.0..1.0).contains(f))
    {
        return Err(Error::invalid(
            "lesion fractions must be given, each in [0, 1)",
        ));
    }
    let smallest = opts.lesion_fractions.iter().cloned().fold(1.0, f64::min);
    let threshold = opts.threshold.unwrap_or(match &opts.map {
        Some(m) => model.map_threshold(m),
        None => model.meta.calibration.threshold,
    });
    let channels = model.channels();
    let mut table = PatchTable {
        stride: opts.patch_stride,
        ..Default::default()
    };
    let mut model_vox: Vec<f64> = Vec::new();
    let mut intensity_vox: Vec<Vec<f64>> = vec![Vec::new(); channels];
    let mut labels_vox: Vec<bool> = Vec::new();
    let mut summaries = Vec::new();
    let mut maps = Vec::new();
    for (k, lc) in cases.iter().enumerate() {
        let case = &lc.case;
        let mut t = patch_table(
            model,
            case,
            &lc.lesion,
            opts.patch_stride,
            smallest,
            opts.keep_patches,
        )?;
        for at in &mut t.at {
            at.case = k;
        }
        let (rows, labels) = t.select(opts.lesion_fractions[0]);
        let case_model: Vec<f64> = rows.iter().map(|&i| t.model_scores[i]).collect();
        let brain = case.brain_mask();
        let mut summary = CaseSummary {
            name: case.name.clone(),
            brain_voxels: brain.iter().filter(|&&b| b).count(),
            lesion_voxels: lc
                .lesion
                .iter()
                .zip(&brain)
                .filter(|(&l, &b)| l && b)
                .count(),
            healthy_patches: labels.iter().filter(|&&l| !l).count(),
            lesion_patches: labels.iter().filter(|&&l| l).count(),
            patch_auroc_model: metrics::auroc(&case_model, &labels),
            patch_auroc_map: None,
            voxel_auprc_model: None,
            voxel_best_dice_model: None,
            windows_scored: 0,
        };
        if let Some(mopts) = &opts.map {
            let r = model.score_case(case, mopts, progress)?;
            summary.windows_scored = r.windows_scored;
            // The protocol's windows lie across the model's axis (patch_table).
            let axis = model.meta.slice_axis;
            t.map_scores = map_means(&r.map, &brain, case.dims, axis, &t.at);
            let case_map: Vec<f64> = rows.iter().map(|&i| t.map_scores[i]).collect();
            summary.patch_auroc_map = metrics::auroc(&case_map, &labels);
            let norm = normalise(case, model.normalisation())?;
            let inten: Vec<Vec<f32>> = (0..channels)
                .map(|c| to_vec(&norm.data.get(c as i64)))
                .collect::<Result<_>>()?;
            let mut case_scores = Vec::new();
            let mut case_labels = Vec::new();
            for (i, &b) in brain.iter().enumerate() {
                if b {
                    case_scores.push(r.map[i] as f64);
                    case_labels.push(lc.lesion[i]);
                    for c in 0..channels {
                        intensity_vox[c].push(inten[c][i] as f64);
                    }
                }
            }
            if case_labels.iter().any(|&l| l) {
                summary.voxel_auprc_model = metrics::auprc(&case_scores, &case_labels);
                summary.voxel_best_dice_model =
                    Some(metrics::best_dice(&case_scores, &case_labels).0);
            }
            model_vox.extend(case_scores);
            labels_vox.extend(case_labels);
            if opts.keep_maps {
                maps.push(r.map);
            }
        }
        table.append(t);
        summaries.push(summary);
    }
    let model_name = variant_name(model);
    let patches = opts
        .lesion_fractions
        .iter()
        .map(|&f| {
            let (rows, labels) = table.select(f);
            let pick = |s: &Vec<f64>| -> Vec<f64> { rows.iter().map(|&i| s[i]).collect() };
            let mut scorers = vec![scored(&model_name, &pick(&table.model_scores), &labels)];
            for (c, s) in table.intensity_scores.iter().enumerate() {
                let name = format!("{} intensity", model.meta.channel_names[c]);
                scorers.push(scored(&name, &pick(s), &labels));
            }
            if opts.map.is_some() {
                let name = format!("{model_name} map");
                scorers.push(scored(&name, &pick(&table.map_scores), &labels));
            }
            let lesion_patches = labels.iter().filter(|&&l| l).count();
            PatchLevel {
                lesion_fraction: f,
                healthy_patches: labels.len() - lesion_patches,
                lesion_patches,
                scorers,
            }
        })
        .collect();
    let mut voxels = Vec::new();
    if opts.map.is_some() {
        voxels.push(NamedVoxel {
            name: format!("{model_name} map"),
            metrics: voxel_metrics_of(&model_vox, &labels_vox, Some(threshold)),
        });
        for (c, s) in intensity_vox.iter().enumerate() {
            voxels.push(NamedVoxel {
                name: format!("{} intensity", model.meta.channel_names[c]),
                metrics: voxel_metrics_of(s, &labels_vox, None),
            });
        }
    }
    Ok(Evaluation {
        model_name,
        channel_names: model.meta.channel_names.clone(),
        patch_stride: opts.patch_stride,
        patches,
        map_stride: opts.map.as_ref().map(|m| m.stride),
        voxels,
        threshold,
        cases: summaries,
        table,
        maps,
    })
}

// ---------------------------------------------------------------------------
// Images labelled as a whole.

/// Image-level results: each image's score (its window's, or the largest
/// of its windows') against a normal/abnormal label.
#[derive(Debug, Serialize)]
pub struct ImageEvaluation {
    pub model_name: String,
    pub normal_images: usize,
    pub abnormal_images: usize,
    /// Images without a score (constant ones), left out of the metrics.
    pub unscored_images: usize,
    /// The model first, then each channel's mean raw intensity.
    pub scorers: Vec<Scored>,
    pub threshold: f64,
    /// Fraction of normal / abnormal images at or above the threshold.
    pub normal_above_threshold: f64,
    pub abnormal_above_threshold: f64,
    #[serde(skip)]
    pub scores: images::ImageScores,
    /// Per image (in `scores` order): abnormal?
    #[serde(skip)]
    pub labels: Vec<bool>,
}

impl ImageEvaluation {
    /// Scores and labels of the scored images: `(labels, model, intensity)`.
    pub fn scored(&self) -> (Vec<bool>, Vec<f64>, Vec<Vec<f64>>) {
        let rows: Vec<usize> = (0..self.labels.len())
            .filter(|&i| self.scores.scores[i].score.is_some())
            .collect();
        let labels = rows.iter().map(|&i| self.labels[i]).collect();
        let model = rows
            .iter()
            .map(|&i| self.scores.scores[i].score.unwrap_or(f64::NAN))
            .collect();
        let channels = self
            .scores
            .scores
            .first()
            .map(|s| s.mean_intensity.len())
            .unwrap_or(0);
        let intensity = (0..channels)
            .map(|c| {
                rows.iter()
                    .map(|&i| {
                        self.scores.scores[i]
                            .mean_intensity
                            .get(c)
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .collect()
            })
            .collect();
        (labels, model, intensity)
    }
}

/// Score normal and abnormal images and compare them.
pub fn evaluate_images(
    model: &Model,
    normal: &[PathBuf],
    abnormal: &[PathBuf],
    opts: &ScoreOptions,
    threshold: Option<f64>,
    progress: &mut ProgressFn,
) -> Result<ImageEvaluation> {
    if normal.is_empty() || abnormal.is_empty() {
        return Err(Error::invalid(
            "image-level evaluation needs normal and abnormal images",
        ));
    }
    let paths: Vec<PathBuf> = normal.iter().chain(abnormal).cloned().collect();
    let labels: Vec<bool> = (0..paths.len()).map(|i| i >= normal.len()).collect();
    let scores = images::score_images(model, &paths, opts, false, progress)?;
    let threshold = threshold.unwrap_or(model.meta.calibration.threshold);
    let mut ev = ImageEvaluation {
        model_name: variant_name(model),
        normal_images: normal.len(),
        abnormal_images: abnormal.len(),
        unscored_images: scores.scores.iter().filter(|s| s.score.is_none()).count(),
        scorers: Vec::new(),
        threshold,
        normal_above_threshold: f64::NAN,
        abnormal_above_threshold: f64::NAN,
        scores,
        labels,
    };
    let (labels, model_scores, intensity) = ev.scored();
    let above = |want: bool| {
        let v: Vec<f64> = model_scores
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| l == want)
            .map(|(&s, _)| s)
            .collect();
        v.iter().filter(|&&s| s >= threshold).count() as f64 / v.len().max(1) as f64
    };
    ev.normal_above_threshold = above(false);
    ev.abnormal_above_threshold = above(true);
    ev.scorers
        .push(scored(&ev.model_name, &model_scores, &labels));
    let names = if intensity.len() == 1 {
        vec!["mean intensity".to_string()]
    } else {
        images::default_channel_names(intensity.len())
            .into_iter()
            .map(|n| format!("mean {n} intensity"))
            .collect()
    };
    for (name, s) in names.iter().zip(&intensity) {
        ev.scorers.push(scored(name, s, &labels));
    }
    Ok(ev)
}

/// Thin a curve to at most about `max_points` points (first and last
/// kept), for pictures of curves with millions of points.
pub fn thin_curve(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    if points.len() <= max_points.max(2) {
        return points.to_vec();
    }
    let step = points.len() as f64 / max_points as f64;
    let mut out: Vec<(f64, f64)> = (0..max_points)
        .map(|k| points[((k as f64 * step) as usize).min(points.len() - 1)])
        .collect();
    if out.last() != points.last() {
        out.push(*points.last().unwrap_or(&(1.0, 1.0)));
    }
    out
}

// Ablations (trained in `train::variants`): re-exported where they were.
pub use crate::config::{Variant, VariantKind};
pub use crate::train::variants::{train_std_wgan, train_variants};
