//! Training's own random numbers: a seeded ChaCha stream per stretch of
//! iterations, independent of libtorch's global generator. Two trainings in
//! one process (threads of a C++ host, parallel tests) never disturb each
//! other, and a seed gives the same model every time on the CPU.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

/// A seeded random stream that makes tensors.
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// The stream for `phase` starting at `iteration` under `seed`.
    pub fn stream(seed: u64, phase: u64, iteration: u64) -> Rng {
        let mut x = seed
            ^ phase.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ iteration.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 29;
        Rng(ChaCha8Rng::seed_from_u64(x))
    }

    fn gaussians(&mut self, n: usize) -> Vec<f32> {
        let mut v = Vec::with_capacity(n + 1);
        while v.len() < n {
            // Box-Muller
            let u1: f64 = 1.0 - self.0.gen::<f64>();
            let u2: f64 = self.0.gen::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            v.push((r * t.cos()) as f32);
            v.push((r * t.sin()) as f32);
        }
        v.truncate(n);
        v
    }

    /// Standard normal values.
    pub fn normal(&mut self, shape: &[i64], device: Device) -> Tensor {
        let n = shape.iter().product::<i64>() as usize;
        Tensor::from_slice(&self.gaussians(n))
            .view(shape)
            .to_device(device)
    }

    /// Uniform values in `[lo, hi)`.
    pub fn uniform(&mut self, shape: &[i64], lo: f64, hi: f64, device: Device) -> Tensor {
        let n = shape.iter().product::<i64>() as usize;
        let v: Vec<f32> = (0..n).map(|_| self.0.gen_range(lo..hi) as f32).collect();
        Tensor::from_slice(&v).view(shape).to_device(device)
    }

    /// `count` indices drawn uniformly from `0..n` (with replacement).
    pub fn indices(&mut self, n: i64, count: i64, device: Device) -> Tensor {
        let v: Vec<i64> = (0..count).map(|_| self.0.gen_range(0..n.max(1))).collect();
        Tensor::from_slice(&v).to_device(device)
    }

    /// Initialise a network's variables with tch's default distributions
    /// (drawn from this stream instead of libtorch's global generator):
    /// weights Kaiming-uniform for ReLU, +-sqrt(6 / fan_in) with fan_in =
    /// size(1) times the kernel area; linear biases +-1/sqrt(fan_in),
    /// convolution biases 0; batch-norm scales U(0, 1), shifts 0, running
    /// statistics 0 and 1. These larger-than-PyTorch weights make the
    /// untrained generator's samples high-contrast noise, so the first
    /// fake-pool draws surround the normal data in contrast as well as in
    /// texture (with PyTorch's smaller init they are near-constant patches
    /// and bright anomalies rank as "more real"; measured on the synthetic
    /// test of tests/training.rs).
    pub fn init(&mut self, vs: &nn::VarStore) {
        let vars = vs.variables();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let mut t = vars[name].shallow_clone();
            let size = t.size();
            let layer = name.rsplit_once('.').map(|x| x.0).unwrap_or("");
            let leaf = name.rsplit('.').next().unwrap_or("");
            let is_bn = layer.rsplit('.').next().unwrap_or("").starts_with("bn");
            let cpu = (Kind::Float, Device::Cpu);
            let value = if is_bn {
                match leaf {
                    "weight" => self.uniform(&size, 0.0, 1.0, Device::Cpu),
                    "running_var" => Tensor::ones(size.as_slice(), cpu),
                    _ => Tensor::zeros(size.as_slice(), cpu),
                }
            } else {
                let w = vars
                    .get(&format!("{layer}.weight"))
                    .map(|w| w.size())
                    .unwrap_or_else(|| size.clone());
                let fan_in = if w.len() >= 2 {
                    w[1..].iter().product::<i64>().max(1) as f64
                } else {
                    1.0
                };
                match (leaf, w.len()) {
                    ("weight", _) => {
                        let b = (6.0 / fan_in).sqrt();
                        self.uniform(&size, -b, b, Device::Cpu)
                    }
                    (_, 2) => {
                        let b = 1.0 / fan_in.sqrt();
                        self.uniform(&size, -b, b, Device::Cpu)
                    }
                    _ => Tensor::zeros(size.as_slice(), cpu),
                }
            };
            tch::no_grad(|| t.copy_(&value));
        }
    }
}
