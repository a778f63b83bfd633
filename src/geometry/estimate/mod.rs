//! [`estimate_relative_pose`]: normalize the matches, run LO-MSAC on the essential matrix,
//! select the model (essential / homography / rotation: [`planar`]), refine on the inliers
//! and attach a covariance.

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector2};

use super::camera::CameraModel;
use super::estimators::relative_pose::{NormalizedCorrespondences, RelativePoseEstimator};
use super::options::PoseOptions;
use super::points::PixelMatch;
use super::pose::{PoseEstimate, PoseModel, RelativePose};
use super::ransac::{ransac, RansacSettings};
use super::refine::relative_pose::{refine_relative_pose, relative_pose_covariance};
mod planar;

use super::homography::select_flagged;
use super::refine::schedule::{covariance_inputs, noise_1d, refine_on_inliers, RefineProblem};
use super::refine::{jackknife, RobustLoss};
use super::rng::Rng;
use super::GeometryError;
use planar::{
    finish_rotation, refit_rotation, select_homography_model, transfer_threshold, Selected,
};

/// Estimate the relative pose of camera 1 with respect to camera 0 from pixel matches.
///
/// Convention `x1 ~ R·x0 + t`, `|t| = 1` (or `t = 0` with `translation_observable = false`
/// under pure rotation). Fails with [`GeometryError::TooFewMatches`] below five matches, with
/// [`GeometryError::NoModel`] when no model explains clearly more matches than chance, and with
/// an input error for non-finite points or points outside a camera's distortion model.
pub fn estimate_relative_pose(
    matches: &[PixelMatch],
    cam0: &CameraModel,
    cam1: &CameraModel,
    opts: &PoseOptions,
) -> Result<PoseEstimate, GeometryError> {
    opts.validate()?;
    let n = matches.len();
    if n < 5 {
        return Err(GeometryError::TooFewMatches { got: n, needed: 5 });
    }
    let data = normalize_matches(matches, cam0, cam1)?;
    let (f0, f1) = (cam0.intrinsics.focal(), cam1.intrinsics.focal());
    let threshold = opts.threshold_px * 0.5 * (1.0 / f0 + 1.0 / f1);
    // Converts a normalized residual back to pixels consistently with the threshold.
    let px_per_unit = opts.threshold_px / threshold;
    let mut rng = Rng::new(opts.seed);
    let lo = &opts.local_optimization;
    let settings = RansacSettings {
        confidence: opts.confidence,
        min_iterations: opts.min_iterations,
        max_iterations: opts.max_iterations,
        local_optimization: lo.enabled,
    };
    let mut estimator =
        RelativePoseEstimator::new(&data, threshold, lo.threshold_multiplier, lo.max_iterations);
    let outcome =
        ransac(&mut estimator, &settings, &mut rng).ok_or_else(|| GeometryError::NoModel {
            reason: format!("no 5-point sample among {n} matches gave a valid essential matrix"),
        })?;

    let (e_inliers, _) = data.classify(&outcome.model, threshold * threshold);
    let selected = if opts.model_selection.enabled {
        select_homography_model(&data, &e_inliers, opts, threshold, f1, &mut rng)
    } else {
        None
    };
    let finished = finish_selected(&data, selected, &outcome.model, opts, threshold, f1);
    let competing_rotation =
        competing_rotation(&data, &finished, &outcome.model, opts, threshold, f1);

    let num_inliers = finished.inliers.iter().filter(|b| **b).count();
    check_support(num_inliers, matches, cam1, opts)?;
    check_spread(matches, &finished.inliers, opts.threshold_px)?;
    Ok(PoseEstimate {
        pose: finished.pose,
        model: finished.model,
        translation_observable: finished.model != PoseModel::Rotation,
        num_inliers,
        num_matches: n,
        inliers: finished.inliers,
        covariance: finished.covariance,
        homography: finished.homography,
        alternative: finished.alternative,
        competing_rotation,
        iterations: outcome.iterations,
        local_optimizations: outcome.local_optimizations,
        refinement_iterations: finished.refinement_iterations,
        rms_residual_px: finished.rms_normalized * px_per_unit,
        noise_sigma_px: finished.sigma_normalized * px_per_unit,
    })
}

/// Final refinement and covariance of the model chosen: the homography test's pick, or the
/// essential matrix from RANSAC when it picked none.
fn finish_selected(
    data: &NormalizedCorrespondences,
    selected: Option<Selected>,
    essential: &RelativePose,
    opts: &PoseOptions,
    threshold: f64,
    f1: f64,
) -> Finished {
    match selected {
        Some(Selected::Rotation {
            rotation,
            homography,
        }) => finish_rotation(
            data,
            &rotation,
            homography,
            opts,
            transfer_threshold(opts, f1),
        ),
        Some(Selected::Planar {
            pose,
            alternative,
            homography,
        }) => {
            let mut f = finish_essential(data, &pose, opts, threshold);
            f.model = PoseModel::Homography;
            f.homography = Some(homography);
            f.alternative = alternative;
            f
        }
        None => finish_essential(data, essential, opts, threshold),
    }
}

/// The rotation of the other model family on the same matches
/// ([`PoseEstimate::competing_rotation`]): the essential matrix refined from RANSAC's when the
/// rotation model won, else a rotation-only refit from the reported rotation.
fn competing_rotation(
    data: &NormalizedCorrespondences,
    finished: &Finished,
    essential: &RelativePose,
    opts: &PoseOptions,
    threshold: f64,
    f1: f64,
) -> Option<Rotation3<f64>> {
    if finished.model == PoseModel::Rotation {
        let refined = refine_on_inliers(data, essential, &opts.refinement, threshold);
        let count = refined.inliers.iter().filter(|f| **f).count();
        (count >= <NormalizedCorrespondences as RefineProblem>::MIN_POINTS)
            .then_some(refined.model.rotation)
    } else {
        refit_rotation(
            data,
            finished.pose.rotation.matrix(),
            opts,
            transfer_threshold(opts, f1),
        )
    }
}

/// Undistort and normalize every match; errors name the match.
pub(crate) fn normalize_matches(
    matches: &[PixelMatch],
    cam0: &CameraModel,
    cam1: &CameraModel,
) -> Result<NormalizedCorrespondences, GeometryError> {
    let mut pairs = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().enumerate() {
        let wrap = |image: usize, e: GeometryError| GeometryError::InvalidInput {
            what: format!("match {i} (image {image})"),
            reason: e.to_string(),
        };
        let a = cam0.normalize(&m.p0).map_err(|e| wrap(0, e))?;
        let b = cam1.normalize(&m.p1).map_err(|e| wrap(1, e))?;
        pairs.push(([a.x, a.y], [b.x, b.y]));
    }
    Ok(NormalizedCorrespondences::new(pairs))
}

/// Reject inlier sets that lie on a line (within the inlier threshold) in either image: a
/// pose from collinear points is not determined, whatever the solver returns (it used to be
/// reported with a near-zero covariance).
fn check_spread(
    matches: &[PixelMatch],
    inliers: &[bool],
    threshold_px: f64,
) -> Result<(), GeometryError> {
    for image in 0..2 {
        let pts: Vec<(f64, f64)> = matches
            .iter()
            .zip(inliers)
            .filter(|(_, &b)| b)
            .map(|(m, _)| {
                let p = if image == 0 { &m.p0 } else { &m.p1 };
                (p.x, p.y)
            })
            .collect();
        let n = pts.len().max(1) as f64;
        let (mx, my) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for (x, y) in &pts {
            let (dx, dy) = (x - mx, y - my);
            sxx += dx * dx / n;
            syy += dy * dy / n;
            sxy += dx * dy / n;
        }
        // Smallest eigenvalue of the 2×2 scatter: the variance across the best-fit line.
        let half_trace = 0.5 * (sxx + syy);
        let det = sxx * syy - sxy * sxy;
        let across = half_trace - (half_trace * half_trace - det).max(0.0).sqrt();
        let sigma = across.max(0.0).sqrt();
        if sigma.is_nan() || sigma <= threshold_px {
            return Err(GeometryError::NoModel {
                reason: format!(
                    "degenerate: the {} inliers lie on a line in image {image} (spread {sigma:.3} \
                     px across it, threshold {threshold_px} px); the pose is not determined",
                    pts.len()
                ),
            });
        }
    }
    Ok(())
}

/// Reject models that random matches would explain as well (see
/// [`PoseOptions::chance_sigmas`]).
fn check_support(
    num_inliers: usize,
    matches: &[PixelMatch],
    cam1: &CameraModel,
    opts: &PoseOptions,
) -> Result<(), GeometryError> {
    let n = matches.len();
    if num_inliers < opts.min_inliers.max(5) {
        return Err(GeometryError::NoModel {
            reason: format!(
                "best model has {num_inliers} inliers among {n} matches, fewer than min_inliers = {}",
                opts.min_inliers.max(5)
            ),
        });
    }
    if opts.chance_sigmas <= 0.0 {
        return Ok(());
    }
    // Image 1's extent: the camera's size, or the matches' bounding box when unknown.
    let (w, h) = if cam1.width > 0 && cam1.height > 0 {
        (cam1.width as f64, cam1.height as f64)
    } else {
        let (mut lo, mut hi) = (
            Vector2::repeat(f64::INFINITY),
            Vector2::repeat(f64::NEG_INFINITY),
        );
        for m in matches {
            lo = lo.inf(&m.p1.vector());
            hi = hi.sup(&m.p1.vector());
        }
        ((hi.x - lo.x).max(1.0), (hi.y - lo.y).max(1.0))
    };
    // A uniformly random point lies within thr of a line crossing the image with probability
    // at most 2·thr·diagonal / area.
    let p = (2.0 * opts.threshold_px * w.hypot(h) / (w * h)).min(1.0);
    let lambda = n as f64 * p;
    let needed = 5.0 + lambda + opts.chance_sigmas * (1.0 + lambda.sqrt());
    if (num_inliers as f64) < needed {
        return Err(GeometryError::NoModel {
            reason: format!(
                "best model has {num_inliers} inliers among {n} matches; random matches would give about {lambda:.1} (need ≥ {needed:.1})"
            ),
        });
    }
    Ok(())
}

/// What the final stage produced.
pub(super) struct Finished {
    pose: RelativePose,
    model: PoseModel,
    inliers: Vec<bool>,
    covariance: Matrix6<f64>,
    homography: Option<Matrix3<f64>>,
    alternative: Option<RelativePose>,
    refinement_iterations: usize,
    rms_normalized: f64,
    sigma_normalized: f64,
}

/// Relative pose under the refinement schedule: Sampson errors, cheirality.
impl RefineProblem for NormalizedCorrespondences {
    type Model = RelativePose;
    const MIN_POINTS: usize = 6;

    fn classify(&self, pose: &RelativePose, thr2: f64) -> (Vec<bool>, Vec<f64>) {
        NormalizedCorrespondences::classify(self, pose, thr2)
    }

    fn noise(inliers: &[bool], errors: &[f64], threshold: f64) -> f64 {
        noise_1d(inliers, errors, threshold)
    }

    fn refine(
        &self,
        set: &[bool],
        pose: &RelativePose,
        loss: RobustLoss,
        scale: f64,
        max_iterations: usize,
    ) -> (RelativePose, usize) {
        let (x0, x1) = select_flagged(&self.x0, &self.x1, set);
        let out = refine_relative_pose(&x0, &x1, pose, loss, scale, max_iterations);
        (out.params, out.iterations)
    }
}

pub(super) fn finish_essential(
    data: &NormalizedCorrespondences,
    pose: &RelativePose,
    opts: &PoseOptions,
    threshold: f64,
) -> Finished {
    let refined = refine_on_inliers(data, pose, &opts.refinement, threshold);
    // The covariance describes the estimator that produced the pose: same window, same loss.
    let (set, loss, scale2) = covariance_inputs(data, &refined, &opts.refinement, threshold);
    let (x0, x1) = select_flagged(&data.x0, &data.x1, &set);
    let covariance = relative_pose_covariance(&x0, &x1, &refined.model, loss, scale2);
    let positions: Vec<Vector2<f64>> = data.x0.iter().map(|p| p.xy()).collect();
    let covariance = jackknife::widen(
        data,
        &refined.model,
        &set,
        &positions,
        loss,
        scale2,
        covariance,
        opts.jackknife_grid,
        opts.refinement.max_iterations,
    );
    let count = refined.inliers.iter().filter(|b| **b).count().max(1);
    let sum: f64 = refined
        .inliers
        .iter()
        .zip(&refined.errors)
        .filter(|(f, _)| **f)
        .map(|(_, e)| e)
        .sum();
    Finished {
        pose: refined.model,
        model: PoseModel::Essential,
        inliers: refined.inliers,
        covariance,
        homography: None,
        alternative: None,
        refinement_iterations: refined.iterations,
        rms_normalized: (sum / count as f64).sqrt(),
        sigma_normalized: refined.sigma,
    }
}
