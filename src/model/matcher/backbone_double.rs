//! Test double of `model::backbone` with the API the heads brief fixes (names, signatures,
//! shapes), so that `backbone_binding` compiles and runs in unit tests before the merge.
//!
//! Features are simple deterministic functions of the image: latents are 8×8 block means
//! (+ a colour-difference channel), UNet features a fixed random 3×3 convolution of the
//! latents plus a projection of the prompt's mean token, CLIP tokens block means of the image.

#![allow(dead_code)] // mirrors the whole agreed API, not only what the binding calls

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::model::ModelError;

pub struct BackboneOptions {
    pub unet_block: usize,
    pub timestep: f64,
    pub load_clip: bool,
}

pub struct Backbone {
    device: Device,
    kind: Kind,
    conv: Tensor,
    prompt_proj: Tensor,
    clip: Option<ClipVision>,
}

pub struct ClipVision {
    proj_in: Tensor,
    proj_out: Tensor,
    grid: i64,
}

pub struct ClipOutput {
    pub tokens: Tensor,
    pub pooled: Tensor,
    pub embedding: Tensor,
}

/// Sizes of the double (tests build heads for them).
pub const FEATURE_CHANNELS: i64 = 12;
pub const CROSS_ATTENTION_DIM: i64 = 6;
pub const CLIP_HIDDEN: i64 = 10;
pub const CLIP_GRID: i64 = 2;
pub const CLIP_TOKENS: i64 = 1 + CLIP_GRID * CLIP_GRID;

impl Backbone {
    pub fn load(
        dir: &Path,
        device: Device,
        kind: Kind,
        opts: &BackboneOptions,
    ) -> Result<Self, ModelError> {
        for (sub, needed) in [
            ("unet", true),
            ("vae", true),
            ("image_encoder", opts.load_clip),
        ] {
            if needed && !dir.join(sub).is_dir() {
                return Err(ModelError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: format!("{sub}/config.json"),
                    hint: "test double".into(),
                });
            }
        }
        let _ = (opts.unet_block, opts.timestep);
        tch::manual_seed(1234);
        let opts_f = (Kind::Float, Device::Cpu);
        let conv = Tensor::randn([FEATURE_CHANNELS, 4, 3, 3], opts_f) / 6.0;
        let prompt_proj = Tensor::randn([CROSS_ATTENTION_DIM, FEATURE_CHANNELS], opts_f) * 0.1;
        let clip = opts.load_clip.then(|| ClipVision {
            proj_in: Tensor::randn([3, CLIP_HIDDEN], opts_f)
                .to_device(device)
                .to_kind(kind),
            proj_out: Tensor::randn([CLIP_HIDDEN, 4], opts_f)
                .to_device(device)
                .to_kind(kind),
            grid: CLIP_GRID,
        });
        Ok(Backbone {
            device,
            kind,
            conv: conv.to_device(device).to_kind(kind),
            prompt_proj: prompt_proj.to_device(device).to_kind(kind),
            clip,
        })
    }

    pub fn encode_latents(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        let blocks = images.avg_pool2d([8, 8], [8, 8], [0, 0], false, true, None::<i64>);
        let diff = blocks.narrow(1, 0, 1) - blocks.narrow(1, 1, 1);
        Ok(Tensor::cat(&[blocks, diff], 1))
    }

    pub fn unet_features(&self, latents: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        let f = latents.conv2d(&self.conv, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let bias = prompts
            .mean_dim(1, false, self.kind)
            .matmul(&self.prompt_proj);
        Ok(f + bias.unsqueeze(-1).unsqueeze(-1))
    }

    pub fn feature_channels(&self) -> i64 {
        FEATURE_CHANNELS
    }
    pub fn cross_attention_dim(&self) -> i64 {
        CROSS_ATTENTION_DIM
    }
    pub fn clip(&self) -> Option<&ClipVision> {
        self.clip.as_ref()
    }
    pub fn device(&self) -> Device {
        self.device
    }
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

impl ClipVision {
    pub fn preprocess(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        Ok(images.adaptive_avg_pool2d([self.grid, self.grid]))
    }

    pub fn forward(&self, pixel_values: &Tensor) -> Result<ClipOutput, ModelError> {
        let patches = pixel_values
            .flatten(2, 3)
            .transpose(1, 2)
            .matmul(&self.proj_in);
        let cls = patches.mean_dim(1, true, patches.kind());
        let tokens = Tensor::cat(&[&cls, &patches], 1);
        let pooled = cls.squeeze_dim(1);
        let embedding = pooled.matmul(&self.proj_out);
        Ok(ClipOutput {
            tokens,
            pooled,
            embedding,
        })
    }

    pub fn hidden_size(&self) -> i64 {
        CLIP_HIDDEN
    }
    pub fn embedding_dim(&self) -> i64 {
        4
    }
}

#[cfg(test)]
mod tests {
    //! The matcher through `ImdMatcher::load` and the backbone binding, on the double.
    use super::*;
    use crate::model::imd_config::{CipmConfig, CoarseConfig, FineConfig, ImdModelConfig};
    use crate::model::matcher::{HeadDims, ImdHeads, HEADS_FILE};
    use crate::model::{ImdMatcher, MatcherMode, ModeOption, ModelOptions};

    fn small_config() -> ImdModelConfig {
        ImdModelConfig {
            description: "unit test".into(),
            cipm: CipmConfig {
                clip_tokens: CLIP_TOKENS,
                dim: 8,
                prompt_length: 3,
                scale: 0.2,
                mlp_hidden: 8,
            },
            coarse: CoarseConfig {
                d_model: 8,
                nhead: 2,
                ..Default::default()
            },
            fine: FineConfig {
                dims: vec![10, 12],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn folder(with_heads: bool, with_clip: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["unet", "vae"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        if with_clip {
            std::fs::create_dir(dir.path().join("image_encoder")).unwrap();
        }
        let cfg = small_config();
        std::fs::write(dir.path().join("imd.yaml"), cfg.to_yaml_string()).unwrap();
        if with_heads {
            let dims = HeadDims {
                feature_channels: FEATURE_CHANNELS,
                context_dim: CROSS_ATTENTION_DIM,
                clip_hidden: CLIP_HIDDEN,
            };
            ImdHeads::new(&cfg, dims, Device::Cpu)
                .save(&dir.path().join(HEADS_FILE))
                .unwrap();
        }
        dir
    }

    fn texture(w: u32, h: u32, seed: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let v = (x.wrapping_mul(7919) ^ y.wrapping_mul(104729) ^ seed.wrapping_mul(31337))
                .wrapping_mul(2654435761);
            image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
        })
    }

    #[test]
    fn loads_through_the_binding_in_both_modes() {
        let dir = folder(true, true);
        let opts = ModelOptions {
            model_dir: dir.path().display().to_string(),
            resize_long_side: 0,
            coarse_threshold: 0.0,
            border: 0,
            ..Default::default()
        };
        let m = ImdMatcher::load(&opts).unwrap();
        assert_eq!(m.mode(), MatcherMode::Full);
        let (a, b) = (texture(64, 48, 1), texture(72, 40, 2));
        let out = m.match_images(&a, &b).unwrap();
        // Random heads: nothing to say about quality, but every match lies in its image and
        // the embeddings are unit vectors.
        for mt in &out.matches {
            assert!(mt.p0.x >= -4.0 && mt.p0.x < 64.0 && mt.p0.y >= -4.0 && mt.p0.y < 48.0);
            assert!(mt.p1.x >= -5.0 && mt.p1.x < 73.0 && mt.p1.y >= -5.0 && mt.p1.y < 41.0);
        }
        let p = m.prepare(&[&a]).unwrap();
        let n: f32 = p[0].embedding.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-5);

        let zs = ImdMatcher::load(&ModelOptions {
            mode: ModeOption::ZeroShot,
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(zs.mode(), MatcherMode::ZeroShot);
        zs.match_images(&a, &a).unwrap();

        // Full mode needs the CLIP folder; the double reports it like the real loader.
        let no_clip = folder(true, false);
        let err = ImdMatcher::load(&ModelOptions {
            model_dir: no_clip.path().display().to_string(),
            ..opts
        })
        .unwrap_err();
        assert!(err.to_string().contains("image_encoder"), "{err}");
    }
}
