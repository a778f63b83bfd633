//! The IMD network in tch: SD2.1 VAE + UNet features, CLIP image encoder, cross-image prompt
//! module (CIPM), coarse and fine matching. Backbones sit behind
//! [`source::FeatureSource`]: SD2.1 ([`backbone`]) or a plain CNN ([`cnn_backbone`]).

pub mod backbone;
pub mod cipm;
pub mod clip;
pub mod cnn_backbone;
pub mod coarse;
pub mod fine;
pub mod imd_config;
pub mod matcher;
pub(crate) mod nn;
pub mod runtime;
pub mod source;
pub mod unet;
pub mod vae;
pub mod weights;
pub mod zero_shot;

pub use backbone::{Backbone, BackboneOptions};
pub use clip::{ClipOutput, ClipVision};
pub use imd_config::ImdModelConfig;
pub use matcher::{ImdMatcher, MatchOutput, MatcherMode, PreparedImage, StageTimings};
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
    #[error("{path}: {field}: {reason}")]
    InvalidConfig {
        path: PathBuf,
        field: String,
        reason: String,
    },
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

/// Which matcher to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeOption {
    /// Full IMD when the folder has `heads.safetensors`, zero-shot otherwise.
    #[default]
    Auto,
    /// Full IMD; an error when `heads.safetensors` is missing.
    Full,
    /// DIFT-style zero-shot matching even when trained heads exist.
    ZeroShot,
}

/// Network, weights, device and matching thresholds (`model:` in [`crate::config::ImdConfig`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {
    /// Weights folder: `unet/`, `vae/`, `image_encoder/`, `imd.yaml`, `heads.safetensors`,
    /// `empty_prompt.safetensors` (see docs/model.md). Required.
    pub model_dir: String,
    /// `auto`, `full` or `zero_shot`.
    pub mode: ModeOption,
    /// `cpu`, `cuda` or `cuda:N`.
    pub device: ComputeDevice,
    /// `f32`, `f16` or `bf16` (matching math always runs in f32).
    pub dtype: ComputeDtype,
    /// Resize so the long side has this many pixels (0 = keep the size); each side is then
    /// floored to a multiple of 8.
    pub resize_long_side: u32,
    /// Coarse dual-softmax threshold θ (paper 0.2; Efficient LoFTR's scripts use 0.1).
    pub coarse_threshold: f64,
    /// Coarse cells removed at each image edge (measured from the unpadded region).
    pub border: u32,
    /// Keep at most this many matches, highest confidence first (0 = all).
    pub max_matches: u32,
    /// libtorch CPU threads (0 = libtorch's default). Process-wide.
    pub num_threads: u32,
    /// Zero-shot mode: keep mutual nearest neighbours whose cosine similarity exceeds this.
    pub zero_shot_min_similarity: f64,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            model_dir: String::new(),
            mode: ModeOption::Auto,
            device: ComputeDevice::Cpu,
            dtype: ComputeDtype::F32,
            resize_long_side: 640,
            coarse_threshold: 0.2,
            border: 2,
            max_matches: 0,
            num_threads: 0,
            zero_shot_min_similarity: 0.0,
        }
    }
}

impl ModelOptions {
    /// Check ranges and that a weights folder is named; errors name the option as
    /// `model.<field>`.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.model_dir.trim().is_empty() {
            return Err(ModelError::InvalidOption {
                option: "model.model_dir".into(),
                reason: "is empty: name the weights folder (`--model DIR` or model.model_dir)"
                    .into(),
            });
        }
        self.validate_ranges()
    }

    /// Check the numeric ranges only (what a configuration file or a live parameter set is
    /// held to before a weights folder is chosen).
    pub fn validate_ranges(&self) -> Result<(), ModelError> {
        let bad = |option: &str, reason: String| ModelError::InvalidOption {
            option: format!("model.{option}"),
            reason,
        };
        if !(0.0..1.0).contains(&self.coarse_threshold) {
            return Err(bad(
                "coarse_threshold",
                format!("{} is not in [0, 1)", self.coarse_threshold),
            ));
        }
        if !(-1.0..1.0).contains(&self.zero_shot_min_similarity) {
            return Err(bad(
                "zero_shot_min_similarity",
                format!("{} is not in [-1, 1)", self.zero_shot_min_similarity),
            ));
        }
        Ok(())
    }
}
