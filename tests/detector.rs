//! The detector beyond the paper: synthetic counterfeits, the held-out
//! split by whole slices, label-free selection of the critic, and the model
//! file's record of it.

mod common;

use adgan::counterfeit::Counterfeit;
use adgan::train::{held_out_split, Checkpointing, TrainConfig};
use adgan::{Model, TrainingData};
use tch::{Device, Kind, Tensor};

/// Normal patches with a soft round region made brighter by `amp`, a value
/// inside the normal patches' own range (they span about -1.7 to 1.7):
/// the kind of anomaly the paper's +4 squares never test.
/// Also returns where each region is (`[n, 32, 32]`, 1 inside).
fn in_range_anomalies(n: usize, seed: u64, amp: f64) -> (Tensor, Tensor) {
    let base = common::normal_patches(n, seed);
    let mut r = common::Lcg(seed ^ 0x5EED);
    let mut out = Vec::with_capacity(n);
    let mut inside = Vec::with_capacity(n);
    for i in 0..n {
        let (cy, cx) = (8.0 + 16.0 * r.next_f32(), 8.0 + 16.0 * r.next_f32());
        let rad = 4.0 + 4.0 * r.next_f32();
        let yy = Tensor::arange(32, (Kind::Float, Device::Cpu)).view([32, 1]);
        let xx = Tensor::arange(32, (Kind::Float, Device::Cpu)).view([1, 32]);
        let d = ((yy - cy as f64).square() + (xx - cx as f64).square()).sqrt();
        let blob = ((-(&d - rad as f64)) * 1.5).sigmoid() * amp;
        out.push(base.get(i as i64) + blob.unsqueeze(0));
        inside.push(d.le(rad as f64).to_kind(Kind::Float));
    }
    (Tensor::stack(&out, 0), Tensor::stack(&inside, 0))
}

fn auroc(model: &Model, normal: &Tensor, abnormal: &Tensor) -> f64 {
    let s_n = model.scores(normal, 256).unwrap();
    let s_a = model.scores(abnormal, 256).unwrap();
    auroc_of_scores(&s_n, &s_a)
}

/// AUROC of abnormal against normal scores.
fn auroc_of_scores(normal: &[f64], abnormal: &[f64]) -> f64 {
    let mut scores = normal.to_vec();
    scores.extend(abnormal);
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= normal.len()).collect();
    adgan::metrics::auroc(&scores, &labels).unwrap()
}

fn data(n: usize, groups: bool) -> TrainingData {
    TrainingData {
        patches: common::normal_patches(n, 42),
        channel_names: vec!["flair".into()],
        // 40 "slices" of n / 40 patches each
        groups: groups.then(|| (0..n as u32).map(|i| i % 40).collect()),
        layout: None,
    }
}

fn synthetic_only(m: u64) -> TrainConfig {
    let mut c = common::tiny_config(0, m);
    c.counterfeits = vec![Counterfeit::Blend, Counterfeit::Intensity];
    c.synthetic_fraction = 1.0;
    c.ema_decay = 0.9;
    c.validate_every = 20;
    c.validation_kinds = vec![Counterfeit::Texture];
    c
}

#[test]
fn synthetic_counterfeits_rank_in_range_anomalies_above_normal_patches() {
    let d = data(800, true);
    let model = adgan::train(
        &d,
        &synthetic_only(200),
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    let normal = common::normal_patches(200, 999);
    let (abnormal, inside) = in_range_anomalies(200, 998, 1.5);
    let max_normal = common::to_vec(&normal.abs().max().view([1]))[0];
    assert!(max_normal > 1.5, "the anomaly lies inside the normal range");
    let auc = auroc(&model, &normal, &abnormal);
    eprintln!("in-range anomalies: AUROC {auc:.4}");
    assert!(auc > 0.9, "AUROC {auc}");

    // The attribution painting's premise: the critic's anomaly comes from
    // the region's pixels, not from the rest of the window.
    let (_, attr) = model.raw_scores_and_attributions(&abnormal, 64).unwrap();
    // One critic: one attribution a window.
    assert_eq!(attr.size(), vec![200, 1, 32, 32]);
    let attr = attr.squeeze_dim(1);
    let per_pixel = |m: &Tensor| {
        let a = (&attr * m).sum(Kind::Float) / m.sum(Kind::Float);
        common::to_vec(&a.view([1]))[0]
    };
    let (on, off) = (per_pixel(&inside), per_pixel(&(1.0 - &inside)));
    eprintln!("attribution per pixel: {on:.4} inside the regions, {off:.4} outside");
    assert!(on > 2.0 * off, "inside {on}, outside {off}");
}

#[test]
fn held_out_patches_come_from_slices_training_never_sees() {
    let d = data(400, true);
    let c = TrainConfig::default();
    let (held, train) = held_out_split(&d, &c);
    let groups = d.groups.as_ref().unwrap();
    let held_groups: std::collections::BTreeSet<u32> =
        held.iter().map(|&i| groups[i as usize]).collect();
    assert!(!held.is_empty() && !train.is_empty());
    for &i in &train {
        assert!(
            !held_groups.contains(&groups[i as usize]),
            "training patch {i} shares slice {} with a held-out patch",
            groups[i as usize]
        );
    }
    assert_eq!(held.len() + train.len(), 400);
    // About the calibration fraction (10%), whole slices of 10 patches.
    assert!((40..=50).contains(&held.len()), "{}", held.len());
    // Seeded: the same split every time, another with another seed.
    assert_eq!(held_out_split(&d, &c).0, held);
    let mut other = c.clone();
    other.seed = 1;
    assert_ne!(held_out_split(&d, &other).0, held);
}

#[test]
fn real_volumes_are_held_out_by_whole_slices() {
    let c = demo_training_case();
    let cfg = TrainConfig::default();
    let d = TrainingData::from_cases(&[c], vec!["flair".into()], &cfg).unwrap();
    let groups = d.groups.clone().unwrap();
    assert_eq!(groups.len(), d.len());
    let (held, train) = held_out_split(&d, &cfg);
    let held_slices: std::collections::BTreeSet<u32> =
        held.iter().map(|&i| groups[i as usize]).collect();
    assert!(held_slices.len() >= 3, "{held_slices:?}");
    assert!(train
        .iter()
        .all(|&i| !held_slices.contains(&groups[i as usize])));
}

#[test]
fn selection_keeps_the_best_validated_snapshot_and_the_file_keeps_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(400, true);
    let c = synthetic_only(60);
    let model = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    let sel = model.meta.selection.clone().expect("a selection report");
    assert_eq!(
        sel.curve.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![20, 40, 60]
    );
    let best = sel.curve.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    assert_eq!(sel.chosen_auroc, best);
    assert!(sel
        .curve
        .iter()
        .any(|&(i, a)| i == sel.chosen_iteration && a == best));
    assert_eq!(sel.validation_kinds, vec![Counterfeit::Texture]);
    assert_eq!(
        adgan::evaluate::variant_name(&model),
        "adGAN (counterfeits)"
    );
    assert!(sel.ema);
    let path = dir.path().join("m.adgan");
    model.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta.selection, Some(sel));
    assert_eq!(loaded.meta.training.counterfeits, c.counterfeits);
    assert_eq!(loaded.meta.training.synthetic_fraction, 1.0);
}

#[test]
fn an_interrupted_synthetic_training_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(200, true);
    let mut c = synthetic_only(50);
    c.validate_every = 15;
    c.checkpoint_every = 10;
    let straight = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    let ckpt = Checkpointing {
        path: Some(dir.path().join("run.ckpt")),
        restart: false,
        keep: false,
    };
    // Stop after iteration 33: after two validations, between checkpoints.
    let r = adgan::train(&d, &c, Device::Cpu, &ckpt, &mut |p| p.iteration != 33);
    assert!(matches!(r, Err(adgan::Error::Cancelled)), "{r:?}");
    let resumed = adgan::train(&d, &c, Device::Cpu, &ckpt, &mut |_| true).unwrap();
    assert_eq!(resumed.meta.selection, straight.meta.selection);
    let x = common::normal_patches(30, 7);
    assert_eq!(
        common::to_vec(&resumed.raw_scores(&x, 64).unwrap()),
        common::to_vec(&straight.raw_scores(&x, 64).unwrap())
    );
}

#[test]
fn an_ensemble_of_critics_is_saved_whole_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(200, true);
    let mut c = synthetic_only(30);
    c.critic_members = 3;
    c.critic_width = 8;
    c.checkpoint_every = 10;
    let straight = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    // Calibrated like any model: its held-out normal patches at mean 0, SD 1.
    let x = common::normal_patches(30, 7);
    let scores = straight.scores(&x, 64).unwrap();
    assert!(scores.iter().all(|s| s.is_finite()));
    // The file holds every member and says what the critic is, at format
    // version 2 (which older libraries refuse by name, tests/errors.rs).
    let path = dir.path().join("m.adgan");
    straight.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta.format_version, 2);
    assert_eq!(
        (
            loaded.meta.training.critic_members,
            loaded.meta.training.critic_width
        ),
        (3, 8)
    );
    assert_eq!(
        common::to_vec(&loaded.raw_scores(&x, 64).unwrap()),
        common::to_vec(&straight.raw_scores(&x, 64).unwrap())
    );
    // Interrupted between checkpoints, resumed: the same model.
    let ckpt = Checkpointing {
        path: Some(dir.path().join("run.ckpt")),
        restart: false,
        keep: false,
    };
    let r = adgan::train(&d, &c, Device::Cpu, &ckpt, &mut |p| p.iteration != 23);
    assert!(matches!(r, Err(adgan::Error::Cancelled)), "{r:?}");
    let resumed = adgan::train(&d, &c, Device::Cpu, &ckpt, &mut |_| true).unwrap();
    assert_eq!(
        common::to_vec(&resumed.raw_scores(&x, 64).unwrap()),
        common::to_vec(&straight.raw_scores(&x, 64).unwrap())
    );
    // The paper's one critic is still written in the format older
    // libraries read.
    let one = adgan::train(
        &d,
        &synthetic_only(5),
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(one.meta.format_version, 1);
}

#[test]
fn options_that_cannot_work_are_refused_by_name() {
    let mut c = synthetic_only(10);
    c.synthetic_fraction = 0.5; // needs a fake pool, and phase 1 is 0
    assert!(c.validate().unwrap_err().to_string().contains("fake pool"));
    let mut c = synthetic_only(10);
    c.counterfeits.clear();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("counterfeit"));
    let mut c = synthetic_only(10);
    c.validation_kinds.clear();
    assert!(c.validate().unwrap_err().to_string().contains("validation"));
    let mut c = synthetic_only(10);
    c.ema_decay = 1.0;
    assert!(c.validate().unwrap_err().to_string().contains("ema_decay"));
    // The paper's preset stays the paper's: no counterfeit, no selection.
    let p = TrainConfig::default();
    assert!(p.counterfeits.is_empty() && p.synthetic_fraction == 0.0);
    assert!(p.ema_decay == 0.0 && p.validate_every == 0);
}

/// The demo's training volume, its tumour label as the exclusion mask.
fn demo_training_case() -> adgan::Case {
    let dir = common::demo_dir().join("TCGA-DU-7294");
    adgan::Case::from_files(
        &[dir.join("fla_bet.nii.gz")],
        None,
        Some(&dir.join("fusion_simple_seg.nii.gz")),
    )
    .unwrap()
    .0
}

/// Mean and SD of the normalised values of `keep` voxels.
fn stats_of(norm: &adgan::preprocess::Normalised, keep: &[bool]) -> (f64, f64) {
    let v = common::to_vec(&norm.data);
    let x: Vec<f64> = v
        .iter()
        .zip(keep)
        .filter(|(_, &k)| k)
        .map(|(&a, _)| a as f64)
        .collect();
    let m = x.iter().sum::<f64>() / x.len() as f64;
    let s = (x.iter().map(|a| (a - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    (m, s)
}

#[test]
fn clipped_normalisation_puts_healthy_tissue_on_one_scale_whatever_the_lesion_load() {
    use adgan::preprocess::{normalise, Normalisation};
    let case = demo_training_case();
    let brain = case.brain_mask();
    let lesion = case.exclude.clone().unwrap();
    // The same volume with a large bright "oedema": 15% of its brain voxels
    // (a slab) replaced by values 3.5 to 4.5 SD of the brain's intensities
    // above its mean (about where the large lesion of ../shared's
    // BraTS-GLI-example lies).
    let inside: Vec<usize> = (0..brain.len()).filter(|&i| brain[i]).collect();
    let raw: Vec<f64> = inside.iter().map(|&i| case.channels[0][i] as f64).collect();
    let m = raw.iter().sum::<f64>() / raw.len() as f64;
    let sd = (raw.iter().map(|a| (a - m).powi(2)).sum::<f64>() / raw.len() as f64).sqrt();
    let mut loaded = case.clone();
    let mut healthy = vec![false; brain.len()];
    let cut = inside.len() * 15 / 100;
    for (k, &i) in inside.iter().enumerate() {
        if k < cut {
            loaded.channels[0][i] = (m + (3.5 + (k % 100) as f64 / 100.0) * sd) as f32;
        } else {
            healthy[i] = !lesion[i];
        }
    }
    let shift = |method| {
        let (m0, s0) = stats_of(&normalise(&case, method).unwrap(), &healthy);
        let (m1, s1) = stats_of(&normalise(&loaded, method).unwrap(), &healthy);
        ((m1 - m0).abs(), (s1 / s0 - 1.0).abs(), s0)
    };
    let (dm, ds, s0) = shift(Normalisation::ClippedZScore);
    // (The slab's own healthy tissue is gone from the statistics: a small
    // shift of the mean remains, measured 0.06.)
    assert!(
        dm < 0.1 && ds < 0.05,
        "clipped: mean moved {dm}, scale {ds}"
    );
    assert!((s0 - 1.0).abs() < 0.1, "clipped: healthy SD {s0}");
    // The paper's z-score moves the same tissue by far more.
    let (dm, ds, _) = shift(Normalisation::ZScore);
    assert!(dm > 0.3 && ds > 0.3, "zscore: mean moved {dm}, scale {ds}");
}

#[test]
fn the_model_file_records_its_normalisation_and_scoring_applies_it() {
    use adgan::preprocess::Normalisation;
    let dir = tempfile::tempdir().unwrap();
    let mut c = synthetic_only(5);
    c.normalisation = Normalisation::ClippedZScore;
    let model = adgan::train(
        &data(200, true),
        &c,
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    let path = dir.path().join("m.adgan");
    model.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta.normalisation, "zscore-in-brain-clipped");
    assert_eq!(loaded.normalisation(), Normalisation::ClippedZScore);
    assert_eq!(
        Normalisation::parse("clipped").unwrap(),
        Normalisation::ClippedZScore
    );
    let e = Normalisation::parse("minmax").unwrap_err().to_string();
    assert!(e.contains("minmax") && e.contains("clipped"), "{e}");
}

/// Slices `z0..z1` of a case (its channels and exclusion mask).
fn crop_z(case: &adgan::Case, z0: usize, z1: usize) -> adgan::Case {
    let [nx, ny, _] = case.dims;
    let plane = nx * ny;
    let cut = |v: &Vec<f32>| v[z0 * plane..z1 * plane].to_vec();
    adgan::Case {
        warnings: Vec::new(),
        name: format!("{} (slices {z0}-{z1})", case.name),
        dims: [nx, ny, z1 - z0],
        channels: case.channels.iter().map(cut).collect(),
        brain: None,
        exclude: case
            .exclude
            .as_ref()
            .map(|m| m[z0 * plane..z1 * plane].to_vec()),
    }
}

#[test]
fn the_map_threshold_flags_few_normal_voxels_and_is_on_the_scale_of_the_map() {
    use adgan::score::{Painting, ScoreOptions};
    let case = crop_z(&demo_training_case(), 50, 100);
    let mut c = synthetic_only(40);
    c.validate_every = 0;
    let d =
        TrainingData::from_cases(std::slice::from_ref(&case), vec!["flair".into()], &c).unwrap();
    let model = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    let map_cal = model
        .meta
        .calibration
        .map
        .clone()
        .expect("a map calibration");
    // Ungated maps are painted by attribution, and scoring paints as the
    // model was calibrated unless told otherwise.
    let painting = Painting::Attribution(adgan::score::ATTRIBUTION_SMOOTHING).to_string();
    assert_eq!(map_cal.painting, painting);
    assert_eq!(model.painting(None).to_string(), painting);
    assert_eq!(model.painting(Some(Painting::Mean)), Painting::Mean);
    assert_eq!(map_cal.stride, c.sampling.stride);
    assert!(!map_cal.gated, "tiny configs have no gate");
    let thr = model.meta.calibration.threshold_for(&painting, false);
    assert_eq!(thr, map_cal.threshold);
    assert!(thr >= model.meta.calibration.threshold);
    assert_eq!(
        model.meta.calibration.threshold_for("mean", false),
        model.meta.calibration.threshold
    );
    // The whole (normal part of the) volume scored as a user would: the map
    // threshold flags a small share of its normal voxels, near the 0.1% it
    // was set at on the held-out slices; the window threshold, on another
    // scale, flags more.
    let opts = ScoreOptions {
        stride: c.sampling.stride,
        ..Default::default()
    };
    let map = model.score_case(&case, &opts, &mut |_| true).unwrap().map;
    let brain = case.brain_mask();
    let lesion = case.exclude.clone().unwrap();
    let normal: Vec<f32> = (0..map.len())
        .filter(|&i| brain[i] && !lesion[i])
        .map(|i| map[i])
        .collect();
    let share =
        |t: f64| normal.iter().filter(|&&v| v as f64 >= t).count() as f64 / normal.len() as f64;
    let at_map = share(thr);
    let at_window = share(model.meta.calibration.threshold);
    eprintln!("normal voxels above the map threshold {at_map}, the window threshold {at_window}");
    assert!(
        (0.0001..0.01).contains(&at_map),
        "share above the map threshold {at_map}"
    );
    assert!(at_window >= at_map);
    // The file keeps it.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.adgan");
    model.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta.calibration.map, Some(map_cal));
}

#[test]
fn the_intensity_gate_keeps_the_critics_map_only_where_tissue_is_brighter_than_normal() {
    use adgan::gate::GateChoice;
    use adgan::score::{Painting, ScoreOptions};
    use adgan::train::Preset;
    assert_eq!(
        TrainConfig::preset(Preset::Quick).intensity_gate,
        GateChoice::Bright(0)
    );
    for p in [Preset::Paper, Preset::PaperQuick] {
        assert_eq!(TrainConfig::preset(p).intensity_gate, GateChoice::Off);
    }
    let case = crop_z(&demo_training_case(), 50, 100);
    let mut c = synthetic_only(40);
    c.validate_every = 0;
    c.intensity_gate = GateChoice::Bright(0);
    let d =
        TrainingData::from_cases(std::slice::from_ref(&case), vec!["flair".into()], &c).unwrap();
    let model = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    let g = model.meta.intensity_gate.expect("a gate");
    assert_eq!(g.channel, 0);

    // The reference is where the normal voxels (brain, tumour excluded) lie
    // after normalisation: their median and 99.9th percentile.
    let norm = adgan::preprocess::normalise(&case, model.normalisation()).unwrap();
    let value = adgan::io::tensor_file::to_f32_vec(&norm.data.get(0)).unwrap();
    let brain = case.brain_mask();
    let lesion = case.exclude.clone().unwrap();
    let mut normal: Vec<f32> = (0..value.len())
        .filter(|&i| brain[i] && !lesion[i])
        .map(|i| value[i])
        .collect();
    normal.sort_by(f32::total_cmp);
    let q = |p: f64| normal[(p * (normal.len() - 1) as f64).round() as usize] as f64;
    assert!((g.reference.median - q(0.5)).abs() < 0.02, "{g:?}");
    assert!((g.reference.tail - q(0.999)).abs() < 0.05, "{g:?}");
    assert!(g.reference.tail > g.reference.median + 1.0);

    // The map calibration paints the held-out slices gated, with the mixed
    // painting of gated maps, and its threshold is the one for gated maps
    // painted so only.
    let painting = Painting::Mixed(adgan::score::ATTRIBUTION_SMOOTHING).to_string();
    assert_eq!(model.painting(None).to_string(), painting);
    let map_cal = model
        .meta
        .calibration
        .map
        .clone()
        .expect("a map calibration");
    assert!(map_cal.gated);
    let cal = &model.meta.calibration;
    assert_eq!(cal.threshold_for(&painting, true), map_cal.threshold);
    assert_eq!(cal.threshold_for(&painting, false), cal.threshold);
    let attribution = Painting::Attribution(adgan::score::ATTRIBUTION_SMOOTHING).to_string();
    assert_eq!(cal.threshold_for(&attribution, true), cal.threshold);

    // Scored gated, the map is the critic's (0 when negative) times the
    // gate's weight of each voxel: 0 wherever tissue is no brighter than
    // the normal median.
    let opts = ScoreOptions {
        stride: 8,
        ..Default::default()
    };
    let gated = model.score_case(&case, &opts, &mut |_| true).unwrap().map;
    let ungated_opts = ScoreOptions {
        intensity_gate: false,
        ..opts
    };
    let ungated = model
        .score_case(&case, &ungated_opts, &mut |_| true)
        .unwrap()
        .map;
    let mut zeroed = 0;
    for i in (0..gated.len()).filter(|&i| brain[i]) {
        let want = ungated[i].max(0.0) * g.weight(value[i]);
        assert!(
            (gated[i] - want).abs() <= 1e-5 * (1.0 + want.abs()),
            "voxel {i}: {} against {want}",
            gated[i]
        );
        if value[i] as f64 <= g.reference.median {
            assert_eq!(gated[i], 0.0);
            zeroed += 1;
        }
    }
    assert!(zeroed > brain.iter().filter(|&&b| b).count() / 3);
    // The tumour (bright on FLAIR) keeps its score; normal tissue loses most.
    let mean = |m: &[f32], keep: &dyn Fn(usize) -> bool| {
        let v: Vec<f64> = (0..m.len())
            .filter(|&i| keep(i))
            .map(|i| m[i] as f64)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let in_lesion = |i: usize| brain[i] && lesion[i];
    let in_normal = |i: usize| brain[i] && !lesion[i];
    let (gl, gn) = (mean(&gated, &in_lesion), mean(&gated, &in_normal));
    eprintln!("gated map: tumour {gl:.3}, normal {gn:.3}");
    assert!(gl > 5.0 * gn.max(1e-6), "tumour {gl}, normal {gn}");

    // A gate on a channel the data lacks is refused by name.
    c.intensity_gate = GateChoice::Bright(1);
    let e = adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("channel 1") && e.contains("1 channel"), "{e}");
}

#[test]
fn dihedral_augmentation_keeps_normal_tissue_in_an_unseen_orientation_normal_and_the_file_records_it(
) {
    use adgan::config::Augment;
    let case = crop_z(&demo_training_case(), 60, 90);
    let mut c = synthetic_only(400);
    c.validate_every = 0;
    let d =
        TrainingData::from_cases(std::slice::from_ref(&case), vec!["flair".into()], &c).unwrap();
    let train = |augment| {
        let mut c = c.clone();
        c.augment = augment;
        adgan::train(&d, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap()
    };
    let (plain, turned) = (train(Augment::None), train(Augment::Dihedral));
    // Normal patches of the volume turned by 90 degrees (transposed and
    // mirrored) are normal tissue in an orientation the plain critic never
    // saw, as a new subject's anatomy can be. The plain critic tells them
    // from the same patches as they are: it scores them higher (more
    // anomalous) on average, and their scores separate (AUROC of turned
    // against as-is above 0.5). The augmented critic saw every orientation
    // and scores both alike. Measured over 4,096 patches after 400
    // iterations (AMD EPYC): plain AUROC 0.519 and mean gap 0.17 SD,
    // augmented 0.495 and -0.02. The rates above the threshold, a 1% tail
    // of 512 patches after 200 iterations, were too few to compare across
    // CPUs (Intel: 4.1% against 1.2%; AMD: 3.3% against 1.8%).
    let x = d.patches.narrow(0, 0, d.patches.size()[0].min(4096));
    let x90 = x.transpose(2, 3).flip([3]);
    let separation = |m: &Model| {
        let as_is = m.scores(&x, 256).unwrap();
        let turned = m.scores(&x90, 256).unwrap();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        (
            auroc_of_scores(&as_is, &turned) - 0.5,
            mean(&turned) - mean(&as_is),
        )
    };
    let ((pa, pg), (ta, tg)) = (separation(&plain), separation(&turned));
    eprintln!(
        "turned against as-is, AUROC - 0.5 / mean score gap: plain {pa:.4} / {pg:.4}, augmented {ta:.4} / {tg:.4}"
    );
    assert!(pa > 0.0 && pg > 0.08, "plain: {pa} / {pg}");
    assert!(
        ta < pa && tg.abs() < 0.5 * pg,
        "augmented {ta} / {tg}, plain {pa} / {pg}"
    );
    // The model file records it; the quick preset augments volumes.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.adgan");
    turned.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta.training.augment, Augment::Dihedral);
    assert_eq!(plain.meta.training.augment, Augment::None);
    assert_eq!(
        TrainConfig::preset(adgan::train::Preset::Quick).augment,
        Augment::Dihedral
    );
    for p in [
        adgan::train::Preset::Paper,
        adgan::train::Preset::PaperQuick,
    ] {
        assert_eq!(TrainConfig::preset(p).augment, Augment::None);
    }
    // Patches without a volume's layout (2-D images) are never turned.
    let mut c2 = synthetic_only(2);
    c2.augment = Augment::Dihedral;
    let m = adgan::train(
        &data(200, true),
        &c2,
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(m.meta.training.augment, Augment::None);
}
