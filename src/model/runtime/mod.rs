//! Where and in which precision the network runs ([`ComputeDevice`], [`ComputeDtype`]), and
//! what this build runs on ([`info`]: libtorch built against and loaded, CUDA, devices).

pub mod cuda_driver;
pub mod info;
pub mod loaded;

pub use info::{CudaDevice, RuntimeInfo};
pub use loaded::LoadedLibtorch;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ModelError;

/// `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ComputeDevice {
    #[default]
    Cpu,
    Cuda(usize),
}

impl ComputeDevice {
    /// The tch device, checking that CUDA devices exist.
    pub fn to_tch(self) -> Result<tch::Device, ModelError> {
        match self {
            ComputeDevice::Cpu => Ok(tch::Device::Cpu),
            ComputeDevice::Cuda(i) => {
                if !tch::Cuda::is_available() {
                    return Err(ModelError::InvalidOption {
                        option: "device".into(),
                        reason: format!(
                            "cuda:{i} requested but libtorch sees no CUDA device (see `imd info`)"
                        ),
                    });
                }
                let n = tch::Cuda::device_count();
                if i as i64 >= n {
                    return Err(ModelError::InvalidOption {
                        option: "device".into(),
                        reason: format!("cuda:{i} requested but only {n} CUDA device(s) exist"),
                    });
                }
                Ok(tch::Device::Cuda(i))
            }
        }
    }
}

impl FromStr for ComputeDevice {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ModelError::InvalidOption {
            option: "device".into(),
            reason: format!("`{s}` is not one of cpu, cuda, cuda:N"),
        };
        match s.trim() {
            "cpu" => Ok(ComputeDevice::Cpu),
            "cuda" => Ok(ComputeDevice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(ComputeDevice::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl TryFrom<String> for ComputeDevice {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ComputeDevice> for String {
    fn from(d: ComputeDevice) -> String {
        d.to_string()
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Cpu => write!(f, "cpu"),
            ComputeDevice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Compute precision: `f32`, `f16` or `bf16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ComputeDtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ComputeDtype {
    /// The tch kind.
    pub fn kind(self) -> tch::Kind {
        match self {
            ComputeDtype::F32 => tch::Kind::Float,
            ComputeDtype::F16 => tch::Kind::Half,
            ComputeDtype::Bf16 => tch::Kind::BFloat16,
        }
    }
}

impl FromStr for ComputeDtype {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "f32" | "float32" | "fp32" => Ok(ComputeDtype::F32),
            "f16" | "float16" | "fp16" => Ok(ComputeDtype::F16),
            "bf16" | "bfloat16" => Ok(ComputeDtype::Bf16),
            other => Err(ModelError::InvalidOption {
                option: "dtype".into(),
                reason: format!("`{other}` is not one of f32, f16, bf16"),
            }),
        }
    }
}

impl TryFrom<String> for ComputeDtype {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ComputeDtype> for String {
    fn from(d: ComputeDtype) -> String {
        d.to_string()
    }
}

impl fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComputeDtype::F32 => "f32",
            ComputeDtype::F16 => "f16",
            ComputeDtype::Bf16 => "bf16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_dtypes() {
        assert_eq!("cpu".parse::<ComputeDevice>().unwrap(), ComputeDevice::Cpu);
        assert_eq!(
            "cuda".parse::<ComputeDevice>().unwrap(),
            ComputeDevice::Cuda(0)
        );
        assert_eq!(
            "cuda:3".parse::<ComputeDevice>().unwrap(),
            ComputeDevice::Cuda(3)
        );
        assert!("gpu".parse::<ComputeDevice>().is_err());
        assert!("cuda:x".parse::<ComputeDevice>().is_err());
        assert_eq!("bf16".parse::<ComputeDtype>().unwrap(), ComputeDtype::Bf16);
        assert!("f8".parse::<ComputeDtype>().is_err());
        assert_eq!(ComputeDevice::Cuda(1).to_string(), "cuda:1");
    }
}
