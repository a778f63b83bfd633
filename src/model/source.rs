//! The backbone seam: what the heads need from a frozen feature extractor.
//!
//! The heads consume two things per image — a **coarse feature map at 1/8** of the image
//! (conditioned on a prompt, which is how the CIPM reaches the features) and the **prompt
//! inputs** (tokens the CIPM reads, plus a global embedding for keyframe retrieval). How a
//! backbone makes them is its own business: SD2.1 (`model::backbone::Backbone`, bound in
//! `matcher/backbone_source.rs`) encodes VAE latents and runs its UNet with the prompt as
//! cross-attention context; the plain CNN ([`crate::model::cnn_backbone`]) convolves and adds
//! a projection of the prompt. A new backbone is one file implementing [`FeatureSource`] plus
//! a `backbone.kind` value in `imd.yaml`.

use tch::{Device, Kind, Tensor};

use crate::model::ModelError;

/// Per-image inputs of the cross-image prompt module.
#[derive(Debug)]
pub struct PromptInputs {
    /// Tokens `[B, N, prompt_input_dim]` the CIPM attends over (SD2.1: CLIP's last hidden
    /// state, CLS first).
    pub tokens: Tensor,
    /// Global embedding `[B, E]` for retrieval (not normalised).
    pub embedding: Tensor,
}

/// A frozen feature extractor for the heads. All methods must work under `tch::no_grad` and,
/// for training, let gradients flow from the coarse features back to `prompts`.
///
/// The split into [`encode`](Self::encode) (per image, cached by the matcher) and
/// [`coarse_features`](Self::coarse_features) (per pair, because the prompts depend on both
/// images) is what lets the tracker prepare a keyframe once and match it many times.
pub trait FeatureSource: Send {
    /// Device the tensors live on.
    fn device(&self) -> Device;
    /// Compute dtype.
    fn kind(&self) -> Kind;
    /// Channels `C` of the coarse feature map (640 for SD2.1 `up_blocks[2]`).
    fn feature_channels(&self) -> i64;
    /// Width `D` of one prompt token the coarse features are conditioned on (SD2.1: the
    /// UNet's cross-attention width, 1024).
    fn prompt_dim(&self) -> i64;
    /// Width of the prompt-input tokens, or `None` when this source gives none (then only
    /// zero-shot matching is possible).
    fn prompt_input_dim(&self) -> Option<i64>;
    /// `[B, 3, H, W]` RGB in [−1, 1] (H, W multiples of 8) → per-image codes
    /// `[B, k, H/8, W/8]` that [`coarse_features`](Self::coarse_features) turns into the
    /// coarse map (SD2.1: VAE latents).
    fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError>;
    /// Codes `[B, k, h, w]` and prompts `[B, L, D]` → coarse features `[B, C, h, w]` at 1/8.
    fn coarse_features(&self, codes: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError>;
    /// `[B, 3, H, W]` RGB in [0, 1] → prompt inputs; `None` when this source gives none.
    fn prompt_inputs(&self, images: &Tensor) -> Result<Option<PromptInputs>, ModelError>;
}
