//! Named f32 tensors plus a JSON string in one safetensors file: the model
//! bundle and the training checkpoint are both this. safetensors (never
//! pickle), so any safetensors reader (Python's too) can open our files.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The metadata key under which the JSON document is stored.
pub const META_KEY: &str = "adgan";

/// Write tensors and a JSON document atomically to `path`.
pub fn write(path: &Path, tensors: &[(String, Tensor)], json: &str) -> Result<()> {
    let mut bufs: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let v: Vec<f32> = Vec::<f32>::try_from(t.flatten(0, -1).shallow_clone())
            .map_err(|e| Error::Torch(format!("{name}: {e}")))?;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        bufs.push((name.clone(), shape, bytes));
    }
    let mut views = Vec::with_capacity(bufs.len());
    for (name, shape, bytes) in &bufs {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::io(path, format!("cannot encode tensor {name}: {e:?}")))?;
        views.push((name.as_str(), view));
    }
    let meta: HashMap<String, String> = [(META_KEY.to_string(), json.to_string())].into();
    let data = safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| Error::io(path, format!("cannot encode: {e:?}")))?;
    crate::io::atomic::write_atomically(path, |f| std::io::Write::write_all(f, &data))
}

/// The content of a tensor file.
pub struct TensorFile {
    pub json: String,
    pub tensors: HashMap<String, Tensor>,
}

/// Read a file written by [`write`]. `what` names the kind of file in
/// messages ("adGAN model", "training checkpoint").
pub fn read(path: &Path, what: &str) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 8 {
        return Err(Error::format(
            path,
            format!("not an {what}: the file is {} bytes long", bytes.len()),
        ));
    }
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| {
        Error::format(
            path,
            format!("not an {what}, or truncated: unreadable safetensors header ({e:?})"),
        )
    })?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .cloned()
        .ok_or_else(|| {
            Error::format(
                path,
                format!("not an {what}: a safetensors file without adGAN metadata"),
            )
        })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("truncated or corrupt {what} ({e:?})")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(Error::format(
                path,
                format!("tensor {name} has type {:?}, expected F32", view.dtype()),
            ));
        }
        let data = view.data();
        let v: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.insert(name, Tensor::from_slice(&v).view(shape.as_slice()));
    }
    Ok(TensorFile { json, tensors })
}

/// Copy named tensors into the variables of a var store; every variable
/// must be present with its shape.
pub fn load_into(
    path: &Path,
    vs: &tch::nn::VarStore,
    prefix: &str,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    for (name, mut var) in vs.variables() {
        let key = format!("{prefix}{name}");
        let src = tensors
            .get(&key)
            .ok_or_else(|| Error::format(path, format!("tensor {key} is missing")))?;
        if src.size() != var.size() {
            return Err(Error::format(
                path,
                format!(
                    "tensor {key} has shape {:?}, this network needs {:?}",
                    src.size(),
                    var.size()
                ),
            ));
        }
        tch::no_grad(|| var.copy_(src));
    }
    Ok(())
}

/// The variables of a var store as named tensors, with a prefix.
pub fn named(vs: &tch::nn::VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, t)| (format!("{prefix}{k}"), t))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A tensor's values as `f32` on the CPU (flattened).
pub fn to_f32_vec(t: &Tensor) -> Result<Vec<f32>> {
    Vec::<f32>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1)
            .contiguous(),
    )
    .map_err(|e| Error::Torch(e.to_string()))
}
