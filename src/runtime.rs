//! What this build of imd runs on: versions, libtorch, CUDA devices.
use serde::Serialize;

/// Facts about the runtime that `imd info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub imd_version: String,
    pub libtorch_version: String,
    pub libtorch_lib: String,
    pub libtorch_cuda_linked: bool,
    pub cuda_available: bool,
    pub cudnn_available: bool,
    pub cuda_devices: Vec<CudaDevice>,
    pub cpu_threads: i32,
}

/// One CUDA device as libtorch sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CudaDevice {
    pub index: usize,
    pub name: String,
}

impl RuntimeInfo {
    /// Probe libtorch.
    pub fn probe() -> Self {
        let cuda_available = tch::Cuda::is_available();
        let n = if cuda_available {
            tch::Cuda::device_count()
        } else {
            0
        };
        RuntimeInfo {
            imd_version: env!("CARGO_PKG_VERSION").to_string(),
            libtorch_version: libtorch_version(),
            libtorch_lib: option_env!("IMD_LIBTORCH_LIB").unwrap_or("").to_string(),
            libtorch_cuda_linked: cfg!(imd_libtorch_cuda),
            cuda_available,
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cuda_devices: (0..n.max(0) as usize)
                .map(|i| CudaDevice {
                    index: i,
                    name: format!("cuda:{i}"),
                })
                .collect(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}

fn libtorch_version() -> String {
    option_env!("IMD_LIBTORCH_VERSION")
        .unwrap_or("unknown")
        .to_string()
}
