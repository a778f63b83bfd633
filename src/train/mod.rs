//! Training the IMD heads: supervision, losses, the training loop.

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Other(String),
}
