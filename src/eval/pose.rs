//! Relative-pose benchmarks: MegaDepth-1500 and ScanNet-1500 (LoFTR's protocol, notes §3).
//!
//! Per pair, with the matches in original pixels and the original intrinsics:
//! 1. the essential-matrix pose from [`estimate_relative_pose`] with LoFTR's RANSAC settings:
//!    inlier threshold `0.5 / mean(K0[0,0], K1[1,1], K0[0,0], K1[1,1])` on normalised
//!    coordinates, confidence 0.99999. Our estimator takes a pixel threshold `τ` and uses
//!    `τ·(1/f₀ + 1/f₁)/2` on normalised coordinates (`f = (fx + fy)/2`), so `τ` is set per pair
//!    to give exactly LoFTR's normalised threshold. Model selection is off (the benchmark asks
//!    for the essential-matrix pose);
//! 2. pose error `max(R_err, t_err)` with the folded translation angle (LoFTR's
//!    `compute_pose_errors`); fewer than 5 matches or no model gives ∞;
//! 3. AUC@5/10/20 with LoFTR's `error_auc` ([`pose_auc`]) over all pairs (and all
//!    repetitions: Efficient LoFTR runs RANSAC 5× per pair and pools the errors,
//!    `ransac_times`; LoFTR once);
//! 4. matching precision: share of matches with symmetric epipolar distance (LoFTR's squared
//!    form) below 1e-4 (MegaDepth) or 5e-4 (ScanNet), averaged over pairs.
//!
//! Differences from OpenCV's `findEssentialMat(RANSAC)` + `recoverPose`: our estimator scores
//! with MSAC (truncated quadratic, not inlier counts), runs local optimisation and refines
//! the pose on the inliers with a robust loss; cheirality picks the pose as `recoverPose` does.
//! `plain_ransac` switches LO and refinement off, the closest to OpenCV. Repetitions use
//! seeds `seed + r` instead of shuffling the matches.

use nalgebra::{Matrix3, Matrix4, Rotation3, Vector3};
use serde::Serialize;

use super::{mean, EvalError, PairOutcome, SampleMatches};
use crate::data::{GroundTruth, PairSample};
use crate::geometry::metrics::{
    epipolar_precision, pose_auc, rotation_error_deg, translation_error_deg,
};
use crate::geometry::{estimate_relative_pose, CameraModel, PoseOptions, RelativePose};

/// Pose-error thresholds of the reported AUCs, degrees.
pub const AUC_THRESHOLDS: [f64; 3] = [5.0, 10.0, 20.0];

/// How the pose benchmarks score a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PoseProtocol {
    /// Symmetric epipolar distance threshold of the precision (1e-4 MegaDepth, 5e-4 ScanNet).
    pub epipolar_threshold: f64,
    /// LoFTR's RANSAC threshold in pixels before normalisation by the mean focal (0.5).
    pub ransac_threshold_px: f64,
    /// RANSAC confidence (0.99999).
    pub confidence: f64,
    /// RANSAC runs per pair, errors pooled (LoFTR 1, Efficient LoFTR 5).
    pub ransac_times: usize,
    /// Seed of the first run.
    pub seed: u64,
    /// No local optimisation, no final refinement (closest to OpenCV's RANSAC).
    pub plain_ransac: bool,
}

impl PoseProtocol {
    /// MegaDepth-1500 (precision at 1e-4).
    pub fn megadepth() -> Self {
        PoseProtocol {
            epipolar_threshold: 1e-4,
            ransac_threshold_px: 0.5,
            confidence: 0.99999,
            ransac_times: 1,
            seed: 0,
            plain_ransac: false,
        }
    }

    /// ScanNet-1500 (precision at 5e-4).
    pub fn scannet() -> Self {
        PoseProtocol {
            epipolar_threshold: 5e-4,
            ..Self::megadepth()
        }
    }

    /// Our estimator's options giving LoFTR's normalised threshold
    /// `ransac_threshold_px / mean(fx₀, fy₁, fx₀, fy₁)` for these cameras.
    pub fn options(&self, k0: &Matrix3<f64>, k1: &Matrix3<f64>, run: usize) -> PoseOptions {
        let loftr = self.ransac_threshold_px / (0.5 * (k0[(0, 0)] + k1[(1, 1)]));
        let f0 = 0.5 * (k0[(0, 0)] + k0[(1, 1)]);
        let f1 = 0.5 * (k1[(0, 0)] + k1[(1, 1)]);
        let mut o = PoseOptions {
            threshold_px: loftr / (0.5 * (1.0 / f0 + 1.0 / f1)),
            confidence: self.confidence,
            seed: self.seed + run as u64,
            ..PoseOptions::default()
        };
        o.model_selection.enabled = false;
        if self.plain_ransac {
            o.local_optimization.enabled = false;
            o.refinement.enabled = false;
        }
        o
    }
}

/// Per-pair result (one entry of the JSON's `pairs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PosePair {
    /// Pair name.
    pub name: String,
    /// Matches used.
    pub num_matches: usize,
    /// Pose error `max(R_err, t_err)` of each RANSAC run, degrees; `None` = failure (∞).
    pub errors: Vec<Option<f64>>,
    /// Rotation error of the first run, degrees.
    pub rotation_error: Option<f64>,
    /// Translation error (folded) of the first run, degrees.
    pub translation_error: Option<f64>,
    /// Inliers of the first run.
    pub num_inliers: usize,
    /// Why the first run failed.
    pub failure: Option<String>,
    /// Share of matches below the epipolar threshold (0 without matches, as LoFTR).
    pub precision: f64,
    /// Estimated rotation of the first run (row-major).
    pub rotation_est: Option<[[f64; 3]; 3]>,
    /// Estimated unit translation of the first run.
    pub translation_est: Option<[f64; 3]>,
    /// Ground truth `T_0to1` (row-major 4×4) and intrinsics (original pixels).
    pub t_0to1: [[f64; 4]; 4],
    /// Intrinsics of image 0.
    pub k0: [[f64; 3]; 3],
    /// Intrinsics of image 1.
    pub k1: [[f64; 3]; 3],
    /// Matching time, seconds.
    pub seconds: f64,
}

/// Benchmark summary (the JSON's `summary`; AUCs and precision in percent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoseSummary {
    /// Pairs evaluated.
    pub pairs: usize,
    /// AUC@5/10/20, %.
    pub auc: [f64; 3],
    /// Mean per-pair precision, %.
    pub precision: f64,
    /// The epipolar threshold of the precision.
    pub epipolar_threshold: f64,
    /// Mean matches per pair.
    pub mean_matches: f64,
    /// RANSAC runs that failed (∞ error).
    pub failures: usize,
    /// Mean matching time per pair, seconds.
    pub mean_seconds: f64,
}

fn pinhole(k: &Matrix3<f64>, size: (u32, u32)) -> CameraModel {
    CameraModel::pinhole(k[(0, 0)], k[(1, 1)], k[(0, 2)], k[(1, 2)], size.0, size.1)
}

/// `T_0to1` → the ground-truth relative pose.
pub fn relative_pose(t: &Matrix4<f64>) -> RelativePose {
    let r = t.fixed_view::<3, 3>(0, 0).into_owned();
    RelativePose::new(
        Rotation3::from_matrix(&r),
        Vector3::new(t[(0, 3)], t[(1, 3)], t[(2, 3)]),
    )
}

/// Score one pair.
pub fn score_pair(
    sample: &PairSample,
    m: &SampleMatches,
    seconds: f64,
    protocol: &PoseProtocol,
) -> Result<PosePair, EvalError> {
    let (k0, k1, t) = match &sample.ground_truth {
        GroundTruth::Pose { k0, k1, t_0to1 } | GroundTruth::Depth { k0, k1, t_0to1, .. } => {
            (k0, k1, t_0to1)
        }
        _ => {
            return Err(EvalError::input(
                &sample.name,
                "has no ground-truth pose and intrinsics",
            ))
        }
    };
    let cam0 = pinhole(k0, sample.image0.original_size);
    let cam1 = pinhole(k1, sample.image1.original_size);
    let gt = relative_pose(t);
    let precision = epipolar_precision(&m.matches, &cam0, &cam1, &gt, protocol.epipolar_threshold)?;
    let mut out = PosePair {
        name: sample.name.clone(),
        num_matches: m.matches.len(),
        errors: Vec::new(),
        rotation_error: None,
        translation_error: None,
        num_inliers: 0,
        failure: None,
        precision,
        rotation_est: None,
        translation_est: None,
        t_0to1: [0, 1, 2, 3].map(|r| [0, 1, 2, 3].map(|c| t[(r, c)])),
        k0: [0, 1, 2].map(|r| [0, 1, 2].map(|c| k0[(r, c)])),
        k1: [0, 1, 2].map(|r| [0, 1, 2].map(|c| k1[(r, c)])),
        seconds,
    };
    for run in 0..protocol.ransac_times.max(1) {
        match estimate_relative_pose(&m.matches, &cam0, &cam1, &protocol.options(k0, k1, run)) {
            Ok(est) => {
                let r_err = rotation_error_deg(&est.pose.rotation, &gt.rotation);
                let t_err = translation_error_deg(&est.pose.translation, &gt.translation);
                out.errors.push(Some(r_err.max(t_err)));
                if run == 0 {
                    let r = est.pose.rotation.matrix();
                    let t = &est.pose.translation;
                    out.rotation_error = Some(r_err);
                    out.translation_error = Some(t_err);
                    out.num_inliers = est.num_inliers;
                    out.rotation_est = Some([0, 1, 2].map(|i| [0, 1, 2].map(|j| r[(i, j)])));
                    out.translation_est = Some([t.x, t.y, t.z]);
                }
            }
            Err(e) => {
                out.errors.push(None);
                if run == 0 {
                    out.failure = Some(e.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Aggregate per-pair results.
pub fn summarize(pairs: &[PairOutcome<PosePair>], epipolar_threshold: f64) -> PoseSummary {
    let errors: Vec<f64> = pairs
        .iter()
        .flat_map(|p| p.record.errors.iter().map(|e| e.unwrap_or(f64::INFINITY)))
        .collect();
    let auc = pose_auc(&errors, &AUC_THRESHOLDS);
    PoseSummary {
        pairs: pairs.len(),
        auc: [100.0 * auc[0], 100.0 * auc[1], 100.0 * auc[2]],
        precision: 100.0 * mean(pairs.iter().map(|p| p.record.precision)),
        epipolar_threshold,
        mean_matches: mean(pairs.iter().map(|p| p.record.num_matches as f64)),
        failures: errors.iter().filter(|e| !e.is_finite()).count(),
        mean_seconds: mean(pairs.iter().map(|p| p.record.seconds)),
    }
}
