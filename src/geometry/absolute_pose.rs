//! [`estimate_absolute_pose`]: the pose of the current camera with respect to a keyframe from
//! keyframe points in metres (lifted from depth or triangulated by a stereo rig) and their pixels
//! in the current image. LO-MSAC over P3P, robust refinement on SE(3), sandwich covariance.
//!
//! Unlike [`super::estimate_relative_pose`], the translation is metric: the points carry scale.

use nalgebra::{Matrix3, Matrix6, Vector3};

use super::camera::CameraModel;
use super::checked::Checked;
use super::estimators::absolute_pose::{AbsolutePoseEstimator, PointCorrespondences};
use super::homography::select_flagged;
use super::options::AbsolutePoseOptions;
use super::pose::RelativePose;
use super::ransac::{ransac, RansacSettings};
use super::refine::absolute_pose::{absolute_pose_covariance, refine_absolute_pose};
use super::refine::schedule::{covariance_inputs, noise_2d, refine_on_inliers, RefineProblem};
use super::refine::RobustLoss;
use super::rng::Rng;
use super::structure::PointMatch;
use super::GeometryError;

/// A metric pose estimated from 2-D–3-D correspondences.
#[derive(Debug, Clone)]
pub struct AbsolutePoseEstimate {
    /// Keyframe camera frame → current camera frame, `X_cur = R·X_kf + t`, `t` in metres.
    pub pose: RelativePose,
    /// Per correspondence: consistent with the pose (reprojection error below the threshold,
    /// in front of the camera).
    pub inliers: Vec<bool>,
    /// Number of `true` entries of `inliers`.
    pub num_inliers: usize,
    /// Number of input correspondences.
    pub num_matches: usize,
    /// 6×6 covariance ordered like ROS `PoseWithCovariance`, `[δt_x, δt_y, δt_z, δθ_x, δθ_y,
    /// δθ_z]`: `δt` in metres (the true translation is `t̂ + δt`), `δθ` in radians (the true
    /// rotation is `exp([δθ]×)·R̂`), both in the current camera's frame. The sandwich estimate
    /// `A⁻¹BA⁻¹` of the final robust refinement, so it reflects the actual reprojection noise
    /// (pixel noise and the lifted points' depth error alike).
    pub covariance: Matrix6<f64>,
    /// Samples drawn by RANSAC.
    pub iterations: usize,
    /// Local optimisations run inside RANSAC.
    pub local_optimizations: usize,
    /// Levenberg–Marquardt iterations of the final refinement.
    pub refinement_iterations: usize,
    /// RMS reprojection error of the inliers after refinement, pixels.
    pub rms_residual_px: f64,
    /// Per-coordinate noise σ̂ of the inliers' reprojection errors, pixels, corrected for the cut
    /// at the threshold.
    pub noise_sigma_px: f64,
}

/// Estimate the current camera's pose from keyframe points (metres, keyframe camera frame) and
/// their pixels in the current image, seen by `camera`.
///
/// Fails with [`GeometryError::TooFewMatches`] below three correspondences, with an input
/// error for non-finite points or pixels outside the camera's distortion model, and with
/// [`GeometryError::NoModel`] when no pose has `min_inliers` inliers or the inliers' points are
/// collinear (the rotation about their line is not determined).
pub fn estimate_absolute_pose(
    matches: &[PointMatch],
    camera: &CameraModel,
    opts: &Checked<AbsolutePoseOptions>,
) -> Result<AbsolutePoseEstimate, GeometryError> {
    let n = matches.len();
    if n < 3 {
        return Err(GeometryError::TooFewMatches { got: n, needed: 3 });
    }
    let data = normalize_point_matches(matches, camera)?;
    let threshold = opts.threshold_px / camera.intrinsics.focal();
    let px_per_unit = camera.intrinsics.focal();
    let lo = &opts.local_optimization;
    let settings = RansacSettings {
        confidence: opts.confidence,
        min_iterations: opts.min_iterations,
        max_iterations: opts.max_iterations,
        local_optimization: lo.enabled,
    };
    let mut estimator =
        AbsolutePoseEstimator::new(&data, threshold, lo.threshold_multiplier, lo.max_iterations);
    let outcome = ransac(&mut estimator, &settings, &mut Rng::new(opts.seed)).ok_or_else(|| {
        GeometryError::NoModel {
            reason: format!("no 3-point sample among {n} correspondences gave a pose"),
        }
    })?;
    let refined = refine_on_inliers(&data, &outcome.model, &opts.refinement, threshold);
    let num_inliers = refined.inliers.iter().filter(|b| **b).count();
    let needed = opts.min_inliers.max(4);
    if num_inliers < needed {
        return Err(GeometryError::NoModel {
            reason: format!(
                "best pose has {num_inliers} inliers among {n} correspondences, fewer than min_inliers = {needed}"
            ),
        });
    }
    check_not_collinear(&data, &refined.inliers, threshold)?;
    // The covariance describes the estimator that produced the pose: same window, same loss.
    let (set, loss, scale2) = covariance_inputs(&data, &refined, &opts.refinement, threshold);
    let (points, rays) = select_flagged(&data.points, &data.rays, &set);
    let covariance = absolute_pose_covariance(&points, &rays, &refined.model, loss, scale2);
    let sum: f64 = refined
        .inliers
        .iter()
        .zip(&refined.errors)
        .filter(|(f, _)| **f)
        .map(|(_, e)| e)
        .sum();
    Ok(AbsolutePoseEstimate {
        pose: refined.model,
        num_inliers,
        num_matches: n,
        inliers: refined.inliers,
        covariance,
        iterations: outcome.iterations,
        local_optimizations: outcome.local_optimizations,
        refinement_iterations: refined.iterations,
        rms_residual_px: (sum / num_inliers as f64).sqrt() * px_per_unit,
        noise_sigma_px: refined.sigma * px_per_unit,
    })
}

/// Undistort and normalize the pixels; check the points. Errors name the correspondence.
pub(crate) fn normalize_point_matches(
    matches: &[PointMatch],
    camera: &CameraModel,
) -> Result<PointCorrespondences, GeometryError> {
    let mut pairs = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().enumerate() {
        if !m.point.is_finite() {
            return Err(GeometryError::InvalidInput {
                what: format!("correspondence {i} (point)"),
                reason: format!(
                    "({}, {}, {}) m must be finite",
                    m.point.x, m.point.y, m.point.z
                ),
            });
        }
        let x = camera
            .normalize(&m.pixel)
            .map_err(|e| GeometryError::InvalidInput {
                what: format!("correspondence {i} (pixel)"),
                reason: e.to_string(),
            })?;
        pairs.push(([m.point.x, m.point.y, m.point.z], [x.x, x.y]));
    }
    Ok(PointCorrespondences::new(pairs))
}

/// Absolute pose under the refinement schedule: reprojection errors on the normalized plane.
impl RefineProblem for PointCorrespondences {
    type Model = RelativePose;
    const MIN_POINTS: usize = 4;

    fn classify(&self, pose: &RelativePose, thr2: f64) -> (Vec<bool>, Vec<f64>) {
        PointCorrespondences::classify(self, pose, thr2)
    }

    fn noise(inliers: &[bool], errors: &[f64], threshold: f64) -> f64 {
        noise_2d(inliers, errors, threshold)
    }

    fn refine(
        &self,
        set: &[bool],
        pose: &RelativePose,
        loss: RobustLoss,
        scale: f64,
        max_iterations: usize,
    ) -> (RelativePose, usize) {
        let (points, rays) = select_flagged(&self.points, &self.rays, set);
        let out = refine_absolute_pose(&points, &rays, pose, loss, scale, max_iterations);
        (out.params, out.iterations)
    }
}

/// Reject inlier points that lie on a line in space: the rotation about that line is free. The
/// spread across the best-fit line is compared with what the threshold resolves at the points'
/// mean depth.
fn check_not_collinear(
    data: &PointCorrespondences,
    inliers: &[bool],
    threshold: f64,
) -> Result<(), GeometryError> {
    let pts: Vec<&Vector3<f64>> = data
        .points
        .iter()
        .zip(inliers)
        .filter(|(_, f)| **f)
        .map(|(p, _)| p)
        .collect();
    let n = pts.len().max(1) as f64;
    let mean = pts.iter().fold(Vector3::zeros(), |a, p| a + *p) / n;
    let mut scatter = Matrix3::zeros();
    for p in &pts {
        let d = *p - mean;
        scatter += d * d.transpose() / n;
    }
    let mut eig: Vec<f64> = scatter.symmetric_eigenvalues().iter().copied().collect();
    eig.sort_by(f64::total_cmp);
    let across = eig[1].max(0.0).sqrt();
    let resolvable = threshold * mean.norm();
    if across.is_nan() || across <= resolvable {
        return Err(GeometryError::NoModel {
            reason: format!(
                "degenerate: the {} inlier points lie on a line (spread {across:.4} m across it, \
                 {resolvable:.4} m resolvable); the rotation about it is not determined",
                pts.len()
            ),
        });
    }
    Ok(())
}
