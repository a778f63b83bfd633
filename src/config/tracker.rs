//! [`TrackerConfig`]: the `tracker:` section of [`super::ImdConfig`] (read by
//! `crate::pipeline::Tracker`).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Keyframe policy, keyframe store and relocalization. Every "0 = off" field disables its
/// criterion; ROS parameters cannot be null, so there are no optional fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Tracking is lost when the pose against the keyframe has fewer inliers than this (or no
    /// pose could be estimated).
    pub min_inliers: u32,
    /// Promote the current frame to keyframe when its inliers drop below this (0 = off).
    pub keyframe_min_inliers: u32,
    /// Promote when inliers / matches drops below this (0 = off).
    pub keyframe_min_inlier_ratio: f64,
    /// Promote when the inliers cover less than this fraction of the keyframe image, measured
    /// on a `coverage_grid × coverage_grid` grid of cells (a cell counts when it holds at least
    /// one inlier): the overlap of the two views (0 = off).
    pub keyframe_min_coverage: f64,
    /// Cells per image side of the coverage grid.
    pub coverage_grid: u32,
    /// Promote when the median inlier displacement exceeds this many pixels (0 = off).
    pub keyframe_max_median_flow_px: f64,
    /// Promote when the frame is more than this many seconds newer than its keyframe (0 = off).
    pub keyframe_max_age_s: f64,
    /// Promote after this many frames were tracked against one keyframe (0 = off).
    pub keyframe_max_age_frames: u32,
    /// Keyframes kept across all cameras (each holds its image and the matcher's cached
    /// per-image features). The oldest keyframe no camera tracks against is evicted first.
    pub max_keyframes: u32,
    /// Relocalize against all stored keyframes when tracking is lost.
    pub relocalize_when_lost: bool,
    /// Keyframes matched during a relocalization, the most similar (CLIP embedding) first.
    pub relocalization_top_k: u32,
    /// Candidates whose embedding cosine similarity is below this are not matched
    /// (-1 = consider all).
    pub relocalization_min_similarity: f64,
    /// A relocalization needs a verified pose with at least this many inliers.
    pub relocalization_min_inliers: u32,
}

/// Upper bound on `tracker.coverage_grid` (cells per image side).
pub const MAX_COVERAGE_GRID: u32 = 256;
/// Upper bound on `tracker.relocalization_top_k`.
pub const MAX_RELOCALIZATION_TOP_K: u32 = 64;

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            min_inliers: 20,
            keyframe_min_inliers: 50,
            keyframe_min_inlier_ratio: 0.0,
            keyframe_min_coverage: 0.5,
            coverage_grid: 8,
            keyframe_max_median_flow_px: 0.0,
            keyframe_max_age_s: 0.0,
            keyframe_max_age_frames: 0,
            max_keyframes: 32,
            relocalize_when_lost: true,
            relocalization_top_k: 3,
            relocalization_min_similarity: -1.0,
            relocalization_min_inliers: 30,
        }
    }
}

impl TrackerConfig {
    /// Check ranges; errors name the field as `tracker.<field>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, reason: String| ConfigError::Invalid {
            field: format!("tracker.{field}"),
            reason,
        };
        let fraction = |field: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(bad(field, format!("{v} is not in [0, 1]")))
            }
        };
        fraction("keyframe_min_inlier_ratio", self.keyframe_min_inlier_ratio)?;
        fraction("keyframe_min_coverage", self.keyframe_min_coverage)?;
        for (field, v) in [
            (
                "keyframe_max_median_flow_px",
                self.keyframe_max_median_flow_px,
            ),
            ("keyframe_max_age_s", self.keyframe_max_age_s),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(bad(field, format!("{v} is not a finite number ≥ 0")));
            }
        }
        if self.coverage_grid == 0 || self.coverage_grid > MAX_COVERAGE_GRID {
            return Err(bad(
                "coverage_grid",
                format!("{} is not in [1, {MAX_COVERAGE_GRID}]", self.coverage_grid),
            ));
        }
        // Each candidate is one more pair match on a lost frame: the time a frame can take.
        if self.relocalization_top_k > MAX_RELOCALIZATION_TOP_K {
            return Err(bad(
                "relocalization_top_k",
                format!(
                    "{} is above {MAX_RELOCALIZATION_TOP_K} (each candidate costs a pair match \
                     on every lost frame)",
                    self.relocalization_top_k
                ),
            ));
        }
        if self.max_keyframes == 0 {
            return Err(bad(
                "max_keyframes",
                "is 0; every camera needs a keyframe".into(),
            ));
        }
        if !(-1.0..=1.0).contains(&self.relocalization_min_similarity) {
            return Err(bad(
                "relocalization_min_similarity",
                format!(
                    "{} is not a cosine similarity in [-1, 1]",
                    self.relocalization_min_similarity
                ),
            ));
        }
        Ok(())
    }
}
