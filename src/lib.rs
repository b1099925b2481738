//! adGAN: anomaly detection in medical images with a GAN's critic, after
//! Shen, Chen, Wang and Zhang, "Counterfeit Anomaly Using Generative
//! Adversarial Network for Anomaly Detection", IEEE Access 8 (2020).
//!
//! Train on normal 32x32 patches only ([`train::train`]); score whole
//! volumes into voxel anomaly maps ([`model::Model::score_case`]).

pub mod augment;
pub mod config;
pub mod counterfeit;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod fake_pool;
pub mod ffi;
pub mod gate;
pub mod images;
pub mod io;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod nets;
pub mod optim;
pub mod preprocess;
pub mod progress;
pub mod report;
pub mod rng;
pub mod score;
pub mod selection;
pub mod train;
pub mod windows;

pub use error::{Error, Result};
pub use model::Model;
pub use preprocess::Case;
pub use score::{ScoreOptions, ScoreResult};
pub use train::{train, TrainConfig, TrainingData};

/// The library's version (the crate's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
