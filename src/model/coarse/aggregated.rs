//! Efficient LoFTR's aggregated attention layer (`coarse.attention: aggregated`).
//!
//! For `x [B, h·w, d]` attending to `source [B, h_s·w_s, d]` with aggregation size `a`:
//! 1. **queries**: `x` as a `[B, d, h, w]` map (padded cells zeroed), zero-padded at the
//!    bottom/right to multiples of `a`, aggregated by a depthwise `a × a` convolution with
//!    stride `a` and no bias (`aggregate`), then `norm1`;
//! 2. **keys/values**: `source` as a map (padded cells set to −∞), padded with −∞ to
//!    multiples of `a`, max-pooled by `a` (so a pooled cell is the maximum over the real,
//!    valid cells of its window), then the same `norm1`; a pooled cell with no valid cell is
//!    masked out of the keys (its value is set to 0 first, to stay finite);
//! 3. multi-head attention of the aggregated queries on the pooled keys/values (bias-free
//!    `q_proj`/`k_proj`/`v_proj`, `merge`), on `ceil(h/a) × ceil(w/a)` queries and
//!    `ceil(h_s/a) × ceil(w_s/a)` keys;
//! 4. the message is upsampled by `a` (bilinear, `align_corners = false`, as EL) to the padded
//!    size and cropped back to `h × w`;
//! 5. `out = x + norm2(mlp([x, m]))`, `mlp = Linear(2d→2d) · LeakyReLU(0.01) · Linear(2d→d)`.
//!
//! This is EL's `AG_RoPE_EncoderLayer` without RoPE (the model adds its 2-D sine position
//! encoding before the transformer, as LoFTR does). Two additions of ours, both no-ops on a
//! map of multiples of `a` without padding (EL's case): maps whose size is not a multiple of
//! `a` are padded as above instead of being cropped, and padded cells of a batch never
//! influence valid outputs (EL instead crops a single padded image to its valid part).

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::CoarseGrid;

/// One aggregated-attention encoder layer.
#[derive(Debug)]
pub struct AggregatedLayer {
    nhead: i64,
    agg: i64,
    aggregate: Option<nn::Conv2D>,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    merge: nn::Linear,
    mlp_in: nn::Linear,
    mlp_out: nn::Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
}

/// Rows/columns added at the bottom/right to reach a multiple of `a`.
fn pad_to(n: i64, a: i64) -> i64 {
    (a - n % a) % a
}

impl AggregatedLayer {
    /// Register the layer's variables under `path`: `aggregate` (depthwise `[d, 1, a, a]`,
    /// absent when `agg_size == 1`), `q_proj`, `k_proj`, `v_proj`, `merge`, `mlp.0`,
    /// `mlp.2`, `norm1`, `norm2`.
    pub fn new(path: &nn::Path, d_model: i64, nhead: i64, agg_size: i64) -> Self {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let lin = |name: &str, i, o| nn::linear(path / name, i, o, no_bias);
        let mlp = path / "mlp";
        let aggregate = (agg_size > 1).then(|| {
            nn::conv2d(
                path / "aggregate",
                d_model,
                d_model,
                agg_size,
                nn::ConvConfig {
                    stride: agg_size,
                    groups: d_model,
                    bias: false,
                    ..Default::default()
                },
            )
        });
        AggregatedLayer {
            nhead,
            agg: agg_size.max(1),
            aggregate,
            q_proj: lin("q_proj", d_model, d_model),
            k_proj: lin("k_proj", d_model, d_model),
            v_proj: lin("v_proj", d_model, d_model),
            merge: lin("merge", d_model, d_model),
            mlp_in: nn::linear(&mlp / 0, 2 * d_model, 2 * d_model, no_bias),
            mlp_out: nn::linear(&mlp / 2, 2 * d_model, d_model, no_bias),
            norm1: nn::layer_norm(path / "norm1", vec![d_model], Default::default()),
            norm2: nn::layer_norm(path / "norm2", vec![d_model], Default::default()),
        }
    }

    /// `[B, L, d]` → `[B, d, h, w]`.
    fn to_map(t: &Tensor, grid: CoarseGrid) -> Tensor {
        let (b, _, d) = t.size3().unwrap_or((0, 0, 0));
        t.transpose(1, 2).reshape([b, d, grid.height, grid.width])
    }

    /// `[B, d, h, w]` → `[B, h·w, d]`.
    fn to_tokens(t: &Tensor) -> Tensor {
        t.flatten(2, 3).transpose(1, 2)
    }

    /// Aggregated queries `[B, ceil(h/a)·ceil(w/a), d]` (before `norm1`).
    fn aggregate_queries(&self, x: &Tensor, grid: CoarseGrid, mask: Option<&Tensor>) -> Tensor {
        let map = Self::to_map(x, grid); // a view of `x`: no in-place operation on it
        let mut map = match mask {
            Some(m) => {
                let b = map.size()[0];
                &map * m.view([b, 1, grid.height, grid.width]).to_kind(map.kind())
            }
            None => map,
        };
        let (ph, pw) = (pad_to(grid.height, self.agg), pad_to(grid.width, self.agg));
        if ph > 0 || pw > 0 {
            map = map.pad([0, pw, 0, ph], "constant", 0.0);
        }
        let map = match &self.aggregate {
            Some(conv) => conv.forward(&map),
            None => map,
        };
        Self::to_tokens(&map)
    }

    /// Pooled keys/values `[B, S', d]` (before `norm1`) and their validity `[B, S']` (`None`
    /// when every pooled cell holds a valid cell).
    fn pool_source(
        &self,
        source: &Tensor,
        grid: CoarseGrid,
        mask: Option<&Tensor>,
    ) -> (Tensor, Option<Tensor>) {
        let mut map = Self::to_map(source, grid);
        let b = map.size()[0];
        let a = self.agg;
        let mask_map = mask.map(|m| m.view([b, 1, grid.height, grid.width]));
        if let Some(m) = &mask_map {
            map = map.masked_fill(&m.logical_not(), f64::NEG_INFINITY);
        }
        let (ph, pw) = (pad_to(grid.height, a), pad_to(grid.width, a));
        if ph > 0 || pw > 0 {
            map = map.pad([0, pw, 0, ph], "constant", f64::NEG_INFINITY);
        }
        if a > 1 {
            map = map.max_pool2d([a, a], [a, a], [0, 0], [1, 1], false);
        }
        let valid = mask_map.map(|m| {
            let mut m = m.to_kind(Kind::Float);
            if ph > 0 || pw > 0 {
                m = m.pad([0, pw, 0, ph], "constant", 0.0);
            }
            if a > 1 {
                m = m.max_pool2d([a, a], [a, a], [0, 0], [1, 1], false);
            }
            m.gt(0.5)
        });
        if let Some(v) = &valid {
            map = map.masked_fill(&v.logical_not(), 0.0);
        }
        (
            Self::to_tokens(&map),
            valid.map(|v| v.flatten(1, 3)), // [B, S']
        )
    }

    /// `x [B, h·w, d]` (grid `grid_x`, padding mask `x_mask [B, h·w]`, true = valid) attends to
    /// `source [B, h_s·w_s, d]` (grid `grid_s`, mask `source_mask`) → `[B, h·w, d]`.
    pub fn forward(
        &self,
        x: &Tensor,
        grid_x: CoarseGrid,
        x_mask: Option<&Tensor>,
        source: &Tensor,
        grid_s: CoarseGrid,
        source_mask: Option<&Tensor>,
    ) -> Tensor {
        let (b, l, d) = x.size3().unwrap_or((0, 0, 0));
        let a = self.agg;
        let dh = d / self.nhead;
        let query = self
            .norm1
            .forward(&self.aggregate_queries(x, grid_x, x_mask));
        let (pooled, kv_valid) = self.pool_source(source, grid_s, source_mask);
        let pooled = self.norm1.forward(&pooled);
        let lq = query.size()[1];
        let s = pooled.size()[1];
        let heads = |t: Tensor, n: i64| t.view([b, n, self.nhead, dh]).transpose(1, 2);
        let q = heads(self.q_proj.forward(&query), lq);
        let k = heads(self.k_proj.forward(&pooled), s);
        let v = heads(self.v_proj.forward(&pooled), s);
        let mask = kv_valid.map(|m| m.view([b, 1, 1, s]));
        let m = Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, None, false);
        let m = self.merge.forward(&m.transpose(1, 2).reshape([b, lq, d]));
        // Back to the padded cell grid, then to the real one.
        let (hp, wp) = (
            grid_x.height + pad_to(grid_x.height, a),
            grid_x.width + pad_to(grid_x.width, a),
        );
        let mut m = m.transpose(1, 2).reshape([b, d, hp / a, wp / a]);
        if a > 1 {
            m = m.upsample_bilinear2d([hp, wp], false, None, None);
        }
        let m = m
            .narrow(2, 0, grid_x.height)
            .narrow(3, 0, grid_x.width)
            .flatten(2, 3)
            .transpose(1, 2);
        debug_assert_eq!(m.size(), [b, l, d]);
        let m = self
            .mlp_out
            .forward(&self.mlp_in.forward(&Tensor::cat(&[x, &m], 2)).leaky_relu());
        x + self.norm2.forward(&m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn layer(agg: i64) -> (nn::VarStore, AggregatedLayer) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let l = AggregatedLayer::new(&vs.root(), 8, 2, agg);
        (vs, l)
    }

    #[test]
    fn shapes_for_sizes_not_divisible_by_the_aggregation() {
        let (_vs, l) = layer(4);
        let g0 = CoarseGrid::new(5, 7);
        let g1 = CoarseGrid::new(9, 3);
        let x = Tensor::randn([2, 35, 8], (Kind::Float, Device::Cpu));
        let s = Tensor::randn([2, 27, 8], (Kind::Float, Device::Cpu));
        let out = l.forward(&x, g0, None, &s, g1, None);
        assert_eq!(out.size(), [2, 35, 8]);
        assert!(bool::try_from(out.isfinite().all()).unwrap());
    }

    #[test]
    fn padded_cells_do_not_reach_valid_outputs() {
        let (_vs, l) = layer(4);
        let g = CoarseGrid::new(6, 6);
        // Valid 5×6 (last row padded) in both images.
        let mask = Tensor::ones([1, 6, 6], (Kind::Bool, Device::Cpu));
        let _ = mask.narrow(1, 5, 1).fill_(0);
        let mask = mask.view([1, 36]);
        let x = Tensor::randn([1, 36, 8], (Kind::Float, Device::Cpu));
        let s = Tensor::randn([1, 36, 8], (Kind::Float, Device::Cpu));
        let out = l.forward(&x, g, Some(&mask), &s, g, Some(&mask));
        let (x2, s2) = (x.copy(), s.copy());
        let _ = x2.narrow(1, 30, 6).fill_(50.0);
        let _ = s2.narrow(1, 30, 6).fill_(-70.0);
        let out2 = l.forward(&x2, g, Some(&mask), &s2, g, Some(&mask));
        let valid = out.narrow(1, 0, 30);
        assert!(valid.allclose(&out2.narrow(1, 0, 30), 1e-5, 1e-5, false));
        // Without masks the change leaks into valid cells.
        let leak = l.forward(&x2, g, None, &s2, g, None);
        assert!(!valid.allclose(&leak.narrow(1, 0, 30), 1e-3, 1e-3, false));
    }
}
