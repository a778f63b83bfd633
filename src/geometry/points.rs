//! Point types that keep pixel and normalized image coordinates apart.

use nalgebra::{Vector2, Vector3};
use serde::{Deserialize, Serialize};

/// A point in image pixels: x right, y down, origin at the centre of the top-left pixel.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PixelPoint {
    pub x: f64,
    pub y: f64,
}

/// A point on the normalized image plane z = 1 of a camera (undistorted, K⁻¹ applied).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct NormalizedPoint {
    pub x: f64,
    pub y: f64,
}

impl PixelPoint {
    /// A pixel point.
    pub const fn new(x: f64, y: f64) -> Self {
        PixelPoint { x, y }
    }
    /// As a nalgebra vector.
    pub fn vector(&self) -> Vector2<f64> {
        Vector2::new(self.x, self.y)
    }
    /// Euclidean distance in pixels.
    pub fn distance(&self, other: &PixelPoint) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
    /// Both coordinates finite.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

impl NormalizedPoint {
    /// A normalized point.
    pub const fn new(x: f64, y: f64) -> Self {
        NormalizedPoint { x, y }
    }
    /// Homogeneous `(x, y, 1)`.
    pub fn homogeneous(&self) -> Vector3<f64> {
        Vector3::new(self.x, self.y, 1.0)
    }
    /// Unit-length bearing vector through this point.
    pub fn bearing(&self) -> Vector3<f64> {
        self.homogeneous().normalize()
    }
    /// Both coordinates finite.
    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite()
    }
}

/// One correspondence between image 0 and image 1, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PixelMatch {
    pub p0: PixelPoint,
    pub p1: PixelPoint,
    /// Matcher confidence in [0, 1] (1 when unknown).
    pub confidence: f32,
}
