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
//! Network pixels → original pixels: multiply by the per-axis resize factor (as Efficient
//! LoFTR does with `scale0` / `scale1`).

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
}
