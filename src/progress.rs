//! Progress reports of long work (training, scoring), and cancellation:
//! every long function takes a callback that receives a [`Progress`] and
//! returns `false` to stop the work (which then returns
//! [`crate::Error::Cancelled`]).

use serde::Serialize;

/// Stage of the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading and preparing patches.
    Prepare,
    /// Phase 1: WGAN-GP training and fake-pool collection.
    Wgan,
    /// Phase 2: critic training with the concentration loss.
    Critic,
    /// Scoring held-out normal patches to calibrate.
    Calibrate,
    /// Scoring a volume.
    Score,
}

impl Stage {
    /// Numeric code used by the C API.
    pub fn code(self) -> i32 {
        match self {
            Stage::Prepare => 0,
            Stage::Wgan => 1,
            Stage::Critic => 2,
            Stage::Calibrate => 3,
            Stage::Score => 4,
        }
    }
}

/// One progress report.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub stage: Stage,
    /// Steps done in this stage.
    pub iteration: u64,
    /// Steps in this stage.
    pub total: u64,
    /// Latest critic loss (NaN when not yet measured).
    pub critic_loss: f64,
    /// Latest generator loss (phase 1; NaN otherwise).
    pub generator_loss: f64,
    /// Latest Wasserstein estimate E[D(real)] - E[D(fake)] (NaN when unknown).
    pub wasserstein: f64,
    /// Latest validation AUROC of phase 2's critic (when training validates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_auroc: Option<f64>,
}

impl Progress {
    pub fn new(stage: Stage, iteration: u64, total: u64) -> Progress {
        Progress {
            stage,
            iteration,
            total,
            critic_loss: f64::NAN,
            generator_loss: f64::NAN,
            wasserstein: f64::NAN,
            validation_auroc: None,
        }
    }
}

/// A progress callback: return `false` to cancel.
pub type ProgressFn<'a> = dyn FnMut(&Progress) -> bool + 'a;

/// A callback that never cancels and reports nothing.
pub fn silent() -> impl FnMut(&Progress) -> bool {
    |_| true
}
