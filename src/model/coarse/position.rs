//! LoFTR's 2-D sinusoidal position encoding, added once to the projected coarse features.
//!
//! We use LoFTR's absolute sine encoding rather than Efficient LoFTR's RoPE: it is added once
//! before the transformer (no per-layer cost), it needs no training-vs-test resolution table
//! (EL's `npe`), and it is computed for the actual grid size, so there is no maximum shape.
//!
//! For `d` channels and frequency index `k = 0 … d/4 − 1`, with `ω_k = 10000^(−2k / (d/2))` and
//! 1-based cell positions `x = x_c + 1`, `y = y_c + 1` (LoFTR counts from 1):
//! `pe[4k] = sin(ω_k x)`, `pe[4k+1] = cos(ω_k x)`, `pe[4k+2] = sin(ω_k y)`, `pe[4k+3] = cos(ω_k y)`.
//! This is LoFTR's corrected (`temp_bug_fix`) frequency schedule.

use tch::{Device, Kind, Tensor};

/// `[1, d, height, width]` encoding (float32) for a grid of `height × width` cells; `d` must be
/// a multiple of 4 (checked by `imd.yaml` validation).
pub fn sine_position_encoding(d: i64, height: i64, width: i64, device: Device) -> Tensor {
    let opts = (Kind::Float, device);
    let k = Tensor::arange(d / 4, opts);
    let omega = (k * (-2.0 * 10000f64.ln() / (d as f64 / 2.0)))
        .exp()
        .view([-1, 1, 1]);
    let ys = Tensor::arange_start(1, height + 1, opts)
        .view([1, -1, 1])
        .expand([1, height, width], false);
    let xs = Tensor::arange_start(1, width + 1, opts)
        .view([1, 1, -1])
        .expand([1, height, width], false);
    let ax = &omega * xs;
    let ay = &omega * ys;
    // [d/4, 4, H, W] → [d, H, W] interleaves the four terms per frequency.
    Tensor::stack(&[ax.sin(), ax.cos(), ay.sin(), ay.cos()], 1).view([1, d, height, width])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula() {
        let d = 8;
        let pe = sine_position_encoding(d, 3, 5, Device::Cpu);
        assert_eq!(pe.size(), vec![1, 8, 3, 5]);
        let at = |c: i64, y: i64, x: i64| pe.double_value(&[0, c, y, x]);
        for (y, x) in [(0, 0), (2, 4), (1, 3)] {
            for k in 0..d / 4 {
                let w = 10000f64.powf(-2.0 * k as f64 / (d as f64 / 2.0));
                let (xf, yf) = ((x + 1) as f64, (y + 1) as f64);
                assert!((at(4 * k, y, x) - (w * xf).sin()).abs() < 1e-6);
                assert!((at(4 * k + 1, y, x) - (w * xf).cos()).abs() < 1e-6);
                assert!((at(4 * k + 2, y, x) - (w * yf).sin()).abs() < 1e-6);
                assert!((at(4 * k + 3, y, x) - (w * yf).cos()).abs() < 1e-6);
            }
        }
    }
}
