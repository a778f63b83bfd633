//! Binds the matcher to its backbones: SD2.1 `Backbone` is the production [`FeatureSource`];
//! `backbone.kind` in `imd.yaml` picks which one [`load_backbone`] builds.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::model::backbone::{Backbone, BackboneOptions};
use crate::model::cnn_backbone::CnnBackbone;
use crate::model::imd_config::{BackboneKind, BackboneSection};
use crate::model::source::{FeatureSource, PromptInputs};
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
    fn prompt_dim(&self) -> i64 {
        Backbone::cross_attention_dim(self)
    }
    fn prompt_input_dim(&self) -> Option<i64> {
        self.clip().map(|c| c.hidden_size())
    }
    fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        Backbone::encode_latents(self, images)
    }
    fn coarse_features(&self, codes: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        Backbone::unet_features(self, codes, prompts)
    }
    fn prompt_inputs(&self, images: &Tensor) -> Result<Option<PromptInputs>, ModelError> {
        let Some(clip) = self.clip() else {
            return Ok(None);
        };
        let out = clip.forward(&clip.preprocess(images)?)?;
        Ok(Some(PromptInputs {
            tokens: out.tokens,
            embedding: out.embedding,
        }))
    }
}

/// Load the backbone `section.kind` names from a weights folder: SD2.1 reads `vae/`, `unet/`
/// and (when `load_clip`) `image_encoder/`; the CNN reads its one weights file.
pub(in crate::model::matcher) fn load_backbone(
    dir: &Path,
    device: Device,
    kind: Kind,
    section: &BackboneSection,
    load_clip: bool,
) -> Result<Box<dyn FeatureSource>, ModelError> {
    match section.kind {
        BackboneKind::Sd21 => {
            let opts = BackboneOptions {
                unet_block: section.unet_block,
                timestep: section.timestep,
                load_clip,
            };
            Ok(Box::new(Backbone::load(dir, device, kind, &opts)?))
        }
        BackboneKind::Cnn => Ok(Box::new(CnnBackbone::load(
            dir,
            &section.cnn,
            device,
            kind,
        )?)),
    }
}
