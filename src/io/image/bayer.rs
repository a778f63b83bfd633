//! Bilinear demosaicing of 8-bit Bayer mosaics.
//!
//! Each output pixel keeps the colour its site measured and averages the nearest sites of the
//! two missing colours:
//! - at a red (blue) site: green = mean of the 4 edge neighbours, blue (red) = mean of the 4
//!   diagonal neighbours;
//! - at a green site: the colour sharing its row = mean of left + right, the colour sharing its
//!   column = mean of up + down.
//!
//! Means round half up. Borders are handled by mirroring without repeating the edge
//! (index −1 reads 1, index n reads n−2), which keeps the colour-filter parity, so border
//! pixels average real sites of the right colour. Needs width, height ≥ 2.

use super::layout::{BayerPattern, Rows};

/// Mosaic → interleaved RGB (`width × height × 3` bytes).
pub(crate) fn demosaic_bilinear(rows: &Rows, pattern: BayerPattern) -> Vec<u8> {
    let (w, h) = (rows.width, rows.height);
    let pw = w + 2;
    // Mirror-padded copy, so the inner loop needs no border cases.
    let mut pad = vec![0u8; pw * (h + 2)];
    for (y, src) in rows.iter().enumerate() {
        let dst = &mut pad[(y + 1) * pw..(y + 2) * pw];
        dst[1..=w].copy_from_slice(src);
        dst[0] = src[1];
        dst[w + 1] = src[w - 2];
    }
    pad.copy_within(2 * pw..3 * pw, 0); // row −1 ← row 1
    pad.copy_within((h - 1) * pw..h * pw, (h + 1) * pw); // row h ← row h−2

    let (rx, ry) = pattern.red_site();
    let mut out = vec![0u8; w * h * 3];
    for (y, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let up = &pad[y * pw..(y + 1) * pw];
        let mid = &pad[(y + 1) * pw..(y + 2) * pw];
        let down = &pad[(y + 2) * pw..(y + 3) * pw];
        if y & 1 == ry {
            row::<true>(up, mid, down, dst, rx);
        } else {
            row::<false>(up, mid, down, dst, rx ^ 1);
        }
    }
    out
}

/// One output row. `RED_ROW`: the row holds red and green sites (else blue and green);
/// `own_col` is the column parity of the red (blue) sites.
#[inline(always)]
fn row<const RED_ROW: bool>(up: &[u8], mid: &[u8], down: &[u8], dst: &mut [u8], own_col: usize) {
    let w = dst.len() / 3;
    // Equal lengths let the compiler drop bounds checks in the loops.
    let (up, mid, down) = (&up[..w + 2], &mid[..w + 2], &down[..w + 2]);
    let (px, _) = dst.as_chunks_mut::<3>();
    let px = &mut px[..w];
    // Sites alternate own, green, own, … from column `own_col`: walk them in pairs so the
    // loop has no per-pixel branch on the column parity.
    let first_green = own_col == 1;
    let mut x = 0;
    if first_green {
        px[0] = green::<RED_ROW>(up, mid, down, 1);
        x = 1;
    }
    while x + 1 < w {
        px[x] = own::<RED_ROW>(up, mid, down, x + 1);
        px[x + 1] = green::<RED_ROW>(up, mid, down, x + 2);
        x += 2;
    }
    if x < w {
        px[x] = own::<RED_ROW>(up, mid, down, x + 1);
    }
}

/// A red (`RED_ROW`) or blue site at padded column `i`.
#[inline(always)]
fn own<const RED_ROW: bool>(up: &[u8], mid: &[u8], down: &[u8], i: usize) -> [u8; 3] {
    let c = mid[i];
    let cross = up[i] as u16 + down[i] as u16 + mid[i - 1] as u16 + mid[i + 1] as u16;
    let diag = up[i - 1] as u16 + up[i + 1] as u16 + down[i - 1] as u16 + down[i + 1] as u16;
    let g = ((cross + 2) >> 2) as u8;
    let other = ((diag + 2) >> 2) as u8;
    if RED_ROW {
        [c, g, other]
    } else {
        [other, g, c]
    }
}

/// A green site at padded column `i` of a red (`RED_ROW`) or blue row.
#[inline(always)]
fn green<const RED_ROW: bool>(up: &[u8], mid: &[u8], down: &[u8], i: usize) -> [u8; 3] {
    let horiz = ((mid[i - 1] as u16 + mid[i + 1] as u16 + 1) >> 1) as u8;
    let vert = ((up[i] as u16 + down[i] as u16 + 1) >> 1) as u8;
    if RED_ROW {
        [horiz, mid[i], vert]
    } else {
        [vert, mid[i], horiz]
    }
}
