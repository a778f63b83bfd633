//! Training IMD: supervision (ground truth from depth + pose or a homography), losses, the
//! batch layout, and the trainer (`imd train --config train.yaml`).
//!
//! - [`supervision`], [`loss`], [`batch`]: tensor-in / tensor-out on any device;
//! - [`config`]: `train.yaml` ([`TrainConfig`]);
//! - [`optim`]: AdamW with checkpointable state, warm-up + multi-step schedule;
//! - [`checkpoint`]: safetensors checkpoints (model, optimiser state, step, seed);
//! - [`forward`]: a batch through the network's one forward pass;
//! - [`init`]: warm start of the heads from another run (`train.init_heads`);
//! - [`trainer`]: the loop ([`Trainer`]) and the exported weights folder.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod forward;
pub mod init;
pub mod loss;
pub mod optim;
pub mod supervision;
pub mod trainer;

pub use batch::TrainBatch;
pub use config::TrainConfig;
pub use loss::{LossConfig, LossTerms};
pub use supervision::{CoarseGt, CoarseLayout, FineGrid, FineGt, WarpSource};
pub use trainer::{StepReport, Trainer};

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor or value handed to a training function does not have the expected form.
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    /// A configuration value is out of range.
    #[error("{field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// libtorch failed.
    #[error("libtorch: {context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
    /// A checkpoint could not be written or read, or does not belong to this run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A file or folder of the run could not be written.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("training diverged at step {step}: loss {loss}")]
    Diverged { step: u64, loss: f64 },
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Reading the training data failed.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
}

impl TrainError {
    pub(crate) fn input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        TrainError::InvalidInput {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Check that `t` has exactly `dims.len()` dimensions and, where `dims[k] >= 0`, that size.
pub(crate) fn check_shape(what: &str, t: &tch::Tensor, dims: &[i64]) -> Result<(), TrainError> {
    let size = t.size();
    let ok = size.len() == dims.len() && size.iter().zip(dims).all(|(s, d)| *d < 0 || s == d);
    if ok {
        Ok(())
    } else {
        let expected: Vec<String> = dims
            .iter()
            .map(|d| if *d < 0 { "_".into() } else { d.to_string() })
            .collect();
        Err(TrainError::input(
            what,
            format!("has shape {size:?}, expected [{}]", expected.join(", ")),
        ))
    }
}
