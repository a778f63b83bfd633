//! [`estimate_homography`]: LO-MSAC over 4-point DLT samples on conditioned pixel coordinates,
//! then robust refinement of the forward transfer error on the inliers.

use nalgebra::{Matrix3, Vector2};

use super::estimators::homography::{
    homography_inliers, orient, Conditioning, HomographyEstimator,
};
use super::options::{HomographyOptions, RefinementOptions};
use super::points::PixelMatch;
use super::ransac::{ransac, RansacSettings};
use super::refine::homography::{refine_homography, transfer_error_sq};
use super::refine::noise::sigma_truncated_2d;
use super::rng::Rng;
use super::GeometryError;

/// A homography estimated from pixel matches.
#[derive(Debug, Clone)]
pub struct HomographyEstimate {
    /// Maps image-0 pixels to image-1 pixels (`x1 ~ H·x0`), scaled so `H[(2,2)] = 1` (unit
    /// Frobenius norm in the rare case that entry vanishes).
    pub h: Matrix3<f64>,
    /// Per match: transfer error below the threshold.
    pub inliers: Vec<bool>,
    /// Number of inliers.
    pub num_inliers: usize,
    /// Number of input matches.
    pub num_matches: usize,
    /// Samples drawn.
    pub iterations: usize,
    /// Local optimisations run.
    pub local_optimizations: usize,
    /// Levenberg–Marquardt iterations of the final refinement.
    pub refinement_iterations: usize,
    /// RMS transfer error of the inliers, pixels.
    pub rms_error_px: f64,
}

/// Estimate the homography `x1 ~ H·x0` between two images from pixel matches.
pub fn estimate_homography(
    matches: &[PixelMatch],
    opts: &HomographyOptions,
) -> Result<HomographyEstimate, GeometryError> {
    opts.validate()?;
    let n = matches.len();
    if n < 4 {
        return Err(GeometryError::TooFewMatches { got: n, needed: 4 });
    }
    for (i, m) in matches.iter().enumerate() {
        if !m.p0.is_finite() || !m.p1.is_finite() {
            return Err(GeometryError::InvalidInput {
                what: format!("match {i}"),
                reason: "coordinates must be finite".into(),
            });
        }
    }
    let x0: Vec<Vector2<f64>> = matches.iter().map(|m| m.p0.vector()).collect();
    let x1: Vec<Vector2<f64>> = matches.iter().map(|m| m.p1.vector()).collect();
    let c0 = Conditioning::of(&x0);
    let c1 = Conditioning::of(&x1);
    let cx0: Vec<Vector2<f64>> = x0.iter().map(|p| c0.apply(p)).collect();
    let cx1: Vec<Vector2<f64>> = x1.iter().map(|p| c1.apply(p)).collect();
    let thr_c = opts.threshold_px * c1.scale;
    let lo = &opts.local_optimization;
    let settings = RansacSettings {
        confidence: opts.confidence,
        min_iterations: opts.min_iterations,
        max_iterations: opts.max_iterations,
        local_optimization: lo.enabled,
    };
    let mut est = HomographyEstimator::new(
        &cx0,
        &cx1,
        thr_c,
        lo.threshold_multiplier,
        lo.max_iterations,
    );
    let mut rng = Rng::new(opts.seed);
    let out = ransac(&mut est, &settings, &mut rng).ok_or_else(|| GeometryError::NoModel {
        reason: format!("no 4-point sample among {n} matches gave a valid homography (collinear or inconsistent points)"),
    })?;
    let (hc, inliers, refinement_iterations) =
        refine_homography_robust(&cx0, &cx1, &out.model, thr_c, &opts.refinement);
    let num_inliers = inliers.iter().filter(|b| **b).count();
    if num_inliers < opts.min_inliers.max(4) {
        return Err(GeometryError::NoModel {
            reason: format!(
                "best homography has {num_inliers} inliers among {n} matches, fewer than min_inliers = {}",
                opts.min_inliers.max(4)
            ),
        });
    }
    let mut h = c1.inverse_matrix() * hc * c0.matrix();
    h = if h[(2, 2)].abs() > 1e-12 * h.norm() {
        h / h[(2, 2)]
    } else {
        h / h.norm()
    };
    let sum: f64 = inliers
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| transfer_error_sq(&h, &x0[i], &x1[i]))
        .sum();
    Ok(HomographyEstimate {
        h,
        num_inliers,
        num_matches: n,
        inliers,
        iterations: out.iterations,
        local_optimizations: out.local_optimizations,
        refinement_iterations,
        rms_error_px: (sum / num_inliers as f64).sqrt(),
    })
}

/// Refine `h` on the matches within the noise-adapted window (as the pose refinement, with the
/// 2-D transfer error), re-selecting while the inliers change. Returns H, its inliers at
/// `threshold` and the LM iterations.
pub(crate) fn refine_homography_robust(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    h: &Matrix3<f64>,
    threshold: f64,
    refinement: &RefinementOptions,
) -> (Matrix3<f64>, Vec<bool>, usize) {
    let thr2 = threshold * threshold;
    let noise = |h: &Matrix3<f64>, inliers: &[bool]| {
        let (sum, count) = x0
            .iter()
            .zip(x1)
            .zip(inliers)
            .filter(|(_, f)| **f)
            .fold((0.0, 0usize), |(s, c), ((a, b), _)| {
                (s + transfer_error_sq(h, a, b), c + 1)
            });
        if count < 2 {
            0.5 * threshold
        } else {
            sigma_truncated_2d(sum / count as f64, threshold)
        }
    };
    let mut h = *h;
    let mut inliers = homography_inliers(&h, x0, x1, thr2);
    let mut iterations = 0;
    if !refinement.enabled {
        return (h, inliers, 0);
    }
    for _ in 0..3 {
        let sigma = noise(&h, &inliers);
        let window = refinement.window(sigma, threshold);
        let (a, b) = select_flagged(x0, x1, &homography_inliers(&h, x0, x1, window * window));
        if a.len() < 5 {
            break;
        }
        let r = refine_homography(
            &a,
            &b,
            &h,
            refinement.loss,
            refinement.loss_scale * sigma,
            refinement.max_iterations,
        );
        iterations += r.iterations;
        h = orient(&r.params, &a[0]);
        let next = homography_inliers(&h, x0, x1, thr2);
        let changed = next != inliers;
        inliers = next;
        if !changed {
            break;
        }
    }
    (h, inliers, iterations)
}

/// The correspondences whose flag is set.
pub(crate) fn select_flagged<A: Copy, B: Copy>(
    x0: &[A],
    x1: &[B],
    flags: &[bool],
) -> (Vec<A>, Vec<B>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (i, &f) in flags.iter().enumerate() {
        if f {
            a.push(x0[i]);
            b.push(x1[i]);
        }
    }
    (a, b)
}
