//! What the matcher needs from the frozen backbone (SD2.1 VAE + UNet, CLIP image encoder).
//!
//! The real implementation is `model::backbone::Backbone` (bound in `backbone_source.rs`);
//! tests implement it with constructed features.

use tch::{Device, Kind, Tensor};

use crate::model::ModelError;

/// CLIP outputs the matcher uses.
#[derive(Debug)]
pub struct ClipFeatures {
    /// Last hidden state `[B, 1 + N, hidden]` (CIPM input).
    pub tokens: Tensor,
    /// Global embedding `[B, E]` (projected when the encoder has a projection), not normalised.
    pub embedding: Tensor,
}

/// The frozen feature extractors. All methods must work under `tch::no_grad` and, for
/// training, let gradients flow from the UNet features back to `prompts`.
pub trait FeatureSource: Send {
    /// Device the tensors live on.
    fn device(&self) -> Device;
    /// Compute dtype.
    fn kind(&self) -> Kind;
    /// Channels of the UNet features (640 for SD2.1 `up_blocks[2]`).
    fn feature_channels(&self) -> i64;
    /// Width of the UNet's cross-attention context (1024 for SD2.1).
    fn cross_attention_dim(&self) -> i64;
    /// CLIP hidden size, or `None` when no CLIP encoder is loaded.
    fn clip_hidden_size(&self) -> Option<i64>;
    /// `[B, 3, H, W]` RGB in [−1, 1] (H, W multiples of 8) → latents `[B, 4, H/8, W/8]`.
    fn encode_latents(&self, images: &Tensor) -> Result<Tensor, ModelError>;
    /// Latents `[B, 4, h, w]` and prompts `[B, L, D]` → features `[B, C, h, w]`.
    fn unet_features(&self, latents: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError>;
    /// `[B, 3, H, W]` RGB in [0, 1] → CLIP tokens and embedding; `None` without CLIP.
    fn clip_features(&self, images: &Tensor) -> Result<Option<ClipFeatures>, ModelError>;
}
