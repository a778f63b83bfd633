//! `Transformer2DModel` with `BasicTransformerBlock`s (diffusers `transformer_2d.py`,
//! `attention.py`, `attention_processor.py`): self-attention, cross-attention on the prompt
//! embeddings, GEGLU feed-forward.

use tch::{nn, Tensor};

use crate::model::nn::{multi_head_attention, Conv2d, GroupNorm, LayerNorm, Linear, TchResult};

/// diffusers `Attention` as used in UNet transformers: bias-free `to_q/to_k/to_v`,
/// `to_out.0` with bias, scale 1/√head_dim.
#[derive(Debug)]
pub(crate) struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: i64,
    upcast: bool,
}

impl Attention {
    /// `context_dim`: width of the keys/values' source (the query width for self-attention).
    pub fn new(
        p: nn::Path,
        dim: i64,
        context_dim: i64,
        heads: i64,
        upcast: bool,
    ) -> TchResult<Self> {
        Ok(Attention {
            to_q: Linear::new(&p / "to_q", dim, dim, false)?,
            to_k: Linear::new(&p / "to_k", context_dim, dim, false)?,
            to_v: Linear::new(&p / "to_v", context_dim, dim, false)?,
            to_out: Linear::new(&p / "to_out" / 0, dim, dim, true)?,
            heads,
            upcast,
        })
    }

    /// `x` [B, N, dim]; `context` [B, L, context_dim] (cross) or `None` (self) → [B, N, dim].
    pub fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> TchResult<Tensor> {
        let ctx = context.unwrap_or(x);
        let q = self.to_q.forward(x)?;
        let k = self.to_k.forward(ctx)?;
        let v = self.to_v.forward(ctx)?;
        let out = multi_head_attention(&q, &k, &v, self.heads, self.upcast)?;
        self.to_out.forward(&out)
    }
}

/// `FeedForward` with GEGLU: `net.2(h · gelu(g))` where `[h, g] = net.0.proj(x)`.
#[derive(Debug)]
struct FeedForward {
    proj: Linear,
    out: Linear,
}

impl FeedForward {
    fn new(p: nn::Path, dim: i64) -> TchResult<Self> {
        let inner = 4 * dim;
        Ok(FeedForward {
            proj: Linear::new(&p / "net" / 0 / "proj", dim, 2 * inner, true)?,
            out: Linear::new(&p / "net" / 2, inner, dim, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        let hg = self.proj.forward(x)?;
        let parts = hg.f_chunk(2, -1)?;
        let gated = parts[0].f_mul(&parts[1].f_gelu("none")?)?;
        self.out.forward(&gated)
    }
}

/// Layer-normed self-attention, cross-attention and feed-forward, each residual.
#[derive(Debug)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn new(p: nn::Path, dim: i64, heads: i64, context_dim: i64, upcast: bool) -> TchResult<Self> {
        // diffusers' BasicTransformerBlock default `norm_eps`.
        let eps = 1e-5;
        Ok(BasicTransformerBlock {
            norm1: LayerNorm::new(&p / "norm1", dim, eps)?,
            attn1: Attention::new(&p / "attn1", dim, dim, heads, upcast)?,
            norm2: LayerNorm::new(&p / "norm2", dim, eps)?,
            attn2: Attention::new(&p / "attn2", dim, context_dim, heads, upcast)?,
            norm3: LayerNorm::new(&p / "norm3", dim, eps)?,
            ff: FeedForward::new(&p / "ff", dim)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> TchResult<Tensor> {
        let x = self
            .attn1
            .forward(&self.norm1.forward(x)?, None)?
            .f_add(x)?;
        let x = self
            .attn2
            .forward(&self.norm2.forward(&x)?, Some(context))?
            .f_add(&x)?;
        self.ff.forward(&self.norm3.forward(&x)?)?.f_add(&x)
    }
}

/// Input/output projection: `nn.Linear` on tokens (SD2.x) or a 1×1 conv on the map (SD1.x).
#[derive(Debug)]
enum Projection {
    Linear(Linear),
    Conv(Conv2d),
}

/// Settings of one [`Transformer2DModel`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransformerConfig {
    pub channels: i64,
    pub heads: i64,
    pub depth: i64,
    pub context_dim: i64,
    pub groups: i64,
    pub linear_projection: bool,
    pub upcast: bool,
}

/// GroupNorm → project to tokens → transformer blocks → project back → residual add.
#[derive(Debug)]
pub(crate) struct Transformer2DModel {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Projection,
}

impl Transformer2DModel {
    pub fn new(p: nn::Path, c: TransformerConfig) -> TchResult<Self> {
        let ch = c.channels;
        let proj = |name: &str| -> TchResult<Projection> {
            Ok(if c.linear_projection {
                Projection::Linear(Linear::new(&p / name, ch, ch, true)?)
            } else {
                Projection::Conv(Conv2d::new(&p / name, ch, ch, 1, 1, 0, true)?)
            })
        };
        let blocks = (0..c.depth)
            .map(|i| {
                BasicTransformerBlock::new(
                    &p / "transformer_blocks" / i,
                    ch,
                    c.heads,
                    c.context_dim,
                    c.upcast,
                )
            })
            .collect::<TchResult<Vec<_>>>()?;
        Ok(Transformer2DModel {
            // diffusers hard-codes eps 1e-6 for this norm.
            norm: GroupNorm::new(&p / "norm", c.groups, ch, 1e-6)?,
            proj_in: proj("proj_in")?,
            blocks,
            proj_out: proj("proj_out")?,
        })
    }

    /// `x` [B, C, H, W], `context` [B, L, context_dim] → [B, C, H, W].
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> TchResult<Tensor> {
        let (b, c, h, w) = x.size4()?;
        let normed = self.norm.forward(x)?;
        let to_tokens = |t: &Tensor| t.f_permute([0, 2, 3, 1])?.f_reshape([b, h * w, c]);
        let mut tokens = match &self.proj_in {
            Projection::Linear(l) => l.forward(&to_tokens(&normed)?)?,
            Projection::Conv(conv) => to_tokens(&conv.forward(&normed)?)?,
        };
        for block in &self.blocks {
            tokens = block.forward(&tokens, context)?;
        }
        // `contiguous` as diffusers does: the following convs are fastest on NCHW memory.
        let to_map = |t: &Tensor| {
            t.f_reshape([b, h, w, c])?
                .f_permute([0, 3, 1, 2])?
                .f_contiguous()
        };
        let out = match &self.proj_out {
            Projection::Linear(l) => to_map(&l.forward(&tokens)?)?,
            Projection::Conv(conv) => conv.forward(&to_map(&tokens)?)?,
        };
        out.f_add(x)
    }
}
