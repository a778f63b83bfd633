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
        let i = y0 * self.width + x0;
        let top = self.data[i] * (1.0 - fx) + self.data[i + 1] * fx;
        let bottom = self.data[i + self.width] * (1.0 - fx) + self.data[i + self.width + 1] * fx;
        Some(top * (1.0 - fy) + bottom * fy)
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
