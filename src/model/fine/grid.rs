//! The fine-window coordinate convention (Efficient LoFTR), shared with training supervision.
//!
//! For a coarse match between cell `(x0, y0)` of image 0 and cell `(x1, y1)` of image 1:
//! - image 0's window is the 8×8 block of full-resolution feature pixels
//!   `(8·x0 + kx, 8·y0 + ky)`, `kx, ky ∈ 0..8`, flattened row-major: `k = 8·ky + kx`;
//! - image 1's window is the 10×10 block `(8·x1 − 1 + kx, 8·y1 − 1 + ky)`, `kx, ky ∈ 0..10`
//!   (zeros outside the image); its inner 8×8 (`kx, ky ∈ 1..9`) covers cell `(x1, y1)` and is
//!   what the pixel stage chooses from, indexed like image 0's window;
//! - the **reported coordinate** of window index `k` of cell `(x_c, y_c)` is
//!   `8·(x_c, y_c) + (kx − 3.5, ky − 3.5)` in network pixels ([`window_point`]): the coarse
//!   point plus an offset on the `−3.5 … 3.5` grid ([`window_offset`]). It sits 3.5 px up-left
//!   of the centre `8·x_c + kx` of the pixel whose feature was compared — Efficient LoFTR's
//!   convention. Supervision warps these same reported coordinates, so a trained network
//!   learns the correspondence between them and the convention cancels out.
//! - the sub-pixel stage adds an offset in `[−1, 1]` px (network pixels) to image 1's point.
//!
//! - the sub-pixel stage takes the 3×3 neighbourhood **centred on the stage-1 pixel** in image
//!   1's padded window (inner `(row, col)` is padded `(row + 1, col + 1)`,
//!   [`stage2_neighbourhood`]) and its spatial expectation on the `{−1, 0, 1}²` grid
//!   ([`stage2_offsets`]).
//!
//! Efficient LoFTR's code indexes that 3×3 at padded rows `r−1..=r+1` for inner row `r`, i.e.
//! centred one pixel up-left of the stage-1 pixel, wrapping around to the opposite border for
//! `r = 0` (negative index). Its training and inference agree, so the network compensates, but
//! the border wrap is a bug; we centre the neighbourhood, which is what the padded window
//! exists for (EL issue #11).
//!
//! Network pixels → original pixels: multiply by the per-axis resize factor (as Efficient
//! LoFTR does with `scale0` / `scale1`).
//!
//! This file is the **only** definition of the convention: training supervision
//! (`crate::train::supervision`) uses [`FineGrid`] and the functions here, and inference
//! ([`super::refine`]) uses the same functions.

use tch::{Device, Kind, Tensor};

use crate::model::coarse::COARSE_STRIDE;

/// Side of image 0's fine window (= the coarse stride).
pub const WINDOW: i64 = COARSE_STRIDE;
/// Side of image 1's padded fine window (one extra pixel on each side).
pub const WINDOW_PADDED: i64 = WINDOW + 2;
/// Half-size of the sub-pixel neighbourhood (3×3 → 1): offsets are scaled by it.
pub const SUBPIXEL_RADIUS: i64 = 1;

/// Offset of window position `k ∈ 0..8` along one axis: `k − 3.5`.
pub fn window_offset(k: i64) -> f64 {
    k as f64 - (WINDOW as f64 - 1.0) / 2.0
}

/// `(kx, ky)` of a flat window index `k = 8·ky + kx`.
pub fn window_cell(k: i64) -> (i64, i64) {
    (k % WINDOW, k / WINDOW)
}

/// Reported network-pixel coordinate of window index `k` of coarse cell `(x_c, y_c)`.
pub fn window_point(cell: (i64, i64), k: i64) -> (f64, f64) {
    let (kx, ky) = window_cell(k);
    (
        (cell.0 * COARSE_STRIDE) as f64 + window_offset(kx),
        (cell.1 * COARSE_STRIDE) as f64 + window_offset(ky),
    )
}

/// Full-resolution pixel (column, row) whose feature sits at window index `k` of cell
/// `(x_c, y_c)` in image 0's window (or in image 1's inner window).
pub fn window_pixel(cell: (i64, i64), k: i64) -> (i64, i64) {
    let (kx, ky) = window_cell(k);
    (cell.0 * COARSE_STRIDE + kx, cell.1 * COARSE_STRIDE + ky)
}

/// `[64, 2]` float32 table of `(kx − 3.5, ky − 3.5)` for flat window indices (EL's `grid`).
pub fn window_offsets(device: Device) -> Tensor {
    let k = Tensor::arange(WINDOW * WINDOW, (Kind::Int64, device));
    let kx = k.remainder(WINDOW);
    let ky = k.floor_divide_scalar(WINDOW);
    Tensor::stack(&[kx, ky], 1).to_kind(Kind::Float) - (WINDOW as f64 - 1.0) / 2.0
}

/// Padded-window flat indices (`row·10 + col`) of the 3×3 neighbourhood centred on inner
/// window index `k` (row-major, top-left first), `[len(k), 9]` i64 for a `[len]` i64 tensor.
pub fn stage2_neighbourhood(k: &Tensor) -> Tensor {
    let row = k.floor_divide_scalar(WINDOW) + 1;
    let col = k.remainder(WINDOW) + 1;
    let d = Tensor::from_slice(&[-1i64, 0, 1]).to_device(k.device());
    let rows = row.unsqueeze(-1).unsqueeze(-1) + d.view([1, 3, 1]);
    let cols = col.unsqueeze(-1).unsqueeze(-1) + d.view([1, 1, 3]);
    (rows * WINDOW_PADDED + cols).reshape([-1, 9])
}

/// `(x, y)` of the 3×3 neighbourhood cells in the order of [`stage2_neighbourhood`], `[9, 2]`
/// f32: x is the column offset ∈ {−1, 0, 1} (fastest), y the row offset.
pub fn stage2_offsets(device: Device) -> Tensor {
    let d = Tensor::from_slice(&[-1.0f32, 0.0, 1.0]).to_device(device);
    let dx = d.repeat([3]);
    let dy = d.repeat_interleave_self_int(3, 0, None);
    Tensor::stack(&[dx, dy], 1)
}

/// The coarse/fine grid as one value for code that passes it around (training supervision,
/// losses, batch collation). It holds no numbers of its own: every method reads the constants
/// and functions of this module, so supervision and inference cannot disagree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FineGrid {
    _sealed: (),
}

impl FineGrid {
    /// Efficient LoFTR's and IMD's grid: stride 8, 8×8 windows at full resolution.
    pub const EFFICIENT_LOFTR: FineGrid = FineGrid { _sealed: () };

    /// Network-input pixels per coarse cell ([`COARSE_STRIDE`]).
    pub const fn stride(&self) -> i64 {
        COARSE_STRIDE
    }

    /// Fine window side ([`WINDOW`]).
    pub const fn window(&self) -> i64 {
        WINDOW
    }

    /// Pixels in a fine window (`window²`).
    pub const fn window_area(&self) -> i64 {
        WINDOW * WINDOW
    }

    /// Side of image 1's padded stage-2 window ([`WINDOW_PADDED`]).
    pub const fn padded_window(&self) -> i64 {
        WINDOW_PADDED
    }

    /// `window/2 − 0.5` (3.5): minus the offset of window index 0 ([`window_offset`]).
    pub fn half_extent(&self) -> f64 {
        -window_offset(0)
    }

    /// The coarse point `stride·(x_c, y_c)` of a cell in network-input pixels.
    pub fn coarse_point(&self, x_c: i64, y_c: i64) -> (f64, f64) {
        ((COARSE_STRIDE * x_c) as f64, (COARSE_STRIDE * y_c) as f64)
    }

    /// Offset of window index `k` (one axis) from the coarse point ([`window_offset`]).
    pub fn window_offset(&self, k: i64) -> f64 {
        window_offset(k)
    }

    /// Reported position of window pixel `(k_x, k_y)` of cell `(x_c, y_c)` ([`window_point`]).
    pub fn fine_point(&self, x_c: i64, y_c: i64, k_x: i64, k_y: i64) -> (f64, f64) {
        window_point((x_c, y_c), k_y * WINDOW + k_x)
    }

    /// Continuous window coordinate (one axis) of an offset from the coarse point, so that
    /// `round()` of it is the nearest window index: the inverse of [`window_offset`].
    pub fn window_coordinate(&self, offset: f64) -> f64 {
        offset + self.half_extent()
    }

    /// [`window_offsets`]: `[window², 2]` f32 offsets of all window indices.
    pub fn window_offsets(&self, device: Device) -> Tensor {
        window_offsets(device)
    }

    /// [`stage2_neighbourhood`].
    pub fn stage2_neighbourhood(&self, k: &Tensor) -> Tensor {
        stage2_neighbourhood(k)
    }

    /// [`stage2_offsets`].
    pub fn stage2_offsets(&self, device: Device) -> Tensor {
        stage2_offsets(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convention() {
        assert_eq!(window_offset(0), -3.5);
        assert_eq!(window_offset(7), 3.5);
        assert_eq!(window_cell(13), (5, 1));
        assert_eq!(window_point((2, 3), 13), (16.0 + 1.5, 24.0 - 2.5));
        assert_eq!(window_pixel((2, 3), 13), (21, 25));
        let t = window_offsets(Device::Cpu);
        assert_eq!(t.size(), vec![64, 2]);
        assert_eq!(t.double_value(&[13, 0]), 1.5);
        assert_eq!(t.double_value(&[13, 1]), -2.5);
    }
    #[test]
    fn fine_grid_reads_the_module_convention() {
        let g = FineGrid::EFFICIENT_LOFTR;
        assert_eq!((g.stride(), g.window(), g.padded_window()), (8, 8, 10));
        assert_eq!(g.half_extent(), 3.5);
        assert_eq!(g.fine_point(2, 1, 0, 7), (12.5, 11.5));
        assert_eq!(g.fine_point(2, 3, 5, 1), window_point((2, 3), 13));
        assert_eq!(g.window_coordinate(g.window_offset(6)), 6.0);
        assert!(g
            .window_offsets(Device::Cpu)
            .equal(&window_offsets(Device::Cpu)));
    }

    #[test]
    fn stage2_neighbourhood_is_centred_in_padded_window() {
        // Inner (0, 0) → padded centre (1, 1): rows 0..=2, cols 0..=2 of the 10×10 window.
        let n = stage2_neighbourhood(&Tensor::from_slice(&[0i64, 63, 13]));
        let v = Vec::<i64>::try_from(n.reshape([-1])).unwrap();
        assert_eq!(&v[..9], &[0, 1, 2, 10, 11, 12, 20, 21, 22]);
        // Inner (7, 7) → padded (8, 8): rows 7..=9, cols 7..=9.
        assert_eq!(&v[9..18], &[77, 78, 79, 87, 88, 89, 97, 98, 99]);
        // Inner 13 = (kx 5, ky 1) → padded (6, 2): its centre is 2·10 + 6 = 26.
        assert_eq!(v[18 + 4], 26);
        let o = Vec::<f32>::try_from(stage2_offsets(Device::Cpu).reshape([-1])).unwrap();
        assert_eq!(&o[..6], &[-1.0, -1.0, 0.0, -1.0, 1.0, -1.0]);
        assert_eq!(&o[8..10], &[0.0, 0.0]);
    }
}
