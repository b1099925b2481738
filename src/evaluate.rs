//! Evaluation against lesion labels: the paper's patch-level protocol
//! (healthy patch: no lesion voxel; lesion patch: more than 75% lesion) with
//! the plain intensity baseline on the same patches.

use crate::error::{Error, Result};
use crate::metrics;
use crate::model::Model;
use crate::preprocess::{
    normalise, slice_count, take_slice, window_fractions, Case,
};
use serde::Serialize;
use tch::{Kind, Tensor};

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
}

fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    crate::tensor_file::to_f32_vec(t)
}

/// Score the windows of `case` at `stride` (those with at least the model's
/// brain fraction) and compare healthy with lesion windows of `lesion`.
pub fn patch_protocol(
    model: &Model,
    case: &Case,
    lesion: &[bool],
    stride: usize,
) -> Result<PatchEvaluation> {
    if lesion.len() != case.voxels() {
        return Err(Error::invalid(format!(
            "{}: lesion label has {} voxels, the case {}",
            case.name,
            lesion.len(),
            case.voxels()
        )));
    }
    model.check_channels(case.channels.len(), &case.name)?;
    let axis = model.meta.slice_axis;
    let min_frac = model.meta.training.sampling.min_brain_fraction;
    let norm = normalise(case)?;
    let lesion_t = Tensor::from_slice(
        &lesion
            .iter()
            .map(|&b| if b { 1f32 } else { 0.0 })
            .collect::<Vec<_>>(),
    )
    .view([case.dims[2] as i64, case.dims[1] as i64, case.dims[0] as i64]);
    let bg = crate::preprocess::background_tensor(&norm);
    let channels = case.channels.len();
    let mut labels = Vec::new();
    let mut model_scores = Vec::new();
    let mut intensity_scores = vec![Vec::new(); channels];
    for index in 0..slice_count(case.dims, axis) {
        let brain = take_slice(&norm.brain, axis, index);
        let frac = to_vec(&window_fractions(&brain, stride))?;
        let les = to_vec(&window_fractions(&take_slice(&lesion_t, axis, index), stride))?;
        let keep: Vec<i64> = (0..frac.len())
            .filter(|&i| {
                frac[i] as f64 >= min_frac - 1e-6
                    && frac[i] > 0.0
                    && (les[i] == 0.0 || les[i] as f64 > LESION_PATCH_FRACTION)
            })
            .map(|i| i as i64)
            .collect();
        if keep.is_empty() {
            continue;
        }
        let idx = Tensor::from_slice(&keep);
        let plane = take_slice(&norm.data, axis, index);
        let win = crate::preprocess::plane_windows(&plane, &bg, stride);
        let patches = win.patches.index_select(0, &idx);
        model_scores.extend(model.scores(&patches, 1024)?);
        // Mean intensity over each window's brain voxels, per channel.
        let brain_w = crate::preprocess::plane_windows(&brain.unsqueeze(0), &Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)), stride)
            .patches
            .index_select(0, &idx); // [K, 1, 32, 32]
        let denom = brain_w.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float).clamp_min(1.0);
        for (c, out) in intensity_scores.iter_mut().enumerate() {
            let ch = patches.narrow(1, c as i64, 1);
            let m = (&ch * &brain_w).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float) / &denom;
            out.extend(to_vec(&m)?.into_iter().map(f64::from));
        }
        labels.extend(keep.iter().map(|&i| les[i as usize] > 0.0));
    }
    let lesion_patches = labels.iter().filter(|&&l| l).count();
    Ok(PatchEvaluation {
        stride,
        healthy_patches: labels.len() - lesion_patches,
        lesion_patches,
        auroc_model: metrics::auroc(&model_scores, &labels),
        auroc_intensity: intensity_scores
            .iter()
            .map(|s| metrics::auroc(s, &labels))
            .collect(),
        model_scores,
        intensity_scores,
        labels,
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
    let (best_dice, best_dice_threshold) = metrics::best_dice(&scores, &labels);
    let dice_at_threshold = threshold.map(|t| {
        let pred: Vec<bool> = scores.iter().map(|&s| s >= t).collect();
        metrics::dice(&pred, &labels)
    });
    VoxelEvaluation {
        brain_voxels: scores.len(),
        lesion_voxels: labels.iter().filter(|&&l| l).count(),
        auroc: metrics::auroc(&scores, &labels),
        auprc: metrics::auprc(&scores, &labels),
        best_dice,
        best_dice_threshold,
        dice_at_threshold,
        threshold,
    }
}
