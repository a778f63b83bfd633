//! Metric 3-D structure: points in metres in a camera's frame, and the 2-D–3-D correspondences
//! absolute pose is estimated from. Pixels and normalized points stay in [`super::points`].

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use super::points::PixelPoint;

/// Depth below which a transformed point counts as behind the camera (metres; also keeps the
/// division finite).
pub const MIN_DEPTH: f64 = 1e-6;

/// A 3-D point in metres in the frame of the camera that observed it (x right, y down, z along
/// the optical axis, the ROS optical-frame convention). Which camera is said by the container:
/// in a [`PointMatch`] it is the keyframe's (or the stereo rig's left) camera.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CameraPoint {
    /// Metres.
    pub x: f64,
    /// Metres.
    pub y: f64,
    /// Metres (depth along the optical axis).
    pub z: f64,
}

impl CameraPoint {
    /// A point from its coordinates in metres.
    pub const fn new(x: f64, y: f64, z: f64) -> Self {
        CameraPoint { x, y, z }
    }

    /// As a nalgebra vector (metres).
    pub fn vector(&self) -> Vector3<f64> {
        Vector3::new(self.x, self.y, self.z)
    }

    /// From a nalgebra vector in metres.
    pub fn from_vector(v: &Vector3<f64>) -> Self {
        CameraPoint::new(v.x, v.y, v.z)
    }

    /// All coordinates finite.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }
}

/// A keyframe point (metres, keyframe camera frame) and where the current image sees it
/// (pixels): the input of [`super::estimate_absolute_pose`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PointMatch {
    /// The 3-D point in the keyframe camera's frame, metres.
    pub point: CameraPoint,
    /// Its observation in the current image, pixels.
    pub pixel: PixelPoint,
}
