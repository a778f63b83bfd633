//! Image degradations for synthetic training pairs: Gaussian blur and JPEG compression of a
//! planar RGB f32 image in [0, 1] (`[3, h, w]` planes in one slice).

use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

use super::DataError;

/// Separable Gaussian blur of `rgb` (3 planes of `w × h`) with standard deviation `sigma`
/// pixels (kernel radius `ceil(3σ)`, edges clamped). `sigma < 0.3` leaves the image as is.
pub fn gaussian_blur(rgb: &mut [f32], w: usize, h: usize, sigma: f64) {
    if sigma < 0.3 || w == 0 || h == 0 || rgb.len() != 3 * w * h {
        return;
    }
    let radius = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|k| (-(k * k) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let norm: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / norm).collect();
    let mut tmp = vec![0.0f32; w * h];
    for plane in rgb.chunks_mut(w * h) {
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (t, k) in kernel.iter().enumerate() {
                    let sx = (x as i64 + t as i64 - radius).clamp(0, w as i64 - 1) as usize;
                    acc += k * plane[y * w + sx];
                }
                tmp[y * w + x] = acc;
            }
        }
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (t, k) in kernel.iter().enumerate() {
                    let sy = (y as i64 + t as i64 - radius).clamp(0, h as i64 - 1) as usize;
                    acc += k * tmp[sy * w + x];
                }
                plane[y * w + x] = acc;
            }
        }
    }
}

/// Round-trip `rgb` (3 planes of `w × h`, values in [0, 1]) through a baseline JPEG at
/// `quality` (1–100).
pub fn jpeg_round_trip(rgb: &mut [f32], w: usize, h: usize, quality: u8) -> Result<(), DataError> {
    let n = w * h;
    if n == 0 || rgb.len() != 3 * n {
        return Ok(());
    }
    let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let k = y as usize * w + x as usize;
        image::Rgb([0, 1, 2].map(|c| (rgb[c * n + k].clamp(0.0, 1.0) * 255.0).round() as u8))
    });
    let mut bytes = Vec::new();
    let jpeg_error = |e: image::ImageError| {
        DataError::format(std::path::Path::new("<jpeg augmentation>"), e.to_string())
    };
    JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100))
        .encode_image(&img)
        .map_err(jpeg_error)?;
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .map_err(jpeg_error)?
        .to_rgb8();
    for (x, y, p) in decoded.enumerate_pixels() {
        let k = y as usize * w + x as usize;
        for c in 0..3 {
            rgb[c * n + k] = p[c] as f32 / 255.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constants_and_spreads_an_impulse() {
        let (w, h) = (9, 7);
        let mut flat = vec![0.4f32; 3 * w * h];
        gaussian_blur(&mut flat, w, h, 1.5);
        assert!(flat.iter().all(|v| (v - 0.4).abs() < 1e-6));
        let mut imp = vec![0.0f32; 3 * w * h];
        imp[3 * w + 4] = 1.0; // red plane, (4, 3)
        gaussian_blur(&mut imp, w, h, 1.0);
        // Away from the edges the mass is kept and the peak is the 2-D kernel's centre
        // 1/(Σ_k e^{−k²/2})² over k = −3..3.
        let sum: f32 = imp[..w * h].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        let s: f64 = (-3..=3).map(|k: i32| (-(k * k) as f64 / 2.0).exp()).sum();
        assert!((imp[3 * w + 4] as f64 - 1.0 / (s * s)).abs() < 1e-6);
        assert!(imp[w * h..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn jpeg_is_close_at_high_quality_and_lossy_at_low() {
        let (w, h) = (32, 24);
        let n = w * h;
        let mut rgb: Vec<f32> = (0..3 * n)
            .map(|k| ((k % w) as f32 / w as f32 + (k / n) as f32 * 0.1).min(1.0))
            .collect();
        let orig = rgb.clone();
        jpeg_round_trip(&mut rgb, w, h, 95).unwrap();
        let err = |a: &[f32]| {
            a.iter().zip(&orig).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
        };
        let high = err(&rgb);
        let mut low = orig.clone();
        jpeg_round_trip(&mut low, w, h, 5).unwrap();
        assert!(high < 0.02, "{high}");
        assert!(err(&low) > high, "{} vs {high}", err(&low));
    }
}
