//! Bytes on disk: NIfTI volumes ([`nifti`]), tensors with JSON metadata
//! (safetensors, [`tensor_file`]: models and checkpoints) and atomic writes
//! ([`atomic`]). Nothing here knows what a model is.

pub mod atomic;
pub mod nifti;
pub mod tensor_file;
