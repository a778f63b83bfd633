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

/// `target/test-fixtures/<name>`, written by `scripts/<script> DIR` (the project venv's Python)
/// the first time a test of this binary asks for it; later calls wait for and reuse it.
pub fn generated_fixtures(script: &str, name: &str) -> PathBuf {
    static MADE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, dir)) = made.iter().find(|(n, _)| n == name) {
        return dir.clone();
    }
    let dir = root().join("target/test-fixtures").join(name);
    let out = std::process::Command::new(venv_python())
        .arg(root().join("scripts").join(script))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    made.push((name.to_string(), dir.clone()));
    dir
}
