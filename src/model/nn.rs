//! Small layers shared by the VAE, UNet and CLIP towers.
//!
//! Every parameter is registered in a `VarStore` under its checkpoint name (the `nn::Path`
//! segments joined by dots), uninitialised and frozen: [`super::weights::load_into`] fills
//! each one afterwards and fails on any it cannot find, so nothing runs on garbage.
//! Forward passes use the fallible `f_` ops so that libtorch errors surface as `Result`s.

use std::path::Path;

use tch::{nn, Kind, TchError, Tensor};

use super::ModelError;

/// libtorch result used inside the model modules; the public entry points add context.
pub(crate) type TchResult<T> = Result<T, TchError>;

/// Register one frozen parameter of the store's dtype and device, to be filled by the loader.
pub(crate) fn param(p: &nn::Path, name: &str, dims: &[i64]) -> TchResult<Tensor> {
    let t = Tensor::f_empty(dims, (p.kind(), p.device()))?;
    Ok(p.add(name, t, false))
}

/// `nn.Conv2d` (square kernel, equal stride and padding on both axes).
#[derive(Debug)]
pub(crate) struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    /// `weight` [c_out, c_in, k, k] and, when `bias`, `bias` [c_out] under `p`.
    pub fn new(
        p: nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
    ) -> TchResult<Self> {
        let weight = param(&p, "weight", &[c_out, c_in, kernel, kernel])?;
        let bias = if bias {
            Some(param(&p, "bias", &[c_out])?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            stride,
            padding,
        })
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }

    /// The weight's dtype (the model's compute dtype).
    pub fn kind(&self) -> Kind {
        self.weight.kind()
    }
}

/// `nn.Linear` over the last axis of any-rank input.
#[derive(Debug)]
pub(crate) struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// `weight` [d_out, d_in] and, when `bias`, `bias` [d_out] under `p`.
    pub fn new(p: nn::Path, d_in: i64, d_out: i64, bias: bool) -> TchResult<Self> {
        let weight = param(&p, "weight", &[d_out, d_in])?;
        let bias = if bias {
            Some(param(&p, "bias", &[d_out])?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_linear(&self.weight, self.bias.as_ref())
    }
}

/// `nn.GroupNorm` with affine parameters. Runs in the input dtype like PyTorch does
/// (libtorch accumulates the statistics of half inputs in fp32 internally).
#[derive(Debug)]
pub(crate) struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: i64,
    eps: f64,
}

impl GroupNorm {
    pub fn new(p: nn::Path, groups: i64, channels: i64, eps: f64) -> TchResult<Self> {
        Ok(GroupNorm {
            weight: param(&p, "weight", &[channels])?,
            bias: param(&p, "bias", &[channels])?,
            groups,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_group_norm(
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// `nn.LayerNorm` over the last axis.
#[derive(Debug)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    pub fn new(p: nn::Path, dim: i64, eps: f64) -> TchResult<Self> {
        Ok(LayerNorm {
            weight: param(&p, "weight", &[dim])?,
            bias: param(&p, "bias", &[dim])?,
            dim,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> TchResult<Tensor> {
        x.f_layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// Multi-head attention core on [B, N, heads·d] projections: libtorch's
/// `scaled_dot_product_attention` with the default 1/√d scale, optionally in fp32.
///
/// `upcast` computes QKᵀ, the softmax and the weighted sum in fp32 when the inputs are half
/// precision (diffusers' `upcast_attention`; SD2.1 needs it in fp16) and casts the result
/// back. It is a no-op in fp32.
pub(crate) fn multi_head_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: i64,
    upcast: bool,
) -> TchResult<Tensor> {
    let (b, n, inner) = q.size3()?;
    let d = inner / heads;
    let split = |t: &Tensor| -> TchResult<Tensor> {
        let (_, len, _) = t.size3()?;
        t.f_view([b, len, heads, d])?.f_transpose(1, 2)
    };
    let (mut q, mut k, mut v) = (split(q)?, split(k)?, split(v)?);
    let kind = q.kind();
    let upcast = upcast && kind != Kind::Float && kind != Kind::Double;
    if upcast {
        q = q.f_to_kind(Kind::Float)?;
        k = k.f_to_kind(Kind::Float)?;
        v = v.f_to_kind(Kind::Float)?;
    }
    let mut out = Tensor::f_scaled_dot_product_attention(
        &q,
        &k,
        &v,
        None::<Tensor>,
        0.0,
        false,
        None,
        false,
    )?;
    if upcast {
        out = out.f_to_kind(kind)?;
    }
    out.f_transpose(1, 2)?.f_reshape([b, n, inner])
}

/// Read a small text file (configs) with a `BadFile` error naming it.
pub(crate) fn read_text(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|e| ModelError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Check a tensor's rank and the sizes given as `Some`.
pub(crate) fn check_dims(t: &Tensor, what: &str, want: &[Option<i64>]) -> Result<(), ModelError> {
    let size = t.size();
    let ok = size.len() == want.len()
        && size
            .iter()
            .zip(want)
            .all(|(&s, w)| w.is_none_or(|w| w == s));
    if ok {
        return Ok(());
    }
    let expected: Vec<String> = want
        .iter()
        .map(|w| w.map_or_else(|| "_".to_string(), |v| v.to_string()))
        .collect();
    Err(ModelError::InvalidInput {
        what: what.into(),
        reason: format!("shape {size:?}, expected [{}]", expected.join(", ")),
    })
}
