//! Coarse transformer: LoFTR encoder layers with full softmax attention (libtorch SDPA), or
//! Efficient LoFTR's aggregated attention layers ([`super::aggregated`], `coarse.attention:
//! aggregated`).
//!
//! One layer (LoFTR's `LoFTREncoderLayer`, bias-free linear maps):
//! `m = norm1(merge(MHA(q_proj x, k_proj s, v_proj s)))`, `out = x + norm2(mlp([x, m]))`,
//! with `mlp = Linear(2d→2d) · ReLU · Linear(2d→d)` and `s = x` (self) or the other image
//! (cross). Padded cells of the source are masked out of the keys; padded query cells are
//! computed but never matched.
//!
//! Cross layers update both images from the *input* features of the layer (a symmetric
//! update, one batched call): swapping the images swaps the outputs. LoFTR updates image 1
//! from the already-updated image 0; with no upstream IMD weights to stay compatible with,
//! we take the symmetric form.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::aggregated::AggregatedLayer;
use super::position::sine_position_encoding;
use super::{CoarseGrid, ValidRegion};
use crate::model::imd_config::{CoarseAttention, CoarseConfig, LayerKind};

/// One LoFTR encoder layer with full attention.
#[derive(Debug)]
pub struct EncoderLayer {
    nhead: i64,
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    merge: nn::Linear,
    mlp_in: nn::Linear,
    mlp_out: nn::Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
}

impl EncoderLayer {
    /// Register the layer's variables under `path` (`q_proj`, `k_proj`, `v_proj`, `merge`,
    /// `mlp.0`, `mlp.2`, `norm1`, `norm2`).
    pub fn new(path: &nn::Path, d_model: i64, nhead: i64) -> Self {
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        let lin = |name: &str, i, o| nn::linear(path / name, i, o, no_bias);
        let mlp = path / "mlp";
        EncoderLayer {
            nhead,
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

    /// `x [B, L, d]` attends to `source [B, S, d]`; `source_mask [B, S]` (true = valid).
    pub fn forward(&self, x: &Tensor, source: &Tensor, source_mask: Option<&Tensor>) -> Tensor {
        let (b, l, d) = x.size3().unwrap_or((0, 0, 0));
        let s = source.size()[1];
        let dh = d / self.nhead;
        let heads = |t: Tensor, n: i64| t.view([b, n, self.nhead, dh]).transpose(1, 2);
        let q = heads(self.q_proj.forward(x), l);
        let k = heads(self.k_proj.forward(source), s);
        let v = heads(self.v_proj.forward(source), s);
        let mask = source_mask.map(|m| m.view([b, 1, 1, s]));
        let m = Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, false, None, false);
        let m = m.transpose(1, 2).reshape([b, l, d]);
        let m = self.norm1.forward(&self.merge.forward(&m));
        let m = self
            .mlp_out
            .forward(&self.mlp_in.forward(&Tensor::cat(&[x, &m], 2)).relu());
        x + self.norm2.forward(&m)
    }
}

/// A layer of either attention kind.
#[derive(Debug)]
enum Layer {
    Full(EncoderLayer),
    Aggregated(AggregatedLayer),
}

/// Features `[B, L, d]` of one side of a layer call, with their grid and padding mask.
struct Side<'a> {
    feat: &'a Tensor,
    grid: CoarseGrid,
    mask: Option<&'a Tensor>,
}

fn side<'a>(feat: &'a Tensor, grid: CoarseGrid, mask: Option<&'a Tensor>) -> Side<'a> {
    Side { feat, grid, mask }
}

impl Layer {
    fn forward(&self, x: Side<'_>, source: Side<'_>) -> Tensor {
        match self {
            Layer::Full(l) => l.forward(x.feat, source.feat, source.mask),
            Layer::Aggregated(l) => l.forward(
                x.feat,
                x.grid,
                x.mask,
                source.feat,
                source.grid,
                source.mask,
            ),
        }
    }
}

/// Interleaved self / cross attention over the two images' coarse features.
#[derive(Debug)]
pub struct CoarseTransformer {
    layers: Vec<(LayerKind, Layer)>,
}

impl CoarseTransformer {
    /// Register `layers.{i}.*` under `path`.
    pub fn new(path: &nn::Path, config: &CoarseConfig) -> Self {
        let layers = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                let p = path / "layers" / i as i64;
                let layer = match config.attention {
                    CoarseAttention::Full => {
                        Layer::Full(EncoderLayer::new(&p, config.d_model, config.nhead))
                    }
                    CoarseAttention::Aggregated => Layer::Aggregated(AggregatedLayer::new(
                        &p,
                        config.d_model,
                        config.nhead,
                        config.agg_size,
                    )),
                };
                (kind, layer)
            })
            .collect();
        CoarseTransformer { layers }
    }

    /// `f0 [B, L, d]`, `f1 [B, S, d]` (cell grids `grid0`, `grid1`) with optional padding
    /// masks `[B, L]`, `[B, S]` → transformed features of the same shapes.
    pub fn forward(
        &self,
        f0: &Tensor,
        f1: &Tensor,
        (grid0, grid1): (CoarseGrid, CoarseGrid),
        mask0: Option<&Tensor>,
        mask1: Option<&Tensor>,
    ) -> (Tensor, Tensor) {
        let b = f0.size()[0];
        let same_grid = f0.size() == f1.size() && grid0 == grid1;
        // Both images in one batch when their grids agree (always the case in the matcher,
        // which pads the pair to one size); masks are then batched alongside.
        let one_sided = mask0.is_some() != mask1.is_some();
        let both_masks = match (mask0, mask1) {
            (Some(m0), Some(m1)) => Some(Tensor::cat(&[m0, m1], 0)),
            _ => None,
        };
        let swapped_masks = match (mask0, mask1) {
            (Some(m0), Some(m1)) => Some(Tensor::cat(&[m1, m0], 0)),
            _ => None,
        };
        let mut f0 = f0.shallow_clone();
        let mut f1 = f1.shallow_clone();
        for (kind, layer) in &self.layers {
            if same_grid && !one_sided {
                let x = Tensor::cat(&[&f0, &f1], 0);
                let xs = side(&x, grid0, both_masks.as_ref());
                let out = match kind {
                    LayerKind::SelfAttention => {
                        layer.forward(xs, side(&x, grid0, both_masks.as_ref()))
                    }
                    LayerKind::CrossAttention => {
                        let src = Tensor::cat(&[&f1, &f0], 0);
                        layer.forward(xs, side(&src, grid0, swapped_masks.as_ref()))
                    }
                };
                let parts = out.split(b, 0);
                f0 = parts[0].shallow_clone();
                f1 = parts[1].shallow_clone();
            } else {
                let s0 = || side(&f0, grid0, mask0);
                let s1 = || side(&f1, grid1, mask1);
                let (n0, n1) = match kind {
                    LayerKind::SelfAttention => {
                        (layer.forward(s0(), s0()), layer.forward(s1(), s1()))
                    }
                    LayerKind::CrossAttention => {
                        (layer.forward(s0(), s1()), layer.forward(s1(), s0()))
                    }
                };
                f0 = n0;
                f1 = n1;
            }
        }
        (f0, f1)
    }
}

/// The coarse module: `proj` (1×1 conv, C → d_model) + sine position encoding + transformer.
#[derive(Debug)]
pub struct CoarseModule {
    d_model: i64,
    proj: nn::Conv2D,
    transformer: CoarseTransformer,
}

/// Transformed coarse features of a pair of (batches of) images.
#[derive(Debug)]
pub struct CoarseFeatures {
    /// Image 0 features `[B, h0·w0, d_model]` (row-major cells).
    pub feat0: Tensor,
    /// Image 1 features `[B, h1·w1, d_model]`.
    pub feat1: Tensor,
    /// Image 0 cell grid (padded size).
    pub grid0: CoarseGrid,
    /// Image 1 cell grid (padded size).
    pub grid1: CoarseGrid,
    /// Valid (unpadded) region of each image-0 batch item.
    pub valid0: Vec<ValidRegion>,
    /// Valid region of each image-1 batch item.
    pub valid1: Vec<ValidRegion>,
}

impl CoarseModule {
    /// Register `proj` and `layers.*` under `path`; `in_channels` is the UNet feature width.
    pub fn new(path: &nn::Path, in_channels: i64, config: &CoarseConfig) -> Self {
        CoarseModule {
            d_model: config.d_model,
            proj: nn::conv2d(
                path / "proj",
                in_channels,
                config.d_model,
                1,
                Default::default(),
            ),
            transformer: CoarseTransformer::new(path, config),
        }
    }

    /// Transformer width.
    pub fn d_model(&self) -> i64 {
        self.d_model
    }

    /// UNet features `[B, C, h0, w0]` and `[B, C, h1, w1]` (bottom-right padded, valid regions
    /// given per batch item) → transformed features. Differentiable; no train-mode layers.
    pub fn forward(
        &self,
        unet0: &Tensor,
        unet1: &Tensor,
        valid0: &[ValidRegion],
        valid1: &[ValidRegion],
    ) -> CoarseFeatures {
        let embed = |f: &Tensor| {
            let (_, _, h, w) = f.size4().unwrap_or((0, 0, 0, 0));
            let x = self.proj.forward(f);
            let pe = sine_position_encoding(self.d_model, h, w, x.device()).to_kind(x.kind());
            let x = (x + pe).flatten(2, 3).transpose(1, 2);
            (x, CoarseGrid::new(h, w))
        };
        let (x0, grid0) = embed(unet0);
        let (x1, grid1) = embed(unet1);
        let padded =
            |grid: &CoarseGrid, valid: &[ValidRegion]| valid.iter().any(|v| *v != grid.full());
        // Masks only when some item is padded: unmasked SDPA takes the fastest kernels.
        let (mask0, mask1) = if padded(&grid0, valid0) || padded(&grid1, valid1) {
            (
                Some(grid0.padding_mask(valid0, x0.device())),
                Some(grid1.padding_mask(valid1, x1.device())),
            )
        } else {
            (None, None)
        };
        let (feat0, feat1) =
            self.transformer
                .forward(&x0, &x1, (grid0, grid1), mask0.as_ref(), mask1.as_ref());
        CoarseFeatures {
            feat0,
            feat1,
            grid0,
            grid1,
            valid0: valid0.to_vec(),
            valid1: valid1.to_vec(),
        }
    }
}

/// `[B, L, d]` flattened features back to `[B, d, h, w]`.
pub fn unflatten(feat: &Tensor, grid: CoarseGrid) -> Tensor {
    let b = feat.size()[0];
    let d = feat.size()[2];
    feat.transpose(1, 2)
        .reshape([b, d, grid.height, grid.width])
}

/// `Kind` used for the matching math (similarities and softmaxes stay in float32 so that the
/// padding fill and the dual softmax do not overflow in half precision).
pub(crate) const MATCH_KIND: Kind = Kind::Float;

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn config(attention: CoarseAttention) -> CoarseConfig {
        CoarseConfig {
            d_model: 16,
            nhead: 4,
            layers: vec![LayerKind::SelfAttention, LayerKind::CrossAttention],
            temperature: 0.1,
            attention,
            agg_size: 2,
        }
    }

    #[test]
    fn cross_layers_are_symmetric_and_masks_hide_padding() {
        for attention in [CoarseAttention::Full, CoarseAttention::Aggregated] {
            symmetric_and_masked(attention);
        }
    }

    fn symmetric_and_masked(attention: CoarseAttention) {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = CoarseModule::new(&vs.root(), 6, &config(attention));
        let a = Tensor::randn([1, 6, 3, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([1, 6, 3, 4], (Kind::Float, Device::Cpu));
        let full = [CoarseGrid::new(3, 4).full()];
        let ab = m.forward(&a, &b, &full, &full);
        let ba = m.forward(&b, &a, &full, &full);
        assert!(ab.feat0.allclose(&ba.feat1, 1e-5, 1e-5, false));
        assert!(ab.feat1.allclose(&ba.feat0, 1e-5, 1e-5, false));

        // Padding: image 1 valid 2×3; changing its padded cells must not change any valid
        // output cell of either image.
        let valid1 = [ValidRegion {
            height: 2,
            width: 3,
        }];
        let out = m.forward(&a, &b, &full, &valid1);
        let b2 = b.copy();
        let _ = b2.narrow(2, 2, 1).fill_(100.0);
        let _ = b2.narrow(3, 3, 1).fill_(-50.0);
        let out2 = m.forward(&a, &b2, &full, &valid1);
        assert!(out.feat0.allclose(&out2.feat0, 1e-5, 1e-5, false));
        let valid_idx = Tensor::from_slice(&[0i64, 1, 2, 4, 5, 6]);
        assert!(out.feat1.index_select(1, &valid_idx).allclose(
            &out2.feat1.index_select(1, &valid_idx),
            1e-5,
            1e-5,
            false
        ));
        // …whereas without the mask they would leak into image 0.
        let leak = m.forward(&a, &b2, &full, &full);
        assert!(!leak.feat0.allclose(&out.feat0, 1e-3, 1e-3, false));
    }
}
