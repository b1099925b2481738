//! What the command line writes for people besides maps and models: PNG
//! figures ([`render`]: montages, ROC curves, histograms, validation
//! curves) and CSV tables ([`csv`]). No argument parser: the library's tests and the
//! CLI share it.

pub mod csv;
pub mod render;
