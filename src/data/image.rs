//! Loading, resizing and padding images the way the benchmark protocols do, into tensors.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::RgbImage;
use tch::{Kind, Tensor};

use super::DataError;

/// One image of a pair as the network takes it, plus how it maps to the original image.
#[derive(Debug)]
pub struct SampleImage {
    /// `[3, H, W]` f32 RGB in [0, 1], resized (and zero-padded bottom-right) per protocol.
    pub pixels: Tensor,
    /// `[H, W]` bool: true on real image content, false on padding / no content.
    pub valid: Tensor,
    /// `(sx, sy)`: original pixels per network-input pixel (`w / w_new`, `h / h_new`).
    pub scale: [f64; 2],
    /// `(width, height)` of the original image.
    pub original_size: (u32, u32),
    /// `(width, height)` of the resized image before padding (the top-left content block).
    pub content_size: (u32, u32),
    /// The file it came from (empty for generated images).
    pub path: PathBuf,
}

impl SampleImage {
    /// Resize `img` to `(w_new, h_new)` (bilinear), then zero-pad bottom-right to `pad_to`
    /// `(W, H)` when given.
    pub fn from_rgb(
        img: &RgbImage,
        new_size: (u32, u32),
        pad_to: Option<(u32, u32)>,
        path: PathBuf,
    ) -> Result<Self, DataError> {
        let (w, h) = img.dimensions();
        let (w_new, h_new) = new_size;
        if w_new == 0 || h_new == 0 {
            return Err(DataError::format(
                &path,
                format!("{w}×{h} image resizes to an empty {w_new}×{h_new}"),
            ));
        }
        let resized = if (w_new, h_new) == (w, h) {
            img.clone()
        } else {
            image::imageops::resize(img, w_new, h_new, FilterType::Triangle)
        };
        let (pw, ph) = pad_to.unwrap_or((w_new, h_new));
        if pw < w_new || ph < h_new {
            return Err(DataError::option(
                "pad_to",
                format!("{pw}×{ph} is smaller than the resized image {w_new}×{h_new}"),
            ));
        }
        let content = rgb_to_tensor(&resized);
        let pixels = Tensor::zeros([3, ph as i64, pw as i64], (Kind::Float, tch::Device::Cpu));
        pixels
            .narrow(1, 0, h_new as i64)
            .narrow(2, 0, w_new as i64)
            .copy_(&content);
        let valid = Tensor::zeros([ph as i64, pw as i64], (Kind::Bool, tch::Device::Cpu));
        let _ = valid
            .narrow(0, 0, h_new as i64)
            .narrow(1, 0, w_new as i64)
            .fill_(1);
        Ok(SampleImage {
            pixels,
            valid,
            scale: [w as f64 / w_new as f64, h as f64 / h_new as f64],
            original_size: (w, h),
            content_size: (w_new, h_new),
            path,
        })
    }

    /// Network-input size `(W, H)` including padding.
    pub fn size(&self) -> (i64, i64) {
        let s = self.pixels.size();
        (s[2], s[1])
    }
}

/// `[3, H, W]` f32 in [0, 1].
pub fn rgb_to_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = img.dimensions();
    Tensor::from_slice(img.as_raw())
        .view([h as i64, w as i64, 3])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        / 255.0
}

/// Read an image file as RGB (PNG, JPEG, PPM).
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let reader = image::ImageReader::open(path)
        .map_err(DataError::io(path))?
        .with_guessed_format()
        .map_err(DataError::io(path))?;
    let img = reader
        .decode()
        .map_err(|e| DataError::format(path, format!("cannot decode image: {e}")))?;
    Ok(img.to_rgb8())
}

/// Efficient LoFTR's `get_resized_wh` + `get_divisible_wh`: scale so the longer side is
/// `long_side` (0 = keep), round, then floor each side to a multiple of `divisible_by`.
pub fn long_side_size(w: u32, h: u32, long_side: u32, divisible_by: u32) -> (u32, u32) {
    let (wn, hn) = if long_side > 0 {
        let s = long_side as f64 / w.max(h) as f64;
        ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32)
    } else {
        (w, h)
    };
    floor_to(wn, hn, divisible_by)
}

/// Scale so the shorter side is `short_side` (0 = keep), round, floor to `divisible_by`.
pub fn short_side_size(w: u32, h: u32, short_side: u32, divisible_by: u32) -> (u32, u32) {
    let (wn, hn) = if short_side > 0 {
        let s = short_side as f64 / w.min(h) as f64;
        ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32)
    } else {
        (w, h)
    };
    floor_to(wn, hn, divisible_by)
}

fn floor_to(w: u32, h: u32, d: u32) -> (u32, u32) {
    if d <= 1 {
        (w, h)
    } else {
        (w / d * d, h / d * d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn el_resize_rule() {
        // MegaDepth 1600×1200 at long side 1152: 1152×864, both divisible by 8.
        assert_eq!(long_side_size(1600, 1200, 1152, 8), (1152, 864));
        // 1000×667 at 840: 840×560.28 → round 560 → floor/8 = 560.
        assert_eq!(long_side_size(1000, 667, 840, 8), (840, 560));
        // Odd aspect: 901×601 at 1152 → 1152×768.4 → 768.
        assert_eq!(long_side_size(901, 601, 1152, 8), (1152, 768));
        assert_eq!(short_side_size(1000, 750, 480, 8), (640, 480));
    }

    #[test]
    fn pad_and_mask() {
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([x as u8 * 60, y as u8 * 255, 7]));
        let s = SampleImage::from_rgb(&img, (4, 2), Some((4, 4)), PathBuf::new()).unwrap();
        assert_eq!(s.pixels.size(), vec![3, 4, 4]);
        assert_eq!(s.pixels.double_value(&[0, 1, 3]), (180.0f32 / 255.0) as f64);
        assert_eq!(s.pixels.double_value(&[1, 1, 0]), 1.0);
        assert_eq!(s.pixels.double_value(&[2, 3, 0]), 0.0);
        let valid = s
            .valid
            .to_kind(Kind::Int64)
            .sum(Kind::Int64)
            .int64_value(&[]);
        assert_eq!(valid, 8);
        assert_eq!(s.scale, [1.0, 1.0]);
    }
}
