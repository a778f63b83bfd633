//! Binds the matcher to the SD2.1 backbone: `Backbone` is the production `FeatureSource`.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::source::{ClipFeatures, FeatureSource};
use crate::model::backbone::{Backbone, BackboneOptions};
use crate::model::imd_config::BackboneSection;
use crate::model::ModelError;

impl FeatureSource for Backbone {
    fn device(&self) -> Device {
        Backbone::device(self)
    }
    fn kind(&self) -> Kind {
        Backbone::kind(self)
    }
    fn feature_channels(&self) -> i64 {
        Backbone::feature_channels(self)
    }
    fn cross_attention_dim(&self) -> i64 {
        Backbone::cross_attention_dim(self)
    }
    fn clip_hidden_size(&self) -> Option<i64> {
        self.clip().map(|c| c.hidden_size())
    }
    fn encode_latents(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        Backbone::encode_latents(self, images)
    }
    fn unet_features(&self, latents: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        Backbone::unet_features(self, latents, prompts)
    }
    fn clip_features(&self, images: &Tensor) -> Result<Option<ClipFeatures>, ModelError> {
        let Some(clip) = self.clip() else {
            return Ok(None);
        };
        let out = clip.forward(&clip.preprocess(images)?)?;
        Ok(Some(ClipFeatures {
            tokens: out.tokens,
            embedding: out.embedding,
        }))
    }
}

/// Load `vae/`, `unet/` and (when `load_clip`) `image_encoder/` from a weights folder.
pub(in crate::model::matcher) fn load_backbone(
    dir: &Path,
    device: Device,
    kind: Kind,
    section: &BackboneSection,
    load_clip: bool,
) -> Result<Box<dyn FeatureSource>, ModelError> {
    let opts = BackboneOptions {
        unet_block: section.unet_block,
        timestep: section.timestep,
        load_clip,
    };
    Ok(Box::new(Backbone::load(dir, device, kind, &opts)?))
}
