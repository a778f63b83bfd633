//! Two-stage refinement exactly as Efficient LoFTR (`fine_matching.py`); conventions in
//! [`super::grid`].
//!
//! For M coarse matches with windows `w0 [M, 64, C]` (image 0, 8×8) and `w1 [M, 100, C]`
//! (image 1, 10×10):
//! - **stage 1** (pixel level): channels `0 .. C−k` (k = sub-pixel channels, 8) of both windows
//!   ÷ √C, correlation `[M, 64, 100]`, dual softmax, crop image 1 to its inner 8×8 →
//!   `[M, 64, 64]`; one global argmax per match gives `(idx_l, idx_r)`.
//! - **stage 2** (sub-pixel): the last k channels, `w0 · (w1 / √k)` → `[M, 64, 100]`; take row
//!   `idx_l`, the 3×3 neighbourhood of `idx_r` in the padded 10×10 window, `softmax(·/T)`
//!   (T = 10), spatial expectation on the `{−1, 0, 1}²` grid → offset in `[−1, 1]` added to
//!   image 1's point.
//!
//! Training uses [`stage1`] (the `[M, 64, 64]` matrix) and [`subpixel_expectation`] with
//! ground-truth indices; inference uses [`refine`].

use tch::Tensor;

use super::grid::{
    stage2_neighbourhood, stage2_offsets, window_offsets, SUBPIXEL_RADIUS, WINDOW, WINDOW_PADDED,
};
use crate::model::coarse::transformer::MATCH_KIND;
use crate::model::coarse::COARSE_STRIDE;

/// Coarse cells to refine: batch item and cell `(x, y)` in each image (int64 `[M]`).
#[derive(Debug)]
pub struct WindowCells {
    /// Batch item.
    pub b: Tensor,
    /// Image 0 cell column.
    pub x0: Tensor,
    /// Image 0 cell row.
    pub y0: Tensor,
    /// Image 1 cell column.
    pub x1: Tensor,
    /// Image 1 cell row.
    pub y1: Tensor,
}

/// Image 0's 8×8 windows: `feat [B, C, H, W]` → `[M, 64, C]` at cells `(b, x, y)`.
pub fn windows0(feat: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor) -> Tensor {
    let c = feat.size()[1];
    // [B, C, h, w, 8, 8] is a strided view; indexing copies only the M windows.
    let tiles = feat
        .unfold(2, WINDOW, COARSE_STRIDE)
        .unfold(3, WINDOW, COARSE_STRIDE);
    let picked = tiles.index(&[Some(b), None, Some(y), Some(x)]);
    picked.reshape([-1, c, WINDOW * WINDOW]).transpose(1, 2)
}

/// Image 1's 10×10 windows (one pixel of zero padding at the image border):
/// `feat [B, C, H, W]` → `[M, 100, C]` at cells `(b, x, y)`.
pub fn windows1(feat: &Tensor, b: &Tensor, x: &Tensor, y: &Tensor) -> Tensor {
    let c = feat.size()[1];
    let padded = feat.constant_pad_nd([1, 1, 1, 1]);
    let tiles =
        padded
            .unfold(2, WINDOW_PADDED, COARSE_STRIDE)
            .unfold(3, WINDOW_PADDED, COARSE_STRIDE);
    let picked = tiles.index(&[Some(b), None, Some(y), Some(x)]);
    picked
        .reshape([-1, c, WINDOW_PADDED * WINDOW_PADDED])
        .transpose(1, 2)
}

/// Stage-1 and stage-2 similarity matrices of M window pairs.
#[derive(Debug)]
pub struct FineStage1 {
    /// Dual-softmax matrix `[M, 64, 64]` (image 0 window × image 1 inner window).
    pub conf: Tensor,
    /// Sub-pixel similarities `[M, 64, 100]` (image 0 window × image 1 padded window).
    pub subpixel_sim: Tensor,
}

/// Stage 1 on windows `w0 [M, 64, C]`, `w1 [M, 100, C]`; the last `subpixel_channels`
/// channels feed stage 2. Differentiable.
pub fn stage1(w0: &Tensor, w1: &Tensor, subpixel_channels: i64) -> FineStage1 {
    let m = w0.size()[0];
    let c = w0.size()[2];
    let cs = c - subpixel_channels;
    let w0 = w0.to_kind(MATCH_KIND);
    let w1 = w1.to_kind(MATCH_KIND);
    let scale = (c as f64).sqrt();
    let a0 = w0.narrow(2, 0, cs) / scale;
    let a1 = w1.narrow(2, 0, cs) / scale;
    let sim = a0.matmul(&a1.transpose(1, 2));
    let dual = sim.softmax(1, MATCH_KIND) * sim.softmax(2, MATCH_KIND);
    let conf = dual
        .view([m, WINDOW * WINDOW, WINDOW_PADDED, WINDOW_PADDED])
        .narrow(2, 1, WINDOW)
        .narrow(3, 1, WINDOW)
        .reshape([m, WINDOW * WINDOW, WINDOW * WINDOW]);
    let s0 = w0.narrow(2, cs, subpixel_channels);
    let s1 = w1.narrow(2, cs, subpixel_channels) / (subpixel_channels as f64).sqrt();
    FineStage1 {
        conf,
        subpixel_sim: s0.matmul(&s1.transpose(1, 2)),
    }
}

/// One global argmax per match of `conf [M, 64, 64]` → `(idx_l, idx_r)`, int64 `[M]`.
pub fn argmax_pairs(conf: &Tensor) -> (Tensor, Tensor) {
    let m = conf.size()[0];
    let idx = conf.view([m, -1]).argmax(-1, false);
    let n = WINDOW * WINDOW;
    (idx.floor_divide_scalar(n), idx.remainder(n))
}

/// Stage 2: `subpixel_sim [M, 64, 100]`, image-0 index `idx_l` and image-1 inner-window index
/// `idx_r` → expected offset `[M, 2]` (x, y) in `[−1, 1]` (×[`SUBPIXEL_RADIUS`] pixels).
/// Differentiable in `subpixel_sim`.
pub fn subpixel_expectation(
    subpixel_sim: &Tensor,
    idx_l: &Tensor,
    idx_r: &Tensor,
    temperature: f64,
) -> Tensor {
    let m = subpixel_sim.size()[0];
    let rows = subpixel_sim
        .gather(
            1,
            &idx_l
                .view([m, 1, 1])
                .expand([m, 1, WINDOW_PADDED * WINDOW_PADDED], false),
            false,
        )
        .view([m, WINDOW_PADDED * WINDOW_PADDED]);
    subpixel_from_rows(&rows, idx_r, temperature)
}

/// Stage 2 on K rows of stage-2 scores `rows [K, 100]` (one image-0 pixel against image 1's
/// padded window each) and their inner-window indices `idx_r [K]`: `softmax(·/T)` over the
/// 3×3 neighbourhood centred on `idx_r` ([`stage2_neighbourhood`]) and its spatial
/// expectation ([`stage2_offsets`]) → `[K, 2]` (x, y) in `[−1, 1]`. Inference
/// ([`subpixel_expectation`]) and the training loss both go through this function.
pub fn subpixel_from_rows(rows: &Tensor, idx_r: &Tensor, temperature: f64) -> Tensor {
    let device = rows.device();
    let logits = rows.gather(1, &stage2_neighbourhood(idx_r), false);
    let heat = (logits.to_kind(MATCH_KIND) / temperature).softmax(1, MATCH_KIND);
    heat.matmul(&stage2_offsets(device))
}

/// Refined matches of M coarse matches, in network pixels (conventions in [`super::grid`]).
#[derive(Debug)]
pub struct FineMatches {
    /// Image 0 points `[M, 2]` (x, y), float32.
    pub points0: Tensor,
    /// Image 1 points `[M, 2]` (x, y), float32.
    pub points1: Tensor,
}

/// Both stages on full-resolution fine features `feat0 [B, C, H0, W0]`, `feat1 [B, C, H1, W1]`
/// for the given cells. Handles M = 0.
pub fn refine(
    feat0: &Tensor,
    feat1: &Tensor,
    cells: &WindowCells,
    subpixel_channels: i64,
    temperature: f64,
) -> FineMatches {
    let device = feat0.device();
    let m = cells.b.size()[0];
    if m == 0 {
        let empty = Tensor::zeros([0, 2], (MATCH_KIND, device));
        return FineMatches {
            points0: empty.shallow_clone(),
            points1: empty,
        };
    }
    let w0 = windows0(feat0, &cells.b, &cells.x0, &cells.y0);
    let w1 = windows1(feat1, &cells.b, &cells.x1, &cells.y1);
    let s1 = stage1(&w0, &w1, subpixel_channels);
    refine_stage1(&s1, cells, temperature)
}

/// The part of [`refine`] after the window similarities: one argmax per match on
/// `s1.conf`, the sub-pixel expectation around it, and the points
/// `8·cell + window_offsets[idx]` (+ the sub-pixel offset in image 1), in network pixels.
pub fn refine_stage1(s1: &FineStage1, cells: &WindowCells, temperature: f64) -> FineMatches {
    let device = s1.conf.device();
    let (idx_l, idx_r) = argmax_pairs(&s1.conf);
    let offset = subpixel_expectation(&s1.subpixel_sim, &idx_l, &idx_r, temperature)
        * SUBPIXEL_RADIUS as f64;
    let grid = window_offsets(device);
    let stride = COARSE_STRIDE as f64;
    let base0 = Tensor::stack(&[&cells.x0, &cells.y0], 1).to_kind(MATCH_KIND) * stride;
    let base1 = Tensor::stack(&[&cells.x1, &cells.y1], 1).to_kind(MATCH_KIND) * stride;
    FineMatches {
        points0: base0 + grid.index_select(0, &idx_l),
        points1: base1 + grid.index_select(0, &idx_r) + offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn windows_pick_the_documented_pixels() {
        // Feature value = pixel column + 100·row, so windows reveal which pixels they hold.
        let (h, w) = (16i64, 24i64);
        let xs = Tensor::arange(w, (Kind::Float, Device::Cpu)).view([1, 1, 1, w]);
        let ys = Tensor::arange(h, (Kind::Float, Device::Cpu)).view([1, 1, h, 1]);
        let feat = (xs + ys * 100.0).expand([1, 2, h, w], false).contiguous();
        let b = Tensor::from_slice(&[0i64, 0]);
        let x = Tensor::from_slice(&[2i64, 0]);
        let y = Tensor::from_slice(&[1i64, 0]);
        let w0 = windows0(&feat, &b, &x, &y);
        assert_eq!(w0.size(), vec![2, 64, 2]);
        // Window index 13 = (kx 5, ky 1) of cell (2, 1) → pixel (21, 9).
        assert_eq!(w0.double_value(&[0, 13, 0]), 21.0 + 900.0);
        let w1 = windows1(&feat, &b, &x, &y);
        assert_eq!(w1.size(), vec![2, 100, 2]);
        // Padded index (kx 0, ky 0) of cell (2, 1) → pixel (15, 7); of cell (0, 0) → outside (0).
        assert_eq!(w1.double_value(&[0, 0, 1]), 15.0 + 700.0);
        assert_eq!(w1.double_value(&[1, 0, 0]), 0.0);
        assert_eq!(w1.double_value(&[1, 11, 0]), 0.0 + 0.0); // pixel (0, 0)
        assert_eq!(w1.double_value(&[1, 99, 0]), 8.0 + 800.0); // pixel (8, 8)
    }

    #[test]
    fn no_matches_is_empty() {
        let feat = Tensor::zeros([1, 16, 16, 16], (Kind::Float, Device::Cpu));
        let e = Tensor::zeros([0], (Kind::Int64, Device::Cpu));
        let cells = WindowCells {
            b: e.shallow_clone(),
            x0: e.shallow_clone(),
            y0: e.shallow_clone(),
            x1: e.shallow_clone(),
            y1: e,
        };
        let out = refine(&feat, &feat, &cells, 8, 10.0);
        assert_eq!(out.points0.size(), vec![0, 2]);
        assert_eq!(out.points1.size(), vec![0, 2]);
    }
}
