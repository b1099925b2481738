//! `adgan demo`: train a quick model on the healthy patches of one shipped
//! case, score another, and write the map, a PNG montage and a JSON report
//! with the paper's patch-level AUROC next to the FLAIR-intensity baseline.

use super::ui::Reporter;
use super::DemoArgs;
use adgan::error::{Error, Result};
use adgan::evaluate::{map_means, patch_protocol, voxel_metrics};
use adgan::preprocess::Case;
use adgan::train::{Checkpointing, TrainConfig, TrainingData};
use adgan::ScoreOptions;
use clap::ValueEnum;
use serde_json::json;
use std::path::{Path, PathBuf};

const TRAIN_CASE: &str = "TCGA-DU-7294";
const TEST_CASE: &str = "TCGA-FG-6692";
const FLAIR: &str = "fla_bet.nii.gz";
/// The demo cases' modalities: name and file.
const MODALITIES: [(&str, &str); 4] = [
    ("flair", FLAIR),
    ("t1", "t1_bet.nii.gz"),
    ("t1c", "t1c_bet.nii.gz"),
    ("t2", "t2_bet.nii.gz"),
];

/// The files of the channels named in `list` ("flair,t2"); FLAIR first
/// (the baseline and the montage are FLAIR's).
fn channel_files(list: &str) -> Result<(Vec<String>, Vec<&'static str>)> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for name in list.split(',').map(str::trim) {
        let file = MODALITIES
            .iter()
            .find(|m| m.0 == name)
            .map(|m| m.1)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "--channels: unknown modality '{name}' (expected flair, t1, t1c or t2)"
                ))
            })?;
        names.push(name.to_string());
        files.push(file);
    }
    if files.first() != Some(&FLAIR) {
        return Err(Error::invalid(
            "--channels must start with flair (the baseline and the montage use it)",
        ));
    }
    Ok((names, files))
}
const LABEL: &str = "fusion_simple_seg.nii.gz";

fn data_dir(given: Option<&Path>) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = given.map(|p| vec![p.to_path_buf()]).unwrap_or_else(|| {
        let mut v = Vec::new();
        if let Some(d) = std::env::var_os("ADGAN_DEMO_DATA") {
            v.push(PathBuf::from(d));
        }
        v.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo"));
        v.push(PathBuf::from("data/demo"));
        v
    });
    for c in &candidates {
        if c.join(TRAIN_CASE).join(FLAIR).exists() {
            return Ok(c.clone());
        }
    }
    Err(Error::io(
        candidates.first().cloned().unwrap_or_default(),
        format!("demo data not found (expected {TRAIN_CASE}/{FLAIR}); pass --data DIR"),
    ))
}

pub fn run(a: DemoArgs) -> Result<()> {
    if a.common.threads > 0 {
        tch::set_num_threads(a.common.threads as i32);
    }
    let device = adgan::device::parse_device(&a.common.device)?;
    let mut ui = Reporter::new(a.common.json);
    let data = data_dir(a.data.as_deref())?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let t0 = std::time::Instant::now();

    // 1. Train on the healthy patches of one case (its label keeps the tumour out).
    let mut config = TrainConfig::preset(a.preset.into());
    config.seed = a.seed;
    if let Some(n) = a.phase1_iterations {
        config.phase1_iterations = n;
    }
    if let Some(m) = a.phase2_iterations {
        config.phase2_iterations = m;
    }
    let (channel_names, files) = channel_files(&a.channels)?;
    let train_dir = data.join(TRAIN_CASE);
    let paths = |dir: &Path| -> Vec<PathBuf> { files.iter().map(|f| dir.join(f)).collect() };
    let (train_case, _) = Case::from_files(&paths(&train_dir), None, Some(&train_dir.join(LABEL)))?;
    let training = TrainingData::from_cases(&[train_case], channel_names.clone(), &config)?;
    ui.info(&format!(
        "demo: training on {} healthy patches of {TRAIN_CASE} ({}), N={} M={} on {}",
        training.len(),
        channel_names.join(", "),
        config.phase1_iterations,
        config.phase2_iterations,
        adgan::device::device_name(device)
    ));
    let model_path = a.out.join("model.adgan");
    let ckpt = Checkpointing {
        path: Some(a.out.join("model.adgan.ckpt")),
        restart: true,
        keep: false,
    };
    let model = adgan::train(&training, &config, device, &ckpt, &mut |p| ui.update(p))?;
    ui.finish();
    model.save(&model_path)?;
    let train_seconds = t0.elapsed().as_secs_f64();

    // 2. Score the other case.
    let test_dir = data.join(TEST_CASE);
    let (case, like) = Case::from_files(&paths(&test_dir), None, None)?;
    let lesion = adgan::io::nifti::read_mask(&test_dir.join(LABEL), case.dims)?;
    let opts = ScoreOptions {
        stride: a.stride,
        painting: a.map.painting,
        intensity_gate: !a.map.no_intensity_gate,
        ..Default::default()
    };
    ui.info(&format!("demo: scoring {TEST_CASE} at stride {}", a.stride));
    let result = model.score_case(&case, &opts, &mut |p| ui.update(p))?;
    ui.finish();
    let map_path = a.out.join("anomaly_map.nii.gz");
    adgan::io::nifti::write_map(&map_path, &like, &result.map)?;

    // 3. Evaluate: the paper's patch protocol, and voxel metrics, each next
    //    to plain FLAIR intensity.
    let patches = patch_protocol(&model, &case, &lesion, 8)?;
    let brain = case.brain_mask();
    let threshold = model.map_threshold(&opts);
    let voxel_model = voxel_metrics(&result.map, &brain, &lesion, Some(threshold));
    // The same patches scored by the map (its mean over each patch).
    let map_scores = map_means(
        &result.map,
        &brain,
        case.dims,
        model.meta.slice_axis,
        &patches.at,
    );
    let auroc_map = adgan::metrics::auroc(&map_scores, &patches.labels);
    let norm = adgan::preprocess::normalise(&case, model.normalisation())?;
    let flair_norm = adgan::io::tensor_file::to_f32_vec(&norm.data)?;
    let voxel_flair = voxel_metrics(&flair_norm, &brain, &lesion, None);

    // 4. Pictures.
    let png_path = a.out.join("montage.png");
    let mopts = adgan::report::render::MontageOptions {
        heat_min: threshold as f32,
        heat_max: (threshold * 3.0) as f32,
        flip: adgan::report::render::display_flips(&like.header),
        ..Default::default()
    };
    let slices = adgan::report::render::write_montage(
        &png_path,
        case.dims,
        &case.channels[0],
        Some(&result.map),
        Some(&lesion),
        &mopts,
    )?;
    let roc_path = a.out.join("roc_patches.png");
    let mut curves = vec![(
        "adGAN window score".to_string(),
        adgan::metrics::roc_curve(&patches.model_scores, &patches.labels),
    )];
    curves.push((
        "FLAIR intensity".to_string(),
        adgan::metrics::roc_curve(&patches.intensity_scores[0], &patches.labels),
    ));
    curves.push((
        "adGAN map over the patch".to_string(),
        adgan::metrics::roc_curve(&map_scores, &patches.labels),
    ));
    adgan::report::render::write_roc_png(&roc_path, &curves)?;
    let hist_path = a.out.join("score_histogram.png");
    let pick = |lesion: bool| -> Vec<f64> {
        patches
            .model_scores
            .iter()
            .zip(&patches.labels)
            .filter(|(_, &l)| l == lesion)
            .map(|(&s, _)| s)
            .collect()
    };
    adgan::report::render::write_histogram_png(&hist_path, &pick(false), &pick(true), 40)?;
    let validation_path = match &model.meta.selection {
        Some(sel) => {
            let p = a.out.join("validation.png");
            adgan::report::render::write_validation_png(&p, &sel.curve, sel.chosen_iteration)?;
            Some(p)
        }
        None => None,
    };

    // 5. Report.
    let report = json!({
        "train_case": TRAIN_CASE,
        "test_case": TEST_CASE,
        "labels_note": "lesion labels are model-made (BraTS-Toolkit fusion), not expert annotations",
        "device": adgan::device::device_name(device),
        "training": {
            "preset": a.preset.to_possible_value().map(|v| v.get_name().to_string()),
            "channels": channel_names,
            "counterfeits": adgan::counterfeit::Counterfeit::list_name(&config.counterfeits),
            "synthetic_fraction": config.synthetic_fraction,
            "selection": model.meta.selection,
            "phase1_iterations": config.phase1_iterations,
            "phase2_iterations": config.phase2_iterations,
            "batch_size": config.batch_size,
            "train_patches": model.meta.budget.train_patches,
            "fake_pool": model.meta.budget.pool_size,
            "seconds": train_seconds,
        },
        "scoring": {"stride": a.stride, "windows": result.windows_scored, "seconds": result.seconds},
        "patch_protocol": {
            "definition": "healthy patch: no lesion voxel; lesion patch: more than 75% lesion voxels; windows at stride 8 with at least the model's brain fraction",
            "healthy_patches": patches.healthy_patches,
            "lesion_patches": patches.lesion_patches,
            "auroc_adgan": patches.auroc_model,
            "auroc_adgan_map": auroc_map,
            "auroc_flair_intensity": patches.auroc_intensity[0],
        },
        "voxel": {"adgan_map": voxel_model, "flair_intensity": voxel_flair},
        "calibration": model.meta.calibration,
        "montage_slices": slices,
        "outputs": {
            "model": model_path, "map": map_path, "montage": png_path,
            "roc": roc_path, "histogram": hist_path, "validation": validation_path,
        },
        "total_seconds": t0.elapsed().as_secs_f64(),
    });
    let report_path = a.out.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::invalid(e.to_string()))?;
    adgan::io::atomic::write_atomically(&report_path, |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })?;

    let fmt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
    if a.common.json {
        let mut r = report;
        r["outputs"]["report"] = json!(report_path);
        ui.result(r);
    } else {
        println!(
            "adGAN demo: trained on {TRAIN_CASE}, scored {TEST_CASE} in {:.0}s",
            t0.elapsed().as_secs_f64()
        );
        println!(
            "  patch AUROC (paper protocol, {} healthy / {} lesion): adGAN window score {}  adGAN map over the patch {}  FLAIR patch mean {}",
            patches.healthy_patches,
            patches.lesion_patches,
            fmt(patches.auroc_model),
            fmt(auroc_map),
            fmt(patches.auroc_intensity[0])
        );
        println!(
            "  voxel AUPRC: adGAN map {}  FLAIR intensity {}",
            fmt(voxel_model.auprc),
            fmt(voxel_flair.auprc)
        );
        println!(
            "  voxel best Dice: adGAN map {:.3}  FLAIR intensity {:.3}; Dice at the model's own threshold ({:.2}) {}",
            voxel_model.best_dice,
            voxel_flair.best_dice,
            threshold,
            fmt(voxel_model.dice_at_threshold)
        );
        println!("  anomaly map: {}", map_path.display());
        println!("  montage:     {}", png_path.display());
        println!("  ROC curves:  {}", roc_path.display());
        println!("  histogram:   {}", hist_path.display());
        if let Some(p) = &validation_path {
            println!("  validation:  {}", p.display());
        }
        println!("  report:      {}", report_path.display());
        println!("  model:       {}", model_path.display());
    }
    Ok(())
}
