//! `adgan bench`: the speed of this machine for training and scoring, in
//! the same units as ../shared/reference/ref_adgan.py (`bench` and
//! `bench-volume`), so a script can print ratios measured in one run.

use super::BenchArgs;
use adgan::error::Result;
use adgan::preprocess::Case;
use adgan::train::{Checkpointing, TrainConfig, TrainingData};
use adgan::ScoreOptions;
use serde_json::json;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if a.common.threads > 0 {
        tch::set_num_threads(a.common.threads as i32);
    }
    let device = adgan::device::parse_device(&a.common.device)?;
    let mut out = serde_json::Map::new();
    if a.what == "train" || a.what == "all" {
        // Random patches in [-1, 1] like the reference; warm-up of 1 iteration.
        let patches = Tensor::randn([4096, 1, 32, 32], (Kind::Float, Device::Cpu)).clamp(-1.0, 1.0);
        let data = TrainingData {
            groups: None,
            layout: None,
            patches,
            channel_names: vec!["flair".into()],
        };
        let c = TrainConfig {
            phase1_iterations: a.iters + 1,
            phase2_iterations: a.iters + 1,
            checkpoint_every: 0,
            log_every: 0,
            ..Default::default()
        };
        let mut marks: Vec<(adgan::progress::Stage, u64, Instant)> = Vec::new();
        let model = adgan::train(&data, &c, device, &Checkpointing::default(), &mut |p| {
            if p.iteration == 1 || p.iteration == a.iters + 1 {
                sync(device);
                marks.push((p.stage, p.iteration, Instant::now()));
            }
            true
        })?;
        let rate = |stage| {
            let m: Vec<_> = marks.iter().filter(|m| m.0 == stage).collect();
            if m.len() < 2 {
                return f64::NAN;
            }
            (m[1].1 - m[0].1) as f64 / (m[1].2 - m[0].2).as_secs_f64()
        };
        out.insert(
            "phase1_it_per_s".into(),
            json!(rate(adgan::progress::Stage::Wgan)),
        );
        out.insert(
            "phase2_it_per_s".into(),
            json!(rate(adgan::progress::Stage::Critic)),
        );
        let x = Tensor::randn([8192, 1, 32, 32], (Kind::Float, Device::Cpu)).to_device(device);
        let _ = model.raw_scores(&x.narrow(0, 0, 512), 512)?;
        sync(device);
        let t = Instant::now();
        let _ = model.raw_scores(&x, 512)?;
        sync(device);
        out.insert(
            "score_patches_per_s".into(),
            json!(8192.0 / t.elapsed().as_secs_f64()),
        );
    }
    if a.what == "volume" || a.what == "all" {
        let (nx, ny, nz) = (a.shape[0], a.shape[1], a.shape[2]);
        let patches = Tensor::randn([256, 1, 32, 32], (Kind::Float, Device::Cpu));
        let c = TrainConfig {
            phase1_iterations: 1,
            phase2_iterations: 1,
            batch_size: 16,
            checkpoint_every: 0,
            ..Default::default()
        };
        let data = TrainingData {
            groups: None,
            layout: None,
            patches,
            channel_names: vec!["flair".into()],
        };
        let model = adgan::train(&data, &c, device, &Checkpointing::default(), &mut |_| true)?;
        let vol = Tensor::randn([(nx * ny * nz) as i64], (Kind::Float, Device::Cpu));
        let vol = adgan::io::tensor_file::to_f32_vec(&vol)?;
        let case = Case {
            warnings: Vec::new(),
            name: "random".into(),
            dims: [nx, ny, nz],
            channels: vec![vol],
            brain: Some(vec![true; nx * ny * nz]),
            exclude: None,
        };
        let opts = ScoreOptions {
            stride: a.stride,
            batch_size: 512,
            ..Default::default()
        };
        let t = Instant::now();
        let r = model.score_case(&case, &opts, &mut |_| true)?;
        sync(device);
        out.insert("volume_seconds".into(), json!(t.elapsed().as_secs_f64()));
        out.insert("patches".into(), json!(r.windows_scored));
    }
    out.insert("threads".into(), json!(tch::get_num_threads()));
    out.insert("device".into(), json!(adgan::device::device_name(device)));
    out.insert("adgan".into(), json!(adgan::VERSION));
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
