//! GPU names and memory from the CUDA driver API (`libcuda.so.1`, looked up with `dlopen` /
//! `dlsym` at run time): libtorch's C API, which tch wraps, has no device-name query. Used
//! only after libtorch reported CUDA available, so the driver library is present.

use std::ffi::{c_char, c_int, c_void, CStr};

extern "C" {
    fn dlopen(filename: *const c_char, flag: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

const RTLD_NOW: c_int = 2;

type CuInit = unsafe extern "C" fn(u32) -> c_int;
type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
type CuDeviceTotalMem = unsafe extern "C" fn(*mut usize, c_int) -> c_int;
type CuDriverGetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;

/// What the driver says about one device.
#[derive(Debug, Clone)]
pub struct DriverDevice {
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Total memory in bytes.
    pub total_memory_bytes: u64,
}

/// The driver's entry points.
pub struct Driver {
    device_get: CuDeviceGet,
    device_get_name: CuDeviceGetName,
    device_total_mem: CuDeviceTotalMem,
    driver_get_version: CuDriverGetVersion,
}

impl Driver {
    /// Load `libcuda.so.1` and initialise it; `None` when there is no usable driver.
    pub fn open() -> Option<Self> {
        // SAFETY: dlopen/dlsym with NUL-terminated names; the symbols are cast to the
        // signatures of the CUDA driver API (cuda.h), which are stable across versions.
        unsafe {
            let handle = dlopen(c"libcuda.so.1".as_ptr(), RTLD_NOW);
            if handle.is_null() {
                return None;
            }
            let sym = |name: &CStr| {
                let p = dlsym(handle, name.as_ptr());
                (!p.is_null()).then_some(p)
            };
            let init: CuInit = std::mem::transmute(sym(c"cuInit")?);
            let driver = Driver {
                device_get: std::mem::transmute::<*mut c_void, CuDeviceGet>(sym(c"cuDeviceGet")?),
                device_get_name: std::mem::transmute::<*mut c_void, CuDeviceGetName>(sym(
                    c"cuDeviceGetName",
                )?),
                device_total_mem: std::mem::transmute::<*mut c_void, CuDeviceTotalMem>(sym(
                    c"cuDeviceTotalMem_v2",
                )?),
                driver_get_version: std::mem::transmute::<*mut c_void, CuDriverGetVersion>(sym(
                    c"cuDriverGetVersion",
                )?),
            };
            (init(0) == 0).then_some(driver)
        }
    }

    /// Driver's CUDA version as `major.minor` (e.g. "13.0").
    pub fn version(&self) -> Option<String> {
        let mut v: c_int = 0;
        // SAFETY: out-pointer to a live c_int.
        let rc = unsafe { (self.driver_get_version)(&mut v) };
        (rc == 0).then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
    }

    /// Device `ordinal`'s name and memory.
    pub fn device(&self, ordinal: usize) -> Option<DriverDevice> {
        let mut dev: c_int = 0;
        let mut name = [0 as c_char; 256];
        let mut total: usize = 0;
        // SAFETY: out-pointers to live locals; the name buffer's length is passed.
        unsafe {
            if (self.device_get)(&mut dev, ordinal as c_int) != 0 {
                return None;
            }
            if (self.device_get_name)(name.as_mut_ptr(), name.len() as c_int, dev) != 0 {
                return None;
            }
            if (self.device_total_mem)(&mut total, dev) != 0 {
                total = 0;
            }
            let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
            Some(DriverDevice {
                name,
                total_memory_bytes: total as u64,
            })
        }
    }
}
