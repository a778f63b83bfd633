//! `ResnetBlock2D`, `Downsample2D` and `Upsample2D` (diffusers `resnet.py`, `downsampling.py`,
//! `upsampling.py`). The VAE encoder uses the same blocks without a time embedding.

use tch::{nn, Tensor};

use crate::model::nn::{Conv2d, GroupNorm, Linear, TchResult};

/// Pre-norm residual block: `x + conv2(silu(norm2(conv1(silu(norm1 x)) + temb)))`, divided by
/// `output_scale_factor`, with a 1×1 `conv_shortcut` when the channel count changes.
#[derive(Debug)]
pub(crate) struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

/// Shape settings of one [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResnetConfig {
    pub in_channels: i64,
    pub out_channels: i64,
    /// `None` for the VAE (no `time_emb_proj`).
    pub temb_channels: Option<i64>,
    pub groups: i64,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock2D {
    pub fn new(p: nn::Path, c: ResnetConfig) -> TchResult<Self> {
        let (cin, cout) = (c.in_channels, c.out_channels);
        Ok(ResnetBlock2D {
            norm1: GroupNorm::new(&p / "norm1", c.groups, cin, c.eps)?,
            conv1: Conv2d::new(&p / "conv1", cin, cout, 3, 1, 1, true)?,
            time_emb_proj: match c.temb_channels {
                Some(t) => Some(Linear::new(&p / "time_emb_proj", t, cout, true)?),
                None => None,
            },
            norm2: GroupNorm::new(&p / "norm2", c.groups, cout, c.eps)?,
            conv2: Conv2d::new(&p / "conv2", cout, cout, 3, 1, 1, true)?,
            conv_shortcut: if cin != cout {
                Some(Conv2d::new(&p / "conv_shortcut", cin, cout, 1, 1, 0, true)?)
            } else {
                None
            },
            output_scale_factor: c.output_scale_factor,
        })
    }

    /// `x` [B, C_in, H, W], `temb` [1 or B, temb_channels] → [B, C_out, H, W].
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> TchResult<Tensor> {
        let mut h = self.norm1.forward(x)?.f_silu()?;
        h = self.conv1.forward(&h)?;
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(&temb.f_silu()?)?;
            h = h.f_add(&t.f_unsqueeze(-1)?.f_unsqueeze(-1)?)?;
        }
        h = self.norm2.forward(&h)?.f_silu()?;
        h = self.conv2.forward(&h)?;
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.shallow_clone(),
        };
        let out = skip.f_add(&h)?;
        if self.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out.f_div_scalar(self.output_scale_factor)
        }
    }
}

/// Strided 3×3 convolution halving the resolution. With `padding == 0` (the VAE) the input is
/// first padded by one pixel on the right and bottom, as diffusers does.
#[derive(Debug)]
pub(crate) struct Downsample2D {
    conv: Conv2d,
    pad_right_bottom: bool,
}

impl Downsample2D {
    pub fn new(p: nn::Path, channels: i64, padding: i64) -> TchResult<Self> {
        Ok(Downsample2D {
            conv: Conv2d::new(&p / "conv", channels, channels, 3, 2, padding, true)?,
            pad_right_bottom: padding == 0,
        })
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        if self.pad_right_bottom {
            let x = x.f_constant_pad_nd([0, 1, 0, 1])?;
            self.conv.forward(&x)
        } else {
            self.conv.forward(x)
        }
    }
}

/// Nearest-neighbour upsampling to a given size (twice the input, or the skip connection's
/// size when the latent is not divisible by the UNet's total stride), then a 3×3 conv.
#[derive(Debug)]
pub(crate) struct Upsample2D {
    conv: Conv2d,
}

impl Upsample2D {
    pub fn new(p: nn::Path, channels: i64) -> TchResult<Self> {
        Ok(Upsample2D {
            conv: Conv2d::new(&p / "conv", channels, channels, 3, 1, 1, true)?,
        })
    }

    /// `size`: the output's [H, W].
    pub fn forward(&self, x: &Tensor, size: [i64; 2]) -> TchResult<Tensor> {
        let up = x.f_upsample_nearest2d(size, None, None)?;
        self.conv.forward(&up)
    }
}
