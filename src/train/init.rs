//! Warm start of the heads from another run's `heads.safetensors` (`train.init_heads`): every
//! tensor whose name and shape match is copied; the rest keep their fresh initialisation
//! (e.g. the `aggregate` kernels of a model that switches to aggregated attention).

use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use super::checkpoint::restore_into;
use super::TrainError;

/// What [`init_from_file`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitReport {
    /// Variables copied from the file.
    pub copied: Vec<String>,
    /// Variables left as initialised (absent from the file, or of another shape).
    pub kept: Vec<String>,
}

/// Copy the tensors of the safetensors file `path` into the variables of `vs` with the same
/// name and shape.
pub fn init_from_file(vs: &VarStore, path: &Path) -> Result<InitReport, TrainError> {
    let tensors: std::collections::HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|source| TrainError::Torch {
            context: format!("reading {}", path.display()),
            source,
        })?
        .into_iter()
        .collect();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut report = InitReport::default();
    for (name, var) in variables {
        match tensors.get(&name) {
            Some(src) if src.size() == var.size() => {
                restore_into(&name, &var, src)?;
                report.copied.push(name);
            }
            _ => report.kept.push(name),
        }
    }
    if report.copied.is_empty() {
        return Err(TrainError::InvalidConfig {
            field: "train.init_heads".into(),
            reason: format!("{} has no tensor of these heads", path.display()),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    #[test]
    fn copies_matching_tensors_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.safetensors");
        let a = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let wrong = Tensor::ones([5], (Kind::Float, Device::Cpu));
        Tensor::write_safetensors(&[("x.w", &a), ("y.w", &wrong)], &path).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let x = (&root / "x").zeros("w", &[2, 3]);
        let y = (&root / "y").zeros("w", &[4]);
        let z = (&root / "z").zeros("w", &[1]);
        let r = init_from_file(&vs, &path).unwrap();
        assert_eq!(r.copied, vec!["x.w".to_string()]);
        assert_eq!(r.kept, vec!["y.w".to_string(), "z.w".to_string()]);
        assert!(x.equal(&a) && y.abs().sum(Kind::Float).double_value(&[]) == 0.0);
        assert_eq!(z.double_value(&[0]), 0.0);
        // Nothing in common is a configuration error.
        Tensor::write_safetensors(&[("other", &a)], &path).unwrap();
        let err = init_from_file(&vs, &path).unwrap_err().to_string();
        assert!(err.contains("train.init_heads"), "{err}");
    }
}
