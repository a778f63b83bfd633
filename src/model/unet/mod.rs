//! diffusers `UNet2DConditionModel` (SD 1.x / 2.x layout and names), run as a feature
//! extractor: conv_in → down blocks → mid block → `up_blocks[0..=k]`, returning the output of
//! `up_blocks[k]` after its upsampler (DIFT's "up_ft_index").
//!
//! Only the parts that run are built, so the parameters of `up_blocks[k+1..]`,
//! `conv_norm_out` and `conv_out` are never registered and stay unread in the mapped file.

mod attention;
mod blocks;
pub mod config;
pub(crate) mod resnet;

use std::path::Path;

use tch::{nn, Device, Kind, Tensor};

use self::blocks::{DownBlock, MidBlock, UpBlock};
use self::config::{UNetConfig, UNetPlan};
use super::nn::{check_dims, read_text, Conv2d, Linear, TchResult};
use super::weights::{load_into, no_alias, Unexpected, WeightFile};
use super::ModelError;

/// The UNet's time conditioning for one timestep: `time_embedding(time_proj(t))`, [1, D].
///
/// It depends only on t and the weights, so callers compute it once per t and reuse it.
#[derive(Debug)]
pub struct TimeEmbedding {
    timestep: f64,
    emb: Tensor,
}

impl TimeEmbedding {
    /// The timestep it was computed for.
    pub fn timestep(&self) -> f64 {
        self.timestep
    }

    /// The embedding, [1, time_embed_dim], in the UNet's dtype.
    pub fn tensor(&self) -> &Tensor {
        &self.emb
    }
}

/// `UNet2DConditionModel` up to `up_blocks[k]`.
#[derive(Debug)]
pub struct UNet2DConditionModel {
    // Owns the parameters the layers below hold shallow copies of.
    _vs: nn::VarStore,
    plan: UNetPlan,
    up_to: usize,
    cross_attention_dim: i64,
    conv_in: Conv2d,
    time_linear_1: Linear,
    time_linear_2: Linear,
    down_blocks: Vec<DownBlock>,
    mid_block: Option<MidBlock>,
    up_blocks: Vec<UpBlock>,
}

impl UNet2DConditionModel {
    /// Build from `config.json` and load the weights, keeping `up_blocks[0..=up_to]`.
    pub fn load(
        config_path: &Path,
        weights_path: &Path,
        device: Device,
        kind: Kind,
        up_to: usize,
    ) -> Result<Self, ModelError> {
        let text = read_text(config_path)?;
        let bad = |reason: String| ModelError::BadFile {
            path: config_path.to_path_buf(),
            reason,
        };
        let plan = UNetConfig::from_json(&text)
            .and_then(|c| c.resolve())
            .map_err(bad)?;
        let model = Self::build(plan, device, kind, up_to)?;
        let file = WeightFile::open(weights_path)?;
        let report = load_into(&model._vs, "", &file, "", Unexpected::Ignore, &no_alias)?;
        // Only the parts we deliberately skip may stay unread; anything else means the file
        // holds a different architecture than its config describes.
        let skipped = |name: &str| {
            name.starts_with("conv_norm_out.")
                || name.starts_with("conv_out.")
                || name
                    .strip_prefix("up_blocks.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i > up_to)
        };
        if let Some(extra) = report.unused.iter().find(|n| !skipped(n)) {
            return Err(ModelError::UnexpectedTensor {
                tensor: extra.clone(),
                file: weights_path.to_path_buf(),
            });
        }
        Ok(model)
    }

    /// Allocate an (unloaded) UNet for a resolved config.
    fn build(plan: UNetPlan, device: Device, kind: Kind, up_to: usize) -> Result<Self, ModelError> {
        let n_up = plan.up.len();
        if up_to >= n_up {
            return Err(ModelError::InvalidOption {
                option: "unet_block".into(),
                reason: format!(
                    "up block {up_to} requested but the UNet has {n_up} (0..={})",
                    n_up - 1
                ),
            });
        }
        let cross_attention_dim = plan.cross_attention_dim();
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(kind);
        let layers = Self::build_layers(&vs.root(), &plan, up_to)
            .map_err(ModelError::torch("allocating the UNet parameters"))?;
        let (conv_in, time_linear_1, time_linear_2, down_blocks, mid_block, up_blocks) = layers;
        Ok(UNet2DConditionModel {
            _vs: vs,
            plan,
            up_to,
            cross_attention_dim,
            conv_in,
            time_linear_1,
            time_linear_2,
            down_blocks,
            mid_block,
            up_blocks,
        })
    }

    #[allow(clippy::type_complexity)]
    fn build_layers(
        root: &nn::Path,
        plan: &UNetPlan,
        up_to: usize,
    ) -> TchResult<(
        Conv2d,
        Linear,
        Linear,
        Vec<DownBlock>,
        Option<MidBlock>,
        Vec<UpBlock>,
    )> {
        let k = plan.conv_in_kernel;
        let conv_in = Conv2d::new(
            root / "conv_in",
            plan.in_channels,
            plan.block_out_channels[0],
            k,
            1,
            (k - 1) / 2,
            true,
        )?;
        let t = &plan.time;
        let time_linear_1 = Linear::new(
            root / "time_embedding" / "linear_1",
            t.proj_dim,
            t.embed_dim,
            true,
        )?;
        let time_linear_2 = Linear::new(
            root / "time_embedding" / "linear_2",
            t.embed_dim,
            t.embed_dim,
            true,
        )?;
        let down_blocks = plan
            .down
            .iter()
            .enumerate()
            .map(|(i, d)| {
                DownBlock::new(
                    root / "down_blocks" / i,
                    &plan.shared,
                    d,
                    plan.downsample_padding,
                )
            })
            .collect::<TchResult<Vec<_>>>()?;
        let mid_block = match &plan.mid {
            Some(m) => Some(MidBlock::new(root / "mid_block", &plan.shared, m)?),
            None => None,
        };
        let up_blocks = plan.up[..=up_to]
            .iter()
            .enumerate()
            .map(|(i, u)| UpBlock::new(root / "up_blocks" / i, &plan.shared, u))
            .collect::<TchResult<Vec<_>>>()?;
        Ok((
            conv_in,
            time_linear_1,
            time_linear_2,
            down_blocks,
            mid_block,
            up_blocks,
        ))
    }

    /// The parameters under their checkpoint names (frozen; the demo trainer unfreezes and
    /// saves them).
    pub fn var_store(&self) -> &nn::VarStore {
        &self._vs
    }

    /// Channels of the returned features (`block_out_channels` reversed, at `up_to`).
    pub fn feature_channels(&self) -> i64 {
        self.plan.up[self.up_to].out_channels
    }

    /// Width of the prompt embeddings the cross-attention expects.
    pub fn cross_attention_dim(&self) -> i64 {
        self.cross_attention_dim
    }

    /// Latent channels the UNet takes.
    pub fn in_channels(&self) -> i64 {
        self.plan.in_channels
    }

    /// The up block whose output [`Self::features`] returns.
    pub fn up_to(&self) -> usize {
        self.up_to
    }

    /// Compute the time conditioning for timestep `t`: the sinusoidal projection in fp32 (as
    /// diffusers' `Timesteps`), cast to the model dtype, then `linear_1 → SiLU → linear_2`.
    pub fn time_embedding(&self, t: f64) -> Result<TimeEmbedding, ModelError> {
        let emb = self
            .time_embedding_tensor(t)
            .map_err(ModelError::torch(format!(
                "UNet time embedding for t = {t}"
            )))?;
        Ok(TimeEmbedding { timestep: t, emb })
    }

    fn time_embedding_tensor(&self, t: f64) -> TchResult<Tensor> {
        let tp = &self.plan.time;
        let device = self.conv_in_device();
        let half = tp.proj_dim / 2;
        let exponent = Tensor::f_arange(half, (Kind::Float, device))?
            .f_mul_scalar(-(10000f64).ln())?
            .f_div_scalar(half as f64 - tp.freq_shift)?;
        let args = exponent
            .f_exp()?
            .f_mul_scalar(t as f32 as f64)?
            .f_unsqueeze(0)?;
        let (sin, cos) = (args.f_sin()?, args.f_cos()?);
        let mut proj = if tp.flip_sin_to_cos {
            Tensor::f_cat(&[&cos, &sin], -1)?
        } else {
            Tensor::f_cat(&[&sin, &cos], -1)?
        };
        if tp.proj_dim % 2 == 1 {
            proj = proj.f_constant_pad_nd([0, 1])?;
        }
        let proj = proj.f_to_kind(self.conv_in.kind())?;
        let h = self.time_linear_1.forward(&proj)?.f_silu()?;
        self.time_linear_2.forward(&h)
    }

    fn conv_in_device(&self) -> Device {
        self._vs.device()
    }

    /// `latents` [B, in_channels, h, w] and `context` [B, L, cross_attention_dim] (both in the
    /// model's dtype and device) → output of `up_blocks[up_to]`, [B, C, h', w'] (h' = h for
    /// SD2.1 with k = 2). Differentiable in `context`.
    pub fn features(
        &self,
        latents: &Tensor,
        time: &TimeEmbedding,
        context: &Tensor,
    ) -> Result<Tensor, ModelError> {
        check_dims(
            latents,
            "latents",
            &[None, Some(self.plan.in_channels), None, None],
        )?;
        check_dims(
            context,
            "prompts",
            &[None, None, Some(self.cross_attention_dim)],
        )?;
        let (b, lb) = (latents.size()[0], context.size()[0]);
        if lb != b && lb != 1 {
            return Err(ModelError::InvalidInput {
                what: "prompts".into(),
                reason: format!("batch {lb} does not match the latents' batch {b} (or 1)"),
            });
        }
        self.features_impl(latents, time.tensor(), context)
            .map_err(ModelError::torch(format!(
                "UNet forward to up_blocks.{}",
                self.up_to
            )))
    }

    fn features_impl(
        &self,
        latents: &Tensor,
        temb: &Tensor,
        context: &Tensor,
    ) -> TchResult<Tensor> {
        let b = latents.size()[0];
        let context = if context.size()[0] != b {
            context.f_expand([b, -1, -1], false)?
        } else {
            context.shallow_clone()
        };
        let x = if self.plan.center_input_sample {
            latents.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?
        } else {
            latents.shallow_clone()
        };
        let mut h = self.conv_in.forward(&x)?;
        let mut skips = vec![h.shallow_clone()];
        for block in &self.down_blocks {
            h = block.forward(&h, temb, &context, &mut skips)?;
        }
        if let Some(mid) = &self.mid_block {
            h = mid.forward(&h, temb, &context)?;
        }
        for block in &self.up_blocks {
            let n = block.num_skips().min(skips.len());
            let mine = skips.split_off(skips.len() - n);
            // Upsample to the next skip's size (diffusers' `forward_upsample_size`); it equals
            // twice the input whenever the latent is divisible by the total stride.
            let size = match skips.last() {
                Some(s) => {
                    let sz = s.size();
                    [sz[2], sz[3]]
                }
                None => {
                    let sz = h.size();
                    [2 * sz[2], 2 * sz[3]]
                }
            };
            h = block.forward(&h, temb, &context, &mine, size)?;
        }
        Ok(h)
    }
}
