//! The one robust refinement schedule every estimation problem uses (as PoseLib keeps one
//! `refine<>`): refine on the correspondences within the noise-adapted window
//! ([`RefinementOptions::window`]), re-select the inliers at the user's threshold, re-estimate
//! the noise σ̂ from them, and repeat while the inlier set changes, at most [`MAX_ROUNDS`]
//! times. A problem ([`RefineProblem`]) says how it scores, refines and measures noise; the
//! covariance is then computed on what the final refinement used ([`covariance_inputs`]).

use super::noise::{sigma_truncated_1d, sigma_truncated_2d};
use super::RobustLoss;
use crate::geometry::options::RefinementOptions;

/// Most refinement rounds.
pub const MAX_ROUNDS: usize = 3;

/// An estimation problem the schedule can refine.
pub(crate) trait RefineProblem {
    /// What is estimated.
    type Model: Copy;
    /// Fewest correspondences a refinement round needs.
    const MIN_POINTS: usize;
    /// Per correspondence: within `thr2` (and otherwise valid, e.g. in front of the cameras),
    /// and the squared error (∞ where invalid).
    fn classify(&self, model: &Self::Model, thr2: f64) -> (Vec<bool>, Vec<f64>);
    /// σ̂ of the residuals from the inliers' squared errors, cut at `threshold`.
    fn noise(inliers: &[bool], errors: &[f64], threshold: f64) -> f64;
    /// Robust refinement on the correspondences flagged in `set`; the model and the
    /// iterations taken.
    fn refine(
        &self,
        set: &[bool],
        model: &Self::Model,
        loss: RobustLoss,
        scale: f64,
        max_iterations: usize,
    ) -> (Self::Model, usize);
}

/// A model after the schedule.
pub(crate) struct Refined<M> {
    /// The refined model.
    pub model: M,
    /// Inliers at the user's threshold.
    pub inliers: Vec<bool>,
    /// Squared errors of every correspondence.
    pub errors: Vec<f64>,
    /// Solver iterations over all rounds.
    pub iterations: usize,
    /// Noise σ̂ of the inliers.
    pub sigma: f64,
}

/// Run the schedule from `model` (see the module doc).
pub(crate) fn refine_on_inliers<P: RefineProblem>(
    problem: &P,
    model: &P::Model,
    refinement: &RefinementOptions,
    threshold: f64,
) -> Refined<P::Model> {
    let thr2 = threshold * threshold;
    let mut model = *model;
    let (mut inliers, mut errors) = problem.classify(&model, thr2);
    let mut sigma = P::noise(&inliers, &errors, threshold);
    let mut iterations = 0;
    if refinement.enabled {
        for _ in 0..MAX_ROUNDS {
            let window = refinement.window(sigma, threshold);
            let (set, _) = problem.classify(&model, window * window);
            if set.iter().filter(|f| **f).count() < P::MIN_POINTS {
                break;
            }
            let (next_model, taken) = problem.refine(
                &set,
                &model,
                refinement.loss,
                refinement.loss_scale * sigma,
                refinement.max_iterations,
            );
            iterations += taken;
            model = next_model;
            let (next, next_errors) = problem.classify(&model, thr2);
            let changed = next != inliers;
            inliers = next;
            errors = next_errors;
            sigma = P::noise(&inliers, &errors, threshold);
            if !changed {
                break;
            }
        }
    }
    Refined {
        model,
        inliers,
        errors,
        iterations,
        sigma,
    }
}

/// The correspondences, loss and squared scale the covariance of `refined` describes: the
/// final refinement's (same window, same loss), or the inliers under least squares when
/// refinement is off.
pub(crate) fn covariance_inputs<P: RefineProblem>(
    problem: &P,
    refined: &Refined<P::Model>,
    refinement: &RefinementOptions,
    threshold: f64,
) -> (Vec<bool>, RobustLoss, f64) {
    if refinement.enabled {
        let window = refinement.window(refined.sigma, threshold);
        let scale = refinement.loss_scale * refined.sigma;
        (
            problem.classify(&refined.model, window * window).0,
            refinement.loss,
            scale * scale,
        )
    } else {
        (refined.inliers.clone(), RobustLoss::Squared, 1.0)
    }
}

/// Mean of the inliers' squared errors and their count.
fn inlier_mean(inliers: &[bool], errors: &[f64]) -> (f64, usize) {
    let (sum, count) = inliers
        .iter()
        .zip(errors)
        .filter(|(f, _)| **f)
        .fold((0.0, 0usize), |(s, c), (_, e)| (s + e, c + 1));
    (sum / count.max(1) as f64, count)
}

/// σ̂ of 1-D residuals (Sampson errors); half the threshold with fewer than two inliers.
pub(crate) fn noise_1d(inliers: &[bool], errors: &[f64], threshold: f64) -> f64 {
    match inlier_mean(inliers, errors) {
        (_, count) if count < 2 => 0.5 * threshold,
        (mean, _) => sigma_truncated_1d(mean, threshold),
    }
}

/// σ̂ per coordinate of 2-D residuals (reprojection or transfer errors); half the threshold
/// with fewer than two inliers.
pub(crate) fn noise_2d(inliers: &[bool], errors: &[f64], threshold: f64) -> f64 {
    match inlier_mean(inliers, errors) {
        (_, count) if count < 2 => 0.5 * threshold,
        (mean, _) => sigma_truncated_2d(mean, threshold),
    }
}
