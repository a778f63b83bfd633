//! Coarse stage at 1/8 resolution: project the UNet features to `d_model`, add a 2-D sine
//! position encoding, run interleaved self/cross attention ([`transformer`]; full, or
//! Efficient LoFTR's aggregated attention, [`aggregated`]), then match
//! with Efficient LoFTR's dual softmax + mutual nearest neighbour ([`matching`]).
//!
//! # Coordinate convention (shared with training supervision)
//! The network image (resized, before any padding) is divided into `h × w` cells of
//! [`COARSE_STRIDE`]` = 8` pixels; cell `(x_c, y_c)` covers pixel columns `8·x_c … 8·x_c + 7`
//! and rows `8·y_c … 8·y_c + 7`. Flat index `i = y_c · w + x_c` (row-major, as the feature maps
//! are flattened). Exactly as Efficient LoFTR, the **coarse point** of a cell is
//! `8 · (x_c, y_c)` in network-image pixels ([`CoarseGrid::cell_point`]); multiplying by the
//! per-axis resize factor gives original-image pixels. That point is the top-left pixel of the
//! cell, not its centre: the fine stage ([`crate::model::fine::grid`]) adds the `−3.5 … 3.5`
//! window offsets to it, and training supervision uses the same points, so a trained model
//! absorbs the convention. Where no training defines the convention (zero-shot mode),
//! [`CoarseGrid::cell_centre`] gives the geometric centre `8 · x_c + 3.5`.

pub mod aggregated;
pub mod matching;
pub mod position;
pub mod transformer;

pub use matching::{CoarseMatchParams, CoarseMatches};
pub use position::sine_position_encoding;
pub use transformer::{CoarseFeatures, CoarseModule, CoarseTransformer};

use tch::{Device, Kind, Tensor};

/// Pixels per coarse cell (the UNet features are at 1/8 resolution).
pub const COARSE_STRIDE: i64 = 8;

/// A grid of coarse cells (`height` rows × `width` columns), possibly holding a padded image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoarseGrid {
    /// Rows of cells.
    pub height: i64,
    /// Columns of cells.
    pub width: i64,
}

/// The unpadded part of a (bottom-right padded) coarse grid: rows `0..height`, columns
/// `0..width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidRegion {
    /// Valid rows.
    pub height: i64,
    /// Valid columns.
    pub width: i64,
}

impl CoarseGrid {
    /// A grid of `height × width` cells.
    pub const fn new(height: i64, width: i64) -> Self {
        CoarseGrid { height, width }
    }

    /// Number of cells.
    pub fn len(&self) -> i64 {
        self.height * self.width
    }

    /// True when the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole grid as a valid region (no padding).
    pub fn full(&self) -> ValidRegion {
        ValidRegion {
            height: self.height,
            width: self.width,
        }
    }

    /// Flat index of cell `(x, y)`.
    pub fn index(&self, x: i64, y: i64) -> i64 {
        y * self.width + x
    }

    /// Cell `(x, y)` of a flat index.
    pub fn cell(&self, index: i64) -> (i64, i64) {
        (index % self.width, index / self.width)
    }

    /// Efficient LoFTR's coarse point `8·(x, y)` of a flat index, in network pixels.
    pub fn cell_point(&self, index: i64) -> (f64, f64) {
        let (x, y) = self.cell(index);
        ((x * COARSE_STRIDE) as f64, (y * COARSE_STRIDE) as f64)
    }

    /// The geometric centre `8·(x, y) + 3.5` of a cell in network pixels (pixel-centre
    /// coordinates: pixel `n` spans `n − 0.5 … n + 0.5`).
    pub fn cell_centre(&self, index: i64) -> (f64, f64) {
        let (x, y) = self.cell_point(index);
        let half = (COARSE_STRIDE as f64 - 1.0) / 2.0;
        (x + half, y + half)
    }

    /// Cells `(x, y)` of flat indices `[M]` (int64) as two `[M]` int64 tensors.
    pub fn cells_of(&self, index: &Tensor) -> (Tensor, Tensor) {
        (
            index.remainder(self.width),
            index.floor_divide_scalar(self.width),
        )
    }

    /// Coarse points `8·(x, y)` of flat indices `[M]` as `[M, 2]` float32 (x, y), network pixels.
    pub fn cell_points(&self, index: &Tensor) -> Tensor {
        let (x, y) = self.cells_of(index);
        Tensor::stack(&[x, y], 1).to_kind(Kind::Float) * COARSE_STRIDE as f64
    }

    /// `[B, height·width]` bool mask, true inside each batch item's valid region.
    pub fn padding_mask(&self, valid: &[ValidRegion], device: Device) -> Tensor {
        self.region_mask(valid, 0, device)
    }

    /// `[B, height·width]` bool mask of cells inside each valid region shrunk by `border`
    /// cells on every side: Efficient LoFTR's `mask_border_with_padding` as a per-cell mask.
    pub fn region_mask(&self, valid: &[ValidRegion], border: i64, device: Device) -> Tensor {
        let ys = Tensor::arange(self.height, (Kind::Int64, device)).view([1, -1, 1]);
        let xs = Tensor::arange(self.width, (Kind::Int64, device)).view([1, 1, -1]);
        let hs: Vec<i64> = valid.iter().map(|v| v.height).collect();
        let ws: Vec<i64> = valid.iter().map(|v| v.width).collect();
        let hs = Tensor::from_slice(&hs).to_device(device).view([-1, 1, 1]);
        let ws = Tensor::from_slice(&ws).to_device(device).view([-1, 1, 1]);
        let inside = ys.ge(border)
            * ys.lt_tensor(&(hs - border))
            * xs.ge(border)
            * xs.lt_tensor(&(ws - border));
        inside.view([valid.len() as i64, -1])
    }
}

/// Valid regions from `[B, H, W]` padding masks (true = valid), measured as Efficient LoFTR
/// does: the largest number of valid cells in any column / row.
pub fn valid_regions_from_mask(mask: &Tensor) -> Vec<ValidRegion> {
    let m = mask.to_kind(Kind::Int64);
    let hs = m.sum_dim_intlist(1, false, Kind::Int64).amax(-1, false);
    let ws = m.sum_dim_intlist(2, false, Kind::Int64).amax(-1, false);
    let hs = Vec::<i64>::try_from(&hs).unwrap_or_default();
    let ws = Vec::<i64>::try_from(&ws).unwrap_or_default();
    hs.into_iter()
        .zip(ws)
        .map(|(height, width)| ValidRegion { height, width })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_convention() {
        let g = CoarseGrid::new(3, 5);
        assert_eq!(g.index(4, 2), 14);
        assert_eq!(g.cell(14), (4, 2));
        assert_eq!(g.cell_point(14), (32.0, 16.0));
        assert_eq!(g.cell_centre(14), (35.5, 19.5));
        let pts = g.cell_points(&Tensor::from_slice(&[0i64, 14, 6]));
        assert_eq!(
            Vec::<f32>::try_from(pts.view([-1])).unwrap(),
            vec![0.0, 0.0, 32.0, 16.0, 8.0, 8.0]
        );
    }

    #[test]
    fn region_masks_follow_the_valid_region() {
        let g = CoarseGrid::new(4, 6);
        let valid = [
            g.full(),
            ValidRegion {
                height: 3,
                width: 4,
            },
        ];
        let m = g.region_mask(&valid, 1, Device::Cpu);
        let m: Vec<bool> = Vec::<bool>::try_from(m.view([-1])).unwrap();
        let at = |b: usize, x: usize, y: usize| m[b * 24 + y * 6 + x];
        // Full grid, border 1: rows 1..3, cols 1..5.
        assert!(at(0, 1, 1) && at(0, 4, 2) && !at(0, 5, 2) && !at(0, 1, 3) && !at(0, 0, 1));
        // Valid 3×4, border 1: only row 1, cols 1..3.
        assert!(at(1, 1, 1) && at(1, 2, 1) && !at(1, 3, 1) && !at(1, 1, 2));
        let pad = g.padding_mask(&valid, Device::Cpu);
        assert_eq!(pad.sum(Kind::Int64).int64_value(&[]), 24 + 12);
        let mask3 = pad.view([2, 4, 6]);
        assert_eq!(valid_regions_from_mask(&mask3), valid.to_vec());
    }
}
