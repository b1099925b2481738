//! Helpers shared by the integration tests: synthetic data and tiny configs.
#![allow(dead_code)]

use adgan::preprocess::Case;
use adgan::train::{Preset, TrainConfig};
use std::path::PathBuf;
use tch::{Kind, Tensor};

/// Deterministic LCG so the synthetic data never depends on libtorch's RNG.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
}

/// Smooth "tissue-like" normal patches: a few low-frequency waves plus
/// weak noise, roughly zero mean, unit variance. `[n, 1, 32, 32]`.
pub fn normal_patches(n: usize, seed: u64) -> Tensor {
    let mut r = Lcg(seed);
    let mut v = Vec::with_capacity(n * 1024);
    for _ in 0..n {
        let (a, b, c) = (
            r.next_f32() * 0.3 + 0.1,
            r.next_f32() * 0.3 + 0.1,
            r.next_f32() * std::f32::consts::TAU,
        );
        let amp = 0.8 + 0.4 * r.next_f32();
        for y in 0..32 {
            for x in 0..32 {
                let s = amp * ((a * x as f32 + c).sin() + (b * y as f32).cos()) * 0.7;
                v.push(s + 0.1 * (r.next_f32() - 0.5));
            }
        }
    }
    Tensor::from_slice(&v).view([n as i64, 1, 32, 32])
}

/// Normal patches with a bright square planted in each (the anomaly).
pub fn anomalous_patches(n: usize, seed: u64) -> Tensor {
    let base = normal_patches(n, seed);
    let mut r = Lcg(seed ^ 0xABCDEF);
    let mut v: Vec<f32> = Vec::try_from(base.flatten(0, -1)).unwrap();
    for i in 0..n {
        let size = 8 + (r.next_f32() * 6.0) as usize;
        let x0 = (r.next_f32() * (32 - size) as f32) as usize;
        let y0 = (r.next_f32() * (32 - size) as f32) as usize;
        for y in y0..y0 + size {
            for x in x0..x0 + size {
                v[i * 1024 + y * 32 + x] = 4.0;
            }
        }
    }
    Tensor::from_slice(&v).view([n as i64, 1, 32, 32])
}

/// A tiny configuration of the paper's method for tests (seconds on a CPU).
pub fn tiny_config(n1: u64, n2: u64) -> TrainConfig {
    let mut c = TrainConfig::preset(Preset::PaperQuick);
    c.phase1_iterations = n1;
    c.phase2_iterations = n2;
    c.batch_size = 16;
    c.n_critic = 2;
    c.pool_every = 5;
    c.pool_draw = 16;
    c.checkpoint_every = 10;
    c.log_every = 5;
    c.adam.lr = 5e-4;
    c
}

/// A one-channel ("flair") model trained for 2 + 2 iterations on synthetic
/// normal patches: for tests of what a model file or scoring does, not of
/// what it has learnt.
pub fn tiny_model() -> adgan::Model {
    let data = adgan::TrainingData {
        groups: None,
        layout: None,
        patches: normal_patches(120, 1),
        channel_names: vec!["flair".into()],
    };
    adgan::train(
        &data,
        &tiny_config(2, 2),
        tch::Device::Cpu,
        &Default::default(),
        &mut |_| true,
    )
    .unwrap()
}

/// A synthetic case `[nx, ny, nz]` with a spherical "brain" of smooth
/// texture and a bright blob lesion.
pub fn synthetic_case(dims: [usize; 3], lesion: bool) -> (Case, Vec<bool>) {
    let [nx, ny, nz] = dims;
    let mut data = vec![0f32; nx * ny * nz];
    let mut label = vec![false; nx * ny * nz];
    let (cx, cy, cz) = (nx as f32 / 2.0, ny as f32 / 2.0, nz as f32 / 2.0);
    let rad = nx.min(ny) as f32 * 0.45;
    let mut r = Lcg(7);
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = x + nx * (y + ny * z);
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                if d < rad {
                    data[i] = 100.0
                        + 20.0 * ((x as f32 * 0.3).sin() + (y as f32 * 0.25).cos())
                        + 2.0 * r.next_f32();
                    if lesion {
                        let dl = ((x as f32 - cx - 5.0).powi(2)
                            + (y as f32 - cy).powi(2)
                            + (z as f32 - cz).powi(2))
                        .sqrt();
                        if dl < 5.0 {
                            data[i] = 300.0;
                            label[i] = true;
                        }
                    }
                }
            }
        }
    }
    let case = Case {
        warnings: Vec::new(),
        name: "synthetic".into(),
        dims,
        channels: vec![data],
        brain: None,
        exclude: None,
    };
    (case, label)
}

/// The shipped demo data folder.
pub fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/demo")
}

pub fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
}
