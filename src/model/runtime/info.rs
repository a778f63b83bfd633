//! What this build of imd runs on: versions, libtorch (built against and actually loaded),
//! CUDA runtime / cuDNN / driver versions and CUDA devices.
use serde::Serialize;

use super::cuda_driver;
use super::loaded::LoadedLibtorch;

/// Facts about the runtime that `imd info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub imd_version: String,
    /// libtorch version of the headers imd was compiled against.
    pub libtorch_version: String,
    /// libtorch `lib/` imd was linked against (its RUNPATH).
    pub libtorch_lib: String,
    pub libtorch_cuda_linked: bool,
    /// The libtorch this process loaded (differs from the above under `LD_LIBRARY_PATH`).
    pub libtorch_loaded: LoadedLibtorch,
    pub cuda_available: bool,
    pub cudnn_available: bool,
    /// CUDA runtime version libtorch was built with (e.g. "13.0"); `None` without libtorch_cuda.
    pub cuda_runtime_version: Option<String>,
    /// cuDNN version libtorch was built with (e.g. "9.10.2"); `None` without libtorch_cuda.
    pub cudnn_version: Option<String>,
    /// CUDA version of the installed driver; `None` without a usable driver.
    pub cuda_driver_version: Option<String>,
    pub cuda_devices: Vec<CudaDevice>,
    pub cpu_threads: i32,
}

/// One CUDA device as libtorch sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CudaDevice {
    pub index: usize,
    /// The driver's name for it ("cuda:N" when the driver cannot be asked).
    pub name: String,
    /// Total memory in bytes (0 when unknown).
    pub total_memory_bytes: u64,
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
        let loaded = LoadedLibtorch::probe();
        let has_cuda_lib = cfg!(imd_libtorch_cuda) || loaded.cuda_library_loaded;
        let (cuda_runtime_version, cudnn_version) = if has_cuda_lib {
            (
                quietly(tch::utils::version_cudart).map(cuda_version),
                quietly(tch::utils::version_cudnn).map(cudnn_version),
            )
        } else {
            (None, None)
        };
        let driver = if cuda_available {
            cuda_driver::Driver::open()
        } else {
            None
        };
        RuntimeInfo {
            imd_version: env!("CARGO_PKG_VERSION").to_string(),
            libtorch_version: libtorch_version(),
            libtorch_lib: option_env!("IMD_LIBTORCH_LIB").unwrap_or("").to_string(),
            libtorch_cuda_linked: cfg!(imd_libtorch_cuda),
            libtorch_loaded: loaded,
            cuda_available,
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cuda_runtime_version,
            cudnn_version,
            cuda_driver_version: driver.as_ref().and_then(|d| d.version()),
            cuda_devices: (0..n.max(0) as usize)
                .map(|i| {
                    let d = driver.as_ref().and_then(|d| d.device(i));
                    CudaDevice {
                        index: i,
                        name: d
                            .as_ref()
                            .map(|d| d.name.clone())
                            .unwrap_or_else(|| format!("cuda:{i}")),
                        total_memory_bytes: d.map(|d| d.total_memory_bytes).unwrap_or(0),
                    }
                })
                .collect(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}

/// Run a tch query that panics when libtorch throws, without printing the panic.
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(f).ok();
    std::panic::set_hook(hook);
    out
}

/// `CUDART_VERSION` (major·1000 + minor·10) as "major.minor".
fn cuda_version(v: i64) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// `CUDNN_VERSION` as "major.minor.patch" (cuDNN ≥ 9: major·10000 + minor·100 + patch;
/// earlier: major·1000 + minor·100 + patch).
fn cudnn_version(v: i64) -> String {
    if v >= 90000 {
        format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 1000, (v % 1000) / 100, v % 100)
    }
}

fn libtorch_version() -> String {
    option_env!("IMD_LIBTORCH_VERSION")
        .unwrap_or("unknown")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_cuda_and_cudnn_versions() {
        assert_eq!(cuda_version(13000), "13.0");
        assert_eq!(cuda_version(12080), "12.8");
        assert_eq!(cudnn_version(91002), "9.10.2");
        assert_eq!(cudnn_version(8902), "8.9.2");
    }
}
