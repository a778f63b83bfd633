//! Uncompressed `sensor_msgs/Image` payloads: encodings, field checks, packed-pixel conversions.

use image::{GrayImage, RgbImage};

pub use super::layout::BayerPattern;
use super::layout::Rows;
use super::{bayer, yuv, DecodedImage, Gray16Image, ImageError};
use crate::io::msgs::sensor_msgs::Image;

/// A borrowed uncompressed image payload: the fields of `sensor_msgs/Image`, without ROS types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawImage<'a> {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Encoding name as in `sensor_msgs/image_encodings.hpp` (see [`Encoding`]).
    pub encoding: &'a str,
    /// Multi-byte values (mono16 / 16UC1) are big-endian.
    pub is_bigendian: bool,
    /// Bytes per row including padding.
    pub step: u32,
    /// At least `step × height` bytes.
    pub data: &'a [u8],
}

impl<'a> From<&'a Image> for RawImage<'a> {
    fn from(m: &'a Image) -> Self {
        RawImage {
            width: m.width,
            height: m.height,
            encoding: &m.encoding,
            is_bigendian: m.is_bigendian != 0,
            step: m.step,
            data: &m.data,
        }
    }
}

/// The pixel encodings [`RawImage::decode`] converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `rgb8`.
    Rgb8,
    /// `bgr8`, and `8UC3` (read as BGR, the OpenCV/cv_bridge convention).
    Bgr8,
    /// `rgba8` (alpha dropped).
    Rgba8,
    /// `bgra8` (alpha dropped).
    Bgra8,
    /// `mono8`, `8UC1`.
    Mono8,
    /// `mono16`, `16UC1` (byte order from `is_bigendian`).
    Mono16,
    /// `yuv422` / `uyvy`: bytes U Y0 V Y1 per pixel pair, BT.601 limited range.
    Uyvy,
    /// `yuv422_yuy2` / `yuyv`: bytes Y0 U Y1 V per pixel pair, BT.601 limited range.
    Yuyv,
    /// `bayer_rggb8`, `bayer_bggr8`, `bayer_gbrg8`, `bayer_grbg8`: bilinear demosaic.
    Bayer(BayerPattern),
}

impl Encoding {
    /// Every accepted encoding name.
    pub const NAMES: &'static [&'static str] = &[
        "rgb8",
        "bgr8",
        "rgba8",
        "bgra8",
        "mono8",
        "mono16",
        "8UC1",
        "8UC3",
        "16UC1",
        "yuv422",
        "uyvy",
        "yuv422_yuy2",
        "yuyv",
        "bayer_rggb8",
        "bayer_bggr8",
        "bayer_gbrg8",
        "bayer_grbg8",
    ];

    /// Parse a `sensor_msgs/Image.encoding` string (case-sensitive, as ROS defines them).
    pub fn parse(name: &str) -> Result<Self, ImageError> {
        use BayerPattern::*;
        Ok(match name {
            "rgb8" => Encoding::Rgb8,
            "bgr8" | "8UC3" => Encoding::Bgr8,
            "rgba8" => Encoding::Rgba8,
            "bgra8" => Encoding::Bgra8,
            "mono8" | "8UC1" => Encoding::Mono8,
            "mono16" | "16UC1" => Encoding::Mono16,
            "yuv422" | "uyvy" => Encoding::Uyvy,
            "yuv422_yuy2" | "yuyv" => Encoding::Yuyv,
            "bayer_rggb8" => Encoding::Bayer(Rggb),
            "bayer_bggr8" => Encoding::Bayer(Bggr),
            "bayer_gbrg8" => Encoding::Bayer(Gbrg),
            "bayer_grbg8" => Encoding::Bayer(Grbg),
            other => {
                return Err(ImageError::UnknownEncoding {
                    encoding: other.to_string(),
                })
            }
        })
    }

    /// Bytes per pixel (YUV 4:2:2: 4 bytes per 2 pixels).
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Encoding::Rgb8 | Encoding::Bgr8 => 3,
            Encoding::Rgba8 | Encoding::Bgra8 => 4,
            Encoding::Mono8 | Encoding::Bayer(_) => 1,
            Encoding::Mono16 | Encoding::Uyvy | Encoding::Yuyv => 2,
        }
    }
}

impl<'a> RawImage<'a> {
    /// Check every field against the encoding; returns the encoding.
    ///
    /// Order of checks (the first failing one is reported): zero size, unknown encoding,
    /// encoding-specific size (odd width for YUV 4:2:2, < 2×2 for Bayer), `step` < width ×
    /// bytes per pixel, `data` shorter than `step × height`.
    pub fn validate(&self) -> Result<Encoding, ImageError> {
        if self.width == 0 || self.height == 0 {
            return Err(ImageError::ZeroSize {
                width: self.width,
                height: self.height,
            });
        }
        let pixels = u64::from(self.width) * u64::from(self.height);
        let max = super::max_image_pixels();
        if pixels > max {
            return Err(ImageError::TooManyPixels {
                width: self.width,
                height: self.height,
                pixels,
                max,
            });
        }
        let enc = Encoding::parse(self.encoding)?;
        match enc {
            Encoding::Uyvy | Encoding::Yuyv if !self.width.is_multiple_of(2) => {
                return Err(ImageError::OddWidth {
                    encoding: self.encoding.to_string(),
                    width: self.width,
                });
            }
            // Bilinear demosaic with mirrored borders reads a neighbour on each side.
            Encoding::Bayer(_) if self.width < 2 || self.height < 2 => {
                return Err(ImageError::TooSmall {
                    encoding: self.encoding.to_string(),
                    width: self.width,
                    height: self.height,
                    min_width: 2,
                    min_height: 2,
                });
            }
            _ => {}
        }
        let bpp = enc.bytes_per_pixel();
        let min_step = self.width as u64 * bpp as u64;
        if (self.step as u64) < min_step {
            return Err(ImageError::StepTooSmall {
                step: self.step,
                width: self.width,
                bytes_per_pixel: bpp,
                min_step,
            });
        }
        let expected = self.step as u64 * self.height as u64;
        if (self.data.len() as u64) < expected {
            return Err(ImageError::DataTooShort {
                len: self.data.len(),
                step: self.step,
                height: self.height,
                expected,
            });
        }
        Ok(enc)
    }

    /// Check and convert: colour encodings → [`DecodedImage::Rgb8`], `mono8`/`8UC1` →
    /// [`DecodedImage::Mono8`], `mono16`/`16UC1` → [`DecodedImage::Mono16`].
    pub fn decode(&self) -> Result<DecodedImage, ImageError> {
        let enc = self.validate()?;
        let rows = Rows {
            data: self.data,
            step: self.step as usize,
            width: self.width as usize,
            height: self.height as usize,
            bpp: enc.bytes_per_pixel(),
        };
        let (w, h) = (self.width, self.height);
        let rgb = |buf: Vec<u8>| {
            // `buf` has w·h·3 bytes by construction of every converter.
            RgbImage::from_raw(w, h, buf)
                .map(DecodedImage::Rgb8)
                .ok_or_else(|| internal(w, h))
        };
        match enc {
            Encoding::Rgb8 => rgb(rows.copy()),
            Encoding::Bgr8 => rgb(rows.repack::<3, 3>(|s, d| *d = [s[2], s[1], s[0]])),
            Encoding::Rgba8 => rgb(rows.repack::<4, 3>(|s, d| *d = [s[0], s[1], s[2]])),
            Encoding::Bgra8 => rgb(rows.repack::<4, 3>(|s, d| *d = [s[2], s[1], s[0]])),
            Encoding::Mono8 => GrayImage::from_raw(w, h, rows.copy())
                .map(DecodedImage::Mono8)
                .ok_or_else(|| internal(w, h)),
            Encoding::Mono16 => {
                let mut out = Vec::with_capacity(rows.width * rows.height);
                let big = self.is_bigendian;
                for row in rows.iter() {
                    out.extend(row.chunks_exact(2).map(|b| {
                        if big {
                            u16::from_be_bytes([b[0], b[1]])
                        } else {
                            u16::from_le_bytes([b[0], b[1]])
                        }
                    }));
                }
                Gray16Image::from_raw(w, h, out)
                    .map(DecodedImage::Mono16)
                    .ok_or_else(|| internal(w, h))
            }
            Encoding::Uyvy => rgb(yuv::uyvy_to_rgb(&rows)),
            Encoding::Yuyv => rgb(yuv::yuyv_to_rgb(&rows)),
            Encoding::Bayer(p) => rgb(bayer::demosaic_bilinear(&rows, p)),
        }
    }
}

fn internal(w: u32, h: u32) -> ImageError {
    ImageError::Invalid {
        field: "image".into(),
        reason: format!("internal: converted buffer does not match {w}×{h}"),
    }
}
