//! What the command line writes for people besides maps and models: PNG
//! figures ([`render`], which re-exports [`plot`]: ROC curves, histograms,
//! validation curves drawn with `plotters`, and [`montage`]: slice montages)
//! and CSV tables ([`csv`]). No argument parser: the library's tests and the
//! CLI share it.

pub mod csv;
pub mod montage;
pub mod plot;
pub mod render;
