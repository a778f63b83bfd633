//! Training checkpoints: one safetensors file with the model, the optimiser state and the
//! run's position.
//!
//! Tensors:
//! - `heads.<var>`: every variable of the heads (parameters and batch-norm statistics);
//! - `vae.<var>`, `unet.<var>`, `image_encoder.<var>`: the backbone, only when it trains;
//! - `adamw.exp_avg.<param>`, `adamw.exp_avg_sq.<param>`: AdamW's moments.
//!
//! Metadata (string map in the safetensors header): `format` ([`FORMAT`]), `step` (updates
//! done), `seed`, `fingerprint` (the configuration that fixes the trajectory,
//! [`crate::train::config::TrainConfig::trajectory_fingerprint`]).
//!
//! Random state: every random draw of a step (data order, synthetic pairs, GT padding) is a
//! pure function of `(seed, step)` ([`crate::data::rng::SeededRng::for_item`]), and the
//! training step uses no libtorch randomness, so `seed` and `step` *are* the RNG state.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, View};
use tch::{Device, Kind, Tensor};

use super::TrainError;

/// Value of the `format` metadata key.
pub const FORMAT: &str = "imd-train-checkpoint/1";

/// What a checkpoint holds besides its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// Optimiser updates done.
    pub step: u64,
    /// The run's seed.
    pub seed: u64,
    /// [`crate::train::config::TrainConfig::trajectory_fingerprint`] of the run.
    pub fingerprint: String,
}

/// A checkpoint read back: metadata and CPU tensors by name.
#[derive(Debug)]
pub struct Checkpoint {
    /// Position of the run.
    pub meta: CheckpointMeta,
    /// All tensors, on the CPU, in their stored dtype.
    pub tensors: BTreeMap<String, Tensor>,
}

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn raw(name: &str, t: &Tensor) -> Result<Raw, TrainError> {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let dtype = dtype_of(t.kind()).ok_or_else(|| {
        TrainError::input(
            format!("tensor `{name}`"),
            format!("dtype {:?} cannot be stored", t.kind()),
        )
    })?;
    let numel = t.numel();
    let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut bytes, numel)
        .map_err(|source| TrainError::Torch {
            context: format!("reading `{name}` for the checkpoint"),
            source,
        })?;
    Ok(Raw {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        bytes,
    })
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Write `tensors` and `meta` to `path` (through a temporary file, renamed into place so a
/// crash never leaves a truncated checkpoint).
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &CheckpointMeta,
) -> Result<(), TrainError> {
    let raws: Vec<(String, Raw)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), raw(n, t)?)))
        .collect::<Result<_, TrainError>>()?;
    let info = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("step".to_string(), meta.step.to_string()),
        ("seed".to_string(), meta.seed.to_string()),
        ("fingerprint".to_string(), meta.fingerprint.clone()),
    ]);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    safetensors::serialize_to_file(raws.iter().map(|(n, r)| (n.as_str(), r)), Some(info), &tmp)
        .map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

/// Read a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| io_error(path, e))?;
    let info = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        info.get(key)
            .cloned()
            .ok_or_else(|| io_error(path, format!("metadata `{key}` is missing")))
    };
    let format = get("format")?;
    if format != FORMAT {
        return Err(io_error(
            path,
            format!("format `{format}`, expected `{FORMAT}`"),
        ));
    }
    let number = |key: &str| -> Result<u64, TrainError> {
        get(key)?
            .parse()
            .map_err(|e| io_error(path, format!("metadata `{key}`: {e}")))
    };
    let meta = CheckpointMeta {
        step: number("step")?,
        seed: number("seed")?,
        fingerprint: get("fingerprint")?,
    };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| io_error(path, e))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype())
            .ok_or_else(|| io_error(path, format!("`{name}` has dtype {:?}", view.dtype())))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::f_from_data_size(view.data(), &shape, kind).map_err(|source| {
            TrainError::Torch {
                context: format!("reading `{name}` from {}", path.display()),
                source,
            }
        })?;
        tensors.insert(name, t);
    }
    Ok(Checkpoint { meta, tensors })
}

/// Copy `src` into the variable `dst` (no gradient recorded), checking the shape.
pub fn restore_into(name: &str, dst: &Tensor, src: &Tensor) -> Result<(), TrainError> {
    if dst.size() != src.size() {
        return Err(TrainError::input(
            "checkpoint",
            format!(
                "`{name}` has shape {:?}, the model expects {:?}",
                src.size(),
                dst.size()
            ),
        ));
    }
    let _guard = tch::no_grad_guard();
    let mut dst = dst.shallow_clone();
    dst.copy_(&src.to_device(dst.device()).to_kind(dst.kind()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let a = Tensor::randn([3, 2], (Kind::Float, Device::Cpu));
        let b = Tensor::from_slice(&[1i64, -5, 7]);
        let meta = CheckpointMeta {
            step: 42,
            seed: u64::MAX,
            fingerprint: "x: 1\n".into(),
        };
        save(
            &path,
            &[
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            &meta,
        )
        .unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.meta, meta);
        assert!(c.tensors["a"].equal(&a));
        assert!(c.tensors["b"].equal(&b));
        assert!(!dir.path().join("c.safetensors.partial").exists());
    }
}
