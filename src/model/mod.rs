//! The IMD network in tch: SD2.1 VAE + UNet features, CLIP image encoder, cross-image prompt
//! module (CIPM), coarse and fine matching.

use serde::{Deserialize, Serialize};

/// Errors loading or running the network.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Other(String),
}

/// Model options (placeholder until the model module lands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {}
