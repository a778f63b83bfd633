//! Link-time fixes for libtorch that `torch-sys` cannot make for downstream binaries:
//! an rpath to libtorch's `lib/` so `imd` runs without `LD_LIBRARY_PATH`, and
//! `libtorch_cuda` forced into DT_NEEDED (the linker's default `--as-needed` drops it
//! because no Rust symbol references it, and CUDA then silently vanishes).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    // torch-sys (links = "tch") exports its lib dir to direct dependents.
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        // doc-only builds of torch-sys export nothing; nothing to link then.
        return;
    };
    let lib = PathBuf::from(lib);
    // Resolve symlinks (e.g. the bootstrap's `.libtorch`) so the rpath names the real place.
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!(
            "cargo:rustc-link-arg=-Wl,--push-state,--no-as-needed,-L{},-ltorch_cuda,--pop-state",
            lib.display()
        );
        println!("cargo:rustc-cfg=imd_libtorch_cuda");
    }
    println!("cargo:rustc-check-cfg=cfg(imd_libtorch_cuda)");
    println!("cargo:rustc-env=IMD_LIBTORCH_LIB={}", lib.display());
    if let Some(version) = libtorch_version(&lib) {
        println!("cargo:rustc-env=IMD_LIBTORCH_VERSION={version}");
    }
}

/// The libtorch version from its headers (`lib/../include`): what we compiled and linked against.
fn libtorch_version(lib: &std::path::Path) -> Option<String> {
    let include = lib.parent()?.join("include");
    let header = [
        "torch/headeronly/version.h",
        "torch/csrc/api/include/torch/version.h",
    ]
    .iter()
    .map(|h| include.join(h))
    .find(|p| p.exists())?;
    println!("cargo:rerun-if-changed={}", header.display());
    let text = std::fs::read_to_string(header).ok()?;
    let field = |name: &str| -> Option<u32> {
        text.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("#define ")?.strip_prefix(name)?;
            rest.trim().parse().ok()
        })
    };
    Some(format!(
        "{}.{}.{}",
        field("TORCH_VERSION_MAJOR")?,
        field("TORCH_VERSION_MINOR")?,
        field("TORCH_VERSION_PATCH")?
    ))
}
