//! Which libtorch this process actually loaded (it can differ from the one imd was built
//! against: `LD_LIBRARY_PATH` wins over the binary's RUNPATH), read from `/proc/self/maps`,
//! and that build's version facts from the files next to it.

use serde::Serialize;

/// The libtorch found in this process's memory map.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadedLibtorch {
    /// Directory of the loaded `libtorch_cpu.so` (empty when not found, e.g. not Linux).
    pub lib_dir: String,
    /// Whether `libtorch_cuda.so` is mapped too.
    pub cuda_library_loaded: bool,
    /// `__version__` of the torch wheel (`version.py`) or the libtorch zip's `build-version`.
    pub version: Option<String>,
    /// `git_version` of the wheel or the zip's `build-hash`: the exact PyTorch commit.
    pub git_version: Option<String>,
    /// CUDA version the build targets (`cuda = '13.0'` in the wheel's `version.py`).
    pub cuda_build_version: Option<String>,
}

impl LoadedLibtorch {
    /// Probe `/proc/self/maps`.
    pub fn probe() -> Self {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        Self::from_maps(&maps)
    }

    /// From the text of a `/proc/PID/maps` file.
    pub fn from_maps(maps: &str) -> Self {
        let mut out = LoadedLibtorch::default();
        for line in maps.lines() {
            let Some(path) = line.split_whitespace().nth(5) else {
                continue;
            };
            let name = path.rsplit('/').next().unwrap_or("");
            if name.starts_with("libtorch_cuda.so") {
                out.cuda_library_loaded = true;
            }
            if out.lib_dir.is_empty() && name.starts_with("libtorch_cpu.so") {
                if let Some((dir, _)) = path.rsplit_once('/') {
                    out.lib_dir = dir.to_string();
                }
            }
        }
        if !out.lib_dir.is_empty() {
            out.read_version_files();
        }
        out
    }

    /// `lib/../version.py` (PyPI wheel) or `lib/../build-version` + `build-hash` (libtorch zip).
    fn read_version_files(&mut self) {
        let root = std::path::Path::new(&self.lib_dir).join("..");
        if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
            self.version = py_string(&text, "__version__");
            self.git_version = py_string(&text, "git_version");
            self.cuda_build_version = py_string(&text, "cuda");
            return;
        }
        let read = |f: &str| {
            std::fs::read_to_string(root.join(f))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        self.version = read("build-version");
        self.git_version = read("build-hash");
    }
}

/// The value of `name = 'value'` (or `name: Optional[str] = 'value'`) in a Python file.
fn py_string(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (lhs, rhs) = l.split_once('=')?;
        let lhs = lhs.trim();
        let key = lhs.split(':').next()?.trim();
        if key != name {
            return None;
        }
        let v = rhs.trim().trim_matches(|c| c == '\'' || c == '"');
        (!v.is_empty() && v != "None").then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mapped_libtorch_and_reads_version_py() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir(&lib).unwrap();
        std::fs::write(
            dir.path().join("version.py"),
            "from typing import Optional\n__version__ = '2.11.0+cu130'\n\
             cuda: Optional[str] = '13.0'\ngit_version = 'abc123'\nhip: Optional[str] = None\n",
        )
        .unwrap();
        let maps = format!(
            "7f00-7f01 r-xp 00000000 fd:01 1 /usr/lib/libc.so.6\n\
             7f02-7f03 r-xp 00000000 fd:01 2 {0}/libtorch_cpu.so\n\
             7f04-7f05 r-xp 00000000 fd:01 3 {0}/libtorch_cuda.so\n\
             7f06-7f07 rw-p 00000000 00:00 0\n",
            lib.display()
        );
        let l = LoadedLibtorch::from_maps(&maps);
        assert_eq!(l.lib_dir, lib.display().to_string());
        assert!(l.cuda_library_loaded);
        assert_eq!(l.version.as_deref(), Some("2.11.0+cu130"));
        assert_eq!(l.git_version.as_deref(), Some("abc123"));
        assert_eq!(l.cuda_build_version.as_deref(), Some("13.0"));
    }

    #[test]
    fn nothing_mapped_gives_empty_facts() {
        let l = LoadedLibtorch::from_maps("7f00-7f01 r-xp 00000000 fd:01 1 /usr/lib/libc.so.6\n");
        assert!(l.lib_dir.is_empty());
        assert!(!l.cuda_library_loaded);
        assert!(l.version.is_none());
    }
}
