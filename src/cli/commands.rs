//! The commands: each turns parsed arguments into library calls.

use super::ui::Reporter;
use super::{Common, DemoArgs, DevicesArgs, InfoArgs, ScoreArgs, TrainArgs};
use adgan::error::{Error, Result};
use adgan::preprocess::Case;
use adgan::train::{Checkpointing, TrainConfig, TrainingData};
use adgan::{Model, ScoreOptions};
use serde_json::json;
use std::path::{Path, PathBuf};

pub(super) fn split_paths(spec: &str) -> Vec<PathBuf> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

pub(super) fn setup(common: &Common) -> Result<tch::Device> {
    if common.threads > 0 {
        tch::set_num_threads(common.threads as i32);
    }
    adgan::device::parse_device(&common.device)
}

fn channel_names(spec: Option<&str>, n: usize) -> Result<Vec<String>> {
    match spec {
        Some(s) => {
            let names: Vec<String> = s.split(',').map(|x| x.trim().to_string()).collect();
            if names.len() != n {
                return Err(Error::invalid(format!(
                    "--channel-names gives {} name(s) for {n} channel(s)",
                    names.len()
                )));
            }
            Ok(names)
        }
        None => Ok(adgan::preprocess::default_channel_names(n)),
    }
}

pub(super) fn config_from(a: &TrainArgs) -> TrainConfig {
    let mut c = TrainConfig::preset(a.preset.into());
    macro_rules! set {
        ($($field:ident).+ = $v:expr) => {
            if let Some(v) = $v {
                c.$($field).+ = v;
            }
        };
    }
    set!(phase1_iterations = a.phase1_iterations);
    set!(phase2_iterations = a.phase2_iterations);
    set!(batch_size = a.batch_size);
    set!(n_critic = a.n_critic);
    set!(lambda_gp = a.lambda_gp);
    set!(alpha = a.alpha);
    set!(phase1_alpha = a.phase1_alpha);
    set!(pool_every = a.pool_every);
    set!(pool_draw = a.pool_draw);
    set!(critic_init = a.critic_init.map(Into::into));
    set!(adam.lr = a.lr);
    set!(adam.beta1 = a.beta1);
    set!(adam.beta2 = a.beta2);
    set!(sampling.slice_axis = a.slice_axis);
    set!(sampling.stride = a.patch_stride);
    set!(sampling.min_brain_fraction = a.min_brain_fraction);
    set!(calibration_fraction = a.calibration_fraction);
    set!(max_patches = a.max_patches);
    set!(seed = a.seed);
    set!(checkpoint_every = a.checkpoint_every);
    set!(log_every = a.log_every);
    set!(counterfeits = a.counterfeits.clone().map(|k| k.0));
    set!(synthetic_fraction = a.synthetic_fraction);
    set!(ema_decay = a.ema_decay);
    set!(critic_members = a.critic_members);
    set!(critic_width = a.critic_width);
    set!(validate_every = a.validate_every);
    set!(validation_kinds = a.validation_kinds.clone().map(|k| k.0));
    set!(normalisation = a.normalisation);
    set!(intensity_gate = a.intensity_gate);
    set!(augment = a.augment);
    c
}

fn per_case(list: &[PathBuf], cases: usize, what: &str) -> Result<Vec<Option<PathBuf>>> {
    match list.len() {
        0 => Ok(vec![None; cases]),
        n if n == cases => Ok(list.iter().cloned().map(Some).collect()),
        n => Err(Error::invalid(format!(
            "{n} {what} file(s) for {cases} --volume case(s): give none or one per case"
        ))),
    }
}

/// Load training cases and cut their patches.
fn load_training(
    volumes: &[String],
    masks: &[PathBuf],
    excludes: &[PathBuf],
    names: Option<&str>,
    config: &TrainConfig,
    ui: &Reporter,
) -> Result<TrainingData> {
    let masks = per_case(masks, volumes.len(), "--mask")?;
    let excludes = per_case(excludes, volumes.len(), "--exclude")?;
    let mut cases = Vec::new();
    for ((spec, mask), exclude) in volumes.iter().zip(&masks).zip(&excludes) {
        let paths = split_paths(spec);
        let (case, _) = Case::from_files(&paths, mask.as_deref(), exclude.as_deref())?;
        case.warnings.iter().for_each(|w| ui.warn(w));
        cases.push(case);
    }
    let n = cases[0].channels.len();
    let data = TrainingData::from_cases(&cases, channel_names(names, n)?, config)?;
    ui.info(&format!(
        "{} normal patch(es) of {}x{}x{} from {} case(s)",
        data.len(),
        n,
        adgan::nets::PATCH,
        adgan::nets::PATCH,
        cases.len()
    ));
    Ok(data)
}

/// Refuse an output file that could not be written (a folder, or a file in a
/// folder that does not exist) before any long work starts.
fn check_output_file(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::io(path, "is a folder; give the output a file name"));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Error::io(
            path,
            format!("its folder {} does not exist", parent.display()),
        ));
    }
    Ok(())
}

fn run_training(
    data: &TrainingData,
    config: &TrainConfig,
    device: tch::Device,
    out: &Path,
    checkpoint: Option<PathBuf>,
    restart: bool,
    ui: &mut Reporter,
) -> Result<Model> {
    let ckpt = Checkpointing {
        path: checkpoint.or_else(|| Some(PathBuf::from(format!("{}.ckpt", out.display())))),
        restart,
        // Removed below once the model is safely written.
        keep: true,
    };
    if let Some(p) = &ckpt.path {
        if p.exists() && !restart {
            ui.info(&format!("resuming from checkpoint {}", p.display()));
        }
    }
    let model = adgan::train(data, config, device, &ckpt, &mut |p| ui.update(p))?;
    ui.finish();
    model.save(out)?;
    if let Some(p) = &ckpt.path {
        let _ = std::fs::remove_file(p);
    }
    Ok(model)
}

/// Training images named by --images and by image files given as --volume.
fn training_images(a: &TrainArgs) -> (Vec<PathBuf>, Vec<String>) {
    let mut images = a.images.clone();
    let mut volumes = Vec::new();
    for spec in &a.volumes {
        let paths = split_paths(spec);
        if paths.len() == 1 && adgan::images::is_image_path(&paths[0]) {
            images.push(paths[0].clone());
        } else {
            volumes.push(spec.clone());
        }
    }
    (images, volumes)
}

/// Training patches of the volumes or the 2-D images of `a`.
pub(super) fn load_training_data(
    a: &TrainArgs,
    config: &TrainConfig,
    ui: &mut Reporter,
) -> Result<TrainingData> {
    let (image_specs, volumes) = training_images(a);
    if image_specs.is_empty() {
        return load_training(
            &volumes,
            &a.masks,
            &a.excludes,
            a.channel_names.as_deref(),
            config,
            ui,
        );
    }
    if !volumes.is_empty() {
        return Err(Error::invalid(
            "train on volumes or on 2-D images, not both in one model",
        ));
    }
    if !a.masks.is_empty() || !a.excludes.is_empty() {
        return Err(Error::invalid(
            "--mask and --exclude are for volumes; every pixel of a training image counts",
        ));
    }
    let paths = adgan::images::list_images(&image_specs)?;
    ui.info(&format!("reading {} training image(s)", paths.len()));
    let (patches, channels, skipped) = adgan::images::training_patches_of_images(
        &paths,
        None,
        &config.sampling,
        config.normalisation,
        &mut |p| ui.update(p),
    )?;
    ui.finish();
    if !skipped.is_empty() {
        ui.info(&format!("skipped {} constant image(s)", skipped.len()));
    }
    let names = match a.channel_names.as_deref() {
        Some(_) => channel_names(a.channel_names.as_deref(), channels)?,
        None => adgan::images::default_channel_names(channels),
    };
    let data = TrainingData {
        groups: None,
        layout: None,
        patches,
        channel_names: names,
    };
    ui.info(&format!(
        "{} normal patch(es) of {}x{}x{} from {} image(s)",
        data.len(),
        channels,
        adgan::nets::PATCH,
        adgan::nets::PATCH,
        paths.len() - skipped.len()
    ));
    Ok(data)
}

pub fn train(a: TrainArgs) -> Result<()> {
    let device = setup(&a.common)?;
    let mut ui = Reporter::new(a.common.json);
    let config = config_from(&a);
    config.validate()?;
    check_output_file(&a.out)?;
    let data = load_training_data(&a, &config, &mut ui)?;
    ui.info(&format!(
        "training on {}: N={} M={} batch {} ({:?})",
        adgan::device::device_name(device),
        config.phase1_iterations,
        config.phase2_iterations,
        config.batch_size,
        config.critic_init
    ));
    let model = run_training(
        &data,
        &config,
        device,
        &a.out,
        a.checkpoint.clone(),
        a.restart,
        &mut ui,
    )?;
    let b = &model.meta.budget;
    ui.info(&format!(
        "wrote {} (phase 1 {:.1}s, phase 2 {:.1}s, fake pool {} patches)",
        a.out.display(),
        b.phase1_seconds,
        b.phase2_seconds,
        b.pool_size
    ));
    ui.result(json!({"model": a.out, "budget": b, "calibration": model.meta.calibration}));
    Ok(())
}

/// `adgan score` of 2-D images: per-image scores to CSV, maps of images
/// larger than one window to a folder.
fn score_images(a: &ScoreArgs, specs: &[PathBuf], model: &Model, ui: &mut Reporter) -> Result<()> {
    let paths = adgan::images::list_images(specs)?;
    let opts = ScoreOptions {
        stride: a.stride,
        batch_size: a.batch_size,
        slice_axis: Some(2),
        min_brain_fraction: a.min_brain_fraction,
        patch_table: false,
        painting: a.map.painting,
        intensity_gate: !a.map.no_intensity_gate,
    };
    let r = adgan::images::score_images(model, &paths, &opts, a.maps.is_some(), &mut |p| {
        ui.update(p)
    })?;
    ui.finish();
    adgan::report::csv::write_scores_csv(&a.out, &r.scores, None)?;
    let mut maps = Vec::new();
    if let Some(dir) = &a.maps {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for (row, map) in r.scores.iter().zip(&r.maps) {
            if let Some(map) = map {
                let stem = row
                    .path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("image");
                let path = dir.join(format!("{stem}_anomaly.nii.gz"));
                adgan::io::nifti::write_f32_volume(
                    &path,
                    [row.width, row.height, 1],
                    None,
                    map,
                    "adGAN anomaly map",
                )?;
                maps.push(path);
            }
        }
    }
    let threshold = model.meta.calibration.threshold;
    let above = r
        .scores
        .iter()
        .filter(|s| s.score.is_some_and(|v| v >= threshold))
        .count();
    let unscored = r.scores.iter().filter(|s| s.score.is_none()).count();
    ui.info(&format!(
        "wrote {} ({} image(s); {} at or above the threshold {:.2}{})",
        a.out.display(),
        r.scores.len(),
        above,
        threshold,
        if unscored > 0 {
            format!("; {unscored} constant, not scored")
        } else {
            String::new()
        }
    ));
    ui.result(json!({
        "scores": a.out, "images": r.scores.len(), "above_threshold": above,
        "threshold": threshold, "unscored": unscored, "maps": maps,
    }));
    Ok(())
}

pub fn score(a: ScoreArgs) -> Result<()> {
    let device = setup(&a.common)?;
    let mut ui = Reporter::new(a.common.json);
    let model = Model::load(&a.model, device)?;
    check_output_file(&a.out)?;
    if let Some(csv) = &a.patches {
        check_output_file(csv)?;
    }
    let spec = a.volume.clone().unwrap_or_default();
    let paths = split_paths(&spec);
    if !a.images.is_empty() {
        return score_images(&a, &a.images, &model, &mut ui);
    }
    if paths.len() == 1 && adgan::images::is_image_path(&paths[0]) {
        return score_images(&a, &paths, &model, &mut ui);
    }
    model.check_channels(paths.len(), "--volume")?;
    let (case, like) = Case::from_files(&paths, a.mask.as_deref(), None)?;
    case.warnings.iter().for_each(|w| ui.warn(w));
    let opts = ScoreOptions {
        stride: a.stride,
        batch_size: a.batch_size,
        slice_axis: a.slice_axis,
        min_brain_fraction: a.min_brain_fraction,
        patch_table: a.patches.is_some(),
        painting: a.map.painting,
        intensity_gate: !a.map.no_intensity_gate,
    };
    let result = model.score_case(&case, &opts, &mut |p| ui.update(p))?;
    ui.finish();
    adgan::io::nifti::write_map(&a.out, &like, &result.map)?;
    if let Some(csv) = &a.patches {
        adgan::report::csv::write_patch_csv(csv, &result.patches)?;
    }
    let max = result.map.iter().cloned().fold(f32::MIN, f32::max);
    let threshold = model.map_threshold(&opts);
    // The anomaly burden: brain voxels at or above the model's threshold,
    // as a count, a fraction of the brain and a volume.
    let brain = case.brain_mask();
    let brain_voxels = brain.iter().filter(|&&b| b).count();
    let above = result
        .map
        .iter()
        .zip(&brain)
        .filter(|&(&v, &b)| b && v as f64 >= threshold)
        .count();
    let voxel_ml = like.spacing().iter().map(|&s| s as f64).product::<f64>() / 1000.0;
    let fraction = if brain_voxels > 0 {
        above as f64 / brain_voxels as f64
    } else {
        0.0
    };
    ui.info(&format!(
        "wrote {} ({} windows in {:.1}s; max score {:.2}; {} brain voxel(s), {:.2} mL, at or above the threshold {:.2})",
        a.out.display(),
        result.windows_scored,
        result.seconds,
        max,
        above,
        above as f64 * voxel_ml,
        threshold
    ));
    ui.result(json!({
        "map": a.out, "patches": a.patches, "windows": result.windows_scored,
        "seconds": result.seconds, "max_score": max, "voxels_above_threshold": above,
        "threshold": threshold, "brain_voxels": brain_voxels, "anomalous_fraction": fraction,
        "voxel_volume_ml": voxel_ml, "anomalous_volume_ml": above as f64 * voxel_ml,
        "device": adgan::device::device_name(device),
    }));
    Ok(())
}

/// The devices `--device` accepts here: `cpu`, then `cuda:0`, `cuda:1`, ...
/// as libtorch sees them; `default` is what `auto` picks.
pub fn devices(a: DevicesArgs) -> Result<()> {
    let cuda = adgan::device::cuda_device_count();
    let mut names = vec!["cpu".to_string()];
    names.extend((0..cuda).map(|i| format!("cuda:{i}")));
    let default = adgan::device::device_name(adgan::device::parse_device("auto")?);
    let threads = tch::get_num_threads();
    if a.json {
        println!(
            "{}",
            json!({"event": "result", "devices": names, "default": default,
                   "cuda_device_count": cuda, "cpu_threads": threads})
        );
    } else {
        for n in &names {
            let note = if *n == default { "  (auto)" } else { "" };
            println!("{n}{note}");
        }
        if cuda == 0 {
            eprintln!("libtorch sees no CUDA device: training and scoring run on the CPU ({threads} threads)");
        }
    }
    Ok(())
}

pub fn info(a: InfoArgs) -> Result<()> {
    let model = Model::load(&a.model, tch::Device::Cpu)?;
    let m = &model.meta;
    if let Some(png) = &a.validation_png {
        let sel = m.selection.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "{} was trained without validation: it has no validation curve",
                a.model.display()
            ))
        })?;
        adgan::report::render::write_validation_png(png, &sel.curve, sel.chosen_iteration)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(m).map_err(|e| Error::invalid(e.to_string()))?
        );
        return Ok(());
    }
    let t = &m.training;
    let b = &m.budget;
    println!("{}", a.model.display());
    println!(
        "  format            {} v{} (written by adGAN {})",
        m.format, m.format_version, m.library_version
    );
    println!(
        "  channels          {} ({})",
        m.channels,
        m.channel_names.join(", ")
    );
    println!(
        "  patches           {0}x{0}, slice axis {1}, normalisation {2}",
        m.patch_size, m.slice_axis, m.normalisation
    );
    println!(
        "  intensity gate    {}",
        match &m.intensity_gate {
            Some(g) => format!(
                "bright on channel {} ({}): 0 at the normal median {:.2}, 1 at its 99.9th percentile {:.2} ({} normal voxels sampled)",
                g.channel,
                m.channel_names.get(g.channel).map_or("?", String::as_str),
                g.reference.median,
                g.reference.tail,
                g.reference.voxels
            ),
            None => "off (maps as the critic paints them)".to_string(),
        }
    );
    println!(
        "  augmentation      {}",
        match m.training.augment {
            adgan::config::Augment::None => "none".to_string(),
            a => format!("{} (normal training patches)", a.name()),
        }
    );
    println!(
        "  variant           {}: {}",
        adgan::evaluate::variant_name(&model),
        match (t.critic_init, t.phase1_iterations) {
            (_, 0) => "critic trained from its initialisation",
            (adgan::train::CriticInit::FineTune, _) => "critic fine-tuned from phase 1",
            (adgan::train::CriticInit::Reset, _) => "critic reset after phase 1",
        }
    );
    println!(
        "  critic            {}",
        match t.critic_members {
            1 => format!("one critic, {} maps in its first layer", t.critic_width),
            k => format!(
                "mean of {k} critics from their own initial weights, {} maps in each one's first layer",
                t.critic_width
            ),
        }
    );
    println!(
        "  budget            N={} M={} batch {} on {} ({:.0}s + {:.0}s)",
        b.phase1_iterations,
        b.phase2_iterations,
        t.batch_size,
        b.device,
        b.phase1_seconds,
        b.phase2_seconds
    );
    println!(
        "  losses            lambda {} alpha {} n_critic {} lr {}",
        t.lambda_gp, t.alpha, t.n_critic, t.adam.lr
    );
    println!(
        "  fake pool         {} patches from {} draws (every {} iterations, {} each)",
        b.pool_size, b.pool_draws, t.pool_every, t.pool_draw
    );
    println!(
        "  counterfeits      {} (synthetic share {} of each phase-2 fake batch)",
        adgan::counterfeit::Counterfeit::list_name(&t.counterfeits),
        t.synthetic_fraction
    );
    println!(
        "  data              {} training + {} held-out normal patches",
        b.train_patches, b.calibration_patches
    );
    if let Some(sel) = &m.selection {
        println!(
            "  selection         {} weights validated every {} iterations on {} held-out normal patches vs {} anomalies; chose iteration {} (validation AUROC {:.4})",
            if sel.ema { format!("moving-average (decay {})", t.ema_decay) } else { "raw".into() },
            t.validate_every,
            sel.validation_patches,
            adgan::counterfeit::Counterfeit::list_name(&sel.validation_kinds),
            sel.chosen_iteration,
            sel.chosen_auroc
        );
        let curve: Vec<String> = sel
            .curve
            .iter()
            .map(|(i, a)| format!("{i}:{a:.3}"))
            .collect();
        println!("  validation curve  {}", curve.join(" "));
    } else if t.ema_decay > 0.0 {
        println!(
            "  selection         moving average of the critic's weights (decay {})",
            t.ema_decay
        );
    }
    println!(
        "  calibration       raw mean {:.4} std {:.4}; threshold {:.2}",
        m.calibration.mean, m.calibration.std, m.calibration.threshold
    );
    let quantiles = |qs: &[(f64, f64)]| -> String {
        let q: Vec<String> = qs
            .iter()
            .map(|(p, z)| format!("p{}={:.2}", p * 100.0, z))
            .collect();
        q.join(" ")
    };
    println!(
        "  normal quantiles  {}",
        quantiles(&m.calibration.quantiles)
    );
    if let Some(map) = &m.calibration.map {
        println!(
            "  map calibration   {} at stride {} over {} held-out normal voxels: threshold {:.2}",
            map.painting, map.stride, map.voxels, map.threshold
        );
        println!("  map quantiles     {}", quantiles(&map.quantiles));
    }
    Ok(())
}

pub fn demo(a: DemoArgs) -> Result<()> {
    super::demo::run(a)
}
