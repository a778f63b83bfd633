//! The planar and rotational branch of relative pose estimation: COLMAP's homography test
//! (does one homography explain most essential inliers?), pure rotation, and the choice between
//! a homography's decompositions.

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector2, Vector3, SVD};

use super::{Finished, NormalizedCorrespondences};
use crate::geometry::decompose::{decompose_homography, normalize_homography};
use crate::geometry::essential::{depth_numerators, orthonormalize};
use crate::geometry::estimators::homography::{
    homography_inliers, Conditioning, HomographyEstimator,
};
use crate::geometry::homography::{refine_homography_robust, select_flagged};
use crate::geometry::options::PoseOptions;
use crate::geometry::pose::{PoseModel, RelativePose, UNOBSERVABLE_TRANSLATION_VARIANCE};
use crate::geometry::ransac::{ransac, required_iterations, RansacSettings};
use crate::geometry::refine::homography::refine_homography;
use crate::geometry::refine::rotation::{refine_rotation, rotation_covariance, rotation_error_sq};
use crate::geometry::refine::schedule::{
    covariance_inputs, noise_2d, refine_on_inliers, RefineProblem,
};
use crate::geometry::refine::{jackknife, RobustLoss};
use crate::geometry::rng::Rng;

pub(super) fn finish_rotation(
    data: &NormalizedCorrespondences,
    rotation: &Matrix3<f64>,
    homography: Matrix3<f64>,
    opts: &PoseOptions,
    threshold1: f64,
) -> Finished {
    let (x0, x1) = planar_points(data);
    let problem = RotationProblem { x0: &x0, x1: &x1 };
    let fit = refine_on_inliers(&problem, rotation, &opts.refinement, threshold1);
    // The covariance describes the estimator that produced the rotation; the translation is
    // unobservable.
    let (set, loss, scale2) = covariance_inputs(&problem, &fit, &opts.refinement, threshold1);
    let (a, b) = select_flagged(&x0, &x1, &set);
    let cov_r = rotation_covariance(&a, &b, &fit.model, loss, scale2);
    let mut covariance = Matrix6::zeros();
    for i in 0..3 {
        covariance[(i, i)] = UNOBSERVABLE_TRANSLATION_VARIANCE;
        for j in 0..3 {
            covariance[(3 + i, 3 + j)] = cov_r[(i, j)];
        }
    }
    let covariance = jackknife::widen(
        &problem,
        &fit.model,
        &set,
        &x0,
        loss,
        scale2,
        covariance,
        opts.jackknife_grid,
        opts.refinement.max_iterations,
    );
    let (sum, count) = fit
        .inliers
        .iter()
        .zip(&fit.errors)
        .filter(|(f, _)| **f)
        .fold((0.0, 0usize), |(s, c), (_, e)| (s + e, c + 1));
    Finished {
        pose: RelativePose::new(
            Rotation3::from_matrix_unchecked(fit.model),
            Vector3::zeros(),
        ),
        model: PoseModel::Rotation,
        inliers: fit.inliers,
        covariance,
        homography: Some(homography),
        alternative: None,
        refinement_iterations: fit.iterations,
        // Per-coordinate RMS of the 2-D transfer residual, comparable to a Sampson error.
        rms_normalized: (sum / (2 * count.max(1)) as f64).sqrt(),
        sigma_normalized: fit.sigma,
    }
}

/// A rotation-only fit from `start` under the refinement schedule (transfer threshold
/// `threshold1`); `None` when too few matches fit it.
pub(super) fn refit_rotation(
    data: &NormalizedCorrespondences,
    start: &Matrix3<f64>,
    opts: &PoseOptions,
    threshold1: f64,
) -> Option<Rotation3<f64>> {
    let (x0, x1) = planar_points(data);
    let problem = RotationProblem { x0: &x0, x1: &x1 };
    let fit = refine_on_inliers(&problem, start, &opts.refinement, threshold1);
    let count = fit.inliers.iter().filter(|f| **f).count();
    (count >= RotationProblem::MIN_POINTS).then(|| Rotation3::from_matrix_unchecked(fit.model))
}

/// Pure rotation under the refinement schedule: 2-D transfer errors on the normalized plane.
struct RotationProblem<'a> {
    x0: &'a [Vector2<f64>],
    x1: &'a [Vector2<f64>],
}

impl RefineProblem for RotationProblem<'_> {
    type Model = Matrix3<f64>;
    const MIN_POINTS: usize = 3;

    fn classify(&self, r: &Matrix3<f64>, thr2: f64) -> (Vec<bool>, Vec<f64>) {
        let errors: Vec<f64> = self
            .x0
            .iter()
            .zip(self.x1)
            .map(|(a, b)| rotation_error_sq(r, a, b))
            .collect();
        (errors.iter().map(|e| *e < thr2).collect(), errors)
    }

    fn noise(inliers: &[bool], errors: &[f64], threshold: f64) -> f64 {
        noise_2d(inliers, errors, threshold)
    }

    fn refine(
        &self,
        set: &[bool],
        r: &Matrix3<f64>,
        loss: RobustLoss,
        scale: f64,
        max_iterations: usize,
    ) -> (Matrix3<f64>, usize) {
        let (a, b) = select_flagged(self.x0, self.x1, set);
        let out = refine_rotation(&a, &b, r, loss, scale, max_iterations);
        (out.params, out.iterations)
    }
}

fn planar_points(data: &NormalizedCorrespondences) -> (Vec<Vector2<f64>>, Vec<Vector2<f64>>) {
    (
        data.x0.iter().map(|p| p.xy()).collect(),
        data.x1.iter().map(|p| p.xy()).collect(),
    )
}

/// Inlier threshold for the 2-D transfer errors of the homography and rotation models, on
/// camera 1's normalized plane. With pixel noise σ on both images, the 1-D Sampson error has
/// variance ≈ σ² while the transfer error has ≈ 2σ² per coordinate in two coordinates; the
/// same 95 % acceptance (|r| < 2σ for Sampson) needs |r|² < 12σ², i.e. √3 × the threshold.
pub(super) fn transfer_threshold(opts: &PoseOptions, f1: f64) -> f64 {
    3f64.sqrt() * opts.threshold_px / f1
}

/// Outcome of the homography test.
pub(super) enum Selected {
    Rotation {
        rotation: Matrix3<f64>,
        homography: Matrix3<f64>,
    },
    Planar {
        pose: RelativePose,
        alternative: Option<RelativePose>,
        homography: Matrix3<f64>,
    },
}

/// COLMAP's rule: if one homography explains ≥ `planar_inlier_ratio` of the essential inliers,
/// the scene is planar or the motion a pure rotation. Returns `None` for the essential model.
pub(super) fn select_homography_model(
    data: &NormalizedCorrespondences,
    e_inliers: &[bool],
    opts: &PoseOptions,
    threshold: f64,
    f1: f64,
    rng: &mut Rng,
) -> Option<Selected> {
    let (x0, x1) = planar_points(data);
    let threshold1 = transfer_threshold(opts, f1);
    let h0 = dominant_homography(&x0, &x1, e_inliers, opts, threshold1, rng)?;
    // Planar or rotational: the homography on all matches, refined on its inliers.
    let (h, h_inliers, _) = refine_homography_robust(&x0, &x1, &h0, threshold1, &opts.refinement);
    let hn = orient_homography(data, &normalize_homography(&h)?, &h_inliers);
    let n_h = h_inliers.iter().filter(|b| **b).count();
    let rotation_ratio = opts.model_selection.rotation_inlier_ratio;
    if let Some(rotation) = pure_rotation(&x0, &x1, &hn, &h_inliers, threshold1, rotation_ratio) {
        return Some(Selected::Rotation {
            rotation,
            homography: hn,
        });
    }
    let candidates = plane_decompositions(data, &hn, &h_inliers, n_h, threshold)?;
    Some(choose_planar(
        data,
        &candidates,
        &h_inliers,
        opts,
        threshold,
        hn,
    ))
}

/// The homography that explains ≥ `planar_inlier_ratio` of the essential inliers, in
/// normalized coordinates, or `None` when there is none.
fn dominant_homography(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    e_inliers: &[bool],
    opts: &PoseOptions,
    threshold1: f64,
    rng: &mut Rng,
) -> Option<Matrix3<f64>> {
    let ms = &opts.model_selection;
    let (s0, s1) = select_flagged(x0, x1, e_inliers);
    if s0.len() < 8 {
        return None;
    }
    let c0 = Conditioning::of(&s0);
    let c1 = Conditioning::of(&s1);
    let cs0: Vec<Vector2<f64>> = s0.iter().map(|p| c0.apply(p)).collect();
    let cs1: Vec<Vector2<f64>> = s1.iter().map(|p| c1.apply(p)).collect();
    let thr_c = threshold1 * c1.scale;
    // Enough samples to find a homography holding `planar_inlier_ratio` of these points.
    let needed = required_iterations(ms.planar_inlier_ratio, 4, opts.confidence)
        .min(opts.max_iterations as f64) as usize;
    let settings = RansacSettings {
        confidence: opts.confidence,
        min_iterations: needed,
        max_iterations: needed.max(1),
        local_optimization: false,
    };
    let mut est = HomographyEstimator::new(&cs0, &cs1, thr_c, 1.0, 0);
    let out = ransac(&mut est, &settings, rng)?;
    let needed_count = ms.planar_inlier_ratio * s0.len() as f64;
    let (hc, h_count) = polish_homography(
        &cs0,
        &cs1,
        out.model,
        out.score.inliers,
        thr_c,
        needed_count,
    );
    if (h_count as f64) < needed_count {
        return None;
    }
    Some(c1.inverse_matrix() * hc * c0.matrix())
}

/// Truncated least-squares polish before counting: a noisy 4-point H misses inliers. A second
/// and third round (points within 2× the threshold re-selected) only when the count is short of
/// `needed_count` but not hopeless: a plane seen at a grazing angle (the ground) needs them, a
/// general scene does not pay for them. Returns the homography and its inlier count.
fn polish_homography(
    cs0: &[Vector2<f64>],
    cs1: &[Vector2<f64>],
    mut hc: Matrix3<f64>,
    mut h_count: usize,
    thr_c: f64,
    needed_count: f64,
) -> (Matrix3<f64>, usize) {
    for round in 0..3 {
        if round > 0 && ((h_count as f64) >= needed_count || (h_count as f64) < 0.5 * needed_count)
        {
            break;
        }
        let window = if round == 0 { thr_c } else { 2.0 * thr_c };
        let flags = homography_inliers(&hc, cs0, cs1, window * window);
        let (a, b) = select_flagged(cs0, cs1, &flags);
        if a.len() < 5 {
            break;
        }
        hc = refine_homography(&a, &b, &hc, RobustLoss::Truncated, thr_c, 10).params;
        h_count = homography_inliers(&hc, cs0, cs1, thr_c * thr_c)
            .iter()
            .filter(|b| **b)
            .count();
    }
    (hc, h_count)
}

/// The sign of a normalized homography that gives its inliers positive depths
/// (x1ᵀ·H·x0 > 0 for most of them).
fn orient_homography(
    data: &NormalizedCorrespondences,
    hn: &Matrix3<f64>,
    h_inliers: &[bool],
) -> Matrix3<f64> {
    let positive: i64 = h_inliers
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| {
            if data.x1[i].dot(&(hn * data.x0[i])) > 0.0 {
                1
            } else {
                -1
            }
        })
        .sum();
    if positive < 0 {
        -*hn
    } else {
        *hn
    }
}

/// Pure rotation: the closest rotation to H, refined, when it explains at least
/// `rotation_ratio` of the homography's inliers.
fn pure_rotation(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    hn: &Matrix3<f64>,
    h_inliers: &[bool],
    threshold1: f64,
    rotation_ratio: f64,
) -> Option<Matrix3<f64>> {
    let thr2 = threshold1 * threshold1;
    let n_h = h_inliers.iter().filter(|b| **b).count();
    let svd = SVD::new(*hn, true, true);
    let (u, vt) = (svd.u?, svd.v_t?);
    let mut d = Matrix3::identity();
    d[(2, 2)] = (u * vt).determinant().signum();
    let r0 = u * d * vt;
    let (a, b) = select_flagged(x0, x1, h_inliers);
    let r = refine_rotation(&a, &b, &r0, RobustLoss::Cauchy, 0.5 * threshold1, 20).params;
    let n_r = a
        .iter()
        .zip(&b)
        .filter(|(p, q)| rotation_error_sq(&r, p, q) < thr2)
        .count();
    ((n_r as f64) >= rotation_ratio * n_h as f64).then_some(r)
}

/// The decompositions of H that put the inliers in front of both cameras, with how many
/// inliers each puts behind; `None` when even the best puts more than half behind.
///
/// A point's depth sign only tells when its rays meet at a clear angle: below about twice the
/// noise (points near the epipole) it is a coin flip, so such points neither count for nor
/// against. Counting them anyway favours whichever decomposition has its epipole away from the
/// points: right for the synthetic tilted planes, wrong for a camera driving over the ground
/// (PoseLib fails ~95 % of those; with this rule imd fails ~2 %).
fn plane_decompositions(
    data: &NormalizedCorrespondences,
    hn: &Matrix3<f64>,
    h_inliers: &[bool],
    n_h: usize,
    threshold: f64,
) -> Option<Vec<RelativePose>> {
    let min_parallax = 2.0 * threshold;
    let inlier_idx: Vec<usize> = (0..h_inliers.len()).filter(|&i| h_inliers[i]).collect();
    let mut candidates: Vec<(RelativePose, usize)> = Vec::new();
    for sol in decompose_homography(hn) {
        let tn = sol.t_over_d.norm();
        if tn.is_nan() || tn <= 1e-12 {
            continue;
        }
        let r = orthonormalize(&sol.rotation);
        let t = sol.t_over_d / tn;
        let behind = inlier_idx
            .iter()
            .filter(|&&i| {
                let (x0, x1) = (&data.x0[i], &data.x1[i]);
                let u = r * x0;
                let sin = u.cross(x1).norm() / (u.norm() * x1.norm());
                let (l0, l1) = depth_numerators(&r, &t, x0, x1);
                sin > min_parallax && !(l0 > 0.0 && l1 > 0.0)
            })
            .count();
        candidates.push((
            RelativePose::new(Rotation3::from_matrix_unchecked(r), t),
            behind,
        ));
    }
    let fewest_behind = candidates.iter().map(|c| c.1).min()?;
    if (fewest_behind as f64) > 0.5 * n_h as f64 {
        return None;
    }
    // A true inlier clearly behind a camera rules a decomposition out; a little slack (0.5 %,
    // at least 2) absorbs outliers that passed the homography test.
    let slack = (0.005 * n_h as f64).max(2.0);
    Some(
        candidates
            .into_iter()
            .filter(|c| c.1 as f64 <= fewest_behind as f64 + slack)
            .map(|c| c.0)
            .collect(),
    )
}

/// Refine each surviving decomposition on the epipolar constraint and keep the one with
/// clearly more support off the plane (only points off the plane can tell them apart); when
/// neither is decisive, the smaller rotation, reporting the other as the alternative.
fn choose_planar(
    data: &NormalizedCorrespondences,
    candidates: &[RelativePose],
    h_inliers: &[bool],
    opts: &PoseOptions,
    threshold: f64,
    homography: Matrix3<f64>,
) -> Selected {
    let mut refined: Vec<(RelativePose, usize)> = candidates
        .iter()
        .map(|pose| {
            let refined = refine_on_inliers(data, pose, &opts.refinement, threshold);
            let off_plane = refined
                .inliers
                .iter()
                .zip(h_inliers)
                .filter(|(e, h)| **e && !**h)
                .count();
            (refined.model, off_plane)
        })
        .collect();
    if refined.len() == 1 {
        let (pose, _) = refined.remove(0);
        return Selected::Planar {
            pose,
            alternative: None,
            homography,
        };
    }
    refined.sort_by_key(|c| std::cmp::Reverse(c.1));
    let (a, b) = (refined[0], refined[1]);
    // Off-plane counts are Poisson-like; a difference within 3σ (plus one) is no evidence.
    let decisive = (a.1 - b.1) as f64 > 3.0 * ((a.1 + b.1) as f64).sqrt() + 1.0;
    if decisive {
        return Selected::Planar {
            pose: a.0,
            alternative: None,
            homography,
        };
    }
    // Intrinsic two-fold ambiguity: prefer the smaller rotation (motion continuity, as between
    // consecutive video frames) and report the other.
    // (A "most frontal plane" prior scores better on the synthetic grid, whose planes face the
    // camera, but picks the wrong solution for the robot's commonest plane: the ground seen
    // while driving forward.)
    let (pose, alternative) = if a.0.rotation.angle() <= b.0.rotation.angle() {
        (a.0, b.0)
    } else {
        (b.0, a.0)
    };
    Selected::Planar {
        pose,
        alternative: Some(alternative),
        homography,
    }
}
