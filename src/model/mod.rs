//! The IMD network in tch: SD2.1 VAE + UNet features, CLIP image encoder, cross-image prompt
//! module (CIPM), coarse and fine matching.

pub mod backbone;
pub mod clip;
pub(crate) mod nn;
pub mod runtime;
pub mod unet;
pub mod vae;
pub mod weights;

pub use backbone::{Backbone, BackboneOptions};
pub use clip::{ClipOutput, ClipVision};
pub use runtime::{ComputeDevice, ComputeDtype};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Errors loading or running the network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("weights folder {dir}: missing {file} ({hint})")]
    MissingFile {
        dir: PathBuf,
        file: String,
        hint: String,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("{file}: tensor `{tensor}` is missing")]
    MissingTensor { tensor: String, file: PathBuf },
    #[error("{file}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        tensor: String,
        file: PathBuf,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("{file}: unexpected tensor `{tensor}` (not part of this model)")]
    UnexpectedTensor { tensor: String, file: PathBuf },
    #[error("{file}: tensor `{tensor}` has unsupported dtype {dtype}")]
    UnsupportedDtype {
        tensor: String,
        file: PathBuf,
        dtype: String,
    },
    #[error("{option}: {reason}")]
    InvalidOption { option: String, reason: String },
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    #[error("libtorch: {context}: {source}")]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
}

impl ModelError {
    /// Wrap a libtorch error with what we were doing.
    pub fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> ModelError {
        let context = context.into();
        move |source| ModelError::Torch { context, source }
    }
}

/// Model options (placeholder until the model module lands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {}
