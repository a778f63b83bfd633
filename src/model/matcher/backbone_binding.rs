//! MERGE POINT: binds the matcher to the real `model::backbone::Backbone`.
//!
//! The backbone is written on another branch. Until it is merged, test builds compile this
//! binding against `backbone_double` (the agreed API, same names and signatures) and
//! non-test builds use a stub that reports the missing backbone. At merge:
//! 1. in `mod real`, replace `use super::super::backbone_double as api;` by
//!    `use crate::model::backbone as api;`;
//! 2. remove the two `#[cfg(test)] // MERGE` attributes (on `use real::…` and `mod real`);
//! 3. delete `mod stub` and the `use stub::load_backbone` line (and
//!    `#[cfg(test)] mod backbone_double;` in `matcher/mod.rs` with its file).

#[cfg(test)] // MERGE
pub(super) use real::load_backbone;
#[cfg(not(test))] // MERGE: delete with `mod stub`
pub(super) use stub::load_backbone;

#[cfg(test)] // MERGE
mod real {
    use std::path::Path;

    use tch::{Device, Kind, Tensor};

    use super::super::backbone_double as api;
    use super::super::source::{ClipFeatures, FeatureSource};
    use crate::model::imd_config::BackboneSection;
    use crate::model::ModelError;
    use api::{Backbone, BackboneOptions};

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
}

/// Stub until the backbone branch is merged (delete at merge).
#[cfg(not(test))]
mod stub {
    use std::path::Path;

    use tch::{Device, Kind};

    use super::super::source::FeatureSource;
    use crate::model::imd_config::BackboneSection;
    use crate::model::ModelError;

    pub(in crate::model::matcher) fn load_backbone(
        dir: &Path,
        _device: Device,
        _kind: Kind,
        _section: &BackboneSection,
        _load_clip: bool,
    ) -> Result<Box<dyn FeatureSource>, ModelError> {
        Err(ModelError::InvalidOption {
            option: "model.model_dir".into(),
            reason: format!(
                "{}: this build has no SD2.1 backbone yet (model::backbone is merged separately)",
                dir.display()
            ),
        })
    }
}
