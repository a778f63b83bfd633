//! Two-view geometry on nalgebra: cameras, relative pose, homography, metric (absolute) pose from
//! depth or stereo, robust estimation and metrics. No torch, no ROS.
//!
//! Pose convention everywhere: `x1 ~ R·x0 + t`, i.e. [`RelativePose`] maps points from camera 0's
//! frame into camera 1's frame. From pixel matches alone `t` has unit length (monocular scale is
//! unobservable); [`estimate_absolute_pose`] on points lifted from depth ([`depth`]) or
//! triangulated by a stereo rig ([`stereo`]) gives `t` in metres.
//!
//! Layers, following PoseLib: pure minimal solvers ([`solvers`]), RANSAC adapters
//! ([`estimators`]) behind one generic LO-MSAC loop ([`ransac`]), nonlinear refinement
//! ([`refine`]), and thin entry points ([`estimate_relative_pose`], [`estimate_homography`]) that
//! normalize, run RANSAC, select the model and refine.

pub mod absolute_pose;
pub mod camera;
pub mod checked;
pub mod decompose;
pub mod depth;
pub mod essential;
pub mod estimate;
pub mod estimators;
pub mod homography;
pub mod metrics;
pub mod options;
pub mod patch;
pub mod points;
pub mod pose;
pub mod ransac;
pub mod refine;
pub mod rng;
pub mod solvers;
pub mod sparse_depth;
pub mod stereo;
pub mod stereo_guided;
pub mod stereo_pose;
pub mod structure;
pub mod synthetic;

pub use absolute_pose::{estimate_absolute_pose, AbsolutePoseEstimate};
pub use camera::{CameraModel, Distortion, Intrinsics};
pub use checked::{Checked, Validate};
pub use depth::{lift_matches, DepthImage, DepthLookup, DepthOptions, DepthSamples};
pub use estimate::estimate_relative_pose;
pub use homography::{estimate_homography, HomographyEstimate};
pub use options::{
    AbsolutePoseOptions, HomographyOptions, LocalOptimizationOptions, ModelSelectionOptions,
    PoseOptions, RefinementOptions,
};
pub use points::{NormalizedPoint, PixelMatch, PixelPoint};
pub use pose::{PoseEstimate, PoseModel, RelativePose, UNOBSERVABLE_TRANSLATION_VARIANCE};
pub use refine::RobustLoss;
pub use rng::Rng;
pub use sparse_depth::SparseDepth;
pub use stereo::{StereoOptions, StereoRig};
pub use stereo_pose::{estimate_stereo_pose, StereoPointMatch};
pub use structure::{CameraPoint, PointMatch};

/// Errors from geometry estimation and camera models.
#[derive(Debug, thiserror::Error)]
pub enum GeometryError {
    /// Malformed input data (non-finite points, …).
    #[error("{what}: {reason}")]
    InvalidInput { what: String, reason: String },
    /// An invalid camera (intrinsics or distortion), naming the CameraInfo field.
    #[error("camera {field}: {reason}")]
    InvalidCamera { field: String, reason: String },
    /// An option out of range, named as in the configuration.
    #[error("option {field}: {reason}")]
    InvalidOption { field: String, reason: String },
    /// A pixel could not be undistorted.
    #[error("pixel ({x}, {y}): {reason}")]
    Undistortion { x: f64, y: f64, reason: String },
    /// Not enough matches for the minimal solver.
    #[error("too few matches: got {got}, need at least {needed}")]
    TooFewMatches { got: usize, needed: usize },
    /// Robust estimation found no model worth returning.
    #[error("no model: {reason}")]
    NoModel { reason: String },
}
