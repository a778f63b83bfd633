//! The UNet's down, mid and up blocks (diffusers `unet_2d_blocks.py`): `CrossAttnDownBlock2D` /
//! `DownBlock2D`, `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` / `UpBlock2D`.

use tch::{nn, Tensor};

use super::attention::{Transformer2DModel, TransformerConfig};
use super::config::{AttnPlan, DownPlan, MidPlan, SharedPlan, UpPlan};
use super::resnet::{Downsample2D, ResnetBlock2D, ResnetConfig, Upsample2D};
use crate::model::nn::TchResult;

fn resnet_config(s: &SharedPlan, cin: i64, cout: i64, scale: f64) -> ResnetConfig {
    ResnetConfig {
        in_channels: cin,
        out_channels: cout,
        temb_channels: Some(s.temb_channels),
        groups: s.groups,
        eps: s.eps,
        output_scale_factor: scale,
    }
}

fn transformer(
    p: nn::Path,
    s: &SharedPlan,
    a: &AttnPlan,
    layer: usize,
    channels: i64,
) -> TchResult<Transformer2DModel> {
    Transformer2DModel::new(
        p,
        TransformerConfig {
            channels,
            heads: a.heads,
            depth: a.depth[layer],
            context_dim: a.cross_attention_dim,
            groups: s.groups,
            linear_projection: s.use_linear_projection,
            upcast: s.upcast_attention,
        },
    )
}

/// Resnets, each followed by a transformer when the block has cross-attention, then an
/// optional strided-conv downsampler. Every intermediate output is a skip connection.
#[derive(Debug)]
pub(crate) struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock {
    pub fn new(
        p: nn::Path,
        s: &SharedPlan,
        d: &DownPlan,
        downsample_padding: i64,
    ) -> TchResult<Self> {
        let mut resnets = Vec::with_capacity(d.layers);
        let mut attentions = Vec::new();
        for i in 0..d.layers {
            let cin = if i == 0 {
                d.in_channels
            } else {
                d.out_channels
            };
            resnets.push(ResnetBlock2D::new(
                &p / "resnets" / i,
                resnet_config(s, cin, d.out_channels, 1.0),
            )?);
            if let Some(a) = &d.attn {
                attentions.push(transformer(&p / "attentions" / i, s, a, i, d.out_channels)?);
            }
        }
        let downsampler = if d.add_downsample {
            Some(Downsample2D::new(
                &p / "downsamplers" / 0,
                d.out_channels,
                downsample_padding,
            )?)
        } else {
            None
        };
        Ok(DownBlock {
            resnets,
            attentions,
            downsampler,
        })
    }

    /// Runs the block, pushing each skip connection onto `skips`.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        context: &Tensor,
        skips: &mut Vec<Tensor>,
    ) -> TchResult<Tensor> {
        let mut h = x.shallow_clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = resnet.forward(&h, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context)?;
            }
            skips.push(h.shallow_clone());
        }
        if let Some(down) = &self.downsampler {
            h = down.forward(&h)?;
            skips.push(h.shallow_clone());
        }
        Ok(h)
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) once.
#[derive(Debug)]
pub(crate) struct MidBlock {
    first: ResnetBlock2D,
    attention: Transformer2DModel,
    second: ResnetBlock2D,
}

impl MidBlock {
    pub fn new(p: nn::Path, s: &SharedPlan, m: &MidPlan) -> TchResult<Self> {
        let c = m.channels;
        let rc = resnet_config(s, c, c, m.output_scale_factor);
        Ok(MidBlock {
            first: ResnetBlock2D::new(&p / "resnets" / 0, rc)?,
            attention: transformer(&p / "attentions" / 0, s, &m.attn, 0, c)?,
            second: ResnetBlock2D::new(&p / "resnets" / 1, rc)?,
        })
    }

    pub fn forward(&self, x: &Tensor, temb: &Tensor, context: &Tensor) -> TchResult<Tensor> {
        let h = self.first.forward(x, Some(temb))?;
        let h = self.attention.forward(&h, context)?;
        self.second.forward(&h, Some(temb))
    }
}

/// Resnets on `cat(h, skip)` (skips popped last-first), each followed by a transformer when
/// the block has cross-attention, then an optional nearest-neighbour upsampler.
#[derive(Debug)]
pub(crate) struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock {
    pub fn new(p: nn::Path, s: &SharedPlan, u: &UpPlan) -> TchResult<Self> {
        let mut resnets = Vec::with_capacity(u.layers);
        let mut attentions = Vec::new();
        for i in 0..u.layers {
            let skip = if i + 1 == u.layers {
                u.in_channels
            } else {
                u.out_channels
            };
            let cin = if i == 0 {
                u.prev_output_channels
            } else {
                u.out_channels
            };
            resnets.push(ResnetBlock2D::new(
                &p / "resnets" / i,
                resnet_config(s, cin + skip, u.out_channels, 1.0),
            )?);
            if let Some(a) = &u.attn {
                attentions.push(transformer(&p / "attentions" / i, s, a, i, u.out_channels)?);
            }
        }
        let upsampler = if u.add_upsample {
            Some(Upsample2D::new(&p / "upsamplers" / 0, u.out_channels)?)
        } else {
            None
        };
        Ok(UpBlock {
            resnets,
            attentions,
            upsampler,
        })
    }

    /// How many skip connections the block consumes.
    pub fn num_skips(&self) -> usize {
        self.resnets.len()
    }

    /// Runs the block on `skips` (in push order; consumed from the end) and upsamples to
    /// `upsample_size` when the block has an upsampler.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        context: &Tensor,
        skips: &[Tensor],
        upsample_size: [i64; 2],
    ) -> TchResult<Tensor> {
        let mut h = x.shallow_clone();
        for (i, (resnet, skip)) in self.resnets.iter().zip(skips.iter().rev()).enumerate() {
            h = Tensor::f_cat(&[&h, skip], 1)?;
            h = resnet.forward(&h, Some(temb))?;
            if let Some(attn) = self.attentions.get(i) {
                h = attn.forward(&h, context)?;
            }
        }
        match &self.upsampler {
            Some(up) => up.forward(&h, upsample_size),
            None => Ok(h),
        }
    }
}
