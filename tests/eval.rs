//! Evaluation: metrics against known values, the patch protocol against a
//! brute-force count, pooled evaluation, and the ablation runner against
//! plain training.

mod common;

use adgan::evaluate::{
    self, map_means, patch_protocol, patch_table, voxel_metrics, voxel_metrics_of, EvalOptions,
    LabelledCase, Variant, VariantKind,
};
use adgan::metrics::{auprc, auroc, best_dice, dice};
use adgan::train::{train, Checkpointing, CriticInit, TrainConfig, TrainingData};
use adgan::{Model, ScoreOptions};
use tch::{Device, Tensor};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn metrics_match_scikit_learn() {
    // Reference values from scikit-learn 1.9.1 (roc_auc_score,
    // average_precision_score) on the same vectors.
    let s = [
        0.12, 0.93, 0.45, 0.45, 0.77, 0.05, 0.61, 0.33, 0.88, 0.45, 0.21, 0.70, 0.58, 0.05, 0.99,
        0.40,
    ];
    let y = [0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0].map(|v| v == 1);
    assert!(close(auroc(&s, &y).unwrap(), 0.9206349206349206, 1e-12));
    assert!(close(auprc(&s, &y).unwrap(), 0.9142857142857141, 1e-12));
    let s2 = [-1.5, 2.25, 0.0, 3.5, -0.25, 1.0, 1.0, 2.25, -3.0, 0.5];
    let y2 = [0, 1, 0, 1, 0, 1, 0, 0, 0, 1].map(|v| v == 1);
    assert!(close(auroc(&s2, &y2).unwrap(), 0.8333333333333334, 1e-12));
    assert!(close(auprc(&s2, &y2).unwrap(), 0.7333333333333333, 1e-12));
}

#[test]
fn dice_and_voxel_metrics_on_hand_made_masks() {
    // A 4x4 "slice": lesion is the top-left 2x2 block.
    let lesion: Vec<bool> = (0..16).map(|i| i % 4 < 2 && i / 4 < 2).collect();
    // Prediction: the top row (4 voxels, 2 of them lesion): Dice 2*2/(4+4).
    let pred: Vec<bool> = (0..16).map(|i| i / 4 == 0).collect();
    assert!(close(dice(&pred, &lesion), 0.5, 1e-12));
    // A map whose values rank lesion voxels first, one healthy voxel tied.
    let map: Vec<f32> = (0..16)
        .map(|i| {
            if lesion[i] || i == 15 {
                3.0
            } else {
                (i % 3) as f32
            }
        })
        .collect();
    let brain = vec![true; 16];
    let v = voxel_metrics(&map, &brain, &lesion, Some(2.5));
    assert_eq!((v.brain_voxels, v.lesion_voxels), (16, 4));
    // Threshold 3 takes the 4 lesion voxels and voxel 15: Dice 8/9.
    assert!(close(v.best_dice, 8.0 / 9.0, 1e-12), "{v:?}");
    assert_eq!(v.best_dice_threshold, 3.0);
    assert!(close(v.dice_at_threshold.unwrap(), 8.0 / 9.0, 1e-12));
    // 5 voxels at 3.0 (4 lesion): AP = 4/5; AUROC: 11 healthy, 1 tied.
    assert!(close(v.auprc.unwrap(), 0.8, 1e-12));
    assert!(close(v.auroc.unwrap(), 1.0 - 0.5 / 12.0, 1e-12));
    // Outside the brain does not count.
    let mut brain2 = brain.clone();
    brain2[15] = false;
    let v2 = voxel_metrics(&map, &brain2, &lesion, None);
    assert_eq!(v2.brain_voxels, 15);
    assert_eq!(v2.best_dice, 1.0);
    assert_eq!(v2.dice_at_threshold, None);
    // Same as the restricted form.
    let scores: Vec<f64> = map.iter().map(|&m| m as f64).collect();
    let same = voxel_metrics_of(&scores, &lesion, Some(2.5));
    assert_eq!(same.auprc, v.auprc);
    assert_eq!(same.best_dice, v.best_dice);
    let (d, t) = best_dice(&scores, &lesion);
    assert_eq!((d, t), (v.best_dice, v.best_dice_threshold));
}

fn tiny_model(seed: u64) -> Model {
    let data = TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(48, seed),
        channel_names: vec!["flair".into()],
    };
    let mut c = common::tiny_config(2, 2);
    c.batch_size = 8;
    c.seed = seed;
    train(
        &data,
        &c,
        Device::Cpu,
        &Checkpointing::default(),
        &mut |_| true,
    )
    .unwrap()
}

/// A case with a disk "brain" of smooth texture and a bright 29x29 square
/// lesion on its middle slices (large enough for > 75% lesion windows).
fn square_lesion_case(dims: [usize; 3]) -> (adgan::Case, Vec<bool>) {
    let [nx, ny, nz] = dims;
    let mut data = vec![0f32; nx * ny * nz];
    let mut label = vec![false; nx * ny * nz];
    let mut r = common::Lcg(11);
    let (cx, cy) = (nx as f32 / 2.0, ny as f32 / 2.0);
    let rad = nx.min(ny) as f32 * 0.48;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = x + nx * (y + ny * z);
                if ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() < rad {
                    data[i] = 100.0
                        + 20.0 * ((x as f32 * 0.3).sin() + (y as f32 * 0.25).cos())
                        + 2.0 * r.next_f32();
                    let inside = |v: usize, c: f32| (v as f32 - c).abs() < 15.0;
                    if z >= nz / 4 && z < nz - nz / 4 && inside(x, cx) && inside(y, cy) {
                        data[i] = 300.0 + 5.0 * r.next_f32();
                        label[i] = true;
                    }
                }
            }
        }
    }
    let case = adgan::Case {
        warnings: Vec::new(),
        name: "square".into(),
        dims,
        channels: vec![data],
        brain: None,
        exclude: None,
    };
    (case, label)
}

/// Brute force: windows of the axial slices at `stride` over the padded
/// plane, their brain and lesion fractions.
fn brute_force_windows(
    dims: [usize; 3],
    brain: &[bool],
    lesion: &[bool],
    stride: usize,
) -> Vec<(f64, f64)> {
    let [nx, ny, nz] = dims;
    let grid = |len: usize| adgan::windows::window_grid(len, stride).0;
    let mut out = Vec::new();
    for z in 0..nz {
        for r in 0..grid(ny) {
            for c in 0..grid(nx) {
                let (mut b, mut l) = (0usize, 0usize);
                for y in r * stride..r * stride + 32 {
                    for x in c * stride..c * stride + 32 {
                        if x < nx && y < ny {
                            let i = x + nx * (y + ny * z);
                            b += brain[i] as usize;
                            l += lesion[i] as usize;
                        }
                    }
                }
                out.push((b as f64 / 1024.0, l as f64 / 1024.0));
            }
        }
    }
    out
}

#[test]
fn patch_protocol_counts_match_brute_force() {
    let model = tiny_model(1);
    let dims = [64, 60, 4];
    let (case, lesion) = square_lesion_case(dims);
    let brain = case.brain_mask();
    let min_frac = model.meta.training.sampling.min_brain_fraction;
    for stride in [4, 8] {
        let windows = brute_force_windows(dims, &brain, &lesion, stride);
        let ok = |w: &&(f64, f64)| w.0 >= min_frac - 1e-6 && w.0 > 0.0;
        for fraction in [0.75, 0.10] {
            let healthy = windows.iter().filter(ok).filter(|w| w.1 == 0.0).count();
            let lesion_n = windows.iter().filter(ok).filter(|w| w.1 > fraction).count();
            if stride == 8 && fraction == 0.75 {
                assert!(lesion_n > 0 && healthy > 0);
            }
            let t = patch_table(&model, &case, &lesion, stride, fraction, true).unwrap();
            let (_, labels) = t.select(fraction);
            assert_eq!(
                labels.iter().filter(|&&l| !l).count(),
                healthy,
                "stride {stride} > {fraction}"
            );
            assert_eq!(
                labels.iter().filter(|&&l| l).count(),
                lesion_n,
                "stride {stride} > {fraction}"
            );
            assert_eq!(
                t.patches.as_ref().unwrap().size()[0] as usize,
                t.model_scores.len()
            );
        }
        let p = patch_protocol(&model, &case, &lesion, stride).unwrap();
        let lesion75 = windows.iter().filter(ok).filter(|w| w.1 > 0.75).count();
        assert_eq!(p.lesion_patches, lesion75);
        assert_eq!(p.labels.len(), p.model_scores.len());
    }
}

#[test]
fn map_means_of_the_intensity_map_are_the_intensity_baseline_on_every_axis() {
    // A map equal to the normalised intensity, averaged over each window,
    // is the intensity baseline's patch score: the window geometry of
    // map_means (origin, axis, padding, brain) is patch_table's.
    let mut model = tiny_model(3);
    let dims = [48, 40, 36];
    let (case, lesion) = square_lesion_case(dims);
    let norm = adgan::preprocess::normalise(&case, model.normalisation()).unwrap();
    let map: Vec<f32> = Vec::<f32>::try_from(norm.data.get(0).flatten(0, -1)).unwrap();
    let brain = case.brain_mask();
    for axis in 0..3 {
        model.meta.slice_axis = axis;
        let t = patch_table(&model, &case, &lesion, 8, 0.10, false).unwrap();
        assert!(t.at.len() > 20, "axis {axis}: {} windows", t.at.len());
        let means = map_means(&map, &brain, dims, axis, &t.at);
        for (i, (m, s)) in means.iter().zip(&t.intensity_scores[0]).enumerate() {
            assert!(close(*m, *s, 1e-4), "axis {axis} window {i}: {m} vs {s}");
        }
        // Not a constant: windows differ, so a wrong geometry would show.
        let spread = means.iter().cloned().fold(f64::MIN, f64::max)
            - means.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.5, "axis {axis}: spread {spread}");
    }
}

#[test]
fn evaluate_pools_cases_and_scores_the_intensity_baseline() {
    let model = tiny_model(2);
    let dims = [64, 64, 6];
    let (c1, l1) = square_lesion_case(dims);
    let (c2, l2) = square_lesion_case(dims);
    let cases = vec![
        LabelledCase {
            case: c1.clone(),
            lesion: l1.clone(),
        },
        LabelledCase {
            case: c2,
            lesion: l2,
        },
    ];
    let opts = EvalOptions {
        patch_stride: 8,
        lesion_fractions: vec![0.75, 0.10],
        map: Some(ScoreOptions {
            stride: 8,
            ..Default::default()
        }),
        threshold: None,
        keep_patches: false,
        keep_maps: true,
    };
    let ev = evaluate::evaluate(&model, &cases, &opts, &mut |_| true).unwrap();
    let one = patch_protocol(&model, &c1, &l1, 8).unwrap();
    // Two identical cases: twice the counts, the same AUROC.
    assert_eq!(ev.patches[0].healthy_patches, 2 * one.healthy_patches);
    assert_eq!(ev.patches[0].lesion_patches, 2 * one.lesion_patches);
    assert!(ev.patches[0].lesion_patches > 0);
    assert!(ev.patches[1].lesion_patches >= ev.patches[0].lesion_patches);
    assert!(close(
        ev.patches[0].scorers[0].auroc.unwrap(),
        one.auroc_model.unwrap(),
        1e-9
    ));
    assert!(close(
        ev.patches[0].scorers[1].auroc.unwrap(),
        one.auroc_intensity[0].unwrap(),
        1e-9
    ));
    // The bright lesion is the brightest thing: intensity separates perfectly.
    assert!(
        close(ev.voxels[1].metrics.auroc.unwrap(), 1.0, 1e-9),
        "{:?}",
        ev.voxels[1]
    );
    assert!(close(ev.voxels[1].metrics.best_dice, 1.0, 1e-9));
    // The model's map, from the kept maps, gives the reported numbers.
    let brain = c1.brain_mask();
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (map, lc) in ev.maps.iter().zip(&cases) {
        for i in 0..map.len() {
            if brain[i] {
                scores.push(map[i] as f64);
                labels.push(lc.lesion[i]);
            }
        }
    }
    let v = voxel_metrics_of(&scores, &labels, Some(model.meta.calibration.threshold));
    assert_eq!(v.auprc, ev.voxels[0].metrics.auprc);
    // The last patch scorer is the model's map averaged over each patch,
    // computed from the kept maps and the protocol's windows.
    let mut map_scores = Vec::new();
    let mut patch_labels = Vec::new();
    for (k, (map, lc)) in ev.maps.iter().zip(&cases).enumerate() {
        let rows: Vec<usize> = (0..ev.table.at.len())
            .filter(|&i| ev.table.at[i].case == k)
            .collect();
        let at: Vec<_> = rows.iter().map(|&i| ev.table.at[i]).collect();
        let means = map_means(map, &lc.case.brain_mask(), dims, 2, &at);
        for (m, &i) in means.into_iter().zip(&rows) {
            let f = ev.table.lesion_fraction[i];
            if f == 0.0 || f > 0.75 {
                map_scores.push(m);
                patch_labels.push(f > 0.0);
            }
        }
    }
    let last = ev.patches[0].scorers.last().unwrap();
    assert_eq!(last.name, format!("{} map", ev.model_name));
    assert_eq!(last.auroc, auroc(&map_scores, &patch_labels));
    assert_eq!(ev.patches[0].scorers.len(), 3);
    assert_eq!(v.brain_voxels, ev.voxels[0].metrics.brain_voxels);
    assert_eq!(ev.cases.len(), 2);
    let json = serde_json::to_value(&ev).unwrap();
    assert!(json["patches"][0]["scorers"][0]["auroc"].is_number());
    assert!(json["voxels"][0]["best_dice"].is_number());
}

#[test]
fn variants_parse() {
    let v = Variant::parse("a:n=10,m=0,alpha=0.5,init=reset").unwrap();
    assert_eq!(v.name, "a");
    assert_eq!(
        (v.phase1_iterations, v.phase2_iterations, v.alpha),
        (Some(10), Some(0), Some(0.5))
    );
    assert_eq!(v.critic_init, Some(CriticInit::Reset));
    assert_eq!(
        Variant::parse("s:kind=std-wgan").unwrap().kind,
        VariantKind::StdWgan
    );
    assert_eq!(Variant::parse("plain").unwrap().alpha, None);
    assert!(Variant::parse("x:beta=1").is_err());
    assert!(Variant::parse("x:n").is_err());
    assert!(Variant::parse(":n=1").is_err());
    let base = TrainConfig::default();
    let c = Variant::parse("s:kind=std-wgan,m=7").unwrap().config(&base);
    assert_eq!(c.phase2_iterations, 0);
}

fn raw(model: &Model, probe: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(model.raw_scores(probe, 64).unwrap()).unwrap()
}

#[test]
fn variants_sharing_a_phase_1_equal_their_own_trainings() {
    let data = TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(64, 5),
        channel_names: vec!["flair".into()],
    };
    let mut base = common::tiny_config(4, 3);
    base.batch_size = 4;
    base.checkpoint_every = 2;
    base.pool_every = 1;
    base.pool_draw = 4;
    let specs = [
        "c",
        "a05:alpha=0.5",
        "r:init=reset",
        "w:m=0",
        "n2:n=2",
        "n2r:n=2,init=reset",
        "s:kind=std-wgan,n=2",
    ];
    let variants: Vec<Variant> = specs.iter().map(|s| Variant::parse(s).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut saved = Vec::new();
    let models = evaluate::train_variants(
        &data,
        &base,
        &variants,
        Device::Cpu,
        dir.path(),
        &mut |_, _| true,
        &mut |name, _| {
            saved.push(name.to_string());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(saved.len(), variants.len());
    assert_eq!(models.len(), variants.len());
    let probe = common::anomalous_patches(16, 9);
    for ((name, m), v) in models.iter().zip(&variants) {
        assert_eq!(name, &v.name);
        let cfg = v.config(&base);
        let alone = match v.kind {
            VariantKind::AdGan => train(
                &data,
                &cfg,
                Device::Cpu,
                &Checkpointing::default(),
                &mut |_| true,
            )
            .unwrap(),
            VariantKind::StdWgan => {
                evaluate::train_std_wgan(&data, &cfg, Device::Cpu, &mut |_| true).unwrap()
            }
        };
        assert_eq!(raw(m, &probe), raw(&alone, &probe), "variant {name}");
        assert_eq!(
            m.meta.calibration.mean, alone.meta.calibration.mean,
            "variant {name}"
        );
        assert_eq!(m.meta.training, alone.meta.training, "variant {name}");
        assert_eq!(
            m.meta.budget.pool_size, alone.meta.budget.pool_size,
            "variant {name}"
        );
    }
    // An interrupted run (here: saving the second model fails) keeps its
    // phase 1, and the next run with the same phase-1 options reuses it.
    let dir2 = tempfile::tempdir().unwrap();
    let two = [
        Variant::parse("c").unwrap(),
        Variant::parse("r:init=reset").unwrap(),
    ];
    let failed = evaluate::train_variants(
        &data,
        &base,
        &two,
        Device::Cpu,
        dir2.path(),
        &mut |_, _| true,
        &mut |name, _| {
            if name == "r" {
                Err(adgan::Error::invalid("disk full"))
            } else {
                Ok(())
            }
        },
    );
    assert!(failed.is_err());
    let mut phase1 = 0;
    let again = evaluate::train_variants(
        &data,
        &base,
        &two,
        Device::Cpu,
        dir2.path(),
        &mut |_, p| {
            phase1 += usize::from(p.stage == adgan::progress::Stage::Wgan && p.iteration > 0);
            true
        },
        &mut |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(phase1, 0, "phase 1 ran again");
    for (name, a) in &again {
        let (_, b) = models.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(raw(a, &probe), raw(b, &probe), "variant {name}");
    }
    // The working files are gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // Bad variants are refused before any training.
    for spec in ["x:n=3", "x:m=0,init=reset"] {
        let bad = [Variant::parse(spec).unwrap()];
        assert!(
            evaluate::train_variants(
                &data,
                &base,
                &bad,
                Device::Cpu,
                dir.path(),
                &mut |_, _| true,
                &mut |_, _| Ok(())
            )
            .is_err(),
            "{spec}"
        );
    }
}

#[test]
fn std_wgan_and_wgan_critic_are_calibrated() {
    let data = TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(48, 3),
        channel_names: vec!["flair".into()],
    };
    let mut c = common::tiny_config(3, 0);
    c.batch_size = 8;
    let s = evaluate::train_std_wgan(&data, &c, Device::Cpu, &mut |_| true).unwrap();
    assert_eq!(s.meta.budget.phase2_iterations, 0);
    assert_eq!(s.meta.training.phase1_alpha, c.alpha);
    assert_eq!(evaluate::variant_name(&s), "stdWGAN");
    assert!(s.meta.calibration.std > 0.0 && s.meta.calibration.mean.is_finite());
    // train() with M = 0 is the plain WGAN-GP critic, calibrated too.
    let w = train(
        &data,
        &c,
        Device::Cpu,
        &Checkpointing::default(),
        &mut |_| true,
    )
    .unwrap();
    assert_eq!(evaluate::variant_name(&w), "WGAN critic");
    assert!(w.meta.calibration.std > 0.0);
    let scores = w.scores(&data.patches, 64).unwrap();
    assert!(scores.iter().all(|v| v.is_finite()));
    // Same data, seed and draws: only the concentration term in phase 1
    // tells the stdWGAN critic from the plain one.
    let probe = common::anomalous_patches(16, 9);
    assert_ne!(raw(&s, &probe), raw(&w, &probe));
}

#[test]
fn thin_curve_keeps_the_ends() {
    let pts: Vec<(f64, f64)> = (0..=1000)
        .map(|i| (i as f64 / 1000.0, (i as f64 / 1000.0).sqrt()))
        .collect();
    let t = evaluate::thin_curve(&pts, 100);
    assert!(t.len() <= 102);
    assert_eq!(t.first(), pts.first());
    assert_eq!(t.last(), pts.last());
    assert_eq!(evaluate::thin_curve(&pts[..5], 100), pts[..5].to_vec());
}
