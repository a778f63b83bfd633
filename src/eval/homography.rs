//! Homography benchmarks: HPatches (DKM's protocol, notes §3) and synthetic homographies.
//!
//! Per pair, with the matches in original pixels:
//! 1. `H_est` from [`estimate_homography`] (LO-MSAC + refinement) with the inlier threshold
//!    `3·s` px and confidence 0.99999, where `s = min(w₁, h₁)/480` for HPatches (DKM's
//!    `ransacReprojThreshold = 3·min(w2, h2)/480`) and `s = 1` for synthetic pairs;
//! 2. corner error: mean distance between image 0's corners `(0,0), (0,h−1), (w−1,0),
//!    (w−1,h−1)` mapped by `H_est` and by `H_gt` ([`homography_corner_error`]), divided by
//!    `s`; a failed estimate (too few matches, no model) counts as an infinite error (DKM
//!    substitutes a degenerate matrix, which gives a huge error as well);
//! 3. AUC@3/5/10 of the corner errors with LoFTR's `error_auc` ([`pose_auc`]);
//! 4. matching precision: share of matches with `‖H_gt·p₀ − p₁‖ < t` for t = 1, 3, 5 px
//!    (original image-1 pixels).
//!
//! Differences from DKM's OpenCV RANSAC: our estimator scores with MSAC, runs local
//! optimisation and refines the inliers with a robust loss (all documented in
//! `crate::geometry`); `plain_ransac` switches LO and refinement off, which is the closest
//! to `cv2.findHomography(RANSAC)`.

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;

use super::{mean, median, EvalError, PairOutcome, SampleMatches};
use crate::data::{GroundTruth, PairSample};
use crate::geometry::metrics::{homography_corner_error, pose_auc};
use crate::geometry::{estimate_homography, HomographyOptions, PixelMatch};

/// Corner-error thresholds of the reported AUCs, in (normalised) pixels.
pub const AUC_THRESHOLDS: [f64; 3] = [3.0, 5.0, 10.0];
/// Reprojection thresholds of the matching precision, in pixels.
pub const PRECISION_THRESHOLDS: [f64; 3] = [1.0, 3.0, 5.0];

/// How the homography benchmarks score a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct HomographyProtocol {
    /// Normalise thresholds and errors by `min(w₁, h₁)/480` (HPatches) or not (synthetic).
    pub normalize_480: bool,
    /// RANSAC inlier threshold before normalisation (3 px).
    pub ransac_threshold_px: f64,
    /// RANSAC confidence (0.99999).
    pub confidence: f64,
    /// RANSAC seed.
    pub seed: u64,
    /// No local optimisation, no final refinement (closest to OpenCV's RANSAC).
    pub plain_ransac: bool,
}

impl HomographyProtocol {
    /// DKM's HPatches protocol.
    pub fn hpatches() -> Self {
        HomographyProtocol {
            normalize_480: true,
            ransac_threshold_px: 3.0,
            confidence: 0.99999,
            seed: 0,
            plain_ransac: false,
        }
    }

    /// The same in plain pixels of the generated images.
    pub fn synthetic() -> Self {
        HomographyProtocol {
            normalize_480: false,
            ..Self::hpatches()
        }
    }

    fn options(&self, scale: f64) -> HomographyOptions {
        let mut o = HomographyOptions {
            threshold_px: self.ransac_threshold_px * scale,
            confidence: self.confidence,
            seed: self.seed,
            ..HomographyOptions::default()
        };
        if self.plain_ransac {
            o.local_optimization.enabled = false;
            o.refinement.enabled = false;
        }
        o
    }
}

/// Per-pair result (one entry of the JSON's `pairs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomographyPair {
    /// Pair name.
    pub name: String,
    /// Matches used.
    pub num_matches: usize,
    /// Corner error (÷ s for HPatches); `None` when the estimate failed (counted as ∞).
    pub corner_error: Option<f64>,
    /// Why the estimate failed.
    pub failure: Option<String>,
    /// RANSAC inliers.
    pub num_inliers: usize,
    /// Share of matches within 1 / 3 / 5 px of the ground truth (`None` without matches).
    pub precision: [Option<f64>; 3],
    /// Estimated homography (row-major), image-0 → image-1 original pixels.
    pub h_est: Option<[[f64; 3]; 3]>,
    /// Ground-truth homography (row-major).
    pub h_gt: [[f64; 3]; 3],
    /// Image 0 original size `(w, h)` (the corners' frame).
    pub size0: (u32, u32),
    /// Image 1 original size.
    pub size1: (u32, u32),
    /// Matching time, seconds.
    pub seconds: f64,
}

/// Benchmark summary (the JSON's `summary`; AUCs and precisions in percent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomographySummary {
    /// Pairs evaluated.
    pub pairs: usize,
    /// AUC@3/5/10 of the corner errors, %.
    pub auc: [f64; 3],
    /// Mean over pairs of the per-pair precision at 1 / 3 / 5 px, % (pairs without matches
    /// count as 0, as LoFTR's precision).
    pub precision: [f64; 3],
    /// Share of all matches of all pairs within 1 / 3 / 5 px, %.
    pub precision_pooled: [f64; 3],
    /// Median corner error over the pairs whose estimate succeeded.
    pub median_corner_error: f64,
    /// Mean matches per pair.
    pub mean_matches: f64,
    /// Pairs whose estimate failed.
    pub failures: usize,
    /// Mean matching time per pair, seconds.
    pub mean_seconds: f64,
}

fn rows(m: &Matrix3<f64>) -> [[f64; 3]; 3] {
    [
        [m[(0, 0)], m[(0, 1)], m[(0, 2)]],
        [m[(1, 0)], m[(1, 1)], m[(1, 2)]],
        [m[(2, 0)], m[(2, 1)], m[(2, 2)]],
    ]
}

/// `‖H·p₀ − p₁‖` of every match, pixels (∞ where `H·p₀` is at infinity).
pub fn reprojection_errors(h: &Matrix3<f64>, matches: &[PixelMatch]) -> Vec<f64> {
    matches
        .iter()
        .map(|m| {
            let q = h * Vector3::new(m.p0.x, m.p0.y, 1.0);
            let e = (q.x / q.z - m.p1.x).hypot(q.y / q.z - m.p1.y);
            if e.is_nan() {
                f64::INFINITY
            } else {
                e
            }
        })
        .collect()
}

/// Score one pair.
pub fn score_pair(
    sample: &PairSample,
    m: &SampleMatches,
    seconds: f64,
    protocol: &HomographyProtocol,
) -> Result<HomographyPair, EvalError> {
    let GroundTruth::Homography { h_0to1 } = &sample.ground_truth else {
        return Err(EvalError::input(
            &sample.name,
            "has no ground-truth homography",
        ));
    };
    let size0 = sample.image0.original_size;
    let size1 = sample.image1.original_size;
    let scale = if protocol.normalize_480 {
        size1.0.min(size1.1) as f64 / 480.0
    } else {
        1.0
    };
    let errors = reprojection_errors(h_0to1, &m.matches);
    let precision = PRECISION_THRESHOLDS.map(|t| {
        (!errors.is_empty())
            .then(|| errors.iter().filter(|&&e| e < t).count() as f64 / errors.len() as f64)
    });
    let (corner_error, failure, num_inliers, h_est) =
        match estimate_homography(&m.matches, &protocol.options(scale)) {
            Ok(est) => (
                Some(homography_corner_error(&est.h, h_0to1, size0.0, size0.1) / scale),
                None,
                est.num_inliers,
                Some(rows(&est.h)),
            ),
            Err(e) => (None, Some(e.to_string()), 0, None),
        };
    // An estimate mapping a corner to infinity is a failure too.
    let corner_error = corner_error.filter(|e| e.is_finite());
    Ok(HomographyPair {
        name: sample.name.clone(),
        num_matches: m.matches.len(),
        corner_error,
        failure,
        num_inliers,
        precision,
        h_est,
        h_gt: rows(h_0to1),
        size0,
        size1,
        seconds,
    })
}

/// Aggregate per-pair results.
pub fn summarize(pairs: &[PairOutcome<HomographyPair>]) -> HomographySummary {
    let errors: Vec<f64> = pairs
        .iter()
        .map(|p| p.record.corner_error.unwrap_or(f64::INFINITY))
        .collect();
    let auc = pose_auc(&errors, &AUC_THRESHOLDS);
    let precision =
        [0, 1, 2].map(|k| 100.0 * mean(pairs.iter().map(|p| p.record.precision[k].unwrap_or(0.0))));
    let total: usize = pairs.iter().map(|p| p.record.num_matches).sum();
    let precision_pooled = [0, 1, 2].map(|k| {
        let good: f64 = pairs
            .iter()
            .map(|p| p.record.precision[k].unwrap_or(0.0) * p.record.num_matches as f64)
            .sum();
        if total > 0 {
            100.0 * good / total as f64
        } else {
            0.0
        }
    });
    HomographySummary {
        pairs: pairs.len(),
        auc: [100.0 * auc[0], 100.0 * auc[1], 100.0 * auc[2]],
        precision,
        precision_pooled,
        median_corner_error: median(pairs.iter().filter_map(|p| p.record.corner_error)),
        mean_matches: mean(pairs.iter().map(|p| p.record.num_matches as f64)),
        failures: pairs
            .iter()
            .filter(|p| p.record.corner_error.is_none())
            .count(),
        mean_seconds: mean(pairs.iter().map(|p| p.record.seconds)),
    }
}
