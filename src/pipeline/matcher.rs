//! [`PairMatcher`]: what the tracker needs from a matcher, implemented for [`ImdMatcher`] and
//! by test oracles.
//!
//! Matching is split like IMD's forward: [`PairMatcher::prepare`] does the per-image work that
//! does not depend on the other image (for IMD: VAE latent, CLIP tokens + global embedding,
//! fine-encoder features; in zero-shot mode the UNet features under the empty prompt), and
//! [`PairMatcher::match_pair`] the per-pair rest (CIPM prompts, UNet, coarse + fine heads; in
//! zero-shot mode only the heads). The tracker prepares every frame exactly once and keeps a keyframe's
//! prepared features for as long as the keyframe lives, so only the per-pair part runs per
//! frame.

use image::RgbImage;

use super::{Frame, PipelineError};
use crate::geometry::PixelMatch;
use crate::model::{ImdMatcher, PreparedImage, StageTimings};

/// Matches of one pair, image 0 = the keyframe, image 1 = the current frame.
#[derive(Debug, Clone, Default)]
pub struct PairMatches {
    /// Correspondences in original-image pixels.
    pub matches: Vec<PixelMatch>,
    /// Where the time went (per-pair stages only).
    pub timings: StageTimings,
}

/// A two-view matcher with per-image caching.
pub trait PairMatcher: Send + std::fmt::Debug {
    /// Per-image features; a keyframe keeps its own for its lifetime.
    type Prepared: Send + std::fmt::Debug;

    /// Per-image work for `frames` (batched where the matcher can), in order.
    fn prepare(&mut self, frames: &[&Frame]) -> Result<Vec<Self::Prepared>, PipelineError>;

    /// Time spent preparing this image (its share of a batch).
    fn prepare_timings(&self, prepared: &Self::Prepared) -> StageTimings;

    /// Global image descriptor for retrieval, L2-normalized (IMD: the CLIP embedding); empty
    /// when the matcher has none (relocalization then ranks keyframes by recency).
    fn embedding<'a>(&self, prepared: &'a Self::Prepared) -> &'a [f32];

    /// What identifies this matcher's embeddings, for saved maps ([`super::map`]): a map
    /// built by one matcher is refused by another. The default names the type.
    fn identity(&self) -> Result<String, PipelineError> {
        Ok(format!("type:{}", std::any::type_name::<Self>()))
    }

    /// Match keyframe `image0` against current frame `image1`.
    fn match_pair(
        &mut self,
        image0: &Self::Prepared,
        image1: &Self::Prepared,
    ) -> Result<PairMatches, PipelineError>;
}

impl PairMatcher for ImdMatcher {
    type Prepared = PreparedImage;

    fn prepare(&mut self, frames: &[&Frame]) -> Result<Vec<PreparedImage>, PipelineError> {
        let images: Vec<&RgbImage> = frames.iter().map(|f| f.image.as_ref()).collect();
        Ok(ImdMatcher::prepare(self, &images)?)
    }

    fn prepare_timings(&self, prepared: &PreparedImage) -> StageTimings {
        prepared.timings
    }

    fn embedding<'a>(&self, prepared: &'a PreparedImage) -> &'a [f32] {
        &prepared.embedding
    }

    /// The weights folder's [`super::map::model_identity`] with the mode and input size.
    fn identity(&self) -> Result<String, PipelineError> {
        let opts = self.options();
        let extra = format!("{:?} resize {}", self.mode(), opts.resize_long_side);
        Ok(super::map::model_identity(
            std::path::Path::new(opts.model_dir.trim()),
            &extra,
        )?)
    }

    fn match_pair(
        &mut self,
        image0: &PreparedImage,
        image1: &PreparedImage,
    ) -> Result<PairMatches, PipelineError> {
        let out = self.match_prepared(image0, image1)?;
        Ok(PairMatches {
            matches: out.matches,
            timings: out.timings,
        })
    }
}

/// Cosine similarity of two L2-normalized descriptors (their dot product); `None` when either
/// is empty or their lengths differ.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    Some(a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_similarity_needs_matching_lengths() {
        let a = [0.6f32, 0.8];
        assert!((cosine_similarity(&a, &a).unwrap() - 1.0).abs() < 1e-6);
        assert!((cosine_similarity(&a, &[0.8, -0.6]).unwrap()).abs() < 1e-6);
        assert_eq!(cosine_similarity(&a, &[1.0]), None);
        assert_eq!(cosine_similarity(&[], &[]), None);
    }
}
