//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The project venv's Python (made by `scripts/bootstrap.sh`), for oracle checks.
pub fn venv_python() -> PathBuf {
    root().join(".venv/bin/python")
}

/// The built `imd` binary.
pub fn imd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_imd"))
}
