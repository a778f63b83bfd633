//! The frozen IMD backbone: SD VAE encoder + UNet features (+ optional CLIP image encoder),
//! loaded from a weights folder in the diffusers / Hugging Face layout:
//!
//! ```text
//! DIR/unet/{config.json, diffusion_pytorch_model[.fp16].safetensors}
//! DIR/vae/{config.json, diffusion_pytorch_model[.fp16].safetensors}
//! DIR/image_encoder/{config.json, model[.fp16].safetensors}      (CLIP vision, optional)
//! DIR/empty_prompt.safetensors                                   (tensor `prompt`, optional)
//! ```
//!
//! `models/prepare_weights.py` builds it from the Hub. Every parameter is frozen
//! (`requires_grad == false`), but nothing is detached, so gradients reach the `prompts`
//! input of [`Backbone::unet_features`] (the CIPM trains through the frozen UNet).

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use super::clip::ClipVision;
use super::nn::check_dims;
use super::unet::{TimeEmbedding, UNet2DConditionModel};
use super::vae::VaeEncoder;
use super::ModelError;

pub use super::clip::ClipOutput;

/// How the weights folder was made, for error messages.
const HOW_TO_GET: &str = "run `python models/prepare_weights.py DIR` on a machine with internet \
                          access, or copy the folder from a diffusers snapshot of \
                          stabilityai/stable-diffusion-2-1";

/// Weight file names diffusers / transformers write, full precision first.
const DIFFUSERS_WEIGHTS: [&str; 2] = [
    "diffusion_pytorch_model.safetensors",
    "diffusion_pytorch_model.fp16.safetensors",
];
const TRANSFORMERS_WEIGHTS: [&str; 2] = ["model.safetensors", "model.fp16.safetensors"];

/// The prompt embedding file `imd features` and zero-shot matching use.
pub const EMPTY_PROMPT_FILE: &str = "empty_prompt.safetensors";

/// A component's config and weights inside the weights folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
}

/// Find `DIR/<sub>/config.json` and the first existing weights name of `weights`.
fn locate(dir: &Path, sub: &str, weights: &[&str]) -> Result<ComponentFiles, ModelError> {
    let folder = dir.join(sub);
    let missing = |file: String| ModelError::MissingFile {
        dir: dir.to_path_buf(),
        file,
        hint: HOW_TO_GET.to_string(),
    };
    let config = folder.join("config.json");
    if !config.is_file() {
        return Err(missing(format!("{sub}/config.json")));
    }
    let weights = weights
        .iter()
        .map(|w| folder.join(w))
        .find(|p| p.is_file())
        .ok_or_else(|| missing(format!("{sub}/{}", weights[0])))?;
    Ok(ComponentFiles { config, weights })
}

/// `DIR/unet/…` files.
pub fn unet_files(dir: &Path) -> Result<ComponentFiles, ModelError> {
    locate(dir, "unet", &DIFFUSERS_WEIGHTS)
}

/// `DIR/vae/…` files.
pub fn vae_files(dir: &Path) -> Result<ComponentFiles, ModelError> {
    locate(dir, "vae", &DIFFUSERS_WEIGHTS)
}

/// `DIR/image_encoder/…` files.
pub fn clip_files(dir: &Path) -> Result<ComponentFiles, ModelError> {
    locate(dir, "image_encoder", &TRANSFORMERS_WEIGHTS)
}

/// Which backbone parts to load and how to run the UNet.
#[derive(Debug, Clone, PartialEq)]
pub struct BackboneOptions {
    /// k: features are the output of `up_blocks[k]` (after its upsampler). Default 2.
    pub unet_block: usize,
    /// Diffusion timestep of the UNet pass (no noise is added). Default 0.
    pub timestep: f64,
    /// Load `image_encoder/` (CLIP) too. Default true.
    pub load_clip: bool,
}

impl Default for BackboneOptions {
    fn default() -> Self {
        BackboneOptions {
            unet_block: 2,
            timestep: 0.0,
            load_clip: true,
        }
    }
}

/// VAE encoder, UNet to `up_blocks[k]` and optionally CLIP vision, on one device and dtype.
#[derive(Debug)]
pub struct Backbone {
    vae: VaeEncoder,
    unet: UNet2DConditionModel,
    time: TimeEmbedding,
    clip: Option<ClipVision>,
    device: Device,
    kind: Kind,
}

impl Backbone {
    /// Load `vae/`, `unet/` and (when `opts.load_clip`) `image_encoder/` from a weights
    /// folder. Stored fp32/fp16/bf16 weights are converted to `kind`.
    pub fn load(
        dir: &Path,
        device: Device,
        kind: Kind,
        opts: &BackboneOptions,
    ) -> Result<Self, ModelError> {
        if !matches!(
            kind,
            Kind::Float | Kind::Half | Kind::BFloat16 | Kind::Double
        ) {
            return Err(ModelError::InvalidOption {
                option: "dtype".into(),
                reason: format!("{kind:?} is not a floating-point compute dtype"),
            });
        }
        if !opts.timestep.is_finite() || opts.timestep < 0.0 {
            return Err(ModelError::InvalidOption {
                option: "timestep".into(),
                reason: format!("{} is not a finite, non-negative timestep", opts.timestep),
            });
        }
        // Locate everything first so a missing file is reported before any heavy loading.
        let unet_f = unet_files(dir)?;
        let vae_f = vae_files(dir)?;
        let clip_f = if opts.load_clip {
            Some(clip_files(dir)?)
        } else {
            None
        };
        let unet = UNet2DConditionModel::load(
            &unet_f.config,
            &unet_f.weights,
            device,
            kind,
            opts.unet_block,
        )?;
        let vae = VaeEncoder::load(&vae_f.config, &vae_f.weights, device, kind)?;
        if vae.latent_channels() != unet.in_channels() {
            return Err(ModelError::BadFile {
                path: vae_f.config,
                reason: format!(
                    "VAE makes {} latent channels but the UNet ({}) takes {}",
                    vae.latent_channels(),
                    unet_f.config.display(),
                    unet.in_channels()
                ),
            });
        }
        let clip = match clip_f {
            Some(f) => Some(ClipVision::load(&f.config, &f.weights, device, kind)?),
            None => None,
        };
        // Constant per timestep: compute it once.
        let time = {
            let _guard = tch::no_grad_guard();
            unet.time_embedding(opts.timestep)?
        };
        Ok(Backbone {
            vae,
            unet,
            time,
            clip,
            device,
            kind,
        })
    }

    /// [B, 3, H, W] RGB in [-1, 1] (H, W multiples of 8; any float dtype and device) →
    /// latents [B, 4, H/8, W/8] (posterior mean × scaling factor) in the model dtype.
    pub fn encode_latents(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        let x = self.to_model(images, "images")?;
        self.vae.encode(&x)
    }

    /// latents [B, 4, h, w], prompts [B (or 1), L, cross_attention_dim] → features
    /// [B, C, h, w]: the output of `up_blocks[k]`. Differentiable in `prompts`.
    pub fn unet_features(&self, latents: &Tensor, prompts: &Tensor) -> Result<Tensor, ModelError> {
        check_dims(
            prompts,
            "prompts",
            &[None, None, Some(self.cross_attention_dim())],
        )?;
        let latents = self.to_model(latents, "latents")?;
        let prompts = self.to_model(prompts, "prompts")?;
        self.unet.features(&latents, &self.time, &prompts)
    }

    /// Channels of [`Self::unet_features`] (640 for SD2.1 with k = 2).
    pub fn feature_channels(&self) -> i64 {
        self.unet.feature_channels()
    }

    /// Width of the prompt embeddings (1024 for SD2.1).
    pub fn cross_attention_dim(&self) -> i64 {
        self.unet.cross_attention_dim()
    }

    /// The CLIP image encoder, when loaded.
    pub fn clip(&self) -> Option<&ClipVision> {
        self.clip.as_ref()
    }

    /// The VAE encoder.
    pub fn vae(&self) -> &VaeEncoder {
        &self.vae
    }

    /// The truncated UNet.
    pub fn unet(&self) -> &UNet2DConditionModel {
        &self.unet
    }

    /// The parameter stores of the loaded parts, named by their weights-folder subfolder:
    /// `vae`, `unet` and, when loaded, `image_encoder`. Each store's variable names are the
    /// checkpoint names, so saving one gives a file the loaders read back.
    pub fn var_stores(&self) -> Vec<(&'static str, &tch::nn::VarStore)> {
        let mut out = vec![
            ("vae", self.vae.var_store()),
            ("unet", self.unet.var_store()),
        ];
        if let Some(clip) = &self.clip {
            out.push(("image_encoder", clip.var_store()));
        }
        out
    }

    /// The timestep the UNet runs at.
    pub fn timestep(&self) -> f64 {
        self.time.timestep()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Move and cast an input to the model's device and dtype (a differentiable no-op when
    /// it already is).
    fn to_model(&self, t: &Tensor, what: &str) -> Result<Tensor, ModelError> {
        if !t.is_floating_point() {
            return Err(ModelError::InvalidInput {
                what: what.into(),
                reason: format!("dtype {:?} is not floating point", t.kind()),
            });
        }
        t.f_to_device(self.device)
            .and_then(|t| t.f_to_kind(self.kind))
            .map_err(ModelError::torch(format!(
                "moving {what} to {:?} {:?}",
                self.device, self.kind
            )))
    }
}
