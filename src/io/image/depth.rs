//! Depth images (`sensor_msgs/Image` from a depth camera, registered to the colour camera) →
//! [`DepthMap`], owned samples the geometry's [`DepthImage`] borrows.
//!
//! Two encodings, as REP 118 defines them: `16UC1` (also sent as `mono16`) in millimetres with 0
//! for "no measurement", and `32FC1` in metres with NaN/0/±∞ for "no measurement". Rows may be
//! padded (`step`) and samples big-endian (`is_bigendian`).

use super::ImageError;
use crate::geometry::{DepthImage, DepthSamples};
use crate::io::msgs::sensor_msgs::Image;

/// A decoded depth image, row-major without padding, native-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthMap {
    width: u32,
    height: u32,
    samples: DepthBuffer,
}

/// The samples of a [`DepthMap`] in their sensor units.
#[derive(Debug, Clone, PartialEq)]
pub enum DepthBuffer {
    /// `16UC1`: millimetres.
    Millimetres(Vec<u16>),
    /// `32FC1`: metres.
    Metres(Vec<f32>),
}

impl DepthMap {
    /// Columns.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `16UC1` or `32FC1`.
    pub fn encoding(&self) -> &'static str {
        match self.samples {
            DepthBuffer::Millimetres(_) => "16UC1",
            DepthBuffer::Metres(_) => "32FC1",
        }
    }

    /// The samples in their sensor units.
    pub fn samples(&self) -> &DepthBuffer {
        &self.samples
    }

    /// The geometry's view of the samples (for lifting matched pixels).
    pub fn view(&self) -> DepthImage<'_> {
        let samples = match &self.samples {
            DepthBuffer::Millimetres(v) => DepthSamples::Millimetres(v),
            DepthBuffer::Metres(v) => DepthSamples::Metres(v),
        };
        // The length is width·height by construction ([`decode_depth`], [`DepthMap::new`]).
        DepthImage::new(self.width as usize, self.height as usize, samples)
            .unwrap_or_else(|_| unreachable!("DepthMap holds width·height samples"))
    }

    /// A depth map from samples; errors unless there are `width × height > 0` of them.
    pub fn new(width: u32, height: u32, samples: DepthBuffer) -> Result<Self, ImageError> {
        let len = match &samples {
            DepthBuffer::Millimetres(v) => v.len(),
            DepthBuffer::Metres(v) => v.len(),
        };
        if width == 0 || height == 0 {
            return Err(ImageError::ZeroSize { width, height });
        }
        if (width as u64) * (height as u64) != len as u64 {
            return Err(ImageError::Invalid {
                field: "data".into(),
                reason: format!(
                    "{len} depth samples; expected width × height = {width} × {height}"
                ),
            });
        }
        Ok(DepthMap {
            width,
            height,
            samples,
        })
    }
}

/// The depth encodings [`decode_depth`] reads.
pub const DEPTH_ENCODINGS: [&str; 3] = ["16UC1", "mono16", "32FC1"];

/// Decode a depth `sensor_msgs/Image`; errors name the field and what was expected.
pub fn decode_depth(msg: &Image) -> Result<DepthMap, ImageError> {
    let (width, height) = (msg.width, msg.height);
    if width == 0 || height == 0 {
        return Err(ImageError::ZeroSize { width, height });
    }
    let bytes_per_sample = match msg.encoding.as_str() {
        "16UC1" | "mono16" => 2,
        "32FC1" => 4,
        other => {
            return Err(ImageError::Invalid {
                field: "encoding".into(),
                reason: format!(
                    "`{other}` is not a depth encoding; expected one of {} (REP 118: 16UC1 in \
                     millimetres or 32FC1 in metres)",
                    DEPTH_ENCODINGS.join(", ")
                ),
            })
        }
    };
    let row = width as u64 * bytes_per_sample as u64;
    if (msg.step as u64) < row {
        return Err(ImageError::StepTooSmall {
            step: msg.step,
            width,
            bytes_per_pixel: bytes_per_sample,
            min_step: row,
        });
    }
    // The last row needs only its pixels, not its padding.
    let needed = msg.step as u64 * (height as u64 - 1) + row;
    if (msg.data.len() as u64) < needed {
        return Err(ImageError::DataTooShort {
            len: msg.data.len(),
            step: msg.step,
            height,
            expected: needed,
        });
    }
    let big = msg.is_bigendian != 0;
    let rows = (0..height as usize).map(|r| {
        let start = r * msg.step as usize;
        &msg.data[start..start + row as usize]
    });
    let samples = if bytes_per_sample == 2 {
        let mut v = Vec::with_capacity(width as usize * height as usize);
        for bytes in rows {
            v.extend(bytes.chunks_exact(2).map(|b| {
                let b = [b[0], b[1]];
                if big {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                }
            }));
        }
        DepthBuffer::Millimetres(v)
    } else {
        let mut v = Vec::with_capacity(width as usize * height as usize);
        for bytes in rows {
            v.extend(bytes.chunks_exact(4).map(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            }));
        }
        DepthBuffer::Metres(v)
    };
    DepthMap::new(width, height, samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(encoding: &str, step: u32, data: Vec<u8>, big: bool) -> Image {
        Image {
            width: 2,
            height: 2,
            encoding: encoding.into(),
            is_bigendian: big as u8,
            step,
            data,
            ..Default::default()
        }
    }

    #[test]
    fn decodes_both_encodings_with_padding_and_endianness() {
        // 16UC1 little-endian, 2 bytes of padding per row: 1000, 0 / 2500, 65535 mm.
        let mut data = Vec::new();
        for row in [[1000u16, 0], [2500, 65535]] {
            for v in row {
                data.extend_from_slice(&v.to_le_bytes());
            }
            data.extend_from_slice(&[0xEE, 0xEE]);
        }
        let d = decode_depth(&msg("16UC1", 6, data, false)).unwrap();
        let v = d.view();
        assert_eq!(v.metres_at(0, 0), Some(1.0));
        assert_eq!(v.metres_at(1, 0), None);
        assert_eq!(v.metres_at(0, 1), Some(2.5));
        assert_eq!(d.encoding(), "16UC1");
        // 32FC1 big-endian, no padding.
        let mut data = Vec::new();
        for v in [1.5f32, f32::NAN, f32::INFINITY, 0.25] {
            data.extend_from_slice(&v.to_be_bytes());
        }
        let d = decode_depth(&msg("32FC1", 8, data, true)).unwrap();
        let v = d.view();
        assert_eq!(v.metres_at(0, 0), Some(1.5));
        assert_eq!(v.metres_at(1, 0), None);
        assert_eq!(v.metres_at(0, 1), None);
        assert_eq!(v.metres_at(1, 1), Some(0.25));
    }

    #[test]
    fn refuses_what_is_not_a_whole_depth_image() {
        let e = decode_depth(&msg("rgb8", 6, vec![0; 12], false)).unwrap_err();
        assert!(e.to_string().contains("16UC1"), "{e}");
        let e = decode_depth(&msg("16UC1", 3, vec![0; 8], false)).unwrap_err();
        assert!(matches!(e, ImageError::StepTooSmall { .. }), "{e}");
        // One byte short of the last row.
        let e = decode_depth(&msg("32FC1", 8, vec![0; 15], false)).unwrap_err();
        assert!(matches!(e, ImageError::DataTooShort { .. }), "{e}");
        let e = decode_depth(&Image {
            encoding: "16UC1".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(e, ImageError::ZeroSize { .. }), "{e}");
    }
}
