//! Grey-level patches: a smoothed grey image with bilinear sampling ([`GreyImage`]) and the
//! zero-mean normalized cross-correlation of two patches ([`zncc`]). Used where pixels, not
//! matches, are the evidence: the integrity checks' photometric support and the guided stereo
//! search of [`super::stereo_guided`].

use image::RgbImage;

/// Grey levels (0–255) of an image, lightly smoothed (3×3 binomial) so patch comparisons
/// tolerate sub-pixel match errors and JPEG noise.
#[derive(Debug, Clone)]
pub struct GreyImage {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl GreyImage {
    /// Luma (BT.601) of `image`, smoothed.
    pub fn of(image: &RgbImage) -> GreyImage {
        let (w, h) = (image.width() as usize, image.height() as usize);
        if w == 0 || h == 0 {
            // Decoders refuse empty images; a library caller's empty frame has no content.
            return GreyImage {
                width: w,
                height: h,
                data: Vec::new(),
            };
        }
        let luma: Vec<f32> = image
            .pixels()
            .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
            .collect();
        let at = |v: &[f32], x: isize, y: isize| {
            let x = x.clamp(0, w as isize - 1) as usize;
            let y = y.clamp(0, h as isize - 1) as usize;
            v[y * w + x]
        };
        let mut horizontal = vec![0.0f32; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                horizontal[y as usize * w + x as usize] =
                    0.25 * at(&luma, x - 1, y) + 0.5 * at(&luma, x, y) + 0.25 * at(&luma, x + 1, y);
            }
        }
        let mut data = vec![0.0f32; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                data[y as usize * w + x as usize] = 0.25 * at(&horizontal, x, y - 1)
                    + 0.5 * at(&horizontal, x, y)
                    + 0.25 * at(&horizontal, x, y + 1);
            }
        }
        GreyImage {
            width: w,
            height: h,
            data,
        }
    }

    /// Bilinear sample at pixel `(x, y)` (pixel centres at integers); `None` outside.
    pub fn sample(&self, x: f64, y: f64) -> Option<f32> {
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return None;
        }
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        Some(bilinear(self.rows(y0), x0, fx, fy))
    }

    /// Row `y` and the row below it.
    fn rows(&self, y: usize) -> (&[f32], &[f32]) {
        let w = self.width;
        (
            &self.data[y * w..(y + 1) * w],
            &self.data[(y + 1) * w..(y + 2) * w],
        )
    }

    /// The `(2·radius+1)²` bilinear samples around `(x, y)`, row by row, appended to `out`: what
    /// [`GreyImage::sample`] gives at each integer offset, but with one bounds check and one
    /// pair of interpolation weights for the whole patch (all samples share `(x, y)`'s
    /// fraction). The patch searches' inner loop: per-sample `floor` and checks were a third of
    /// a stereo odometry run. `None` (nothing appended) when any sample would fall outside.
    pub fn patch_into(&self, x: f64, y: f64, radius: usize, out: &mut Vec<f64>) -> Option<()> {
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let r = radius;
        if x0 < r
            || y0 < r
            || x0.saturating_add(r + 1) >= self.width
            || y0.saturating_add(r + 1) >= self.height
        {
            return None;
        }
        let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
        out.reserve((2 * r + 1) * (2 * r + 1));
        for row in y0 - r..=y0 + r {
            let rows = self.rows(row);
            out.extend((x0 - r..=x0 + r).map(|col| bilinear(rows, col, fx, fy) as f64));
        }
        Some(())
    }

    /// The `(2·radius+1)²` bilinear samples of the patch around `(x, y)` mapped by `jacobian`:
    /// the sample for offset `(dx, dy)` is at `(x, y) + jacobian·(dx, dy)`, row by row,
    /// appended to `out`. A slanted surface's patch in the other image of a stereo pair is
    /// sheared (each row at its own disparity); with the identity it is [`GreyImage::patch_into`].
    /// `None` (nothing appended) when any sample would fall outside or the mapping is not finite.
    pub fn patch_affine_into(
        &self,
        x: f64,
        y: f64,
        radius: usize,
        jacobian: [[f64; 2]; 2],
        out: &mut Vec<f64>,
    ) -> Option<()> {
        if !(x.is_finite() && y.is_finite() && jacobian.iter().flatten().all(|v| v.is_finite())) {
            return None;
        }
        let r = radius as f64;
        let [[a, b], [c, d]] = jacobian;
        // An affine map's extremes over the square are at its corners.
        let (mut lo, mut hi) = (
            (f64::INFINITY, f64::INFINITY),
            (f64::NEG_INFINITY, f64::NEG_INFINITY),
        );
        for (dx, dy) in [(-r, -r), (r, -r), (-r, r), (r, r)] {
            let (u, v) = (x + a * dx + b * dy, y + c * dx + d * dy);
            lo = (lo.0.min(u), lo.1.min(v));
            hi = (hi.0.max(u), hi.1.max(v));
        }
        if !(lo.0 >= 0.0
            && lo.1 >= 0.0
            && hi.0 + 1.0 < self.width as f64
            && hi.1 + 1.0 < self.height as f64)
        {
            return None;
        }
        let radius = radius as i64;
        out.reserve((2 * radius as usize + 1).pow(2));
        for dy in -radius..=radius {
            let (row_x, row_y) = (x + b * dy as f64, y + d * dy as f64);
            for dx in -radius..=radius {
                let (u, v) = (row_x + a * dx as f64, row_y + c * dx as f64);
                let (x0, y0) = (u.floor() as usize, v.floor() as usize);
                let (fx, fy) = ((u - x0 as f64) as f32, (v - y0 as f64) as f32);
                out.push(bilinear(self.rows(y0), x0, fx, fy) as f64);
            }
        }
        Some(())
    }

    /// Standard deviation of the grey levels over the whole image (0 for an empty image).
    pub fn contrast(&self) -> f64 {
        let n = self.data.len().max(1) as f64;
        let mean = self.data.iter().map(|v| *v as f64).sum::<f64>() / n;
        let var = self
            .data
            .iter()
            .map(|v| (*v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt()
    }
}

/// Bilinear interpolation between columns `col`, `col + 1` of two adjacent rows (`sample` and
/// `patch_into` share it, so both give the same values).
#[inline]
fn bilinear((top, bottom): (&[f32], &[f32]), col: usize, fx: f32, fy: f32) -> f32 {
    let t = top[col] * (1.0 - fx) + top[col + 1] * fx;
    let b = bottom[col] * (1.0 - fx) + bottom[col + 1] * fx;
    t * (1.0 - fy) + b * fy
}

/// Zero-mean normalized cross-correlation; `None` when either patch's standard deviation is
/// below `min_std` (no texture, no evidence).
pub fn zncc(a: &[f64], b: &[f64], min_std: f64) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    let min_var = min_std * min_std * n;
    if saa < min_var || sbb < min_var || saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    Some(sab / (saa * sbb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 23×17 image with texture in both directions.
    fn textured() -> GreyImage {
        let image = RgbImage::from_fn(23, 17, |x, y| {
            let v = (37 * x + 11 * y * y + 5 * x * y) % 251;
            image::Rgb([v as u8, (v / 2) as u8, 255 - v as u8])
        });
        GreyImage::of(&image)
    }

    #[test]
    fn patch_into_is_sample_at_every_offset_and_refuses_patches_crossing_a_border() {
        let grey = textured();
        let r = 3usize;
        let mut out = Vec::new();
        // Inside, with fractions of every kind (0, tiny, ½, near 1).
        for &(x, y) in &[
            (3.0, 3.0),
            (10.25, 7.5),
            (11.999, 8.0001),
            (18.9, 12.9),
            (15.5, 3.0),
        ] {
            out.clear();
            assert!(grey.patch_into(x, y, r, &mut out).is_some(), "({x}, {y})");
            let r = r as i32;
            let want: Vec<f64> = (-r..=r)
                .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| grey.sample(x + dx as f64, y + dy as f64).unwrap() as f64)
                .collect();
            assert_eq!(out.len(), 49);
            for (a, b) in out.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-4, "({x}, {y}): {a} vs {b}");
            }
        }
        // Exactly where `sample` stops: the last sample needs x0 + 1 < width (x < 22 - r here).
        for &(x, y) in &[
            (2.999, 5.0),
            (5.0, 2.999),
            (19.0, 5.0),
            (5.0, 13.0),
            (-1.0, 5.0),
        ] {
            out.clear();
            assert!(grey.patch_into(x, y, r, &mut out).is_none(), "({x}, {y})");
            assert!(out.is_empty());
        }
        for &(x, y) in &[(f64::NAN, 5.0), (5.0, f64::INFINITY), (1e300, 5.0)] {
            assert!(grey.patch_into(x, y, r, &mut out).is_none());
        }
        assert!(grey.patch_into(18.999, 12.999, r, &mut out).is_some());
    }

    #[test]
    fn affine_patch_is_sample_at_each_mapped_offset_and_identity_is_patch_into() {
        let grey = textured();
        let mut out = Vec::new();
        let mut plain = Vec::new();
        // Identity: the axis-aligned patch.
        assert!(grey
            .patch_affine_into(10.25, 7.5, 3, [[1.0, 0.0], [0.0, 1.0]], &mut out)
            .is_some());
        grey.patch_into(10.25, 7.5, 3, &mut plain).unwrap();
        for (a, b) in out.iter().zip(&plain) {
            assert!((a - b).abs() <= 1e-4, "{a} vs {b}");
        }
        // A shear (a floor's rows at their own disparities) and a stretch.
        let j = [[0.9, -0.35], [0.05, 1.0]];
        out.clear();
        assert!(grey.patch_affine_into(11.3, 8.6, 2, j, &mut out).is_some());
        let mut k = 0;
        for dy in -2..=2 {
            for dx in -2..=2 {
                let (dx, dy) = (dx as f64, dy as f64);
                let want = grey
                    .sample(
                        11.3 + j[0][0] * dx + j[0][1] * dy,
                        8.6 + j[1][0] * dx + j[1][1] * dy,
                    )
                    .unwrap() as f64;
                assert!(
                    (out[k] - want).abs() <= 1e-4,
                    "({dx}, {dy}): {} vs {want}",
                    out[k]
                );
                k += 1;
            }
        }
        assert_eq!(k, out.len());
        // A sheared corner leaving the image, NaN and infinite maps: refused, nothing appended.
        out.clear();
        assert!(grey
            .patch_affine_into(3.5, 8.0, 2, [[1.0, 1.0], [0.0, 1.0]], &mut out)
            .is_none());
        assert!(grey
            .patch_affine_into(10.0, 8.0, 2, [[f64::NAN, 0.0], [0.0, 1.0]], &mut out)
            .is_none());
        assert!(grey
            .patch_affine_into(10.0, 8.0, 2, [[1.0, f64::INFINITY], [0.0, 1.0]], &mut out)
            .is_none());
        assert!(out.is_empty());
    }
}
