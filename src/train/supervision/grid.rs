//! The coarse/fine coordinate convention, in one place, shared by supervision and inference.
//!
//! Efficient LoFTR's convention (notes §2 "Fine GT", `fine_matching.py`, `supervision.py`):
//! - coarse cell `(x_c, y_c)` (index `i = y_c·w_c + x_c`) has the coarse point
//!   `stride·(x_c, y_c)` in network-input pixels, times `scale` in original pixels;
//! - its fine window holds the `window × window` fine pixels `stride·x_c + k` (k = 0..window),
//!   and fine window index `k` sits at the offset `k − (window/2 − 0.5)` from the coarse point,
//!   i.e. on the grid −3.5 … 3.5 for the 8×8 window. Window indices are row-major:
//!   `k = k_y·window + k_x`;
//! - image 1 uses a `(window+2)²` window (1-pixel border) for stage 2; inner index `k_x`
//!   is padded column `k_x + 1`;
//! - stage 2 takes the 3×3 neighbourhood **centred on the stage-1 pixel** in the padded window
//!   and its spatial expectation on the grid {−1, 0, 1} is the sub-pixel offset in fine pixels.
//!
//! Efficient LoFTR's code indexes that 3×3 at padded rows `r−1..=r+1` for inner row `r`, i.e.
//! centred one pixel up-left of the stage-1 pixel, wrapping around to the opposite border for
//! `r = 0` (negative index). Training and inference agree there, so the network compensates,
//! but the border wrap is a bug; we centre the neighbourhood, which is what the padded window
//! exists for (EL issue #11). Inference must use [`FineGrid::stage2_neighbourhood`] too.

use tch::{Device, Kind, Tensor};

/// Geometry of the coarse grid and the fine windows (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FineGrid {
    /// Network-input pixels per coarse cell (8).
    pub stride: i64,
    /// Fine window side in fine pixels (8); the fine level is at full input resolution.
    pub window: i64,
}

impl Default for FineGrid {
    fn default() -> Self {
        FineGrid::EFFICIENT_LOFTR
    }
}

impl FineGrid {
    /// Efficient LoFTR's and IMD's grid: stride 8, 8×8 windows at full resolution.
    pub const EFFICIENT_LOFTR: FineGrid = FineGrid {
        stride: 8,
        window: 8,
    };

    /// Number of pixels in a fine window (`window²`).
    pub fn window_area(&self) -> i64 {
        self.window * self.window
    }

    /// Side of image 1's padded stage-2 window (`window + 2`).
    pub fn padded_window(&self) -> i64 {
        self.window + 2
    }

    /// The coarse point of cell `(x_c, y_c)` in network-input pixels: `stride·(x_c, y_c)`.
    pub fn coarse_point(&self, x_c: i64, y_c: i64) -> (f64, f64) {
        ((self.stride * x_c) as f64, (self.stride * y_c) as f64)
    }

    /// Offset of fine window index `k` (one axis) from the coarse point: `k − (window/2 − 0.5)`.
    pub fn window_offset(&self, k: i64) -> f64 {
        k as f64 - self.half_extent()
    }

    /// `window/2 − 0.5` (3.5): the offset of the last window pixel, minus that of the first.
    pub fn half_extent(&self) -> f64 {
        (self.window / 2) as f64 - 0.5
    }

    /// Position (network-input pixels) of fine window pixel `(k_x, k_y)` of cell `(x_c, y_c)`.
    pub fn fine_point(&self, x_c: i64, y_c: i64, k_x: i64, k_y: i64) -> (f64, f64) {
        let (cx, cy) = self.coarse_point(x_c, y_c);
        (cx + self.window_offset(k_x), cy + self.window_offset(k_y))
    }

    /// Continuous window coordinate (one axis) of an offset from the coarse point, so that
    /// `round()` of it is the nearest window index: `offset + window/2 − 0.5`.
    pub fn window_coordinate(&self, offset: f64) -> f64 {
        offset + self.half_extent()
    }

    /// Offsets `(x, y)` of all window indices, `[window², 2]` f32, row-major `k = k_y·W + k_x`.
    pub fn window_offsets(&self, device: Device) -> Tensor {
        let w = self.window;
        let axis = Tensor::arange(w, (Kind::Float, device)) - self.half_extent();
        let xs = axis.view([1, w]).expand([w, w], false);
        let ys = axis.view([w, 1]).expand([w, w], false);
        Tensor::stack(&[xs.reshape([-1]), ys.reshape([-1])], 1)
    }

    /// Padded-window `(row, col)` of the centre of the stage-2 neighbourhood for the stage-1
    /// pixel at inner `(row, col)`: `(row + 1, col + 1)`.
    pub fn stage2_center(&self, inner_row: i64, inner_col: i64) -> (i64, i64) {
        (inner_row + 1, inner_col + 1)
    }

    /// Padded-window flat indices (`row·(W+2) + col`) of the 3×3 neighbourhood of inner window
    /// index `k` (row-major, top-left first), as `[len(k), 9]` i64 for a `[len]` i64 tensor.
    pub fn stage2_neighbourhood(&self, k: &Tensor) -> Tensor {
        let pw = self.padded_window();
        let row = k.divide_scalar_mode(self.window, "floor") + 1;
        let col = k.remainder(self.window) + 1;
        let d = Tensor::from_slice(&[-1i64, 0, 1]).to_device(k.device());
        let rows = row.unsqueeze(-1).unsqueeze(-1) + d.view([1, 3, 1]);
        let cols = col.unsqueeze(-1).unsqueeze(-1) + d.view([1, 1, 3]);
        (rows * pw + cols).reshape([-1, 9])
    }

    /// Coordinates `(x, y)` of the 3×3 neighbourhood cells for the spatial expectation, `[9, 2]`
    /// f32, in the order of [`FineGrid::stage2_neighbourhood`]: x = column offset ∈ {−1,0,1}.
    pub fn stage2_offsets(&self, device: Device) -> Tensor {
        let mut v = Vec::with_capacity(18);
        for dy in -1..=1 {
            for dx in -1..=1 {
                v.push(dx as f32);
                v.push(dy as f32);
            }
        }
        Tensor::from_slice(&v).view([9, 2]).to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn el_grid_values() {
        let g = FineGrid::EFFICIENT_LOFTR;
        assert_eq!(g.window_offset(0), -3.5);
        assert_eq!(g.window_offset(7), 3.5);
        assert_eq!(g.fine_point(2, 1, 0, 7), (12.5, 11.5));
        assert_eq!(g.window_coordinate(-3.5), 0.0);
        let offs = Vec::<f32>::try_from(g.window_offsets(Device::Cpu).reshape([-1])).unwrap();
        // k = 9 is (k_x, k_y) = (1, 1): offset (−2.5, −2.5); k = 15 is (7, 1).
        assert_eq!(&offs[18..20], &[-2.5, -2.5]);
        assert_eq!(&offs[30..32], &[3.5, -2.5]);
    }

    #[test]
    fn stage2_neighbourhood_is_centred_in_padded_window() {
        let g = FineGrid::EFFICIENT_LOFTR;
        // Inner (0, 0) → padded centre (1, 1): rows 0..=2, cols 0..=2 of the 10×10 window.
        let n = g.stage2_neighbourhood(&Tensor::from_slice(&[0i64, 63]));
        let v = Vec::<i64>::try_from(n.reshape([-1])).unwrap();
        assert_eq!(&v[..9], &[0, 1, 2, 10, 11, 12, 20, 21, 22]);
        // Inner (7, 7) → padded (8, 8): rows 7..=9, cols 7..=9.
        assert_eq!(&v[9..], &[77, 78, 79, 87, 88, 89, 97, 98, 99]);
    }
}
