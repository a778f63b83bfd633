//! Relative pose types and the result of [`super::estimate_relative_pose`].

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector3};
use serde::{Deserialize, Serialize};

/// The transform from camera 0's frame to camera 1's frame: `X1 = R·X0 + t`.
///
/// Monocular two-view geometry fixes `t` only up to scale, so estimates have `|t| = 1` when the
/// translation is observable and `t = 0` when it is not (pure rotation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativePose {
    /// Rotation from camera 0 to camera 1.
    pub rotation: Rotation3<f64>,
    /// Translation (camera 0's origin expressed in camera 1's frame).
    pub translation: Vector3<f64>,
}

impl RelativePose {
    /// A pose from its parts.
    pub fn new(rotation: Rotation3<f64>, translation: Vector3<f64>) -> Self {
        RelativePose {
            rotation,
            translation,
        }
    }

    /// No motion.
    pub fn identity() -> Self {
        RelativePose::new(Rotation3::identity(), Vector3::zeros())
    }

    /// Map a point from camera 0's frame to camera 1's frame.
    pub fn transform(&self, p: &Vector3<f64>) -> Vector3<f64> {
        self.rotation * p + self.translation
    }

    /// The reverse transform (camera 1 → camera 0).
    pub fn inverse(&self) -> RelativePose {
        let r_inv = self.rotation.inverse();
        RelativePose::new(r_inv, -(r_inv * self.translation))
    }

    /// The essential matrix `[t]×·R`.
    pub fn essential(&self) -> Matrix3<f64> {
        essential_from_pose(self)
    }
}

/// Which two-view model explained the matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoseModel {
    /// General scene: essential matrix (5-point).
    Essential,
    /// Planar scene: pose from the decomposition of a homography.
    Homography,
    /// (Near-)pure rotation: the translation is not observable.
    Rotation,
}

impl PoseModel {
    /// `"essential"`, `"homography"` or `"rotation"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PoseModel::Essential => "essential",
            PoseModel::Homography => "homography",
            PoseModel::Rotation => "rotation",
        }
    }
}

/// Variance put on the translation block of the covariance when the translation is not
/// observable (pure rotation): large enough to mean "unknown" to any consumer, finite so it
/// survives JSON and ROS messages.
pub const UNOBSERVABLE_TRANSLATION_VARIANCE: f64 = 1e6;

/// A relative pose estimated from matches.
#[derive(Debug, Clone)]
pub struct PoseEstimate {
    /// Camera 0 → camera 1, `|t| = 1` when `translation_observable`, else `t = 0`.
    pub pose: RelativePose,
    /// The model that won the selection.
    pub model: PoseModel,
    /// False under (near-)pure rotation: no parallax above the noise, `t` is meaningless.
    pub translation_observable: bool,
    /// Per match: consistent with the returned model.
    pub inliers: Vec<bool>,
    /// Number of `true` entries of `inliers`.
    pub num_inliers: usize,
    /// Number of input matches.
    pub num_matches: usize,
    /// 6×6 covariance of the pose error, ordered like ROS `PoseWithCovariance`:
    /// `[δt_x, δt_y, δt_z, δθ_x, δθ_y, δθ_z]`.
    ///
    /// * `δθ` (rad): the true rotation is `exp([δθ]×)·R̂`, a perturbation in camera 1's frame.
    /// * `δt` (dimensionless, ≈ rad of direction): the true unit translation is
    ///   `normalize(t̂ + δt)` with `δt ⟂ t̂`, so the block has rank 2 (no variance along `t̂`).
    /// * Scale: the sandwich (M-estimator) covariance `A⁻¹BA⁻¹` of the final robust
    ///   refinement, `A` its Hessian and `B` the spread of the residuals' influence, so it
    ///   reflects the actual noise and the loss used. Under pure rotation the δt block is
    ///   [`UNOBSERVABLE_TRANSLATION_VARIANCE`]·I.
    pub covariance: Matrix6<f64>,
    /// The homography on the normalized image plane (`x1 ~ H·x0`, scaled so its middle singular
    /// value is 1, i.e. `H = R + t·nᵀ/d`) when the homography or rotation model won.
    pub homography: Option<Matrix3<f64>>,
    /// Planar scenes: a second pose that explains the matches as well as `pose` (the classic
    /// two-fold homography ambiguity); `pose` is then the one with the smaller rotation.
    pub alternative: Option<RelativePose>,
    /// The rotation the competing model family gives on the same matches: the essential
    /// matrix's (refined from RANSAC's) when the rotation model won, a rotation-only refit
    /// otherwise; `None` when it could not be fitted. Where the translation is not determined
    /// (pure rotation, too little parallax), the difference between the two is how far the
    /// rotation depends on the model assumed: a sideways step in front of a wall moves the
    /// image as a turn does, and each model explains it its own way.
    pub competing_rotation: Option<Rotation3<f64>>,
    /// Samples drawn by the essential-matrix RANSAC.
    pub iterations: usize,
    /// Local optimisations run inside RANSAC.
    pub local_optimizations: usize,
    /// Levenberg–Marquardt iterations of the final refinement.
    pub refinement_iterations: usize,
    /// RMS residual of the inliers after refinement, pixels (Sampson error for the essential
    /// and homography models, transfer error for rotation; normalized error × mean focal).
    pub rms_residual_px: f64,
    /// Noise σ̂ of the inliers, pixels, corrected for the cut at the threshold (see
    /// [`super::RefinementOptions`]); per coordinate for rotation, Sampson otherwise.
    pub noise_sigma_px: f64,
}

/// The cross-product matrix `[v]×`, with `[v]×·w = v × w`.
#[inline]
pub fn skew(v: &Vector3<f64>) -> Matrix3<f64> {
    Matrix3::new(0.0, -v.z, v.y, v.z, 0.0, -v.x, -v.y, v.x, 0.0)
}

/// `E = [t]×·R`, so that `x1ᵀ·E·x0 = 0` for corresponding normalized points.
#[inline]
pub fn essential_from_pose(pose: &RelativePose) -> Matrix3<f64> {
    skew(&pose.translation) * pose.rotation.matrix()
}
