//! The intensity gate: the critic says where tissue looks unlike normal
//! tissue; the gate keeps that only where one channel is also brighter than
//! normal tissue is. A voxel's gated score is its map value (0 when
//! negative) times `max(v - median, 0) / (tail - median)`, with `v` its
//! normalised value on the gated channel and `median` and `tail` the 50th
//! and 99.9th percentiles of the training volumes' normal voxels on that
//! channel: 0 at or below typical tissue, 1 at normal tissue's bright tail.
//!
//! Why: lesions that FLAIR shows (gliomas and their oedema, MS plaques,
//! white matter hyperintensities) are bright on it; the critic alone also
//! marks normal but unusual structure (bright rims of the lowest slices,
//! the cerebellum), and a dark metastasis core the gate hides is not found
//! by the critic either (docs/BENCHMARKS.md). Measured on the brain MR
//! benchmark and the demo (docs/BENCHMARKS.md, "The intensity gate"), it is
//! the quick preset's default on the first channel; `--intensity-gate off`
//! and the paper's presets leave maps as the critic paints them. Window
//! scores (image scores, the patch protocol) are never gated.

use crate::error::{Error, Result};
use crate::metrics::quantile;
use serde::{Deserialize, Serialize};

/// Quantile of normal voxels where the gate reaches 1.
pub const GATE_TAIL_QUANTILE: f64 = 0.999;

/// Every `GATE_SAMPLE_STEP`-th normal voxel of a volume enters the
/// reference quantiles (the quantiles of ~100,000 voxels a volume are exact
/// to well under 0.01 SD).
pub const GATE_SAMPLE_STEP: usize = 16;

/// Which gate training records (an option of [`crate::TrainConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateChoice {
    /// Maps as the critic paints them.
    #[default]
    Off,
    /// Gate by brightness on this channel (0: the first).
    Bright(usize),
}

impl GateChoice {
    /// `off`, `bright` (the first channel) or `bright:N`.
    pub fn parse(s: &str) -> Result<GateChoice> {
        let s = s.trim();
        match s {
            "off" | "none" => return Ok(GateChoice::Off),
            "bright" => return Ok(GateChoice::Bright(0)),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("bright:") {
            if let Ok(c) = n.parse::<usize>() {
                return Ok(GateChoice::Bright(c));
            }
        }
        Err(Error::invalid(format!(
            "intensity gate '{s}' (expected off, bright or bright:N with N a channel index)"
        )))
    }
}

impl std::fmt::Display for GateChoice {
    /// As [`GateChoice::parse`] reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateChoice::Off => write!(f, "off"),
            GateChoice::Bright(c) => write!(f, "bright:{c}"),
        }
    }
}

/// Where normal tissue lies on one channel after normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntensityReference {
    /// 50th percentile of the normal voxels.
    pub median: f64,
    /// Their [`GATE_TAIL_QUANTILE`] quantile.
    pub tail: f64,
    /// Voxels the quantiles were taken from.
    pub voxels: usize,
}

impl IntensityReference {
    /// The reference of `values` (normal voxels of one channel); `None`
    /// when there are none or their tail is not above their median.
    pub fn of(values: Vec<f32>) -> Option<IntensityReference> {
        let mut values: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite())
            .map(f64::from)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let (median, tail) = (
            quantile(&values, 0.5),
            quantile(&values, GATE_TAIL_QUANTILE),
        );
        (tail > median).then_some(IntensityReference {
            median,
            tail,
            voxels: values.len(),
        })
    }
}

/// The gate a model applies to its maps (model file metadata).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntensityGate {
    /// The gated channel.
    pub channel: usize,
    /// Normal tissue on it, from the training volumes.
    pub reference: IntensityReference,
}

impl IntensityGate {
    /// The gate's weight for a normalised value of its channel: 0 up to the
    /// normal median, 1 at the normal tail, linear and unbounded above.
    pub fn weight(&self, value: f32) -> f32 {
        let r = &self.reference;
        ((value as f64 - r.median) / (r.tail - r.median)).max(0.0) as f32
    }

    /// Gate `map` in place by `values` (the gated channel, normalised, on
    /// the same voxels): `max(map, 0) * weight(value)`.
    pub fn apply(&self, map: &mut [f32], values: &[f32]) {
        for (m, &v) in map.iter_mut().zip(values) {
            *m = m.max(0.0) * self.weight(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_print_and_refuse_by_name() {
        assert_eq!(GateChoice::parse("off").unwrap(), GateChoice::Off);
        assert_eq!(GateChoice::parse("bright").unwrap(), GateChoice::Bright(0));
        assert_eq!(
            GateChoice::parse(" bright:2 ").unwrap(),
            GateChoice::Bright(2)
        );
        for c in [GateChoice::Off, GateChoice::Bright(1)] {
            assert_eq!(GateChoice::parse(&c.to_string()).unwrap(), c);
        }
        let e = GateChoice::parse("dark").unwrap_err().to_string();
        assert!(e.contains("'dark'") && e.contains("bright:N"), "{e}");
        assert!(GateChoice::parse("bright:x").is_err());
    }

    #[test]
    fn reference_quantiles_and_the_weight() {
        // 0, 1, ..., 1000: median 500, 99.9th percentile 999.
        let values: Vec<f32> = (0..=1000).rev().map(|v| v as f32).collect();
        let r = IntensityReference::of(values).unwrap();
        assert_eq!((r.median, r.tail, r.voxels), (500.0, 999.0, 1001));
        let g = IntensityGate {
            channel: 0,
            reference: r,
        };
        assert_eq!(g.weight(100.0), 0.0);
        assert_eq!(g.weight(500.0), 0.0);
        assert!((g.weight(999.0) - 1.0).abs() < 1e-6);
        assert!((g.weight(1498.0) - 2.0).abs() < 1e-6);
        // Flat or empty channels give no reference.
        assert!(IntensityReference::of(vec![3.0; 100]).is_none());
        assert!(IntensityReference::of(vec![f32::NAN]).is_none());
    }

    #[test]
    fn applying_keeps_bright_anomalies_and_drops_the_rest() {
        let g = IntensityGate {
            channel: 0,
            reference: IntensityReference {
                median: 0.0,
                tail: 2.0,
                voxels: 10,
            },
        };
        // An anomalous bright voxel, an anomalous normal-intensity voxel, a
        // normal bright voxel, and a negative score on a bright voxel.
        let mut map = vec![5.0, 5.0, -1.0, -3.0];
        g.apply(&mut map, &[4.0, 0.0, 4.0, 4.0]);
        assert_eq!(map, vec![10.0, 0.0, 0.0, 0.0]);
    }
}
