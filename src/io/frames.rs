//! The seam between camera inputs (ROS node, bag replay) and frame processing (the tracker).
//!
//! Inputs deliver synchronized [`CameraFrame`]s; a [`FrameProcessor`] turns each into
//! [`FrameOutputs`] (ROS-free messages the adapters publish or write). The processor is
//! `crate::pipeline::TrackerProcessor`; `crate::pipeline::FrameWorker` runs it on a dedicated
//! thread for both the ROS node and `imd replay`.

use std::time::Instant;

use crate::io::image::{decode_compressed, DecodedImage, ImageError, RawImage};
use crate::io::msgs::diagnostic_msgs::DiagnosticStatus;
use crate::io::msgs::nav_msgs::Odometry;
use crate::io::msgs::sensor_msgs::{CameraInfo, CompressedImage, Image, PointCloud2};
use crate::io::msgs::std_msgs::Header;
use crate::io::msgs::tf2_msgs::TFMessage;

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
    /// When the input layer received the image (for latency reports).
    pub received: Instant,
}

/// Control requests to the processor (the node's `~/relocalize` and `~/reset` topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlCommand {
    /// Relocalize against stored keyframes; the text is the request's payload (may be empty).
    Relocalize(String),
    /// Forget keyframes and tracking state; the text is the request's payload.
    Reset(String),
}

/// What processing one frame produced. Every field is optional: adapters publish what is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameOutputs {
    /// Correspondences (fields x0, y0, x1, y1, confidence, inlier).
    pub correspondences: Option<PointCloud2>,
    /// Relative pose with covariance.
    pub odometry: Option<Odometry>,
    /// Transforms for `/tf`.
    pub tf: Option<TFMessage>,
    /// Image with matches drawn.
    pub debug_image: Option<Image>,
    /// Status reports for `/diagnostics`.
    pub diagnostics: Vec<DiagnosticStatus>,
    /// Typed summary of what happened, for adapters that aggregate statistics (not published).
    pub report: Option<FrameReport>,
}

/// A processed frame in numbers (what `imd replay` sums up).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameReport {
    /// Tracking state (`tracking`, `new_keyframe`, `lost`, `relocalized`).
    pub state: String,
    /// The frame became a keyframe.
    pub new_keyframe: bool,
    /// Matches against the keyframe.
    pub matches: usize,
    /// Pose inliers.
    pub inliers: usize,
    /// Time from receiving the image to the end of processing, ms.
    pub latency_ms: f64,
    /// Milliseconds per named stage.
    pub stage_ms: Vec<(String, f64)>,
}

/// What the scheduler knows about a frame's camera when it hands the frame over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// Frames of this camera dropped so far because a newer one replaced them unprocessed.
    pub dropped: u64,
    /// Frames of this camera skipped so far to honour `node.max_rate_hz`.
    pub rate_skipped: u64,
}

/// Turns frames into outputs. Runs on a worker thread, one frame at a time, always the newest
/// frame of each camera.
pub trait FrameProcessor: Send {
    /// Process one frame. An `Err` is logged with the camera and topic by the adapter, which
    /// then goes on with the next frame.
    fn process(
        &mut self,
        frame: CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<FrameOutputs, crate::Error>;
    /// Handle a control request; returns status lines for `/diagnostics`.
    fn control(&mut self, command: ControlCommand) -> Vec<DiagnosticStatus>;
    /// The configuration changed at run time (a ROS parameter was set). Processors apply
    /// what they can live; the default ignores it.
    fn reconfigure(&mut self, _config: &crate::config::ImdConfig) {}
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
