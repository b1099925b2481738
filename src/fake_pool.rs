//! The fake pool (Sec. III-A, Algorithm 1 lines 10-12): generator samples
//! collected every k iterations of phase 1, standing in for the abnormal
//! class in phase 2.

use tch::{Kind, Tensor};

/// Generator samples collected during phase 1.
#[derive(Debug)]
pub struct FakePool {
    /// k: collect every this many iterations.
    pub every: u64,
    /// n: samples per collection.
    pub per_draw: usize,
    draws: Vec<Tensor>,
    /// The phase-1 iterations (0-based) after which samples were collected.
    pub iterations: Vec<u64>,
}

impl FakePool {
    pub fn new(every: u64, per_draw: usize) -> FakePool {
        FakePool {
            every: every.max(1),
            per_draw,
            draws: Vec::new(),
            iterations: Vec::new(),
        }
    }

    /// Whether samples are collected after iteration `i` (0-based):
    /// `i % k == 0`, as in Algorithm 1 line 10.
    pub fn due(&self, i: u64) -> bool {
        i % self.every == 0
    }

    /// Number of collections a phase 1 of `n_iterations` makes: ceil(N / k).
    pub fn draws_for(n_iterations: u64, every: u64) -> u64 {
        n_iterations.div_ceil(every.max(1))
    }

    /// Add a collection made after iteration `i` (stored on the CPU so a
    /// long phase 1 does not fill the GPU).
    pub fn add(&mut self, i: u64, samples: Tensor) {
        self.draws
            .push(samples.detach().to_device(tch::Device::Cpu));
        self.iterations.push(i);
    }

    /// Number of samples in the pool.
    pub fn len(&self) -> usize {
        self.draws.iter().map(|t| t.size()[0] as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole pool as one `[P, C, 32, 32]` tensor on the CPU.
    pub fn tensor(&self) -> Option<Tensor> {
        if self.draws.is_empty() {
            None
        } else {
            Some(Tensor::cat(&self.draws, 0))
        }
    }

    /// Replace the pool's content (resuming from a checkpoint).
    pub fn restore(&mut self, all: Tensor, iterations: Vec<u64>) {
        self.draws = if all.size()[0] > 0 { vec![all] } else { vec![] };
        self.iterations = iterations;
    }

    /// A checksum of the content, for tests and logs.
    pub fn checksum(&self) -> f64 {
        self.tensor()
            .map(|t| t.sum(Kind::Double).double_value(&[]))
            .unwrap_or(0.0)
    }
}
