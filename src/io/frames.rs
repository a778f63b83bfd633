//! Camera input as the inputs deliver it (ROS node, bag replay): a camera's streams
//! ([`CameraConfig`], with an optional aligned depth topic or stereo partner), an image with its
//! paired camera_info and metric companion ([`CameraFrame`]), and the check that image and
//! camera_info agree. What processing a frame means is the pipeline's
//! (`crate::pipeline::contract`).

use std::sync::Arc;
use std::time::Instant;

use crate::io::image::{decode_compressed, DecodedImage, ImageError, RawImage};
use crate::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image};
use crate::io::msgs::std_msgs::Header;

/// A camera image as received.
#[derive(Debug, Clone, PartialEq)]
pub enum CameraImage {
    /// `sensor_msgs/Image`.
    Raw(Image),
    /// `sensor_msgs/CompressedImage`.
    Compressed(CompressedImage),
}

impl CameraImage {
    /// The image header.
    pub fn header(&self) -> &Header {
        match self {
            CameraImage::Raw(m) => &m.header,
            CameraImage::Compressed(m) => &m.header,
        }
    }

    /// Decode the pixels.
    pub fn decode(&self) -> Result<DecodedImage, ImageError> {
        match self {
            CameraImage::Raw(m) => RawImage::from(m).decode(),
            CameraImage::Compressed(m) => decode_compressed(&m.format, &m.data),
        }
    }

    /// Encoding (raw) or format (compressed), for reports.
    pub fn encoding(&self) -> &str {
        match self {
            CameraImage::Raw(m) => &m.encoding,
            CameraImage::Compressed(m) => &m.format,
        }
    }
}

/// An image with the camera_info paired to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraFrame {
    /// Index of the camera in the configuration.
    pub camera: usize,
    /// Camera name (configuration), used in outputs.
    pub camera_name: String,
    /// The image.
    pub image: CameraImage,
    /// Its calibration.
    pub info: CameraInfo,
    /// The aligned depth image or the stereo partner's view with the same stamp (within the
    /// sync tolerance), when the camera has one configured.
    pub metric: Option<Arc<MetricMessages>>,
    /// When the input layer received the image (for latency reports).
    pub received: Instant,
}

/// What gives a frame metric scale, as received.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricMessages {
    /// A depth image registered to the colour image (`16UC1` mm or `32FC1` m).
    Depth(Image),
    /// The right camera of a calibrated stereo rig: its image and camera_info.
    Stereo {
        /// The right image.
        image: CameraImage,
        /// Its calibration (`P` carries the baseline of a rectified pair).
        info: Box<CameraInfo>,
    },
}

/// The right camera of a stereo rig, as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct StereoConfig {
    /// Right `sensor_msgs/Image` topic (`CompressedImage` when it ends in `/compressed`).
    pub image_topic: String,
    /// Right `sensor_msgs/CameraInfo` topic.
    pub camera_info_topic: String,
    /// Right-from-left extrinsic for rigs whose `P` matrices carry no baseline (raw, unrectified
    /// images): `X_right = R·X_left + t`. `None`: the baseline comes from the camera_infos' `P`
    /// (rectified images).
    pub right_from_left: Option<RigExtrinsic>,
}

/// A rigid transform given as in ROS: translation in metres and a unit quaternion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigExtrinsic {
    /// `t`, metres.
    pub translation_m: [f64; 3],
    /// `R` as the quaternion `(x, y, z, w)`.
    pub rotation_xyzw: [f64; 4],
}

/// Where a camera's metric scale comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum MetricSource {
    /// None: monocular, translation direction only.
    #[default]
    Monocular,
    /// An aligned depth topic (`sensor_msgs/Image`, registered to the colour camera).
    Depth {
        /// The depth topic.
        topic: String,
    },
    /// The right camera of a calibrated rig.
    Stereo(StereoConfig),
}

/// One camera's input streams (resolved from [`crate::config::CamerasConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    /// Camera id, used in outputs and as keyframe identity.
    pub name: String,
    /// `sensor_msgs/Image` topic, or `CompressedImage` when it ends in `/compressed`.
    pub image_topic: String,
    /// `sensor_msgs/CameraInfo` topic.
    pub camera_info_topic: String,
    /// Optical frame id; `None` means "use the image header's frame_id".
    pub optical_frame: Option<String>,
    /// Depth topic, stereo partner or neither.
    pub metric: MetricSource,
    /// The optical frame's pose on the robot (`X_base = R·X_optical + t`) when configured;
    /// TF's `base_frame → optical frame` takes precedence.
    pub mount: Option<RigExtrinsic>,
}

impl CameraConfig {
    /// The topics the camera reads, main image and camera_info first.
    pub fn topics(&self) -> Vec<&str> {
        let mut out = vec![self.image_topic.as_str(), self.camera_info_topic.as_str()];
        match &self.metric {
            MetricSource::Monocular => {}
            MetricSource::Depth { topic } => out.push(topic),
            MetricSource::Stereo(s) => {
                out.push(&s.image_topic);
                out.push(&s.camera_info_topic);
            }
        }
        out
    }
}

/// Check that a camera_info describes an image of `width × height`. Returns a reason when it
/// does not or when it is uncalibrated (`K[0] == 0`, the convention of `CameraInfo.msg`).
/// Binning and ROI scale the calibrated size as `CameraInfo.msg` defines.
pub fn camera_info_mismatch(info: &CameraInfo, width: u32, height: u32) -> Option<String> {
    if info.k[0] == 0.0 || !info.k.iter().all(|v| v.is_finite()) {
        return Some(format!(
            "camera_info is uncalibrated (K = {:?}); expected fx = K[0] > 0",
            info.k
        ));
    }
    let bx = info.binning_x.max(1);
    let by = info.binning_y.max(1);
    let (cw, ch) = if info.roi.width > 0 && info.roi.height > 0 {
        (info.roi.width, info.roi.height)
    } else {
        (info.width, info.height)
    };
    let (ew, eh) = (cw / bx, ch / by);
    if (ew, eh) != (width, height) {
        return Some(format!(
            "camera_info describes {ew}×{eh} images (width {}, height {}, binning {bx}×{by}, \
             roi {}×{}); the image is {width}×{height}",
            info.width, info.height, info.roi.width, info.roi.height
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(w: u32, h: u32) -> CameraInfo {
        CameraInfo {
            width: w,
            height: h,
            k: [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn camera_info_checks_size_binning_and_calibration() {
        assert_eq!(camera_info_mismatch(&info(640, 480), 640, 480), None);
        let e = camera_info_mismatch(&info(640, 480), 320, 240).unwrap();
        assert!(e.contains("640×480") && e.contains("320×240"), "{e}");
        let binned = CameraInfo {
            binning_x: 2,
            binning_y: 2,
            ..info(640, 480)
        };
        assert_eq!(camera_info_mismatch(&binned, 320, 240), None);
        let uncal = CameraInfo {
            k: [0.0; 9],
            ..info(640, 480)
        };
        assert!(camera_info_mismatch(&uncal, 640, 480)
            .unwrap()
            .contains("uncalibrated"));
    }
}
