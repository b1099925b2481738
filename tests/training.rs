//! Training and scoring end to end: tiny budgets on synthetic and real data.

mod common;

use adgan::train::{Checkpointing, CriticInit};
use adgan::{Model, ScoreOptions, TrainingData};
use tch::Device;

fn synthetic_data(n: usize) -> TrainingData {
    TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(n, 42),
        channel_names: vec!["flair".into()],
    }
}

#[test]
fn tiny_training_ranks_planted_anomalies_above_normal_patches() {
    // Budget chosen from a sweep on a GPU (examples/tiny_auc.rs, 6 seeds):
    // 200 + 200 iterations gave AUROC 0.977 to 1.000; 60 + 120 went as low
    // as 0.67 for some seeds.
    let data = synthetic_data(800);
    let mut c = common::tiny_config(200, 200);
    c.seed = 1;
    let model = adgan::train(&data, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
    let normal = common::normal_patches(200, 999); // unseen normal patches
    let abnormal = common::anomalous_patches(200, 998);
    let s_n = model.scores(&normal, 256).unwrap();
    let s_a = model.scores(&abnormal, 256).unwrap();
    let mut scores = s_n.clone();
    scores.extend(&s_a);
    let labels: Vec<bool> = (0..400).map(|i| i >= 200).collect();
    let auc = adgan::metrics::auroc(&scores, &labels).unwrap();
    eprintln!("synthetic AUROC {auc:.4}");
    assert!(auc > 0.9, "AUROC {auc}");
    // Calibration: unseen normal patches score around 0 with unit-ish spread.
    let mean_n = s_n.iter().sum::<f64>() / s_n.len() as f64;
    assert!(mean_n.abs() < 1.5, "normal mean score {mean_n}");
}

#[test]
fn saved_and_loaded_models_give_identical_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_data(200);
    let model = adgan::train(
        &data,
        &common::tiny_config(6, 6),
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    let path = dir.path().join("m.adgan");
    model.save(&path).unwrap();
    let loaded = Model::load(&path, Device::Cpu).unwrap();
    assert_eq!(loaded.meta, model.meta);
    let x = common::anomalous_patches(50, 3);
    let a = common::to_vec(&model.raw_scores(&x, 7).unwrap());
    let b = common::to_vec(&loaded.raw_scores(&x, 7).unwrap());
    assert_eq!(a, b);
    // and whole-volume maps are identical too
    let (case, _) = common::synthetic_case([48, 48, 6], true);
    let opts = ScoreOptions {
        stride: 8,
        ..Default::default()
    };
    let m1 = model.score_case(&case, &opts, &mut |_| true).unwrap();
    let m2 = loaded.score_case(&case, &opts, &mut |_| true).unwrap();
    assert_eq!(m1.map, m2.map);
    // no temporary file left next to the model
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn seeded_training_is_reproducible_on_cpu_and_seeds_matter() {
    let data = synthetic_data(200);
    let run = |seed| {
        let mut c = common::tiny_config(8, 8);
        c.seed = seed;
        let m = adgan::train(&data, &c, Device::Cpu, &Default::default(), &mut |_| true).unwrap();
        common::to_vec(&m.raw_scores(&common::normal_patches(20, 5), 64).unwrap())
    };
    assert_eq!(run(4), run(4));
    assert_ne!(run(4), run(5));
}

#[test]
fn an_interrupted_training_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_data(200);
    for init in [CriticInit::FineTune, CriticInit::Reset] {
        let mut c = common::tiny_config(25, 25);
        c.critic_init = init;
        c.checkpoint_every = 10;
        let ckpt_path = dir.path().join("run.ckpt");
        let ckpt = Checkpointing {
            path: Some(ckpt_path.clone()),
            restart: false,
            keep: false,
        };
        let straight = adgan::train(
            &data,
            &c,
            Device::Cpu,
            &Checkpointing::default(),
            &mut |_| true,
        )
        .unwrap();
        // Stop in phase 1 (after iteration 13), then in phase 2 (after 17).
        for (stage, at) in [
            (adgan::progress::Stage::Wgan, 13),
            (adgan::progress::Stage::Critic, 17),
        ] {
            let r = adgan::train(&data, &c, Device::Cpu, &ckpt, &mut |p| {
                !(p.stage == stage && p.iteration == at)
            });
            assert!(matches!(r, Err(adgan::Error::Cancelled)));
            assert!(
                ckpt_path.exists(),
                "a checkpoint stays after a cancelled run"
            );
        }
        let resumed = adgan::train(&data, &c, Device::Cpu, &ckpt, &mut |_| true).unwrap();
        assert!(resumed.meta.budget.resumed_at.is_some());
        assert!(!ckpt_path.exists(), "checkpoint removed after success");
        let x = common::anomalous_patches(30, 8);
        assert_eq!(
            common::to_vec(&straight.raw_scores(&x, 64).unwrap()),
            common::to_vec(&resumed.raw_scores(&x, 64).unwrap()),
            "{init:?}"
        );
        assert_eq!(straight.meta.calibration, resumed.meta.calibration);
    }
}

#[test]
fn a_checkpoint_of_other_options_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = synthetic_data(200);
    let ckpt_path = dir.path().join("run.ckpt");
    let ckpt = Checkpointing {
        path: Some(ckpt_path.clone()),
        restart: false,
        keep: false,
    };
    let c = common::tiny_config(15, 5);
    let _ = adgan::train(&data, &c, Device::Cpu, &ckpt, &mut |p| p.iteration < 12);
    let mut other = c.clone();
    other.alpha = 2.0;
    let err = adgan::train(&data, &other, Device::Cpu, &ckpt, &mut |_| true).unwrap_err();
    assert!(
        err.to_string().contains("run.ckpt") && err.to_string().contains("--restart"),
        "{err}"
    );
    let ok = adgan::train(
        &data,
        &other,
        Device::Cpu,
        &Checkpointing {
            restart: true,
            ..ckpt
        },
        &mut |_| true,
    );
    assert!(ok.is_ok());
}

#[test]
fn a_real_volume_is_scored_into_a_map_on_its_grid() {
    let dir = common::demo_dir().join("TCGA-FG-6692");
    let (case, like) = adgan::Case::from_files(&[dir.join("fla_bet.nii.gz")], None, None).unwrap();
    assert_eq!(case.dims, [240, 240, 155]);
    let data = TrainingData {
        groups: None,
        layout: None,
        patches: common::normal_patches(200, 1),
        channel_names: vec!["flair".into()],
    };
    let model = adgan::train(
        &data,
        &common::tiny_config(3, 3),
        Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap();
    let opts = ScoreOptions {
        stride: 16,
        patch_table: true,
        ..Default::default()
    };
    let mut slices = 0;
    let r = model
        .score_case(&case, &opts, &mut |_| {
            slices += 1;
            true
        })
        .unwrap();
    assert_eq!(slices, 155);
    let brain = case.brain_mask();
    assert!(
        r.map.iter().zip(&brain).all(|(&v, &b)| b || v == 0.0),
        "zero outside the brain"
    );
    let inside = r
        .map
        .iter()
        .zip(&brain)
        .filter(|(&v, &b)| b && v != 0.0)
        .count();
    assert!(
        inside as f64 > 0.99 * brain.iter().filter(|&&b| b).count() as f64,
        "every brain voxel painted"
    );
    assert_eq!(r.patches.len(), r.windows_scored);
    let out = tempfile::tempdir().unwrap();
    let p = out.path().join("map.nii.gz");
    adgan::io::nifti::write_map(&p, &like, &r.map).unwrap();
    let back = adgan::io::nifti::read_volume(&p).unwrap();
    assert_eq!(back.dims, like.dims);
    assert_eq!(back.header.srow_x, like.header.srow_x);
    assert_eq!(back.data, r.map);
}

#[test]
fn cutting_training_patches_reports_each_case_and_can_be_cancelled() {
    let cases: Vec<adgan::Case> = (0..3)
        .map(|_| common::synthetic_case([48, 48, 6], false).0)
        .collect();
    let c = common::tiny_config(2, 2);
    let mut seen = Vec::new();
    let data =
        adgan::TrainingData::from_cases_with_progress(&cases, vec!["flair".into()], &c, &mut |p| {
            seen.push((p.stage, p.iteration, p.total));
            true
        })
        .unwrap();
    assert!(data.patches.size()[0] > 0);
    let prepare = adgan::progress::Stage::Prepare;
    assert_eq!(
        seen,
        vec![(prepare, 1, 3), (prepare, 2, 3), (prepare, 3, 3)]
    );
    // Cancelled after the first case: nothing more is cut.
    let mut calls = 0;
    let r = adgan::TrainingData::from_cases_with_progress(
        &cases,
        vec!["flair".into()],
        &c,
        &mut |_| {
            calls += 1;
            false
        },
    );
    assert!(matches!(r, Err(adgan::Error::Cancelled)));
    assert_eq!(calls, 1);
}
