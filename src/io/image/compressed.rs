//! `sensor_msgs/CompressedImage` payloads (jpeg, png).

use image::ImageFormat;

use super::{from_dynamic, DecodedImage, ImageError};

/// Largest side of a compressed image we decode, pixels.
pub const MAX_COMPRESSED_SIDE: u32 = 16_384;
/// Largest buffer a compressed image may make the decoder allocate, bytes.
pub const MAX_COMPRESSED_ALLOC: u64 = 256 << 20;

/// Limits for the jpeg/png decoders: a header cannot make them allocate more than this,
/// whatever it claims.
fn decode_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_COMPRESSED_SIDE);
    limits.max_image_height = Some(MAX_COMPRESSED_SIDE);
    limits.max_alloc = Some(MAX_COMPRESSED_ALLOC);
    limits
}

/// True when JPEG `data` lacks its end-of-image marker (`FF D9`) among its last 32 bytes
/// (encoders may pad after it): the stream was cut off.
pub fn jpeg_looks_truncated(data: &[u8]) -> bool {
    let tail = &data[data.len().saturating_sub(32)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decode a `CompressedImage` payload (at most [`MAX_COMPRESSED_SIDE`] pixels a side and
/// [`MAX_COMPRESSED_ALLOC`] bytes of decoder memory).
///
/// `format` is what image_transport writes: `jpeg`, `png`, or `ORIG_PIXFMT; CODEC compressed
/// [PIXFMT]` (e.g. `rgb8; jpeg compressed bgr8`). The codec comes from the data's signature
/// (JPEG `FF D8 FF`, PNG `89 50 4E 47`) and, when the data has neither, from `format`. The
/// pixel-format words need no action: jpeg/png store colours in standard order whatever the
/// encoder's input buffer was. `compressedDepth`, tiff and other codecs are reported as
/// unsupported. Grey images decode to `Mono8`/`Mono16`, colour to `Rgb8` (alpha dropped,
/// 16-bit colour scaled to 8 bits).
pub fn decode_compressed(format: &str, data: &[u8]) -> Result<DecodedImage, ImageError> {
    let err = |reason: String| ImageError::Compressed {
        format: format.to_string(),
        reason,
    };
    let lower = format.to_ascii_lowercase();
    if lower.contains("compresseddepth") {
        return Err(err(
            "compressedDepth images are not supported; expected a jpeg or png colour/grey image"
                .into(),
        ));
    }
    if data.is_empty() {
        return Err(err("data is empty; expected jpeg or png bytes".into()));
    }
    let named = lower
        .split(|c: char| c == ';' || c.is_whitespace())
        .find_map(|tok| match tok {
            "jpeg" | "jpg" => Some(Ok(ImageFormat::Jpeg)),
            "png" => Some(Ok(ImageFormat::Png)),
            "tiff" | "tif" | "rvl" | "bmp" | "webp" => Some(Err(tok.to_string())),
            _ => None,
        });
    let sniffed = if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if data.starts_with(&[0x89, b'P', b'N', b'G']) {
        Some(ImageFormat::Png)
    } else {
        None
    };
    let codec = match (sniffed, named) {
        (Some(f), _) => f,
        (None, Some(Ok(f))) => f,
        (None, Some(Err(name))) => {
            return Err(err(format!(
                "codec `{name}` is not supported; expected jpeg or png"
            )))
        }
        (None, None) => {
            return Err(err(format!(
                "no jpeg/png codec named and the data starts with {:02X?}, neither the JPEG \
                 (FF D8 FF) nor the PNG (89 50 4E 47) signature",
                &data[..data.len().min(4)]
            )))
        }
    };
    if codec == ImageFormat::Jpeg && jpeg_looks_truncated(data) {
        log::warn!(
            "{format}: jpeg data ({} bytes) has no end-of-image marker: truncated? rows past the \
             cut decode as filler",
            data.len()
        );
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(data), codec);
    reader.limits(decode_limits());
    let img = reader
        .decode()
        .map_err(|e| err(format!("{codec:?} decoding failed: {e}")))?;
    Ok(from_dynamic(img))
}
