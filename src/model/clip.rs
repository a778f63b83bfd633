//! CLIP vision transformer in the Hugging Face layout (`CLIPVisionModel`,
//! `CLIPVisionModelWithProjection` or a whole `CLIPModel`): patch tokens, the pooled
//! (post-layernorm CLS) state and, when the file has `visual_projection.weight`, the projected
//! global embedding. Also the CLIP image preprocessing as a tensor function.
//!
//! Parameters are looked up under `vision_model.` (how `CLIPVisionModelWithProjection`,
//! `CLIPModel` and transformers < 5 `CLIPVisionModel` files name them) or without a prefix
//! (transformers ≥ 5 `CLIPVisionModel`). The text tower of a full `CLIPModel` stays unread.

use std::path::Path;

use serde::Deserialize;
use tch::{nn, Device, Kind, Tensor};

use super::nn::{
    check_dims, multi_head_attention, param, read_text, Conv2d, LayerNorm, Linear, TchResult,
};
use super::weights::{load_into, no_alias, Unexpected, WeightFile};
use super::ModelError;

/// Per-channel mean of CLIP's image normalisation (OpenAI and OpenCLIP models alike).
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// Per-channel standard deviation of CLIP's image normalisation.
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// HF `CLIPVisionConfig` (the fields the vision tower needs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub num_channels: i64,
    pub image_size: i64,
    pub patch_size: i64,
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    pub projection_dim: i64,
}

impl Default for ClipVisionConfig {
    /// transformers' `CLIPVisionConfig` defaults (ViT-B/32).
    fn default() -> Self {
        ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            projection_dim: 512,
        }
    }
}

/// A full HF `CLIPConfig`: the vision part plus the shared projection width.
#[derive(Debug, Deserialize)]
struct ClipFullConfig {
    vision_config: ClipVisionConfig,
    #[serde(default = "default_projection_dim")]
    projection_dim: i64,
}

fn default_projection_dim() -> i64 {
    512
}

impl ClipVisionConfig {
    /// Parse a `CLIPVisionConfig`, or a `CLIPConfig` (taking its `vision_config` and top-level
    /// `projection_dim`), and check it.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let config = if value.get("vision_config").is_some() {
            let full: ClipFullConfig =
                serde_json::from_value(value).map_err(|e| format!("not a CLIPConfig: {e}"))?;
            ClipVisionConfig {
                projection_dim: full.projection_dim,
                ..full.vision_config
            }
        } else {
            serde_json::from_value(value).map_err(|e| format!("not a CLIPVisionConfig: {e}"))?
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.hidden_size <= 0 || self.num_attention_heads <= 0 {
            return Err("`hidden_size` and `num_attention_heads` must be positive".into());
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(format!(
                "`hidden_size` {} is not divisible by `num_attention_heads` {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.patch_size <= 0 || self.image_size <= 0 || self.image_size % self.patch_size != 0 {
            return Err(format!(
                "`image_size` {} is not a positive multiple of `patch_size` {}",
                self.image_size, self.patch_size
            ));
        }
        Activation::parse(&self.hidden_act)?;
        Ok(())
    }

    /// Patch tokens per image (256 for ViT-H/14 at 224 px).
    pub fn num_patches(&self) -> i64 {
        (self.image_size / self.patch_size).pow(2)
    }
}

/// The MLP activations CLIP checkpoints use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    /// Exact (erf) GELU: OpenCLIP models such as ViT-H/14.
    Gelu,
    /// Tanh-approximated GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `x · sigmoid(1.702 x)`: OpenAI CLIP models.
    QuickGelu,
}

impl Activation {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "quick_gelu" => Ok(Activation::QuickGelu),
            other => Err(format!(
                "unsupported CLIP config: `hidden_act` = {other:?} (gelu, gelu_new, quick_gelu)"
            )),
        }
    }

    fn apply(self, x: &Tensor) -> TchResult<Tensor> {
        match self {
            Activation::Gelu => x.f_gelu("none"),
            Activation::GeluTanh => x.f_gelu("tanh"),
            Activation::QuickGelu => x.f_mul(&x.f_mul_scalar(1.702)?.f_sigmoid()?),
        }
    }
}

/// Pre-norm encoder layer: self-attention and MLP, each residual.
#[derive(Debug)]
struct EncoderLayer {
    layer_norm1: LayerNorm,
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    heads: i64,
    act: Activation,
}

impl EncoderLayer {
    fn new(p: nn::Path, c: &ClipVisionConfig, act: Activation) -> TchResult<Self> {
        let (d, eps) = (c.hidden_size, c.layer_norm_eps);
        let attn = &p / "self_attn";
        Ok(EncoderLayer {
            layer_norm1: LayerNorm::new(&p / "layer_norm1", d, eps)?,
            q_proj: Linear::new(&attn / "q_proj", d, d, true)?,
            k_proj: Linear::new(&attn / "k_proj", d, d, true)?,
            v_proj: Linear::new(&attn / "v_proj", d, d, true)?,
            out_proj: Linear::new(&attn / "out_proj", d, d, true)?,
            layer_norm2: LayerNorm::new(&p / "layer_norm2", d, eps)?,
            fc1: Linear::new(&p / "mlp" / "fc1", d, c.intermediate_size, true)?,
            fc2: Linear::new(&p / "mlp" / "fc2", c.intermediate_size, d, true)?,
            heads: c.num_attention_heads,
            act,
        })
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let h = self.layer_norm1.forward(x)?;
        let (q, k, v) = (
            self.q_proj.forward(&h)?,
            self.k_proj.forward(&h)?,
            self.v_proj.forward(&h)?,
        );
        // transformers' eager path takes the softmax in fp32; SDPA keeps it in the input
        // dtype. Upcasting costs little at 257 tokens and keeps half precision honest.
        let attn = multi_head_attention(&q, &k, &v, self.heads, true)?;
        let x = self.out_proj.forward(&attn)?.f_add(x)?;
        let h = self.fc1.forward(&self.layer_norm2.forward(&x)?)?;
        let h = self.fc2.forward(&self.act.apply(&h)?)?;
        h.f_add(&x)
    }
}

/// What the vision tower returns for a batch.
#[derive(Debug)]
pub struct ClipOutput {
    /// `last_hidden_state`: CLS then patch tokens, [B, 1 + N, hidden].
    pub tokens: Tensor,
    /// `post_layernorm` of the CLS token, [B, hidden].
    pub pooled: Tensor,
    /// `visual_projection(pooled)`, [B, projection_dim]; `pooled` itself when the checkpoint
    /// has no projection.
    pub embedding: Tensor,
}

#[derive(Debug)]
struct ClipLayers {
    class_embedding: Tensor,
    patch_embedding: Conv2d,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
    visual_projection: Option<Linear>,
}

impl ClipLayers {
    fn new(
        root: &nn::Path,
        c: &ClipVisionConfig,
        act: Activation,
        projection: bool,
    ) -> TchResult<Self> {
        let vm = root / "vision_model";
        let emb = &vm / "embeddings";
        let d = c.hidden_size;
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::new(&vm / "encoder" / "layers" / i, c, act))
            .collect::<TchResult<Vec<_>>>()?;
        Ok(ClipLayers {
            class_embedding: param(&emb, "class_embedding", &[d])?,
            patch_embedding: Conv2d::new(
                &emb / "patch_embedding",
                c.num_channels,
                d,
                c.patch_size,
                c.patch_size,
                0,
                false,
            )?,
            position_embedding: param(
                &(&emb / "position_embedding"),
                "weight",
                &[c.num_patches() + 1, d],
            )?,
            pre_layrnorm: LayerNorm::new(&vm / "pre_layrnorm", d, c.layer_norm_eps)?,
            layers,
            post_layernorm: LayerNorm::new(&vm / "post_layernorm", d, c.layer_norm_eps)?,
            visual_projection: if projection {
                Some(Linear::new(
                    root / "visual_projection",
                    d,
                    c.projection_dim,
                    false,
                )?)
            } else {
                None
            },
        })
    }
}

/// The CLIP vision transformer.
#[derive(Debug)]
pub struct ClipVision {
    _vs: nn::VarStore,
    config: ClipVisionConfig,
    layers: ClipLayers,
}

impl ClipVision {
    /// Build from `config.json` and load the vision tower (and the projection when present).
    pub fn load(
        config_path: &Path,
        weights_path: &Path,
        device: Device,
        kind: Kind,
    ) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::BadFile {
            path: config_path.to_path_buf(),
            reason,
        };
        let config = ClipVisionConfig::from_json(&read_text(config_path)?).map_err(bad)?;
        let act = Activation::parse(&config.hidden_act).map_err(bad)?;
        let file = WeightFile::open(weights_path)?;
        // `vision_model.` for WithProjection / CLIPModel / older files, bare for
        // transformers ≥ 5 `CLIPVisionModel`.
        let file_prefix = if file.contains("vision_model.embeddings.class_embedding") {
            "vision_model."
        } else {
            ""
        };
        let projection = file.contains("visual_projection.weight");
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(kind);
        let layers = ClipLayers::new(&vs.root(), &config, act, projection)
            .map_err(ModelError::torch("allocating the CLIP vision tower"))?;
        let clip = ClipVision {
            _vs: vs,
            config,
            layers,
        };
        let report = load_into(
            &clip._vs,
            "vision_model.",
            &file,
            file_prefix,
            Unexpected::Ignore,
            &no_alias,
        )?;
        let mut unused = report.unused;
        if projection {
            load_into(
                &clip._vs,
                "visual_projection.",
                &file,
                "visual_projection.",
                Unexpected::Ignore,
                &no_alias,
            )?;
            unused.retain(|n| n != "visual_projection.weight");
        }
        // A CLIPModel's text tower and non-persistent buffers saved by older transformers are
        // expected leftovers; anything else belongs to a different vision architecture.
        let skipped = |n: &str| {
            n.starts_with("text_model.")
                || n.starts_with("text_projection.")
                || n == "logit_scale"
                || n.ends_with("position_ids")
        };
        if let Some(extra) = unused.iter().find(|n| !skipped(n)) {
            return Err(ModelError::UnexpectedTensor {
                tensor: extra.clone(),
                file: weights_path.to_path_buf(),
            });
        }
        Ok(clip)
    }

    /// The config it was built from.
    pub fn config(&self) -> &ClipVisionConfig {
        &self.config
    }

    /// The parameters under their checkpoint names (frozen; the demo trainer unfreezes and
    /// saves them).
    pub fn var_store(&self) -> &nn::VarStore {
        &self._vs
    }

    /// Token width (`hidden_size`; 1280 for ViT-H/14).
    pub fn hidden_size(&self) -> i64 {
        self.config.hidden_size
    }

    /// Width of [`ClipOutput::embedding`]: `projection_dim` with a projection, else
    /// `hidden_size`.
    pub fn embedding_dim(&self) -> i64 {
        if self.layers.visual_projection.is_some() {
            self.config.projection_dim
        } else {
            self.config.hidden_size
        }
    }

    /// Input side length S (`image_size`; 224 for ViT-H/14).
    pub fn image_size(&self) -> i64 {
        self.config.image_size
    }

    /// [B, 3, H, W] RGB in [0, 1] → CLIP pixel values [B, 3, S, S] (float32, input device):
    /// short side resized to S (bicubic with antialiasing, as torchvision / HF's fast CLIP
    /// processor on tensors), centre crop (top-left offset floored), CLIP mean/std.
    pub fn preprocess(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        check_dims(images, "images", &[None, Some(3), None, None])?;
        let size = images.size();
        if size[2] < 1 || size[3] < 1 {
            return Err(ModelError::InvalidInput {
                what: "images".into(),
                reason: format!("empty image {}×{}", size[2], size[3]),
            });
        }
        preprocess_impl(images, self.config.image_size)
            .map_err(ModelError::torch("CLIP preprocessing"))
    }

    /// `pixel_values` [B, 3, S, S] (any float dtype and device: moved to the model's) →
    /// tokens, pooled and global embedding in the model's dtype.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<ClipOutput, ModelError> {
        let s = self.config.image_size;
        check_dims(
            pixel_values,
            "pixel_values",
            &[None, Some(self.config.num_channels), Some(s), Some(s)],
        )?;
        self.forward_impl(pixel_values)
            .map_err(ModelError::torch("CLIP vision forward"))
    }

    fn forward_impl(&self, pixel_values: &Tensor) -> TchResult<ClipOutput> {
        let l = &self.layers;
        let x = pixel_values
            .f_to_device(self._vs.device())?
            .f_to_kind(l.class_embedding.kind())?;
        let b = x.size()[0];
        let d = self.config.hidden_size;
        let patches = l
            .patch_embedding
            .forward(&x)?
            .f_flatten(2, 3)?
            .f_transpose(1, 2)?;
        let cls = l.class_embedding.f_expand([b, 1, d], false)?;
        let mut h =
            Tensor::f_cat(&[&cls, &patches], 1)?.f_add(&l.position_embedding.f_unsqueeze(0)?)?;
        h = l.pre_layrnorm.forward(&h)?;
        for layer in &l.layers {
            h = layer.forward(&h)?;
        }
        let pooled = l.post_layernorm.forward(&h.f_select(1, 0)?)?;
        let embedding = match &l.visual_projection {
            Some(p) => p.forward(&pooled)?,
            None => pooled.shallow_clone(),
        };
        Ok(ClipOutput {
            tokens: h,
            pooled,
            embedding,
        })
    }
}

/// Short side → `s` (long side `floor(s · long / short)`, as HF's `shortest_edge` resize),
/// bicubic with antialiasing, centre crop `s × s`, normalise.
fn preprocess_impl(images: &Tensor, s: i64) -> TchResult<Tensor> {
    let x = images.f_to_kind(Kind::Float)?;
    let (_, _, h, w) = x.size4()?;
    let (nh, nw) = if h <= w {
        (s, (s as f64 * w as f64 / h as f64) as i64)
    } else {
        ((s as f64 * h as f64 / w as f64) as i64, s)
    };
    let resized = x.f_internal_upsample_bicubic2d_aa([nh, nw], false, None, None)?;
    let top = (nh - s) / 2;
    let left = (nw - s) / 2;
    let cropped = resized.f_narrow(2, top, s)?.f_narrow(3, left, s)?;
    let device = x.device();
    let mean = Tensor::f_from_slice(&CLIP_MEAN.map(|v| v as f32))?
        .f_to_device(device)?
        .f_view([1, 3, 1, 1])?;
    let std = Tensor::f_from_slice(&CLIP_STD.map(|v| v as f32))?
        .f_to_device(device)?
        .f_view([1, 3, 1, 1])?;
    cropped.f_sub(&mean)?.f_div(&std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vision_and_full_configs() {
        // laion/CLIP-ViT-H-14-laion2B-s32B-b79K as a CLIPVisionConfig.
        let v = ClipVisionConfig::from_json(
            r#"{"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                "hidden_act": "gelu", "projection_dim": 1024, "model_type": "clip_vision_model"}"#,
        )
        .unwrap();
        assert_eq!((v.num_patches(), v.projection_dim), (256, 1024));
        // A CLIPConfig: the projection width is the top-level one.
        let full = ClipVisionConfig::from_json(
            r#"{"projection_dim": 1024, "text_config": {"hidden_size": 1024},
                "vision_config": {"hidden_size": 1280, "num_attention_heads": 16,
                                  "patch_size": 14, "hidden_act": "gelu"}}"#,
        )
        .unwrap();
        assert_eq!(
            (full.hidden_size, full.projection_dim, full.patch_size),
            (1280, 1024, 14)
        );
        assert!(ClipVisionConfig::from_json(r#"{"hidden_act": "relu"}"#)
            .unwrap_err()
            .contains("hidden_act"));
        assert!(ClipVisionConfig::from_json(r#"{"image_size": 100, "patch_size": 14}"#).is_err());
    }
}
