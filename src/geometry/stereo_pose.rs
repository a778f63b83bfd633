//! [`estimate_stereo_pose`]: the current camera's metric pose against a stereo keyframe. PnP
//! ([`super::estimate_absolute_pose`]) on the keyframe's triangulated points finds the inliers
//! and a first pose; the joint refinement of [`super::refine::stereo_pose`] then frees every
//! inlier's depth, constrained by its right-image pixel, so the depths' noise neither biases the
//! pose nor is missing from its covariance.

use nalgebra::Vector2;

use super::absolute_pose::{estimate_absolute_pose, AbsolutePoseEstimate};
use super::camera::CameraModel;
use super::checked::Checked;
use super::options::AbsolutePoseOptions;
use super::points::PixelPoint;
use super::refine::stereo_pose::{refine_stereo_pose, track_fits, StereoModel, StereoTrack};
use super::stereo::StereoRig;
use super::structure::{CameraPoint, PointMatch};
use super::GeometryError;

/// A keyframe point triangulated by the rig and seen again in the current image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StereoPointMatch {
    /// The triangulated point, metres, in the keyframe's left camera frame.
    pub point: CameraPoint,
    /// Its pixel in the keyframe's right image.
    pub right: PixelPoint,
    /// Its pixel in the current image.
    pub pixel: PixelPoint,
    /// `right` was measured at this keyframe pixel (a left–right match or the patches), not
    /// carried over from a neighbouring keyframe pixel.
    pub right_measured: bool,
}

/// Estimate the current camera's pose (seen by `camera`) from points of a stereo keyframe.
/// `right_sigma_px`: the noise of measured right pixels (0: weighted like the matches); with
/// it, they weigh `(σ̂/right_sigma_px)²` times a match, σ̂ the matches' own residual σ of the
/// pass before. Errors as [`estimate_absolute_pose`]; when the joint refinement cannot run
/// (degenerate inliers) the PnP estimate is returned as it is.
pub fn estimate_stereo_pose(
    matches: &[StereoPointMatch],
    rig: &StereoRig,
    camera: &CameraModel,
    opts: &Checked<AbsolutePoseOptions>,
    right_sigma_px: f64,
) -> Result<AbsolutePoseEstimate, GeometryError> {
    let points: Vec<PointMatch> = matches
        .iter()
        .map(|m| PointMatch {
            point: m.point,
            pixel: m.pixel,
        })
        .collect();
    let mut estimate = estimate_absolute_pose(&points, camera, opts)?;
    if !opts.refinement.enabled {
        return Ok(estimate);
    }
    let mut tracks = Vec::with_capacity(matches.len());
    let mut source = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().enumerate() {
        let (Ok(right), Ok(current)) = (rig.right.normalize(&m.right), camera.normalize(&m.pixel))
        else {
            continue;
        };
        let z = m.point.z;
        tracks.push(StereoTrack {
            ray: m.point.vector() / z,
            right: Vector2::new(right.x, right.y),
            current: Vector2::new(current.x, current.y),
            right_measured: m.right_measured,
            inverse_depth: 1.0 / z,
        });
        source.push(i);
    }
    let mut model = StereoModel {
        right_from_left: &rig.right_from_left,
        right_focal: rig.right.intrinsics.focal(),
        current_focal: camera.intrinsics.focal(),
        right_weight: 1.0,
    };
    // Which tracks the joint refinement sees. Not every correspondence: with the robust loss
    // alone, a learned matcher's moderately wrong matches (a few pixels off, about a third of
    // the demo model's lifted ones) each fit through their free depth, and together pulled
    // poses 20–40 % off on the stereo loop of scripts/fixtures/make_odom_fixtures.py. Not PnP's
    // inliers alone either: PnP judged them against fixed, noisy depths, so it drops far points
    // whose depth error, not their match, is off, and keeps those whose error suits its pose. So:
    // PnP's inliers first, then every track that fits the refined pose within the inlier threshold
    // in both images once its own depth is free, and the refinement again on those.
    let mut selected: Vec<bool> = source.iter().map(|&i| estimate.inliers[i]).collect();
    for round in 0..2 {
        let subset: Vec<StereoTrack> = tracks
            .iter()
            .zip(&selected)
            .filter(|(_, s)| **s)
            .map(|(t, _)| *t)
            .collect();
        let subset_source: Vec<usize> = source
            .iter()
            .zip(&selected)
            .filter(|(_, s)| **s)
            .map(|(i, _)| *i)
            .collect();
        // Two passes: the second with the loss scaled to the joint model's own residual σ̂
        // (PnP's σ̂ includes the depth errors the joint model explains).
        let mut sigma = estimate.noise_sigma_px.max(0.05);
        for _ in 0..2 {
            let Some(refined) = refine_stereo_pose(
                &model,
                &subset,
                &estimate.pose,
                opts.refinement.loss,
                opts.refinement.loss_scale * sigma,
                opts.threshold_px,
                opts.refinement.max_iterations,
            ) else {
                break;
            };
            sigma = refined.sigma_px.max(0.05);
            if let Some(c) = refined.sigma_current_px.filter(|_| right_sigma_px > 0.0) {
                model.right_weight = right_weight(c, right_sigma_px);
            }
            estimate.pose = refined.pose;
            estimate.covariance = refined.covariance;
            estimate.noise_sigma_px = refined.sigma_px;
            estimate.refinement_iterations += refined.iterations;
            let mut inliers = vec![false; matches.len()];
            for (&i, ok) in subset_source.iter().zip(&refined.inliers) {
                inliers[i] = *ok;
            }
            estimate.num_inliers = inliers.iter().filter(|b| **b).count();
            estimate.inliers = inliers;
        }
        if round == 0 {
            selected = tracks
                .iter()
                .map(|t| track_fits(&model, &estimate.pose, t, opts.threshold_px))
                .collect();
        }
    }
    Ok(estimate)
}

/// The measured right pixels' weight, `(σ_current/σ_right)²`, kept within
/// [`RIGHT_WEIGHT_RANGE`]: a pass with few inliers measures σ poorly.
fn right_weight(sigma_current_px: f64, sigma_right_px: f64) -> f64 {
    let (lo, hi) = RIGHT_WEIGHT_RANGE;
    let w = (sigma_current_px / sigma_right_px.max(1e-3)).powi(2);
    if w.is_finite() {
        w.clamp(lo, hi)
    } else {
        1.0
    }
}

/// Bounds of [`right_weight`]: right pixels never weigh less than a match (they are not noisier:
/// triangulation checked them), at most as 10× less noisy.
const RIGHT_WEIGHT_RANGE: (f64, f64) = (1.0, 100.0);
