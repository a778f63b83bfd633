//! Training the IMD heads: supervision (ground truth from depth + pose or a homography),
//! losses, and the batch layout the trainer feeds them.
//!
//! Everything here is tensor-in / tensor-out on any device, so the losses work with whatever
//! the model returns and the trainer stays thin.

pub mod batch;
pub mod loss;
pub mod supervision;

pub use batch::TrainBatch;
pub use loss::{LossConfig, LossTerms};
pub use supervision::{CoarseGt, CoarseLayout, FineGrid, FineGt, WarpSource};

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
