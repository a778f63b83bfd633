//! Evaluation metrics: pose errors and AUC as in LoFTR (`src/utils/metrics.py`), homography
//! corner error as in the HPatches protocol (DKM's benchmark), epipolar precision.

use nalgebra::{Matrix3, Rotation3, Vector3};

use super::camera::CameraModel;
use super::points::{NormalizedPoint, PixelMatch};
use super::pose::RelativePose;
use super::GeometryError;

/// Angle of `R_estᵀ·R_gt` in degrees: `acos(clip((tr − 1)/2))`, as LoFTR.
pub fn rotation_error_deg(r_est: &Rotation3<f64>, r_gt: &Rotation3<f64>) -> f64 {
    let cos = ((r_est.matrix().transpose() * r_gt.matrix()).trace() - 1.0) / 2.0;
    cos.clamp(-1.0, 1.0).acos().to_degrees().abs()
}

/// Angle between translation directions in degrees, *unfolded* (0…180; a flipped sign counts
/// as 180°, as posebench). A zero ground truth (pure rotation) gives 0; a zero estimate against
/// a non-zero ground truth gives 90° (no information about the direction).
pub fn translation_error_unfolded_deg(t_est: &Vector3<f64>, t_gt: &Vector3<f64>) -> f64 {
    let n = t_est.norm() * t_gt.norm();
    if t_gt.norm() == 0.0 {
        return 0.0;
    }
    if n == 0.0 {
        return 90.0;
    }
    (t_est.dot(t_gt) / n).clamp(-1.0, 1.0).acos().to_degrees()
}

/// LoFTR's translation error: the unfolded angle θ folded to `min(θ, 180 − θ)`, which forgives
/// the sign ambiguity of an essential matrix.
pub fn translation_error_deg(t_est: &Vector3<f64>, t_gt: &Vector3<f64>) -> f64 {
    let t = translation_error_unfolded_deg(t_est, t_gt);
    t.min(180.0 - t)
}

/// LoFTR's pose error: `max(rotation error, folded translation error)`, degrees.
pub fn pose_error_deg(est: &RelativePose, gt: &RelativePose) -> f64 {
    rotation_error_deg(&est.rotation, &gt.rotation)
        .max(translation_error_deg(&est.translation, &gt.translation))
}

/// `max(rotation error, unfolded translation error)`, degrees (the stricter, posebench form).
pub fn pose_error_unfolded_deg(est: &RelativePose, gt: &RelativePose) -> f64 {
    rotation_error_deg(&est.rotation, &gt.rotation).max(translation_error_unfolded_deg(
        &est.translation,
        &gt.translation,
    ))
}

/// Area under the recall-vs-error curve up to each threshold, divided by the threshold: exactly
/// LoFTR's `error_auc` (also SuperGlue's and DKM's `pose_auc`). Errors are prefixed with 0,
/// sorted, paired with recall `linspace(0, 1, n + 1)`, cut at the first error ≥ threshold and
/// integrated with the trapezoid rule. Failures should be passed as `f64::INFINITY`; NaN is
/// treated as infinity. Returns fractions in [0, 1].
pub fn pose_auc(errors: &[f64], thresholds: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = errors
        .iter()
        .map(|&e| if e.is_nan() { f64::INFINITY } else { e })
        .collect();
    sorted.sort_by(f64::total_cmp);
    let mut e = Vec::with_capacity(sorted.len() + 1);
    e.push(0.0);
    e.extend(sorted);
    let m = e.len();
    // numpy.linspace(0, 1, m): i/(m − 1), and [0.0] when m = 1.
    let recall = |i: usize| {
        if m > 1 {
            i as f64 / (m - 1) as f64
        } else {
            0.0
        }
    };
    thresholds
        .iter()
        .map(|&thr| {
            // numpy.searchsorted(e, thr) (side = 'left'): first index with e[i] ≥ thr.
            let k = e.partition_point(|&x| x < thr);
            if k == 0 {
                return 0.0 / thr;
            }
            let mut area = 0.0;
            for i in 1..k {
                area += (e[i] - e[i - 1]) * (recall(i) + recall(i - 1)) / 2.0;
            }
            // The curve is held flat from the last error below thr to thr.
            area += (thr - e[k - 1]) * recall(k - 1);
            area / thr
        })
        .collect()
}

/// Mean distance, in image-1 pixels, between the four image-0 corners `(0,0), (0,h−1),
/// (w−1,0), (w−1,h−1)` mapped by the estimated and by the true homography (HPatches protocol as
/// in DKM's benchmark; divide by `min(w1, h1)/480` for their resolution-normalized variant).
/// Infinite when a corner maps to infinity.
pub fn homography_corner_error(
    h_est: &Matrix3<f64>,
    h_gt: &Matrix3<f64>,
    width: u32,
    height: u32,
) -> f64 {
    let (w, h) = (width as f64, height as f64);
    let corners = [
        (0.0, 0.0),
        (0.0, h - 1.0),
        (w - 1.0, 0.0),
        (w - 1.0, h - 1.0),
    ];
    let warp = |m: &Matrix3<f64>, x: f64, y: f64| {
        let p = m * Vector3::new(x, y, 1.0);
        (p.x / p.z, p.y / p.z)
    };
    let sum: f64 = corners
        .iter()
        .map(|&(x, y)| {
            let (a, b) = (warp(h_est, x, y), warp(h_gt, x, y));
            (a.0 - b.0).hypot(a.1 - b.1)
        })
        .sum();
    let mean = sum / 4.0;
    if mean.is_nan() {
        f64::INFINITY
    } else {
        mean
    }
}

/// HPatches homography AUC@3/5/10 px of corner errors ([`homography_corner_error`], failures
/// as ∞): [`pose_auc`] at those thresholds, as DKM's benchmark reports them.
pub fn homography_auc(corner_errors: &[f64]) -> [f64; 3] {
    let a = pose_auc(corner_errors, &[3.0, 5.0, 10.0]);
    [a[0], a[1], a[2]]
}

/// LoFTR's symmetric epipolar distance on the normalized planes, *squared*:
/// `(x1ᵀEx0)²·(1/((Ex0)₁² + (Ex0)₂²) + 1/((Eᵀx1)₁² + (Eᵀx1)₂²))`. Compare with LoFTR's
/// thresholds (5e-4 ScanNet, 1e-4 MegaDepth).
pub fn symmetric_epipolar_distance(
    x0: &NormalizedPoint,
    x1: &NormalizedPoint,
    e: &Matrix3<f64>,
) -> f64 {
    let a = x0.homogeneous();
    let b = x1.homogeneous();
    let ea = e * a;
    let etb = e.transpose() * b;
    let c = b.dot(&ea);
    c * c * (1.0 / (ea.x * ea.x + ea.y * ea.y) + 1.0 / (etb.x * etb.x + etb.y * etb.y))
}

/// Share of matches whose [`symmetric_epipolar_distance`] under the ground-truth pose is below
/// `threshold` (LoFTR's matching precision; 0 for no matches).
pub fn epipolar_precision(
    matches: &[PixelMatch],
    cam0: &CameraModel,
    cam1: &CameraModel,
    gt: &RelativePose,
    threshold: f64,
) -> Result<f64, GeometryError> {
    if matches.is_empty() {
        return Ok(0.0);
    }
    let e = gt.essential();
    let mut good = 0usize;
    for m in matches {
        let a = cam0.normalize(&m.p0)?;
        let b = cam1.normalize(&m.p1)?;
        if symmetric_epipolar_distance(&a, &b, &e) < threshold {
            good += 1;
        }
    }
    Ok(good as f64 / matches.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_hand_computed_cases() {
        // Errors 1 and 3 with threshold 5: points (0,0), (1,½), (3,1), held to 5 →
        // area = ¼ + 1.5 + 2 = 3.75 → 0.75.
        let a = pose_auc(&[3.0, 1.0], &[5.0]);
        assert!((a[0] - 0.75).abs() < 1e-15);
        // All failures: zero.
        assert_eq!(
            pose_auc(&[f64::INFINITY, f64::NAN], &[5.0, 10.0]),
            vec![0.0, 0.0]
        );
        // No errors at all: linspace(0, 1, 1) = [0] → 0.
        assert_eq!(pose_auc(&[], &[5.0]), vec![0.0]);
        // Perfect poses: 1.
        assert_eq!(pose_auc(&[0.0; 4], &[5.0]), vec![1.0]);
    }

    #[test]
    fn translation_error_folds() {
        let t = Vector3::new(1.0, 0.0, 0.0);
        assert!((translation_error_unfolded_deg(&-t, &t) - 180.0).abs() < 1e-12);
        assert!(translation_error_deg(&-t, &t).abs() < 1e-12);
        assert_eq!(translation_error_deg(&Vector3::zeros(), &t), 90.0);
        assert_eq!(translation_error_deg(&t, &Vector3::zeros()), 0.0);
    }

    #[test]
    fn corner_error_of_a_shift() {
        let mut h = Matrix3::identity();
        h[(0, 2)] = 3.0;
        h[(1, 2)] = 4.0;
        assert!((homography_corner_error(&h, &Matrix3::identity(), 640, 480) - 5.0).abs() < 1e-12);
    }
}
