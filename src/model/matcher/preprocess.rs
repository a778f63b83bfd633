//! Image → network input: resize so the long side is `resize_long_side` (0 = keep), floor each
//! side to a multiple of 8, and remember the per-axis factor back to original pixels.
//!
//! The image is resampled to the floored size (a slight aspect change of < 8 px per side,
//! as Efficient LoFTR's `get_divisible_wh` does), so every network pixel is image content;
//! padding only appears when two images of different sizes share one UNet batch.
//!
//! Coordinates map back as Efficient LoFTR does, `original = network · scale` per axis
//! ([`ImageGeometry::to_original`]); cell centres of the zero-shot mode use the exact
//! pixel-centre mapping ([`ImageGeometry::centre_to_original`]).

use image::imageops::FilterType;
use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::geometry::PixelPoint;
use crate::model::coarse::{CoarseGrid, COARSE_STRIDE};
use crate::model::ModelError;

/// Sizes of one image before and after preprocessing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageGeometry {
    /// Original width in pixels.
    pub original_width: u32,
    /// Original height in pixels.
    pub original_height: u32,
    /// Network input width (multiple of 8).
    pub network_width: u32,
    /// Network input height (multiple of 8).
    pub network_height: u32,
    /// `original_width / network_width`.
    pub scale_x: f64,
    /// `original_height / network_height`.
    pub scale_y: f64,
}

impl ImageGeometry {
    /// The network size for an image of `width × height` and a long-side target (0 = keep).
    pub fn new(width: u32, height: u32, resize_long_side: u32) -> Result<Self, ModelError> {
        let stride = COARSE_STRIDE as u32;
        let (w, h) = if resize_long_side == 0 || width == 0 || height == 0 {
            (width, height)
        } else {
            let r = resize_long_side as f64 / width.max(height) as f64;
            (
                (width as f64 * r).round() as u32,
                (height as f64 * r).round() as u32,
            )
        };
        let (nw, nh) = (w / stride * stride, h / stride * stride);
        if nw == 0 || nh == 0 {
            return Err(ModelError::InvalidInput {
                what: "image".into(),
                reason: format!(
                    "{width}×{height} px becomes {w}×{h} at resize_long_side {resize_long_side}; \
                     each side must be at least {stride} px"
                ),
            });
        }
        Ok(ImageGeometry {
            original_width: width,
            original_height: height,
            network_width: nw,
            network_height: nh,
            scale_x: width as f64 / nw as f64,
            scale_y: height as f64 / nh as f64,
        })
    }

    /// The coarse (1/8) grid of the network image.
    pub fn coarse_grid(&self) -> CoarseGrid {
        CoarseGrid::new(
            (self.network_height / COARSE_STRIDE as u32) as i64,
            (self.network_width / COARSE_STRIDE as u32) as i64,
        )
    }

    /// Network size `(width, height)`.
    pub fn network_size(&self) -> (u32, u32) {
        (self.network_width, self.network_height)
    }

    /// Network pixels → original pixels, Efficient LoFTR's `p · scale`.
    pub fn to_original(&self, x: f64, y: f64) -> PixelPoint {
        PixelPoint::new(x * self.scale_x, y * self.scale_y)
    }

    /// A pixel-centre coordinate in network pixels → the same point in original pixels
    /// (pixel `n` spans `n − 0.5 … n + 0.5` in both images).
    pub fn centre_to_original(&self, x: f64, y: f64) -> PixelPoint {
        PixelPoint::new(
            (x + 0.5) * self.scale_x - 0.5,
            (y + 0.5) * self.scale_y - 0.5,
        )
    }
}

/// The resized image as `[1, 3, H, W]` float32 RGB in [0, 1] on `device`.
pub fn image_tensor(img: &RgbImage, geometry: &ImageGeometry, device: Device) -> Tensor {
    let (w, h) = geometry.network_size();
    let resized;
    let pixels = if img.dimensions() == (w, h) {
        img
    } else {
        // Triangle = bilinear, with the kernel widened when shrinking (antialiased).
        resized = image::imageops::resize(img, w, h, FilterType::Triangle);
        &resized
    };
    Tensor::from_slice(pixels.as_raw())
        .view([h as i64, w as i64, 3])
        .permute([2, 0, 1])
        .unsqueeze(0)
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_scales_and_mapping() {
        let g = ImageGeometry::new(1000, 750, 640).unwrap();
        assert_eq!(g.network_size(), (640, 480));
        assert_eq!(g.coarse_grid(), CoarseGrid::new(60, 80));
        assert!((g.scale_x - 1000.0 / 640.0).abs() < 1e-12);
        let p = g.to_original(64.0, 48.0);
        assert!((p.x - 100.0).abs() < 1e-9 && (p.y - 75.0).abs() < 1e-9);
        // Pixel-centre mapping: the centre of network pixel 0 is at 0.5·scale − 0.5.
        let c = g.centre_to_original(0.0, 0.0);
        assert!((c.x - (0.5 * 1000.0 / 640.0 - 0.5)).abs() < 1e-9);

        // Keep size, floor to a multiple of 8.
        let g = ImageGeometry::new(643, 481, 0).unwrap();
        assert_eq!(g.network_size(), (640, 480));
        assert!((g.scale_x - 643.0 / 640.0).abs() < 1e-12);
        assert!((g.scale_y - 481.0 / 480.0).abs() < 1e-12);

        // Upscaling is allowed; tiny images are an error naming the sizes.
        assert_eq!(
            ImageGeometry::new(100, 50, 200).unwrap().network_size(),
            (200, 96)
        );
        let err = ImageGeometry::new(30, 5, 0).unwrap_err().to_string();
        assert!(err.contains("30×5"), "{err}");
    }

    #[test]
    fn tensor_layout_is_rgb_chw() {
        let mut img = RgbImage::new(16, 8);
        img.put_pixel(3, 2, image::Rgb([255, 0, 51]));
        let g = ImageGeometry::new(16, 8, 0).unwrap();
        let t = image_tensor(&img, &g, Device::Cpu);
        assert_eq!(t.size(), vec![1, 3, 8, 16]);
        assert_eq!(t.double_value(&[0, 0, 2, 3]), 1.0);
        assert_eq!(t.double_value(&[0, 1, 2, 3]), 0.0);
        assert!((t.double_value(&[0, 2, 2, 3]) - 0.2).abs() < 1e-6);
    }
}
