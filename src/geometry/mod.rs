//! Two-view geometry on nalgebra: cameras, relative pose, homography, robust estimation and
//! metrics. No torch, no ROS.
//!
//! Pose convention everywhere: `x1 ~ R·x0 + t`, i.e. [`RelativePose`] maps points from camera 0's
//! frame into camera 1's frame; `t` has unit length (monocular scale is unobservable).

pub mod points;

pub use points::{NormalizedPoint, PixelMatch, PixelPoint};

use serde::{Deserialize, Serialize};

/// Errors from geometry estimation and camera models.
#[derive(Debug, thiserror::Error)]
pub enum GeometryError {
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
}

/// Options of relative-pose estimation (placeholder until the geometry module lands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoseOptions {}
