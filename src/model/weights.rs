//! Safetensors weights → tch `VarStore`s, checking every tensor's name and shape.
//!
//! Files are memory-mapped and only the tensors a model registers are read, so the parts of
//! the standard SD2.1 / CLIP files that the matcher never runs (VAE decoder, UNet
//! `up_blocks.3`, CLIP text tower, …) are skipped without being loaded. Models are built
//! first (registering variables under their checkpoint names), then filled by [`load_into`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use tch::{nn, Kind, Tensor};

use super::ModelError;

/// What to do with tensors in a file that no variable asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unexpected {
    /// Standard upstream files carry parts we do not run: skip them unread.
    Ignore,
    /// Our own files must hold exactly the model: anything else is an error.
    Error,
}

/// A memory-mapped safetensors file.
pub struct WeightFile {
    path: PathBuf,
    mmap: Mmap,
}

impl WeightFile {
    /// Map `path` and validate its header.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let (file, _) = crate::io::paths::open_regular(path, "a safetensors weights file")
            .map_err(|e| ModelError::BadFile {
                path: path.to_path_buf(),
                reason: e.reason,
            })?;
        // SAFETY: the mapping is read-only; weight files are not modified while we run.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::BadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        SafeTensors::deserialize(&mmap).map_err(|e| ModelError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not a valid safetensors file: {e}"),
        })?;
        Ok(WeightFile {
            path: path.to_path_buf(),
            mmap,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn tensors(&self) -> SafeTensors<'_> {
        // Validated in `open`; the mapping is immutable.
        SafeTensors::deserialize(&self.mmap).expect("header validated in WeightFile::open")
    }

    /// All tensor names in the file.
    pub fn names(&self) -> Vec<String> {
        self.tensors()
            .names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Whether the file holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors().tensor(name).is_ok()
    }

    /// Shape of `name`, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<i64>> {
        let t = self.tensors().tensor(name).ok()?;
        Some(t.shape().iter().map(|&d| d as i64).collect())
    }

    /// Read one tensor (on the CPU, in its stored dtype).
    pub fn tensor(&self, name: &str) -> Result<Tensor, ModelError> {
        let st = self.tensors();
        let view = st.tensor(name).map_err(|_| ModelError::MissingTensor {
            tensor: name.to_string(),
            file: self.path.clone(),
        })?;
        let kind = match view.dtype() {
            Dtype::F32 => Kind::Float,
            Dtype::F16 => Kind::Half,
            Dtype::BF16 => Kind::BFloat16,
            Dtype::F64 => Kind::Double,
            Dtype::I64 => Kind::Int64,
            Dtype::I32 => Kind::Int,
            Dtype::U8 => Kind::Uint8,
            Dtype::BOOL => Kind::Bool,
            other => {
                return Err(ModelError::UnsupportedDtype {
                    tensor: name.to_string(),
                    file: self.path.clone(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        Tensor::f_from_data_size(view.data(), &shape, kind).map_err(ModelError::torch(format!(
            "reading `{name}` from {}",
            self.path.display()
        )))
    }
}

/// Names a [`load_into`] call filled, and the file tensors nobody asked for.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub loaded: usize,
    pub unused: Vec<String>,
}

/// Fill every variable of `vs` from the safetensors file at `path` by its var-store name:
/// each must be there with its exact shape, and the file may hold nothing else.
pub fn load_exact(vs: &nn::VarStore, path: &Path) -> Result<LoadReport, ModelError> {
    let file = WeightFile::open(path)?;
    load_into(vs, "", &file, "", Unexpected::Error, &no_alias)
}

/// Fill every variable of `vs` whose name starts with `var_prefix` from `file`, where the
/// file name is the variable name with `var_prefix` replaced by `file_prefix`.
///
/// `alias` may map a file name that does not exist to an older spelling tried next (e.g.
/// the VAE's `query`/`key`/`value`/`proj_attn`). Values are converted to each variable's
/// dtype and device. Every variable must be found with the exact shape.
pub fn load_into(
    vs: &nn::VarStore,
    var_prefix: &str,
    file: &WeightFile,
    file_prefix: &str,
    unexpected: Unexpected,
    alias: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadReport, ModelError> {
    let vars: HashMap<String, Tensor> = vs.variables();
    let mut used = BTreeSet::new();
    let mut names: Vec<&String> = vars.keys().filter(|n| n.starts_with(var_prefix)).collect();
    names.sort();
    let _guard = tch::no_grad_guard();
    for name in names {
        let var = &vars[name];
        let wanted = format!("{file_prefix}{}", &name[var_prefix.len()..]);
        let stored = if file.contains(&wanted) {
            wanted.clone()
        } else {
            match alias(&wanted) {
                Some(a) if file.contains(&a) => a,
                _ => {
                    return Err(ModelError::MissingTensor {
                        tensor: wanted,
                        file: file.path().to_path_buf(),
                    })
                }
            }
        };
        let value = file.tensor(&stored)?;
        let expected = var.size();
        let found = value.size();
        // Old VAE checkpoints store attention projections as 1×1 convs [C, C, 1, 1].
        let value = if found != expected
            && value.numel() as i64 == expected.iter().product::<i64>()
            && found.len() == 4
            && expected.len() == 2
            && found[2] == 1
            && found[3] == 1
        {
            value.reshape(&expected)
        } else if found != expected {
            return Err(ModelError::ShapeMismatch {
                tensor: stored,
                file: file.path().to_path_buf(),
                expected,
                found,
            });
        } else {
            value
        };
        check_finite(&value, &stored, file.path())?;
        let mut var = var.shallow_clone();
        var.f_copy_(&value.to_kind(var.kind()).to_device(var.device()))
            .map_err(ModelError::torch(format!("copying `{stored}`")))?;
        used.insert(stored);
    }
    let unused: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| n.starts_with(file_prefix) && !used.contains(n))
        .collect();
    if unexpected == Unexpected::Error {
        if let Some(first) = unused.first() {
            return Err(ModelError::UnexpectedTensor {
                tensor: first.clone(),
                file: file.path().to_path_buf(),
            });
        }
    }
    Ok(LoadReport {
        loaded: used.len(),
        unused,
    })
}

/// Refuse a floating-point tensor holding NaN or infinity: such weights turn every output
/// into NaN, and matches / poses computed from them would be silently meaningless.
fn check_finite(value: &Tensor, name: &str, path: &Path) -> Result<(), ModelError> {
    if !matches!(
        value.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return Ok(());
    }
    let bad = value
        .f_isfinite()
        .and_then(|t| t.f_logical_not())
        .and_then(|t| t.f_sum(Kind::Int64))
        .and_then(|t| t.f_int64_value(&[]))
        .map_err(ModelError::torch(format!("checking `{name}` for NaN/inf")))?;
    if bad > 0 {
        return Err(ModelError::BadFile {
            path: path.to_path_buf(),
            reason: format!(
                "tensor `{name}` holds {bad} non-finite value(s) (NaN or infinity) of {}",
                value.numel()
            ),
        });
    }
    Ok(())
}

/// No alias: names must match exactly.
pub fn no_alias(_: &str) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, shape, data)| {
                let bytes: &[u8] = unsafe {
                    std::slice::from_raw_parts(data.as_ptr() as *const u8, data.len() * 4)
                };
                (
                    n.to_string(),
                    safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    }

    fn model(vs: &nn::VarStore) {
        let root = vs.root();
        let _ = nn::linear(&root / "a" / 0, 2, 3, Default::default());
    }

    #[test]
    fn loads_checks_shapes_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.safetensors");
        write_file(
            &good,
            &[
                (
                    "m.a.0.weight",
                    vec![3, 2],
                    (0..6).map(|v| v as f32).collect(),
                ),
                ("m.a.0.bias", vec![3], vec![1.0, 2.0, 3.0]),
                ("m.decoder.x", vec![1], vec![0.0]),
            ],
        );
        let vs = nn::VarStore::new(tch::Device::Cpu);
        model(&vs);
        let f = WeightFile::open(&good).unwrap();
        let report = load_into(&vs, "", &f, "m.", Unexpected::Ignore, &no_alias).unwrap();
        assert_eq!(report.loaded, 2);
        assert_eq!(report.unused, vec!["m.decoder.x".to_string()]);
        let w = vs.variables()["a.0.bias"].shallow_clone();
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), vec![1.0, 2.0, 3.0]);
        // The same file is rejected where unexpected tensors are errors.
        let err = load_into(&vs, "", &f, "m.", Unexpected::Error, &no_alias).unwrap_err();
        assert!(
            matches!(err, ModelError::UnexpectedTensor { ref tensor, .. } if tensor == "m.decoder.x")
        );

        let bad = dir.path().join("bad.safetensors");
        write_file(
            &bad,
            &[
                ("a.0.weight", vec![2, 3], vec![0.0; 6]),
                ("a.0.bias", vec![3], vec![0.0; 3]),
            ],
        );
        let f = WeightFile::open(&bad).unwrap();
        let err = load_into(&vs, "", &f, "", Unexpected::Ignore, &no_alias).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("a.0.weight") && msg.contains("[2, 3]") && msg.contains("[3, 2]"),
            "{msg}"
        );
        assert!(msg.contains("bad.safetensors"), "{msg}");

        let missing = dir.path().join("missing.safetensors");
        write_file(&missing, &[("a.0.weight", vec![3, 2], vec![0.0; 6])]);
        let f = WeightFile::open(&missing).unwrap();
        let err = load_into(&vs, "", &f, "", Unexpected::Ignore, &no_alias).unwrap_err();
        assert!(
            matches!(err, ModelError::MissingTensor { ref tensor, .. } if tensor == "a.0.bias")
        );
    }

    #[test]
    fn rejects_garbage_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.safetensors");
        std::fs::write(&p, b"not a safetensors file").unwrap();
        assert!(matches!(
            WeightFile::open(&p),
            Err(ModelError::BadFile { .. })
        ));
        assert!(matches!(
            WeightFile::open(&dir.path().join("absent.safetensors")),
            Err(ModelError::BadFile { .. })
        ));
    }
}
