//! [`Frame`]: one decoded camera image with its calibration, stamp and identity.

use std::sync::Arc;

use image::RgbImage;

use super::PipelineError;
use crate::geometry::{CameraModel, Intrinsics, StereoRig};
use crate::io::frames::{camera_info_mismatch, CameraFrame};
use crate::io::image::DepthMap;
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::sensor_msgs::CameraInfo;

/// Which camera a frame comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CameraId {
    /// Position in the configuration's camera list.
    pub index: usize,
    /// Configured name (used in outputs and keyframe frame names).
    pub name: String,
}

/// A frame ready for tracking: RGB pixels, the camera model they were taken with, and who
/// took them when.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The camera.
    pub camera: CameraId,
    /// Acquisition time (the image header's stamp).
    pub stamp: Time,
    /// Optical frame of the camera (the configured one, else the image header's).
    pub frame_id: String,
    /// Pixels (shared: a keyframe keeps them for the debug image without a copy).
    pub image: Arc<RgbImage>,
    /// Intrinsics and distortion for these pixels (binning and ROI applied).
    pub model: CameraModel,
    /// The aligned depth image or stereo partner, for metric scale (`None`: monocular).
    pub metric: Option<MetricImages>,
}

/// A decoded frame's metric companion.
#[derive(Debug, Clone)]
pub enum MetricImages {
    /// Its depth image, registered to the colour image.
    Depth(Arc<DepthMap>),
    /// The right view of its stereo rig.
    Stereo(Box<StereoView>),
}

/// The right image of a stereo frame, ready for the matcher, and the rig.
#[derive(Debug, Clone)]
pub struct StereoView {
    /// The right image as a frame (camera name `<camera>/right`).
    pub right: Box<Frame>,
    /// The calibrated rig (left = the tracked camera).
    pub rig: StereoRig,
}

impl Frame {
    /// A frame from parts; `model` must describe `image`'s pixels.
    pub fn new(
        camera: CameraId,
        stamp: Time,
        frame_id: impl Into<String>,
        image: RgbImage,
        model: CameraModel,
    ) -> Self {
        Frame {
            camera,
            stamp,
            frame_id: frame_id.into(),
            image: Arc::new(image),
            model,
            metric: None,
        }
    }

    /// Decode a paired image + camera_info. `optical_frame` overrides the header's frame_id
    /// when given. Fails, naming the field, on undecodable pixels or a camera_info that does
    /// not describe them.
    pub fn from_camera_frame(
        frame: &CameraFrame,
        optical_frame: Option<&str>,
    ) -> Result<Frame, PipelineError> {
        let header = frame.image.header();
        let image = frame.image.decode()?.into_rgb8();
        let model = camera_model_for(&frame.info, image.width(), image.height())?;
        Ok(Frame::new(
            CameraId {
                index: frame.camera,
                name: frame.camera_name.clone(),
            },
            header.stamp,
            optical_frame.unwrap_or(&header.frame_id),
            image,
            model,
        ))
    }

    /// Image width in pixels.
    pub fn width(&self) -> u32 {
        self.image.width()
    }

    /// Image height in pixels.
    pub fn height(&self) -> u32 {
        self.image.height()
    }
}

/// The camera model for a `width × height` image described by `info`.
///
/// `CameraInfo.msg` gives K for the full-resolution sensor; binning divides it and a region
/// of interest shifts the principal point: `fx' = fx / bx`, `cx' = (cx − x_offset) / bx`
/// (likewise for y). Distortion acts on normalized coordinates and does not change.
pub fn camera_model_for(
    info: &CameraInfo,
    width: u32,
    height: u32,
) -> Result<CameraModel, PipelineError> {
    if let Some(reason) = camera_info_mismatch(info, width, height) {
        return Err(PipelineError::CameraInfo { reason });
    }
    let full = CameraModel::from_camera_info(
        &info.distortion_model,
        &info.d,
        &info.k,
        info.width,
        info.height,
    )?;
    let bx = info.binning_x.max(1) as f64;
    let by = info.binning_y.max(1) as f64;
    let (ox, oy) = if info.roi.width > 0 && info.roi.height > 0 {
        (info.roi.x_offset as f64, info.roi.y_offset as f64)
    } else {
        (0.0, 0.0)
    };
    let k = full.intrinsics;
    let intrinsics = Intrinsics::new(k.fx / bx, k.fy / by, (k.cx - ox) / bx, (k.cy - oy) / by)?;
    Ok(CameraModel {
        intrinsics,
        distortion: full.distortion,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::sensor_msgs::RegionOfInterest;

    fn info() -> CameraInfo {
        CameraInfo {
            width: 640,
            height: 480,
            distortion_model: "plumb_bob".into(),
            d: vec![-0.1, 0.01, 0.0, 0.0, 0.0],
            k: [500.0, 0.0, 320.0, 0.0, 400.0, 240.0, 0.0, 0.0, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn binning_and_roi_rescale_the_intrinsics() {
        let m = camera_model_for(&info(), 640, 480).unwrap();
        assert_eq!(m.intrinsics.fx, 500.0);
        assert!(!m.is_pinhole());
        // 2×2 binning of a 200×100 ROI at (100, 50): 100×50 pixels, cx = (320 − 100) / 2.
        let roi = CameraInfo {
            binning_x: 2,
            binning_y: 2,
            roi: RegionOfInterest {
                x_offset: 100,
                y_offset: 50,
                width: 200,
                height: 100,
                do_rectify: false,
            },
            ..info()
        };
        let m = camera_model_for(&roi, 100, 50).unwrap();
        let k = m.intrinsics;
        assert_eq!((k.fx, k.fy, k.cx, k.cy), (250.0, 200.0, 110.0, 95.0));
        assert_eq!((m.width, m.height), (100, 50));
        // A camera_info for another size is refused with both sizes named.
        let e = camera_model_for(&info(), 320, 240).unwrap_err().to_string();
        assert!(e.contains("640×480") && e.contains("320×240"), "{e}");
    }
}
