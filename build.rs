//! Link-time fixes for libtorch that `torch-sys` cannot make for downstream binaries:
//! an rpath to libtorch's `lib/` so `imd` runs without `LD_LIBRARY_PATH`, and
//! `libtorch_cuda` forced into DT_NEEDED (the linker's default `--as-needed` drops it
//! because no Rust symbol references it, and CUDA then silently vanishes). With the `ros`
//! feature, the same for the ROS 2 prefix the bindings were generated from (see [`ros_rpath`]).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_ROS").is_some() {
        ros_rpath();
    }
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

/// Make `imd_matcher` run from a plain shell against the ROS 2 prefix it was built with.
///
/// For every prefix on `AMENT_PREFIX_PATH`: an rpath to its `lib/`. A PyPI-wheel prefix (a venv,
/// `scripts/ros_prefix.sh`) also needs the wheels' vendored-library folders
/// (`site-packages/ros_*.libs`, whose own `$ORIGIN` rpaths break once installed) and libpython
/// (the `*_rosidl_generator_py` libraries that rcl's dependencies pull in reference Python
/// symbols). Old-style DT_RPATH (`--disable-new-dtags`) because, unlike DT_RUNPATH, it also
/// serves the libraries' own dependencies and the typesupport libraries rcl dlopens.
/// With an apt ROS 2 the rpath to `/opt/ros/<distro>/lib` is harmless: `setup.bash` sets the
/// library path anyway.
fn ros_rpath() {
    println!("cargo:rerun-if-env-changed=AMENT_PREFIX_PATH");
    let Some(prefixes) = std::env::var_os("AMENT_PREFIX_PATH") else {
        return;
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut libpython: Option<(PathBuf, String)> = None;
    for prefix in std::env::split_paths(&prefixes) {
        let lib = prefix.join("lib");
        if lib.is_dir() {
            dirs.push(lib);
        }
        let python = prefix.join("bin/python");
        if prefix.join("pyvenv.cfg").exists() && python.exists() {
            if let Some((site, libdir, ldlib)) = python_paths(&python) {
                if let Ok(entries) = std::fs::read_dir(&site) {
                    let mut vendored: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_dir()
                                && p.file_name()
                                    .and_then(|n| n.to_str())
                                    .is_some_and(|n| n.starts_with("ros_") && n.ends_with(".libs"))
                        })
                        .collect();
                    vendored.sort();
                    dirs.extend(vendored);
                }
                libpython.get_or_insert((libdir, ldlib));
            }
        }
    }
    if let Some((libdir, _)) = &libpython {
        dirs.push(libdir.clone());
    }
    if dirs.is_empty() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=imd_matcher=-Wl,--disable-new-dtags");
    for d in &dirs {
        println!(
            "cargo:rustc-link-arg-bin=imd_matcher=-Wl,-rpath,{}",
            d.display()
        );
    }
    if let Some((libdir, ldlib)) = libpython {
        println!(
            "cargo:rustc-link-arg-bin=imd_matcher=-Wl,--push-state,--no-as-needed,-L{},-l{},--pop-state",
            libdir.display(),
            ldlib
        );
    }
}

/// (site-packages, LIBDIR, libpython link name) of a venv's interpreter.
fn python_paths(python: &Path) -> Option<(PathBuf, PathBuf, String)> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig as s; print(s.get_paths()['purelib']); \
             print(s.get_config_var('LIBDIR')); print(s.get_config_var('LDVERSION'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let site = PathBuf::from(lines.next()?);
    let libdir = PathBuf::from(lines.next()?);
    let ldversion = lines.next()?.trim();
    Some((site, libdir, format!("python{ldversion}")))
}
