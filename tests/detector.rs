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
    let mut scores = s_n.clone();
    scores.extend(&s_a);
    let labels: Vec<bool> = (0..scores.len()).map(|i| i >= s_n.len()).collect();
    adgan::metrics::auroc(&scores, &labels).unwrap()
}

fn data(n: usize, groups: bool) -> TrainingData {
    TrainingData {
        patches: common::normal_patches(n, 42),
        channel_names: vec!["flair".into()],
        // 40 "slices" of n / 40 patches each
        groups: groups.then(|| (0..n as u32).map(|i| i % 40).collect()),
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
    let dir = common::demo_dir();
    let case = |n: &str| dir.join("TCGA-DU-7294").join(n);
    let (c, _) = adgan::Case::from_files(
        &[case("fla_bet.nii.gz")],
        None,
        Some(&case("fusion_simple_seg.nii.gz")),
    )
    .unwrap();
    let cfg = TrainConfig::default();
    let d = TrainingData::from_cases(&[c], vec!["flair".into()], &cfg.sampling).unwrap();
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
