//! Image files and ROS `sensor_msgs/Image` / `CompressedImage` payloads → RGB / grey images the
//! model takes.
//!
//! - [`RawImage`] borrows an uncompressed payload (no ROS types); [`RawImage::decode`] checks
//!   every field and converts it. Supported encodings: see [`Encoding`].
//! - [`decode_compressed`] decodes `sensor_msgs/CompressedImage` (jpeg, png).
//! - [`load_image_file`] reads png / jpeg files.
//!
//! Colour conventions: YUV 4:2:2 uses BT.601 limited range (Y in 16..235, chroma in 16..240,
//! as camera drivers and OpenCV's `COLOR_YUV2RGB_UYVY` assume); Bayer mosaics are demosaiced
//! bilinearly with mirrored borders (see [`bayer`]). `8UC3` is read as BGR, as cv_bridge does.

mod bayer;
mod compressed;
#[cfg(test)]
mod conversion_tests;
mod depth;
mod layout;
mod raw;
mod yuv;

pub use compressed::{
    decode_compressed, jpeg_looks_truncated, MAX_COMPRESSED_ALLOC, MAX_COMPRESSED_SIDE,
};
pub use depth::{decode_depth, DepthBuffer, DepthMap, DEPTH_ENCODINGS};
pub use raw::{BayerPattern, Encoding, RawImage};

use std::path::Path;

use image::{GrayImage, ImageBuffer, Luma, RgbImage};

/// A 16-bit single-channel image.
pub type Gray16Image = ImageBuffer<Luma<u16>, Vec<u16>>;

/// Errors decoding images. Each names the offending field and the value it expected.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A field fails a check not covered by the variants below.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// `width` or `height` is zero.
    #[error("image size: width = {width}, height = {height}; expected both > 0")]
    ZeroSize { width: u32, height: u32 },
    /// The image is too small for the encoding's neighbourhood (Bayer needs 2×2).
    #[error(
        "image size: width = {width}, height = {height}; encoding `{encoding}` needs at least \
         {min_width}×{min_height}"
    )]
    TooSmall {
        encoding: String,
        width: u32,
        height: u32,
        min_width: u32,
        min_height: u32,
    },
    /// `encoding` is not one we convert.
    #[error("encoding = `{encoding}`: not supported; expected one of {}", Encoding::NAMES.join(", "))]
    UnknownEncoding { encoding: String },
    /// YUV 4:2:2 shares chroma between pixel pairs, so the width must be even.
    #[error(
        "width = {width}: encoding `{encoding}` packs 2 pixels in 4 bytes; expected an even width"
    )]
    OddWidth { encoding: String, width: u32 },
    /// `step` is shorter than one row of pixels.
    #[error(
        "step = {step}: shorter than width × bytes per pixel = {width} × {bytes_per_pixel}; \
         expected step ≥ {min_step}"
    )]
    StepTooSmall {
        step: u32,
        width: u32,
        bytes_per_pixel: usize,
        min_step: u64,
    },
    /// `data` holds fewer than `step × height` bytes.
    #[error("data: {len} bytes; expected step × height = {step} × {height} = {expected} bytes")]
    DataTooShort {
        len: usize,
        step: u32,
        height: u32,
        expected: u64,
    },
    /// A `CompressedImage` that cannot be decoded.
    #[error("compressed image (format = `{format}`): {reason}")]
    Compressed { format: String, reason: String },
    /// An image file that cannot be read or decoded.
    #[error("image file {path}: {reason}")]
    File { path: String, reason: String },
    /// More pixels than [`max_image_pixels`].
    #[error(
        "image size: {width}×{height} = {pixels} pixels, more than the limit of {max} (set \
         IMD_MAX_IMAGE_PIXELS in the environment to raise it)"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        max: u64,
    },
}

/// Default of [`max_image_pixels`]: 8192 × 8192, above every camera a robot carries (a 45 Mpx
/// still camera included).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 8192 * 8192;

/// Most pixels a raw image may have (`IMD_MAX_IMAGE_PIXELS` in the environment, else
/// [`DEFAULT_MAX_IMAGE_PIXELS`]): bounds the memory one image costs before it is copied.
pub fn max_image_pixels() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var("IMD_MAX_IMAGE_PIXELS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&v| v > 0)
            .unwrap_or(DEFAULT_MAX_IMAGE_PIXELS)
    })
}

/// How 16-bit grey maps to 8 bits for display and for the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mono16Mapping {
    /// Stretch the image's own min..max to 0..255. The default: 10/12-bit sensors store their
    /// values in 16-bit words either LSB- or MSB-aligned, and depth-like 16UC1 data rarely
    /// spans the range; a fixed shift would turn LSB-aligned frames black, while a stretch
    /// gives the matcher a usable contrast in every case. A constant image maps to 0.
    #[default]
    MinMax,
    /// `v >> 8`: keeps absolute brightness (right for MSB-aligned / full-range data).
    Shift8,
}

/// A decoded image, in the representation its source had.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedImage {
    /// 8-bit RGB.
    Rgb8(RgbImage),
    /// 8-bit grey.
    Mono8(GrayImage),
    /// 16-bit grey (native-endian values).
    Mono16(Gray16Image),
}

impl DecodedImage {
    /// Columns.
    pub fn width(&self) -> u32 {
        match self {
            DecodedImage::Rgb8(i) => i.width(),
            DecodedImage::Mono8(i) => i.width(),
            DecodedImage::Mono16(i) => i.width(),
        }
    }

    /// Rows.
    pub fn height(&self) -> u32 {
        match self {
            DecodedImage::Rgb8(i) => i.height(),
            DecodedImage::Mono8(i) => i.height(),
            DecodedImage::Mono16(i) => i.height(),
        }
    }

    /// As 8-bit RGB (grey replicated to three channels; 16-bit grey per
    /// [`Mono16Mapping::MinMax`]).
    pub fn to_rgb8(&self) -> RgbImage {
        self.to_rgb8_with(Mono16Mapping::default())
    }

    /// As 8-bit RGB, mapping 16-bit grey as `mapping` says.
    pub fn to_rgb8_with(&self, mapping: Mono16Mapping) -> RgbImage {
        match self {
            DecodedImage::Rgb8(i) => i.clone(),
            DecodedImage::Mono8(i) => grey_to_rgb(i),
            DecodedImage::Mono16(i) => grey_to_rgb(&mono16_to_mono8(i, mapping)),
        }
    }

    /// As 8-bit RGB, without a copy when it already is.
    pub fn into_rgb8(self) -> RgbImage {
        match self {
            DecodedImage::Rgb8(i) => i,
            other => other.to_rgb8(),
        }
    }
}

/// 16-bit grey → 8-bit grey.
pub fn mono16_to_mono8(img: &Gray16Image, mapping: Mono16Mapping) -> GrayImage {
    let (w, h) = img.dimensions();
    let src = img.as_raw();
    let out: Vec<u8> = match mapping {
        Mono16Mapping::Shift8 => src.iter().map(|&v| (v >> 8) as u8).collect(),
        Mono16Mapping::MinMax => {
            let (lo, hi) = src
                .iter()
                .fold((u16::MAX, u16::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            if hi <= lo {
                vec![0; src.len()]
            } else {
                // round(d · 255 / range) for every d in 0..=range, tabulated without a
                // division per entry: the numerator d·255 + range/2 grows by 255 per step and
                // the quotient catches up by subtracting `range`.
                let range = (hi - lo) as u32;
                let mut lut = Vec::with_capacity(range as usize + 1);
                let (mut q, mut rem) = (0u32, range / 2);
                for _ in 0..=range {
                    while rem >= range {
                        rem -= range;
                        q += 1;
                    }
                    lut.push(q.min(255) as u8);
                    rem += 255;
                }
                src.iter()
                    .map(|&v| lut.get((v - lo) as usize).copied().unwrap_or(255))
                    .collect()
            }
        }
    };
    // Lengths match by construction (one output per input value).
    GrayImage::from_raw(w, h, out).unwrap_or_else(|| GrayImage::new(w, h))
}

fn grey_to_rgb(img: &GrayImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = vec![0u8; img.as_raw().len() * 3];
    let (px, _) = out.as_chunks_mut::<3>();
    for (d, &v) in px.iter_mut().zip(img.as_raw()) {
        *d = [v, v, v];
    }
    RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(w, h))
}

/// Map the `image` crate's decoded forms onto ours (alpha dropped; 16-bit colour scaled to 8).
pub(crate) fn from_dynamic(img: image::DynamicImage) -> DecodedImage {
    use image::DynamicImage as D;
    match img {
        D::ImageLuma8(i) => DecodedImage::Mono8(i),
        D::ImageLuma16(i) => DecodedImage::Mono16(i),
        D::ImageLumaA8(_) => DecodedImage::Mono8(img.to_luma8()),
        D::ImageLumaA16(_) => DecodedImage::Mono16(img.to_luma16()),
        D::ImageRgb8(i) => DecodedImage::Rgb8(i),
        other => DecodedImage::Rgb8(other.to_rgb8()),
    }
}

/// Read a png or jpeg file (format from its content, not its name).
pub fn load_image_file(path: &Path) -> Result<DecodedImage, ImageError> {
    let err = |reason: String| ImageError::File {
        path: path.display().to_string(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(err(
            "not a png or jpeg file (unrecognized signature)".to_string()
        ));
    }
    let img = reader.decode().map_err(|e| err(e.to_string()))?;
    Ok(from_dynamic(img))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono16_min_max_stretch_and_shift() {
        // 12-bit LSB-aligned values 100..4000: the stretch maps the ends to 0 and 255 and the
        // midpoint 2050 to round(1950 / 3900 · 255) = round(127.5) = 128 (half rounds up).
        let img = Gray16Image::from_raw(3, 1, vec![100, 2050, 4000]).unwrap();
        let m = mono16_to_mono8(&img, Mono16Mapping::MinMax);
        assert_eq!(m.as_raw(), &[0, 128, 255]);
        let s = mono16_to_mono8(&img, Mono16Mapping::Shift8);
        assert_eq!(s.as_raw(), &[0, 8, 15]); // 2050 >> 8 = 8, 4000 >> 8 = 15
        let flat = Gray16Image::from_raw(2, 1, vec![7, 7]).unwrap();
        assert_eq!(
            mono16_to_mono8(&flat, Mono16Mapping::MinMax).as_raw(),
            &[0, 0]
        );
        let rgb = DecodedImage::Mono16(img).to_rgb8();
        assert_eq!(rgb.get_pixel(1, 0).0, [128, 128, 128]);
    }

    #[test]
    fn mono16_stretch_table_is_exact_for_every_range() {
        // The incremental table must equal round-half-up(d · 255 / range) everywhere,
        // including ranges below 255 (several steps per value) and the full 16 bits.
        for (lo, hi) in [
            (0u16, 1u16),
            (5, 8),
            (100, 200),
            (0, 255),
            (7, 263),
            (0, 4095),
            (0, 65535),
        ] {
            let vals: Vec<u16> = (lo..=hi).collect();
            let n = vals.len() as u32;
            let img = Gray16Image::from_raw(n, 1, vals.clone()).unwrap();
            let got = mono16_to_mono8(&img, Mono16Mapping::MinMax);
            let range = (hi - lo) as u32;
            for (v, g) in vals.iter().zip(got.as_raw()) {
                let d = (v - lo) as u32;
                assert_eq!(
                    *g as u32,
                    (d * 255 + range / 2) / range,
                    "range {lo}..{hi}, v {v}"
                );
            }
        }
    }

    #[test]
    fn load_image_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("not_an_image.png");
        std::fs::write(&p, b"hello").unwrap();
        let e = load_image_file(&p).unwrap_err().to_string();
        assert!(e.contains("not_an_image.png"), "{e}");
        let missing = dir.path().join("missing.jpg");
        let e = load_image_file(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.jpg"), "{e}");
    }

    #[test]
    fn load_image_file_reads_png_and_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let mut rgb = RgbImage::new(4, 2);
        rgb.put_pixel(1, 1, image::Rgb([10, 200, 30]));
        let p = dir.path().join("a.png");
        rgb.save(&p).unwrap();
        match load_image_file(&p).unwrap() {
            DecodedImage::Rgb8(i) => assert_eq!(i, rgb), // png is lossless
            other => panic!("expected rgb8, got {other:?}"),
        }
        let grey = GrayImage::from_pixel(8, 8, Luma([77]));
        let j = dir.path().join("g.jpg");
        grey.save(&j).unwrap();
        match load_image_file(&j).unwrap() {
            // A flat 8×8 block survives JPEG's DCT exactly (only the DC term is non-zero).
            DecodedImage::Mono8(i) => assert!(i.pixels().all(|p| p.0[0] == 77)),
            other => panic!("expected mono8, got {other:?}"),
        }
    }
}
