//! Named f32 tensors plus a JSON string in one safetensors file: the model
//! bundle and the training checkpoint are both this. safetensors (never
//! pickle), so any safetensors reader (Python's too) can open our files.
//!
//! Each file carries a SHA-256 of its contents (the JSON document, then
//! every tensor's name, shape and bytes in name order) in the metadata key
//! [`CHECKSUM_KEY`]; reading recomputes it and refuses a file whose bytes
//! changed after writing (a bit flip, an edit). Files from before the
//! checksum have none and are read as before.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The metadata key under which the JSON document is stored.
pub const META_KEY: &str = "adgan";
/// The metadata key of the contents' SHA-256 (hex).
pub const CHECKSUM_KEY: &str = "adgan.sha256";

/// SHA-256 (hex) of a JSON document and tensors given as (name, shape,
/// little-endian bytes), in name order.
fn checksum<'a>(
    json: &str,
    tensors: impl IntoIterator<Item = (&'a str, &'a [usize], &'a [u8])>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut items: Vec<_> = tensors.into_iter().collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    h.update((json.len() as u64).to_le_bytes());
    h.update(json.as_bytes());
    for (name, shape, bytes) in items {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

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
    let sum = checksum(
        json,
        bufs.iter()
            .map(|(n, s, b)| (n.as_str(), s.as_slice(), b.as_slice())),
    );
    let meta: HashMap<String, String> = [
        (META_KEY.to_string(), json.to_string()),
        (CHECKSUM_KEY.to_string(), sum),
    ]
    .into();
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
    let stored = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CHECKSUM_KEY))
        .cloned();
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::format(path, format!("truncated or corrupt {what} ({e:?})")))?;
    if let Some(stored) = stored {
        let views = st.tensors();
        let computed = checksum(
            &json,
            views.iter().map(|(n, v)| (n.as_str(), v.shape(), v.data())),
        );
        if computed != stored {
            return Err(Error::format(
                path,
                format!(
                    "{what} is damaged: its contents changed after it was written (checksum \
                     {computed}, the file records {stored})"
                ),
            ));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_carry_a_checksum_and_files_without_one_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]);
        let path = dir.path().join("a.bin");
        write(&path, &[("w".to_string(), t.shallow_clone())], "{\"k\":1}").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let sum = meta.metadata().as_ref().unwrap()[CHECKSUM_KEY].clone();
        assert_eq!(sum.len(), 64);
        let back = read(&path, "test file").unwrap();
        assert!(back.tensors["w"].equal(&t));
        // A file written before checksums (the JSON only) reads as before.
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, vec![2, 2], &data).unwrap();
        let meta: HashMap<String, String> =
            [(META_KEY.to_string(), "{\"k\":1}".to_string())].into();
        let old = safetensors::tensor::serialize(vec![("w", view)], &Some(meta)).unwrap();
        let old_path = dir.path().join("old.bin");
        std::fs::write(&old_path, old).unwrap();
        let back = read(&old_path, "test file").unwrap();
        assert!(back.tensors["w"].equal(&t));
        assert_eq!(back.json, "{\"k\":1}");
    }
}
