//! Choosing the compute device: `auto`, `cpu`, `cuda` or `cuda:N`.

use crate::error::{Error, Result};
use tch::Device;

/// Parse a device name. `auto` picks the first CUDA device when libtorch
/// sees one, else the CPU; `cuda[:N]` fails with a clear message when there
/// is no such device.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        _ => {
            let index = if name == "cuda" || name == "gpu" {
                0
            } else if let Some(n) = name.strip_prefix("cuda:") {
                n.parse::<usize>().map_err(|_| {
                    Error::invalid(format!(
                        "device '{name}': expected auto, cpu, cuda or cuda:N"
                    ))
                })?
            } else {
                return Err(Error::invalid(format!(
                    "device '{name}': expected auto, cpu, cuda or cuda:N"
                )));
            };
            let count = cuda_device_count();
            if index >= count {
                return Err(Error::Device(format!(
                    "cuda:{index} was asked for but libtorch sees {count} CUDA device(s)"
                )));
            }
            Ok(Device::Cuda(index))
        }
    }
}

/// Number of CUDA devices libtorch can use (0 on a CPU-only machine or build).
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// A short human name for a device: `cpu` or `cuda:0`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".to_string(),
        Device::Vulkan => "vulkan".to_string(),
    }
}
