//! `adgan eval`: how good a model is on labelled cases (volumes or images
//! with lesion labels: the paper's patch protocol and voxel metrics) or on
//! images labelled normal or abnormal as a whole; each next to the plain
//! intensity baseline. Writes a JSON report, ROC and histogram pictures, and
//! prints a short table. Also the hidden `adgan train-variants` that the
//! benchmarks under bench/ use for ablations (one shared phase 1).

use super::commands::{self, split_paths};
use super::ui::Reporter;
use super::{Common, TrainArgs};
use adgan::error::{Error, Result};
use adgan::evaluate::{self, EvalOptions, Evaluation, ImageEvaluation, LabelledCase, Variant};
use adgan::images;
use adgan::preprocess::Case;
use adgan::{Model, ScoreOptions};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model file made by `adgan train`.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub model: PathBuf,
    /// A labelled case: its channel files (NIfTI) comma separated, or one
    /// image (PNG, JPEG). Repeat for more cases; each needs a --label.
    #[arg(long = "volume", short = 'v', value_name = "CH1[,CH2...]")]
    pub volumes: Vec<String>,
    /// Lesion label of each case, in --volume order (non-zero = lesion; a
    /// NIfTI on the case's grid, or an image of the image's size).
    #[arg(long = "label", value_name = "FILE")]
    pub labels: Vec<PathBuf>,
    /// Brain mask of each case (non-zero = brain), none or one per case;
    /// default: the non-zero voxels of a volume, every pixel of an image.
    #[arg(long = "mask", value_name = "FILE")]
    pub masks: Vec<PathBuf>,
    /// Normal images for an image-level evaluation: files, folders or .txt
    /// lists. Repeatable.
    #[arg(long = "normal", value_name = "PATH")]
    pub normal: Vec<PathBuf>,
    /// Abnormal images (as --normal).
    #[arg(long = "abnormal", value_name = "PATH")]
    pub abnormal: Vec<PathBuf>,
    /// Output folder: report.json, ROC and histogram PNGs (and scores.csv
    /// for images).
    #[arg(long, short = 'o', default_value = "eval-output")]
    pub out: PathBuf,
    /// Stride of the voxel map (1-32; smaller is sharper and slower).
    #[arg(long, default_value_t = 4)]
    pub stride: usize,
    #[command(flatten)]
    pub map: super::PaintingArg,
    /// Stride of the patch protocol's windows.
    #[arg(long, default_value_t = 8)]
    pub patch_stride: usize,
    /// Lesion patch: more than this fraction lesion voxels (the paper:
    /// 0.75). Repeat for several definitions; the first is the headline.
    #[arg(long = "lesion-fraction", value_name = "F", default_values_t = [0.75, 0.10])]
    pub lesion_fractions: Vec<f64>,
    /// Skip the voxel map (patch protocol only: much faster).
    #[arg(long)]
    pub no_map: bool,
    /// Threshold of "Dice at the threshold" (default: the model's calibrated one).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Write each case's anomaly map into <out>/maps/.
    #[arg(long)]
    pub write_maps: bool,
    /// Write the protocol's windows for external baselines: patches.npy
    /// (float32 [N, C, 32, 32], normalised as the model sees them) and
    /// patches.csv (case, slice, row, col, lesion fraction, model score and,
    /// unless --no-map, the map averaged over the window).
    #[arg(long)]
    pub dump_patches: bool,
    /// Windows per critic call.
    #[arg(long, default_value_t = 1024)]
    pub batch_size: usize,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct TrainVariantsArgs {
    /// A variant: NAME[:KEY=VALUE,...] with keys n, m, alpha, init
    /// (fine-tune|reset), kind (adgan|std-wgan). Repeat. All share one
    /// phase 1; -o is the output folder (NAME.adgan each).
    #[arg(long = "variant", required = true, value_name = "SPEC")]
    pub variants: Vec<String>,
    #[command(flatten)]
    pub train: TrainArgs,
}

fn fmt(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| format!("{x:.3}"))
        .unwrap_or_else(|| "n/a".into())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::invalid(e.to_string()))?;
    adgan::io::atomic::write_atomically(path, |f| std::io::Write::write_all(f, text.as_bytes()))
}

/// A float32 array as a NumPy .npy file.
pub fn write_npy(path: &Path, shape: &[i64], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    adgan::io::atomic::write_atomically(path, |f| std::io::Write::write_all(f, &bytes))
}

fn load_case(
    spec: &str,
    label: &Path,
    mask: Option<&Path>,
    channels: usize,
) -> Result<LabelledCase> {
    let paths = split_paths(spec);
    if paths.len() == 1 && images::is_image_path(&paths[0]) {
        let image = images::read_image(&paths[0])?;
        let mut case = image.to_case(channels)?;
        if let Some(m) = mask {
            case.brain = Some(images::read_image_mask(m, image.width, image.height)?);
        }
        let lesion = if images::is_image_path(label) {
            images::read_image_mask(label, image.width, image.height)?
        } else {
            adgan::io::nifti::read_mask(label, case.dims)?
        };
        return Ok(LabelledCase { case, lesion });
    }
    if paths.len() != channels {
        return Err(Error::invalid(format!(
            "--volume {spec}: the model needs {channels} channel file(s), got {}",
            paths.len()
        )));
    }
    let (case, _) = Case::from_files(&paths, mask, None)?;
    let lesion = adgan::io::nifti::read_mask(label, case.dims)?;
    Ok(LabelledCase { case, lesion })
}

fn split_by_label(scores: &[f64], labels: &[bool]) -> (Vec<f64>, Vec<f64>) {
    let mut normal = Vec::new();
    let mut abnormal = Vec::new();
    for (&s, &l) in scores.iter().zip(labels) {
        if l {
            abnormal.push(s);
        } else {
            normal.push(s);
        }
    }
    (normal, abnormal)
}

fn model_summary(model: &Model) -> serde_json::Value {
    let m = &model.meta;
    json!({
        "variant": evaluate::variant_name(model),
        "channels": m.channel_names,
        "phase1_iterations": m.budget.phase1_iterations,
        "phase2_iterations": m.budget.phase2_iterations,
        "batch_size": m.training.batch_size,
        "alpha": m.training.alpha,
        "device": m.budget.device,
        "calibration": m.calibration,
    })
}

pub fn run(a: EvalArgs) -> Result<()> {
    let device = commands::setup(&a.common)?;
    let mut ui = Reporter::new(a.common.json);
    let model = Model::load(&a.model, device)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let has_cases = !a.volumes.is_empty();
    let has_images = !a.normal.is_empty() || !a.abnormal.is_empty();
    if !has_cases && !has_images {
        return Err(Error::invalid(
            "nothing to evaluate: give labelled cases (--volume with --label) or images (--normal and --abnormal)",
        ));
    }
    if has_cases && a.labels.len() != a.volumes.len() {
        return Err(Error::invalid(format!(
            "{} --label file(s) for {} --volume case(s): every case needs its label",
            a.labels.len(),
            a.volumes.len()
        )));
    }
    if !a.masks.is_empty() && a.masks.len() != a.volumes.len() {
        return Err(Error::invalid(format!(
            "{} --mask file(s) for {} --volume case(s): give none or one per case",
            a.masks.len(),
            a.volumes.len()
        )));
    }
    let score_opts = ScoreOptions {
        stride: a.stride,
        batch_size: a.batch_size,
        painting: a.map.painting,
        intensity_gate: !a.map.no_intensity_gate,
        ..Default::default()
    };
    let mut report = json!({
        "model": a.model,
        "model_summary": model_summary(&model),
        "device": adgan::device::device_name(device),
        "adgan": adgan::VERSION,
    });
    let mut outputs = json!({});
    if has_cases {
        let mut cases = Vec::with_capacity(a.volumes.len());
        for (k, spec) in a.volumes.iter().enumerate() {
            let mask = a.masks.get(k).map(PathBuf::as_path);
            let lc = load_case(spec, &a.labels[k], mask, model.channels())?;
            for w in &lc.case.warnings {
                eprintln!("adgan: warning: {w}");
            }
            cases.push(lc);
        }
        let opts = EvalOptions {
            patch_stride: a.patch_stride,
            lesion_fractions: a.lesion_fractions.clone(),
            map: (!a.no_map).then_some(score_opts),
            threshold: a.threshold,
            keep_patches: a.dump_patches,
            keep_maps: a.write_maps,
        };
        ui.info(&format!(
            "evaluating {} on {} case(s){}",
            a.model.display(),
            cases.len(),
            if a.no_map {
                String::new()
            } else {
                format!(" (maps at stride {})", a.stride)
            }
        ));
        let ev = evaluate::evaluate(&model, &cases, &opts, &mut |p| ui.update(p))?;
        ui.finish();
        case_outputs(&a, &ev, &cases, &mut outputs)?;
        report["cases"] = serde_json::to_value(&ev).map_err(|e| Error::invalid(e.to_string()))?;
        report["cases"]["protocol"] = json!(
            "patch level: windows of the model's slices at the patch stride with at least the model's brain fraction; healthy: no lesion voxel; lesion: more than the given fraction of lesion voxels; patches of all cases pooled. Voxel level: all brain voxels of all cases pooled; intensity = the channel's z-score inside the brain; best_dice = Dice at the best threshold"
        );
        if !a.common.json {
            print_case_table(&a, &ev);
        }
    }
    if has_images {
        let normal = images::list_images(&a.normal)?;
        let abnormal = images::list_images(&a.abnormal)?;
        ui.info(&format!(
            "scoring {} normal and {} abnormal image(s)",
            normal.len(),
            abnormal.len()
        ));
        let ev = evaluate::evaluate_images(
            &model,
            &normal,
            &abnormal,
            &score_opts,
            a.threshold,
            &mut |p| ui.update(p),
        )?;
        ui.finish();
        image_outputs(&a, &ev, &mut outputs)?;
        report["images"] = serde_json::to_value(&ev).map_err(|e| Error::invalid(e.to_string()))?;
        if !a.common.json {
            print_image_table(&ev);
        }
    }
    let report_path = a.out.join("report.json");
    outputs["report"] = json!(report_path);
    report["outputs"] = outputs;
    write_json(&report_path, &report)?;
    if a.common.json {
        ui.result(report);
    } else {
        println!("  report: {}", report_path.display());
    }
    Ok(())
}

fn case_outputs(
    a: &EvalArgs,
    ev: &Evaluation,
    cases: &[LabelledCase],
    outputs: &mut serde_json::Value,
) -> Result<()> {
    let headline = a.lesion_fractions[0];
    let (labels, model_scores, intensity) = ev.protocol_scores(headline);
    let mut curves = vec![(
        format!("{} window score", ev.model_name),
        evaluate::thin_curve(&adgan::metrics::roc_curve(&model_scores, &labels), 4000),
    )];
    for (c, s) in intensity.iter().enumerate() {
        curves.push((
            format!("{} intensity", ev.channel_names[c]),
            evaluate::thin_curve(&adgan::metrics::roc_curve(s, &labels), 4000),
        ));
    }
    if let Some(map) = ev.protocol_map_scores(headline) {
        curves.push((
            format!("{} map over the patch", ev.model_name),
            evaluate::thin_curve(&adgan::metrics::roc_curve(&map, &labels), 4000),
        ));
    }
    let roc = a.out.join("roc_patches.png");
    adgan::report::render::write_roc_png(&roc, &curves)?;
    let hist = a.out.join("histogram_patches.png");
    let (normal, lesion) = split_by_label(&model_scores, &labels);
    adgan::report::render::write_histogram_png(&hist, &normal, &lesion, 50)?;
    outputs["roc_patches"] = json!(roc);
    outputs["histogram_patches"] = json!(hist);
    if a.write_maps {
        let dir = a.out.join("maps");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut written = Vec::new();
        for (k, (lc, map)) in cases.iter().zip(&ev.maps).enumerate() {
            let stem = Path::new(&lc.case.name)
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("case")
                .trim_end_matches(".gz")
                .trim_end_matches(".nii")
                .trim_end_matches(".png")
                .trim_end_matches(".jpg")
                .trim_end_matches(".jpeg")
                .to_string();
            let path = dir.join(format!("{k:03}_{stem}_anomaly.nii.gz"));
            let like = if images::is_image_path(Path::new(&lc.case.name)) {
                None
            } else {
                adgan::io::nifti::read_volume(Path::new(&lc.case.name)).ok()
            };
            match like {
                Some(v) if v.dims == lc.case.dims => adgan::io::nifti::write_map(&path, &v, map)?,
                _ => adgan::io::nifti::write_f32_volume(
                    &path,
                    lc.case.dims,
                    None,
                    map,
                    "adGAN anomaly map",
                )?,
            }
            written.push(path);
        }
        outputs["maps"] = json!(written);
    }
    if a.dump_patches {
        if let Some(p) = &ev.table.patches {
            let shape = p.size();
            let data = adgan::io::tensor_file::to_f32_vec(p)?;
            let npy = a.out.join("patches.npy");
            write_npy(&npy, &shape, &data)?;
            // map_score: the map averaged over the window (empty with --no-map).
            let mut csv = String::from("case,slice,row,col,lesion_fraction,score,map_score\n");
            for (i, at) in ev.table.at.iter().enumerate() {
                let map = match ev.table.map_scores.get(i) {
                    Some(m) => format!("{m:.6}"),
                    None => String::new(),
                };
                csv.push_str(&format!(
                    "{},{},{},{},{:.6},{:.6},{}\n",
                    at.case,
                    at.slice,
                    at.row,
                    at.col,
                    ev.table.lesion_fraction[i],
                    ev.table.model_scores[i],
                    map
                ));
            }
            let csv_path = a.out.join("patches.csv");
            adgan::io::atomic::write_atomically(&csv_path, |f| {
                std::io::Write::write_all(f, csv.as_bytes())
            })?;
            outputs["patches_npy"] = json!(npy);
            outputs["patches_csv"] = json!(csv_path);
        }
    }
    Ok(())
}

fn image_outputs(
    a: &EvalArgs,
    ev: &ImageEvaluation,
    outputs: &mut serde_json::Value,
) -> Result<()> {
    let (labels, model_scores, intensity) = ev.scored();
    let mut curves = vec![(
        ev.model_name.clone(),
        evaluate::thin_curve(&adgan::metrics::roc_curve(&model_scores, &labels), 4000),
    )];
    for (s, sc) in intensity.iter().zip(ev.scorers.iter().skip(1)) {
        curves.push((
            sc.name.clone(),
            evaluate::thin_curve(&adgan::metrics::roc_curve(s, &labels), 4000),
        ));
    }
    let roc = a.out.join("roc_images.png");
    adgan::report::render::write_roc_png(&roc, &curves)?;
    let hist = a.out.join("histogram_images.png");
    let (normal, abnormal) = split_by_label(&model_scores, &labels);
    adgan::report::render::write_histogram_png(&hist, &normal, &abnormal, 50)?;
    let csv = a.out.join("scores.csv");
    adgan::report::csv::write_scores_csv(&csv, &ev.scores.scores, Some(&ev.labels))?;
    outputs["roc_images"] = json!(roc);
    outputs["histogram_images"] = json!(hist);
    outputs["scores_csv"] = json!(csv);
    Ok(())
}

fn print_case_table(a: &EvalArgs, ev: &Evaluation) {
    // The model's two scorers by what they score (its name is printed
    // above), the intensity baselines by their names.
    let map_name = format!("{} map", ev.model_name);
    let names: Vec<&str> = ev.patches[0]
        .scorers
        .iter()
        .enumerate()
        .map(|(i, s)| match s.name.as_str() {
            _ if i == 0 => "window score",
            n if n == map_name => "map over patch",
            n => n,
        })
        .collect();
    println!(
        "adGAN eval: {} ({}) on {} case(s)",
        a.model.display(),
        ev.model_name,
        ev.cases.len()
    );
    print!(
        "  patch AUROC (stride {})       {:>8} {:>8}",
        ev.patch_stride, "healthy", "lesion"
    );
    for n in &names {
        print!(" {:>16}", truncate(n, 16));
    }
    println!();
    for p in &ev.patches {
        print!(
            "    lesion > {:>3.0}%{}{:>8} {:>8}",
            p.lesion_fraction * 100.0,
            if p.lesion_fraction == LESION_PAPER {
                " (paper)      "
            } else {
                "              "
            },
            p.healthy_patches,
            p.lesion_patches
        );
        for s in &p.scorers {
            print!(" {:>16}", fmt(s.auroc));
        }
        println!();
    }
    if let Some(stride) = ev.map_stride {
        let v0 = &ev.voxels[0].metrics;
        println!(
            "  voxels in the brain (map stride {stride}): {} voxels, {} lesion",
            v0.brain_voxels, v0.lesion_voxels
        );
        println!(
            "    {:<24} {:>7} {:>7} {:>16} {:>22}",
            "", "AUROC", "AUPRC", "best Dice (thr)", "Dice at threshold"
        );
        for v in &ev.voxels {
            let m = &v.metrics;
            let at = match (m.dice_at_threshold, m.threshold) {
                (Some(d), Some(t)) => format!("{d:.3} ({t:.2})"),
                _ => "-".into(),
            };
            println!(
                "    {:<24} {:>7} {:>7} {:>16} {:>22}",
                truncate(&v.name, 24),
                fmt(m.auroc),
                fmt(m.auprc),
                format!("{:.3} ({:.2})", m.best_dice, m.best_dice_threshold),
                at
            );
        }
    }
}

const LESION_PAPER: f64 = evaluate::LESION_PATCH_FRACTION;

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect()
    }
}

fn print_image_table(ev: &ImageEvaluation) {
    println!(
        "adGAN eval: {} normal / {} abnormal image(s){}",
        ev.normal_images,
        ev.abnormal_images,
        if ev.unscored_images > 0 {
            format!(" ({} constant, not scored)", ev.unscored_images)
        } else {
            String::new()
        }
    );
    println!("    {:<24} {:>7} {:>7}", "", "AUROC", "AUPRC");
    for s in &ev.scorers {
        println!(
            "    {:<24} {:>7} {:>7}",
            truncate(&s.name, 24),
            fmt(s.auroc),
            fmt(s.auprc)
        );
    }
    println!(
        "    at the threshold {:.2}: {:.1}% of normal and {:.1}% of abnormal images flagged",
        ev.threshold,
        ev.normal_above_threshold * 100.0,
        ev.abnormal_above_threshold * 100.0
    );
}

/// `adgan train-variants`: several models sharing one phase 1.
pub fn train_variants(a: TrainVariantsArgs) -> Result<()> {
    let device = commands::setup(&a.train.common)?;
    let mut ui = Reporter::new(a.train.common.json);
    let variants: Vec<Variant> = a
        .variants
        .iter()
        .map(|s| Variant::parse(s))
        .collect::<Result<_>>()?;
    let config = commands::config_from(&a.train);
    config.validate()?;
    let data = commands::load_training_data(&a.train, &config, &mut ui)?;
    let out = &a.train.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let t0 = std::time::Instant::now();
    let mut current = String::new();
    let ui = std::cell::RefCell::new(ui);
    let models = evaluate::train_variants(
        &data,
        &config,
        &variants,
        device,
        out,
        &mut |name, p| {
            let mut ui = ui.borrow_mut();
            if name != current {
                current = name.to_string();
                ui.finish();
                ui.info(&format!("variant {name}"));
            }
            ui.update(p)
        },
        &mut |name, model| {
            let path = out.join(format!("{name}.adgan"));
            model.save(&path)?;
            let b = &model.meta.budget;
            ui.borrow().info(&format!(
                "wrote {} (N={} M={}, {:.0}s + {:.0}s)",
                path.display(),
                b.phase1_iterations,
                b.phase2_iterations,
                b.phase1_seconds,
                b.phase2_seconds
            ));
            Ok(())
        },
    )?;
    let mut ui = ui.into_inner();
    ui.finish();
    let written: Vec<serde_json::Value> = models
        .iter()
        .map(|(name, model)| {
            let path = out.join(format!("{name}.adgan"));
            json!({"name": name, "model": path, "budget": model.meta.budget})
        })
        .collect();
    ui.result(json!({"models": written, "seconds": t0.elapsed().as_secs_f64()}));
    Ok(())
}
