//! diffusers `AutoencoderKL` encoder (`encoder.*`, `quant_conv`): RGB in [-1, 1] → posterior
//! mean → latents `(mean − shift_factor) × scaling_factor` (SD: shift 0, scale 0.18215).
//!
//! The decoder and `post_quant_conv` are never registered, so they stay unread. The mid-block
//! attention accepts both the current `to_q/to_k/to_v/to_out.0` names and the older
//! `query/key/value/proj_attn` ones (diffusers renames them on load as well).

use std::path::Path;

use serde::Deserialize;
use tch::{nn, Device, Kind, Tensor};

use super::nn::{
    check_dims, multi_head_attention, read_text, Conv2d, GroupNorm, Linear, TchResult,
};
use super::unet::resnet::{Downsample2D, ResnetBlock2D, ResnetConfig};
use super::weights::{load_into, Unexpected, WeightFile};
use super::ModelError;

/// `vae/config.json` (the fields the encoder needs or must check).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    pub in_channels: i64,
    pub down_block_types: Vec<String>,
    pub block_out_channels: Vec<i64>,
    pub layers_per_block: i64,
    pub act_fn: String,
    pub latent_channels: i64,
    pub norm_num_groups: i64,
    /// `null` in some configs: then diffusers' default 0.18215 applies.
    pub scaling_factor: Option<f64>,
    pub shift_factor: Option<f64>,
    pub use_quant_conv: bool,
    pub mid_block_add_attention: bool,
}

impl Default for VaeConfig {
    /// diffusers' `AutoencoderKL` defaults.
    fn default() -> Self {
        VaeConfig {
            in_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            act_fn: "silu".into(),
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: None,
            shift_factor: None,
            use_quant_conv: true,
            mid_block_add_attention: true,
        }
    }
}

/// SD's latent scale when the config omits `scaling_factor`.
pub const DEFAULT_SCALING_FACTOR: f64 = 0.18215;

impl VaeConfig {
    /// Parse and check `config.json` text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let c: VaeConfig =
            serde_json::from_str(text).map_err(|e| format!("not an AutoencoderKL config: {e}"))?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        if self.block_out_channels.is_empty() {
            return Err("`block_out_channels` is empty".into());
        }
        if self.down_block_types.len() != self.block_out_channels.len() {
            return Err(format!(
                "`down_block_types` has {} entries but `block_out_channels` has {}",
                self.down_block_types.len(),
                self.block_out_channels.len()
            ));
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| t.as_str() != "DownEncoderBlock2D")
        {
            return Err(format!(
                "unsupported VAE config: down block type {t:?} (only DownEncoderBlock2D)"
            ));
        }
        let act = self.act_fn.to_ascii_lowercase();
        if act != "silu" && act != "swish" {
            return Err(format!(
                "unsupported VAE config: `act_fn` = {:?} (only silu)",
                self.act_fn
            ));
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|&&c| c <= 0 || c % self.norm_num_groups.max(1) != 0 || self.norm_num_groups <= 0)
        {
            return Err(format!(
                "`block_out_channels` entry {c} is not a positive multiple of `norm_num_groups` = {}",
                self.norm_num_groups
            ));
        }
        if self.layers_per_block < 1 || self.latent_channels < 1 || self.in_channels < 1 {
            return Err(
                "`layers_per_block`, `latent_channels` and `in_channels` must be positive".into(),
            );
        }
        Ok(())
    }

    /// Total downsampling factor of the encoder (8 for SD).
    pub fn downscale(&self) -> i64 {
        1 << (self.block_out_channels.len() - 1)
    }
}

/// The encoder's single-head mid-block self-attention over all pixels, with a residual.
#[derive(Debug)]
struct VaeAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
}

impl VaeAttention {
    fn new(p: nn::Path, channels: i64, groups: i64) -> TchResult<Self> {
        Ok(VaeAttention {
            group_norm: GroupNorm::new(&p / "group_norm", groups, channels, 1e-6)?,
            to_q: Linear::new(&p / "to_q", channels, channels, true)?,
            to_k: Linear::new(&p / "to_k", channels, channels, true)?,
            to_v: Linear::new(&p / "to_v", channels, channels, true)?,
            to_out: Linear::new(&p / "to_out" / 0, channels, channels, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let (b, c, h, w) = x.size4()?;
        let tokens = self
            .group_norm
            .forward(x)?
            .f_view([b, c, h * w])?
            .f_transpose(1, 2)?;
        let q = self.to_q.forward(&tokens)?;
        let k = self.to_k.forward(&tokens)?;
        let v = self.to_v.forward(&tokens)?;
        // diffusers builds this block with `upcast_softmax`: keep the softmax in fp32 in half
        // precision.
        let out = multi_head_attention(&q, &k, &v, 1, true)?;
        let out = self.to_out.forward(&out)?;
        out.f_transpose(1, 2)?.f_reshape([b, c, h, w])?.f_add(x)
    }
}

/// Old diffusers / LDM spellings of the mid-block attention parameters.
fn legacy_attention_name(name: &str) -> Option<String> {
    const RENAMES: [(&str, &str); 4] = [
        (".to_q.", ".query."),
        (".to_k.", ".key."),
        (".to_v.", ".value."),
        (".to_out.0.", ".proj_attn."),
    ];
    if !name.contains(".attentions.") {
        return None;
    }
    RENAMES
        .iter()
        .find(|(new, _)| name.contains(new))
        .map(|(new, old)| name.replacen(new, old, 1))
}

/// `AutoencoderKL` encoder + `quant_conv`, returning scaled posterior means.
#[derive(Debug)]
pub struct VaeEncoder {
    // Owns the parameters the layers hold shallow copies of.
    _vs: nn::VarStore,
    config: VaeConfig,
    layers: EncoderLayers,
}

#[derive(Debug)]
struct EncoderLayers {
    conv_in: Conv2d,
    down: Vec<(Vec<ResnetBlock2D>, Option<Downsample2D>)>,
    mid_resnet_1: ResnetBlock2D,
    mid_attention: Option<VaeAttention>,
    mid_resnet_2: ResnetBlock2D,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    quant_conv: Option<Conv2d>,
}

impl VaeEncoder {
    /// Build from `config.json` and load the encoder weights.
    pub fn load(
        config_path: &Path,
        weights_path: &Path,
        device: Device,
        kind: Kind,
    ) -> Result<Self, ModelError> {
        let config = VaeConfig::from_json(&read_text(config_path)?).map_err(|reason| {
            ModelError::BadFile {
                path: config_path.to_path_buf(),
                reason,
            }
        })?;
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(kind);
        let layers = EncoderLayers::new(&vs.root(), &config)
            .map_err(ModelError::torch("allocating the VAE encoder"))?;
        let encoder = VaeEncoder {
            _vs: vs,
            config,
            layers,
        };
        let file = WeightFile::open(weights_path)?;
        let alias = |n: &str| legacy_attention_name(n);
        let report = load_into(&encoder._vs, "", &file, "", Unexpected::Ignore, &alias)?;
        // The decoder side is skipped on purpose; any other leftover means a different model.
        let skipped = |n: &str| n.starts_with("decoder.") || n.starts_with("post_quant_conv.");
        if let Some(extra) = report.unused.iter().find(|n| !skipped(n)) {
            return Err(ModelError::UnexpectedTensor {
                tensor: extra.clone(),
                file: weights_path.to_path_buf(),
            });
        }
        Ok(encoder)
    }

    /// The config it was built from.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// The parameters under their checkpoint names (frozen; the demo trainer unfreezes and
    /// saves them).
    pub fn var_store(&self) -> &nn::VarStore {
        &self._vs
    }
}

impl EncoderLayers {
    fn new(root: &nn::Path, config: &VaeConfig) -> TchResult<Self> {
        let enc = root / "encoder";
        let ch = &config.block_out_channels;
        let groups = config.norm_num_groups;
        let resnet = |cin: i64, cout: i64| ResnetConfig {
            in_channels: cin,
            out_channels: cout,
            temb_channels: None,
            groups,
            eps: 1e-6,
            output_scale_factor: 1.0,
        };
        let conv_in = Conv2d::new(&enc / "conv_in", config.in_channels, ch[0], 3, 1, 1, true)?;
        let mut down = Vec::with_capacity(ch.len());
        let mut cout = ch[0];
        for (i, &c) in ch.iter().enumerate() {
            let p = &enc / "down_blocks" / i;
            let cin = cout;
            cout = c;
            let resnets = (0..config.layers_per_block)
                .map(|j| {
                    let from = if j == 0 { cin } else { cout };
                    ResnetBlock2D::new(&p / "resnets" / j, resnet(from, cout))
                })
                .collect::<TchResult<Vec<_>>>()?;
            let downsampler = if i + 1 < ch.len() {
                Some(Downsample2D::new(&p / "downsamplers" / 0, cout, 0)?)
            } else {
                None
            };
            down.push((resnets, downsampler));
        }
        let last = *ch.last().unwrap_or(&ch[0]);
        let mid = &enc / "mid_block";
        let mid_resnet_1 = ResnetBlock2D::new(&mid / "resnets" / 0, resnet(last, last))?;
        let mid_attention = if config.mid_block_add_attention {
            Some(VaeAttention::new(&mid / "attentions" / 0, last, groups)?)
        } else {
            None
        };
        let mid_resnet_2 = ResnetBlock2D::new(&mid / "resnets" / 1, resnet(last, last))?;
        let conv_norm_out = GroupNorm::new(&enc / "conv_norm_out", groups, last, 1e-6)?;
        let moments = 2 * config.latent_channels;
        let conv_out = Conv2d::new(&enc / "conv_out", last, moments, 3, 1, 1, true)?;
        let quant_conv = if config.use_quant_conv {
            Some(Conv2d::new(
                root / "quant_conv",
                moments,
                moments,
                1,
                1,
                0,
                true,
            )?)
        } else {
            None
        };
        Ok(EncoderLayers {
            conv_in,
            down,
            mid_resnet_1,
            mid_attention,
            mid_resnet_2,
            conv_norm_out,
            conv_out,
            quant_conv,
        })
    }
}

impl VaeEncoder {
    /// Latent channels (4 for SD).
    pub fn latent_channels(&self) -> i64 {
        self.config.latent_channels
    }

    /// `scaling_factor`, or 0.18215 when the config omits it.
    pub fn scaling_factor(&self) -> f64 {
        self.config.scaling_factor.unwrap_or(DEFAULT_SCALING_FACTOR)
    }

    /// `images` [B, in_channels, H, W] in [-1, 1], model dtype and device, H and W multiples of
    /// [`VaeConfig::downscale`] → latents [B, latent_channels, H/8, W/8].
    pub fn encode(&self, images: &Tensor) -> Result<Tensor, ModelError> {
        check_dims(
            images,
            "images",
            &[None, Some(self.config.in_channels), None, None],
        )?;
        let f = self.config.downscale();
        let size = images.size();
        if size[2] % f != 0 || size[3] % f != 0 || size[2] == 0 || size[3] == 0 {
            return Err(ModelError::InvalidInput {
                what: "images".into(),
                reason: format!(
                    "size {}×{} (H×W) is not a positive multiple of {f} on both sides",
                    size[2], size[3]
                ),
            });
        }
        self.encode_impl(images)
            .map_err(ModelError::torch("VAE encoder forward"))
    }

    fn encode_impl(&self, images: &Tensor) -> TchResult<Tensor> {
        let l = &self.layers;
        let mut h = l.conv_in.forward(images)?;
        for (resnets, downsampler) in &l.down {
            for r in resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(d) = downsampler {
                h = d.forward(&h)?;
            }
        }
        h = l.mid_resnet_1.forward(&h, None)?;
        if let Some(a) = &l.mid_attention {
            h = a.forward(&h)?;
        }
        h = l.mid_resnet_2.forward(&h, None)?;
        h = l.conv_norm_out.forward(&h)?.f_silu()?;
        h = l.conv_out.forward(&h)?;
        if let Some(q) = &l.quant_conv {
            h = q.forward(&h)?;
        }
        let mean = h.f_narrow(1, 0, self.config.latent_channels)?;
        let shifted = match self.config.shift_factor {
            Some(s) if s != 0.0 => mean.f_sub_scalar(s)?,
            _ => mean,
        };
        shifted.f_mul_scalar(self.scaling_factor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_legacy_attention_names() {
        assert_eq!(
            legacy_attention_name("encoder.mid_block.attentions.0.to_q.weight").as_deref(),
            Some("encoder.mid_block.attentions.0.query.weight")
        );
        assert_eq!(
            legacy_attention_name("encoder.mid_block.attentions.0.to_out.0.bias").as_deref(),
            Some("encoder.mid_block.attentions.0.proj_attn.bias")
        );
        assert_eq!(legacy_attention_name("encoder.conv_in.weight"), None);
    }

    #[test]
    fn reads_sd21_config() {
        // stabilityai/stable-diffusion-2-1/vae/config.json (no scaling_factor).
        let c = VaeConfig::from_json(
            r#"{"_class_name": "AutoencoderKL", "act_fn": "silu",
            "block_out_channels": [128, 256, 512, 512],
            "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
            "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
            "out_channels": 3, "sample_size": 768,
            "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}"#,
        )
        .unwrap();
        assert_eq!(c.downscale(), 8);
        assert_eq!(c.scaling_factor.unwrap_or(DEFAULT_SCALING_FACTOR), 0.18215);
        let bad = VaeConfig::from_json(
            r#"{"down_block_types": ["AttnDownEncoderBlock2D"], "block_out_channels": [64]}"#,
        );
        assert!(bad.unwrap_err().contains("AttnDownEncoderBlock2D"));
    }
}
