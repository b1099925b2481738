//! Choosing phase 2's critic without labels: an exponential moving average
//! of the critic's weights, and a validation score measured every K
//! iterations on normal patches held out by whole slices against synthetic
//! anomalies of a kind training did not use. The best-scoring snapshot is
//! the model (the paper leaves when to stop open, Sec. V).

use crate::config::TrainConfig;
use crate::counterfeit::{self, Counterfeit};
use crate::error::Result;
use crate::nets::Critic;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

/// Named copies of a network's variables, sorted by name.
pub type Weights = Vec<(String, Tensor)>;

/// A detached copy of every variable of `vs`.
pub fn snapshot(vs: &nn::VarStore) -> Weights {
    copy(&crate::io::tensor_file::named(vs, ""))
}

/// A deep copy of `weights`.
pub fn copy(weights: &Weights) -> Weights {
    weights
        .iter()
        .map(|(k, t)| (k.clone(), t.detach().copy()))
        .collect()
}

/// Copy `weights` into the variables of `vs` (same names and shapes).
pub fn restore(vs: &nn::VarStore, weights: &Weights) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, w) in weights {
            if let Some(v) = vars.get(name) {
                v.shallow_clone().copy_(w);
            }
        }
    });
}

/// Exponential moving average of a network's weights:
/// `ema = decay * ema + (1 - decay) * w` after every step.
pub struct Ema {
    pub decay: f64,
    pub weights: Weights,
}

impl Ema {
    pub fn new(decay: f64, vs: &nn::VarStore) -> Ema {
        Ema {
            decay,
            weights: snapshot(vs),
        }
    }

    pub fn update(&mut self, vs: &nn::VarStore) {
        let vars = vs.variables();
        tch::no_grad(|| {
            for (name, e) in self.weights.iter_mut() {
                if let Some(v) = vars.get(name) {
                    let _ = e.g_mul_scalar_(self.decay);
                    let _ = e.g_add_(&(v * (1.0 - self.decay)));
                }
            }
        });
    }
}

/// The validation curve and the snapshot chosen, as the model file keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SelectionReport {
    /// Kinds of the validation anomalies.
    pub validation_kinds: Vec<Counterfeit>,
    /// Held-out normal patches and as many anomalies made from them.
    pub validation_patches: usize,
    /// Whether the validated weights were the moving average.
    pub ema: bool,
    /// `(phase-2 iteration, validation AUROC)` after that many iterations.
    pub curve: Vec<(u64, f64)>,
    /// The chosen snapshot's iteration and validation AUROC.
    pub chosen_iteration: u64,
    pub chosen_auroc: f64,
}

impl SelectionReport {
    /// Record a validation; true when it is the best so far (ties go to
    /// the later snapshot: it has trained longer at the same score).
    pub fn record(&mut self, iteration: u64, auroc: f64) -> bool {
        self.curve.push((iteration, auroc));
        let best = self.curve.len() == 1 || auroc >= self.chosen_auroc;
        if best {
            self.chosen_iteration = iteration;
            self.chosen_auroc = auroc;
        }
        best
    }
}

/// Held-out normal patches and synthetic anomalies made from them, scored
/// by a critic of its own (so validating never touches training's).
pub struct Validator {
    normal: Tensor,
    anomalous: Tensor,
    critic: Critic,
    vs: nn::VarStore,
}

impl Validator {
    /// `held_out`: normal patches never trained on, `[V, C, 32, 32]`; the
    /// anomalies are of `config`'s validation kinds, and the critic of its
    /// shape.
    pub fn new(held_out: &Tensor, config: &TrainConfig, device: Device) -> Validator {
        let normal = held_out.to_device(device);
        let mut rng = Rng::stream(config.seed, 3, 0);
        let anomalous = counterfeit::make(&normal, &config.validation_kinds, &mut rng);
        let vs = nn::VarStore::new(device);
        let channels = normal.size()[1];
        let critic = Critic::of(&vs.root(), channels, config);
        Validator {
            normal,
            anomalous,
            critic,
            vs,
        }
    }

    pub fn len(&self) -> usize {
        self.normal.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// AUROC of the anomaly score (minus the critic) of `weights`:
    /// anomalies against normal patches.
    pub fn auroc(&self, weights: &Weights) -> Result<f64> {
        restore(&self.vs, weights);
        let score = |x: &Tensor| -> Result<Vec<f64>> {
            let mut out = Vec::new();
            for chunk in x.split(1024, 0) {
                let raw = tch::no_grad(|| self.critic.forward(&chunk));
                out.extend(
                    crate::io::tensor_file::to_f32_vec(&raw)?
                        .into_iter()
                        .map(|v| -f64::from(v)),
                );
            }
            Ok(out)
        };
        let mut scores = score(&self.normal)?;
        let n = scores.len();
        scores.extend(score(&self.anomalous)?);
        let labels: Vec<bool> = (0..scores.len()).map(|i| i >= n).collect();
        Ok(crate::metrics::auroc(&scores, &labels).unwrap_or(0.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_with_a_known_peak_picks_that_snapshot() {
        let mut r = SelectionReport::default();
        let curve = [(25, 0.7), (50, 0.9), (75, 0.95), (100, 0.8), (125, 0.94)];
        let mut kept = 0;
        for (it, a) in curve {
            if r.record(it, a) {
                kept = it;
            }
        }
        assert_eq!((r.chosen_iteration, kept), (75, 75));
        assert_eq!(r.chosen_auroc, 0.95);
        assert_eq!(r.curve.len(), 5);
    }

    #[test]
    fn ema_moves_towards_the_weights() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[3]);
        let mut ema = Ema::new(0.9, &vs);
        tch::no_grad(|| {
            let _ = w.shallow_clone().fill_(1.0);
        });
        ema.update(&vs);
        let v = ema.weights[0].1.double_value(&[0]);
        assert!((v - 0.1).abs() < 1e-6, "{v}");
        ema.update(&vs);
        let v = ema.weights[0].1.double_value(&[0]);
        assert!((v - 0.19).abs() < 1e-6, "{v}");
        // Restoring puts the average into the network.
        restore(&vs, &ema.weights);
        assert!((w.double_value(&[0]) - 0.19).abs() < 1e-6);
    }
}
