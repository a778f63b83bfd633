//! YUV 4:2:2 → RGB, ITU-R BT.601 limited range ("studio swing": Y 16..235, U/V 16..240
//! centred on 128), the convention of camera drivers and OpenCV's `COLOR_YUV2RGB_UYVY`:
//!
//! ```text
//! Y' = max(Y − 16, 0)
//! R = 1.164383·Y'                 + 1.596027·(V−128)
//! G = 1.164383·Y' − 0.391762·(U−128) − 0.812968·(V−128)
//! B = 1.164383·Y' + 2.017232·(U−128)
//! ```
//! evaluated in 16.16 fixed point (coefficients rounded to 1/65536, result rounded half up and
//! clamped to 0..255). Both pixels of a pair share the pair's U and V. Y below 16 counts as
//! black (16), as OpenCV (and so cv_bridge) does, so our colours match the ROS tools'.

use super::raw::Rows;

// The coefficients above × 65536, rounded.
const CY: i32 = 76_309;
const CVR: i32 = 104_597;
const CVG: i32 = 53_279;
const CUG: i32 = 25_675;
const CUB: i32 = 132_201;
const HALF: i32 = 1 << 15;

#[inline(always)]
fn clamp8(v: i32) -> u8 {
    (v >> 16).clamp(0, 255) as u8
}

#[inline(always)]
fn pair(y0: u8, y1: u8, u: u8, v: u8, out: &mut [u8]) {
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let (rv, g, bu) = (CVR * e, -CUG * d - CVG * e, CUB * d);
    let c0 = (y0 as i32 - 16).max(0) * CY + HALF;
    let c1 = (y1 as i32 - 16).max(0) * CY + HALF;
    if let [r0, g0, b0, r1, g1, b1] = out {
        *r0 = clamp8(c0 + rv);
        *g0 = clamp8(c0 + g);
        *b0 = clamp8(c0 + bu);
        *r1 = clamp8(c1 + rv);
        *g1 = clamp8(c1 + g);
        *b1 = clamp8(c1 + bu);
    }
}

fn convert(rows: &Rows, order: impl Fn(&[u8]) -> (u8, u8, u8, u8)) -> Vec<u8> {
    let row_out = rows.width * 3;
    let mut out = vec![0u8; row_out * rows.height];
    for (src, dst) in rows.iter().zip(out.chunks_exact_mut(row_out)) {
        for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let (y0, y1, u, v) = order(s);
            pair(y0, y1, u, v, d);
        }
    }
    out
}

/// `yuv422` (UYVY): bytes U Y0 V Y1 per pixel pair.
pub(crate) fn uyvy_to_rgb(rows: &Rows) -> Vec<u8> {
    convert(rows, |s| (s[1], s[3], s[0], s[2]))
}

/// `yuv422_yuy2` (YUYV): bytes Y0 U Y1 V per pixel pair.
pub(crate) fn yuyv_to_rgb(rows: &Rows) -> Vec<u8> {
    convert(rows, |s| (s[0], s[2], s[1], s[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float formula of the module doc, unrounded.
    fn reference(y: u8, u: u8, v: u8) -> [f64; 3] {
        let (c, d, e) = (
            (y as f64 - 16.0).max(0.0),
            u as f64 - 128.0,
            v as f64 - 128.0,
        );
        [
            1.164383 * c + 1.596027 * e,
            1.164383 * c - 0.391762 * d - 0.812968 * e,
            1.164383 * c + 2.017232 * d,
        ]
    }

    #[test]
    fn fixed_point_matches_the_formula_everywhere() {
        // The 16.16 coefficients differ from the 6-decimal ones by ≤ 0.5/65536 + 5e-7 each;
        // with |Y−16| ≤ 239 and |U−128|, |V−128| ≤ 128 the sums differ by < 0.004. So the
        // rounded results agree, except where the exact value lies within 0.004 of a .5 tie.
        for y in 0..=255u8 {
            for u in (0..=255u8).step_by(3) {
                for v in (0..=255u8).step_by(5) {
                    let mut px = [0u8; 6];
                    pair(y, y, u, v, &mut px);
                    for (k, exact) in reference(y, u, v).into_iter().enumerate() {
                        let rounded = (exact + 0.5).floor().clamp(0.0, 255.0) as u8;
                        if px[k] != rounded {
                            let tie_distance = (exact - exact.floor() - 0.5).abs();
                            assert!(
                                px[k].abs_diff(rounded) == 1 && tie_distance < 0.004,
                                "yuv {y},{u},{v} channel {k}: {} vs exact {exact}",
                                px[k]
                            );
                        }
                        // Both pixels of the pair use the same chroma.
                        assert_eq!(px[k], px[k + 3]);
                    }
                }
            }
        }
    }
}
