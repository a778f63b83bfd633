//! Options of the robust estimators. `PoseOptions` is the `pose:` section of
//! [`crate::config::ImdConfig`], so every field is a plain number, string, bool or nested struct.

use serde::{Deserialize, Serialize};

use super::refine::RobustLoss;
use super::GeometryError;

/// Relative-pose estimation (RANSAC, local optimisation, refinement, model selection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoseOptions {
    /// Inlier threshold on the Sampson error, pixels. Converted to the normalized plane with
    /// `threshold_px · ½(1/f0 + 1/f1)`, f the mean focal length of each camera.
    pub threshold_px: f64,
    /// Probability of drawing at least one all-inlier sample; drives the adaptive stop.
    pub confidence: f64,
    /// Samples always drawn (guards against an early lucky-but-poor model).
    pub min_iterations: usize,
    /// Hard cap on samples.
    pub max_iterations: usize,
    /// Seed of the sampler: equal seeds give equal results on every platform.
    pub seed: u64,
    /// Fewer inliers than this is a failure ([`GeometryError::NoModel`]).
    pub min_inliers: usize,
    /// A model must explain more matches than random matches would: the inlier count must
    /// reach `5 + λ + chance_sigmas·(1 + √λ)`, λ the expected count of uniformly random matches
    /// within the threshold of one epipolar line. The margin covers RANSAC's search over many
    /// hypotheses: on uniformly random matches the best of 20 000 reaches about
    /// `5 + λ + 4√λ`. 0 disables the test.
    pub chance_sigmas: f64,
    /// Local optimisation inside RANSAC (of every minimal model that beats all earlier ones).
    pub local_optimization: LocalOptimizationOptions,
    /// Final refinement on the inliers.
    pub refinement: RefinementOptions,
    /// Essential vs homography vs rotation.
    pub model_selection: ModelSelectionOptions,
    /// Spatial block jackknife of the refined pose, blocks per image side (4: sixteen blocks
    /// of equal count): the covariance is widened to the spread of the refits that each leave
    /// one block out, which captures the matcher's spatially correlated errors the
    /// independent-noise covariance misses ([`crate::geometry::refine::jackknife`]). 0 disables.
    pub jackknife_grid: usize,
}

impl Default for PoseOptions {
    fn default() -> Self {
        PoseOptions {
            threshold_px: 1.0,
            confidence: 0.9999,
            min_iterations: 50,
            max_iterations: 100_000,
            seed: 0,
            min_inliers: 15,
            chance_sigmas: 5.0,
            local_optimization: LocalOptimizationOptions::default(),
            refinement: RefinementOptions::default(),
            model_selection: ModelSelectionOptions::default(),
            jackknife_grid: 4,
        }
    }
}

/// Local optimisation (LO-RANSAC): a few robust least-squares steps on the points near a
/// promising minimal model, with the truncated (MSAC) loss at the inlier threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalOptimizationOptions {
    /// Run it.
    pub enabled: bool,
    /// Levenberg–Marquardt iterations per run.
    pub max_iterations: usize,
    /// Points within `threshold_multiplier × threshold` of the model take part.
    pub threshold_multiplier: f64,
}

impl Default for LocalOptimizationOptions {
    fn default() -> Self {
        LocalOptimizationOptions {
            enabled: true,
            max_iterations: 10,
            threshold_multiplier: 2.0,
        }
    }
}

/// Final nonlinear refinement on the inliers.
///
/// The inliers' residuals are cut at the threshold, so the noise σ̂ is estimated from their
/// truncated second moment (see [`crate::geometry::refine::noise`]). The refinement then uses the
/// matches within `max(threshold, min(inlier_sigmas·σ̂, 2·threshold))` under the robust loss with
/// scale `loss_scale·σ̂`. A window of 3σ̂ and a Cauchy scale of 1.5σ̂ keep ≈ 86 % of the
/// least-squares efficiency on Gaussian noise while weighting the outliers that fall inside the
/// window down (to 0.2 at 3σ̂); cutting at a 1 px threshold with σ = 0.5 px and a Cauchy scale
/// of half the threshold (PoseLib's choice) keeps 63 %. On the synthetic grid 1.5σ̂ beat 2.385σ̂
/// (95 % efficiency) once outliers exceed half the matches, and tied elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefinementOptions {
    /// Run it.
    pub enabled: bool,
    /// Levenberg–Marquardt iterations.
    pub max_iterations: usize,
    /// Robust loss: `squared`, `cauchy`, `huber` or `truncated`.
    pub loss: RobustLoss,
    /// Loss scale in units of the estimated noise σ̂.
    pub loss_scale: f64,
    /// Half-width of the refinement window in units of σ̂ (clamped to [1, 2] × threshold).
    pub inlier_sigmas: f64,
}

impl Default for RefinementOptions {
    fn default() -> Self {
        RefinementOptions {
            enabled: true,
            max_iterations: 100,
            loss: RobustLoss::Cauchy,
            loss_scale: 1.5,
            inlier_sigmas: 3.0,
        }
    }
}

impl RefinementOptions {
    /// The refinement window for noise `sigma` and inlier threshold `threshold` (same units).
    pub fn window(&self, sigma: f64, threshold: f64) -> f64 {
        (self.inlier_sigmas * sigma).clamp(threshold, 2.0 * threshold)
    }
}

/// Model selection for planar scenes and pure rotation (COLMAP's inlier-ratio rule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSelectionOptions {
    /// Test for homographies at all (off: always the essential model).
    pub enabled: bool,
    /// The scene counts as planar (or rotational) when one homography explains at least this
    /// fraction of the essential-matrix inliers.
    pub planar_inlier_ratio: f64,
    /// Then it counts as a pure rotation when a rotation alone explains at least this
    /// fraction of the homography inliers (parallax below the threshold).
    pub rotation_inlier_ratio: f64,
}

impl Default for ModelSelectionOptions {
    fn default() -> Self {
        ModelSelectionOptions {
            enabled: true,
            planar_inlier_ratio: 0.8,
            rotation_inlier_ratio: 0.9,
        }
    }
}

/// Homography estimation from pixel matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomographyOptions {
    /// Inlier threshold on the transfer error in image 1, pixels.
    pub threshold_px: f64,
    /// Probability of drawing at least one all-inlier sample.
    pub confidence: f64,
    /// Samples always drawn.
    pub min_iterations: usize,
    /// Hard cap on samples.
    pub max_iterations: usize,
    /// Sampler seed.
    pub seed: u64,
    /// Fewer inliers than this is a failure.
    pub min_inliers: usize,
    /// Local optimisation inside RANSAC.
    pub local_optimization: LocalOptimizationOptions,
    /// Final refinement on the inliers.
    pub refinement: RefinementOptions,
}

impl Default for HomographyOptions {
    fn default() -> Self {
        HomographyOptions {
            threshold_px: 3.0,
            confidence: 0.9999,
            min_iterations: 50,
            max_iterations: 100_000,
            seed: 0,
            min_inliers: 8,
            local_optimization: LocalOptimizationOptions::default(),
            refinement: RefinementOptions::default(),
        }
    }
}

fn invalid(field: &str, reason: String) -> GeometryError {
    GeometryError::InvalidOption {
        field: field.to_string(),
        reason,
    }
}

fn positive(field: &str, v: f64) -> Result<(), GeometryError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(invalid(field, format!("{v} is not a finite number > 0")))
    }
}

/// Most RANSAC samples (`max_iterations`, `min_iterations`) a setting may ask for: each
/// sample costs microseconds, so this bounds one estimate to seconds even on a slow core, and
/// a live parameter cannot wedge the worker.
pub const MAX_RANSAC_ITERATIONS: usize = 1_000_000;
/// Most Levenberg–Marquardt iterations per local optimisation.
pub const MAX_LOCAL_ITERATIONS: usize = 1_000;
/// Most Levenberg–Marquardt iterations of the final refinement.
pub const MAX_REFINEMENT_ITERATIONS: usize = 10_000;

fn at_most(field: String, v: usize, max: usize) -> Result<(), GeometryError> {
    if v > max {
        return Err(invalid(
            &field,
            format!(
                "{v} is more than {max}, the most that keeps the time per frame bounded \
                 (the default is far below)"
            ),
        ));
    }
    Ok(())
}

fn common(
    prefix: &str,
    threshold_px: f64,
    confidence: f64,
    min_iterations: usize,
    max_iterations: usize,
    lo: &LocalOptimizationOptions,
    refinement: &RefinementOptions,
) -> Result<(), GeometryError> {
    positive(&format!("{prefix}threshold_px"), threshold_px)?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(invalid(
            &format!("{prefix}confidence"),
            format!("{confidence} is not in (0, 1)"),
        ));
    }
    at_most(
        format!("{prefix}max_iterations"),
        max_iterations,
        MAX_RANSAC_ITERATIONS,
    )?;
    at_most(
        format!("{prefix}local_optimization.max_iterations"),
        lo.max_iterations,
        MAX_LOCAL_ITERATIONS,
    )?;
    at_most(
        format!("{prefix}refinement.max_iterations"),
        refinement.max_iterations,
        MAX_REFINEMENT_ITERATIONS,
    )?;
    if max_iterations == 0 || min_iterations > max_iterations {
        return Err(invalid(
            &format!("{prefix}max_iterations"),
            format!("{max_iterations} must be ≥ 1 and ≥ min_iterations ({min_iterations})"),
        ));
    }
    positive(
        &format!("{prefix}local_optimization.threshold_multiplier"),
        lo.threshold_multiplier,
    )?;
    positive(
        &format!("{prefix}refinement.loss_scale"),
        refinement.loss_scale,
    )?;
    positive(
        &format!("{prefix}refinement.inlier_sigmas"),
        refinement.inlier_sigmas,
    )
}

/// Most jackknife blocks per image side (64 refits per pose).
pub const MAX_JACKKNIFE_GRID: usize = 8;

impl PoseOptions {
    /// Check ranges; errors name the field as in the config (`pose.…`).
    pub fn validate(&self) -> Result<(), GeometryError> {
        common(
            "pose.",
            self.threshold_px,
            self.confidence,
            self.min_iterations,
            self.max_iterations,
            &self.local_optimization,
            &self.refinement,
        )?;
        if !(self.chance_sigmas.is_finite() && self.chance_sigmas >= 0.0) {
            return Err(invalid(
                "pose.chance_sigmas",
                format!("{} is not a finite number ≥ 0", self.chance_sigmas),
            ));
        }
        if self.jackknife_grid == 1 || self.jackknife_grid > MAX_JACKKNIFE_GRID {
            return Err(invalid(
                "pose.jackknife_grid",
                format!(
                    "{} is not 0 (off) or 2..={MAX_JACKKNIFE_GRID} blocks per side",
                    self.jackknife_grid
                ),
            ));
        }
        let ms = &self.model_selection;
        for (name, v) in [
            ("planar_inlier_ratio", ms.planar_inlier_ratio),
            ("rotation_inlier_ratio", ms.rotation_inlier_ratio),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(invalid(
                    &format!("pose.model_selection.{name}"),
                    format!("{v} is not in (0, 1]"),
                ));
            }
        }
        Ok(())
    }
}

/// Absolute pose (PnP) from keyframe points in metres and current-image pixels: LO-MSAC over
/// P3P on the reprojection error, then the robust refinement of [`RefinementOptions`] on SE(3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbsolutePoseOptions {
    /// Inlier threshold on the reprojection error in the current image, pixels (converted to
    /// the normalized plane with the camera's mean focal length). Lifted depth adds its own
    /// error to the matcher's, hence more than the relative-pose threshold.
    pub threshold_px: f64,
    /// Probability of drawing at least one all-inlier sample; drives the adaptive stop.
    pub confidence: f64,
    /// Samples always drawn.
    pub min_iterations: usize,
    /// Hard cap on samples.
    pub max_iterations: usize,
    /// Sampler seed.
    pub seed: u64,
    /// Fewer inliers than this is a failure ([`GeometryError::NoModel`]).
    pub min_inliers: usize,
    /// Local optimisation inside RANSAC.
    pub local_optimization: LocalOptimizationOptions,
    /// Final refinement on the inliers.
    pub refinement: RefinementOptions,
}

impl Default for AbsolutePoseOptions {
    fn default() -> Self {
        AbsolutePoseOptions {
            threshold_px: 2.0,
            confidence: 0.9999,
            min_iterations: 20,
            max_iterations: 10_000,
            seed: 0,
            min_inliers: 12,
            local_optimization: LocalOptimizationOptions::default(),
            // The Cauchy weight acts on the squared norm of a 2-D residual, whose mean is 2σ²
            // (twice the 1-D Sampson case): a scale of 3σ̂ keeps its efficiency near the
            // relative-pose setting's, where 1.5σ̂ lost accuracy to PoseLib's 2σ (1 px).
            refinement: RefinementOptions {
                loss_scale: 3.0,
                ..RefinementOptions::default()
            },
        }
    }
}

impl super::checked::Validate for AbsolutePoseOptions {
    fn validate(&self) -> Result<(), GeometryError> {
        AbsolutePoseOptions::validate(self)
    }
}

impl AbsolutePoseOptions {
    /// Check ranges; errors name the field (`absolute_pose.…`).
    pub fn validate(&self) -> Result<(), GeometryError> {
        common(
            "absolute_pose.",
            self.threshold_px,
            self.confidence,
            self.min_iterations,
            self.max_iterations,
            &self.local_optimization,
            &self.refinement,
        )
    }
}

impl HomographyOptions {
    /// Check ranges.
    pub fn validate(&self) -> Result<(), GeometryError> {
        common(
            "homography.",
            self.threshold_px,
            self.confidence,
            self.min_iterations,
            self.max_iterations,
            &self.local_optimization,
            &self.refinement,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackknife_grid_is_off_or_two_to_eight_blocks_per_side() {
        for grid in [0, 2, 4, MAX_JACKKNIFE_GRID] {
            let opts = PoseOptions {
                jackknife_grid: grid,
                ..PoseOptions::default()
            };
            assert!(opts.validate().is_ok(), "{grid}");
        }
        for grid in [1, MAX_JACKKNIFE_GRID + 1, usize::MAX] {
            let opts = PoseOptions {
                jackknife_grid: grid,
                ..PoseOptions::default()
            };
            let err = opts.validate().unwrap_err().to_string();
            assert!(err.contains("pose.jackknife_grid"), "{grid}: {err}");
        }
    }
}
