//! Pose integrity: evidence a matcher cannot fake, checked before a pose is called verified.
//!
//! A matcher that hallucinates (matches on unrelated images, a model that never learned to say
//! "no match") hands RANSAC a consistent-looking set and the inlier count cannot tell. These
//! checks look at what the match set does not control:
//! - **pixels** ([`photometric_support`]): each sampled inlier's patch in the keyframe is
//!   compared with the frame's patch at the matched pixel, warped by the pose's own local image
//!   mapping (the homography of a planar / rotation model, the infinite homography `R` of an
//!   essential one); hallucinated matches do not show the same surface;
//! - **frame content** ([`GreyImage::contrast`]): a black, uniform or saturated frame carries
//!   no evidence whatever the matcher returns, and never becomes a keyframe;
//! - **spread** ([`inlier_spread`]): inliers clustered in one corner of either image do not
//!   determine the view's pose;
//! - **motion continuity** ([`MotionState`]): a rotation far from the constant-velocity
//!   prediction is held back until the next frame confirms it.
//!
//! Passing poses get an honest covariance ([`covariance_scale`]): the geometry's covariance
//! with a noise floor, a calibrated inflation for matcher errors that are correlated across
//! matches, and a larger one for weaker photometric evidence.

use nalgebra::{Matrix3, Matrix6, Rotation3, Vector3};

use super::KeyframeId;
use crate::config::IntegrityConfig;
use crate::geometry::patch::zncc;
pub use crate::geometry::patch::GreyImage;
use crate::geometry::{
    CameraModel, NormalizedPoint, PixelMatch, PixelPoint, PoseEstimate, PoseModel,
    UNOBSERVABLE_TRANSLATION_VARIANCE,
};

/// What the photometric check measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhotometricSupport {
    /// Inliers compared.
    pub sampled: usize,
    /// Of those, inliers where both patches have contrast (the others carry no evidence
    /// either way: a flat wall looks the same everywhere).
    pub informative: usize,
    /// Of those, inliers whose patches agree.
    pub supporting: usize,
}

impl PhotometricSupport {
    /// `supporting / sampled` (0 when nothing was sampled). Flat samples count against the
    /// pose: a matcher that only "matches" flat regions has shown nothing (measured: the
    /// other-pair liar's matches are 75 % flat, an honest matcher's are mostly textured).
    pub fn fraction(&self) -> f64 {
        if self.sampled == 0 {
            0.0
        } else {
            self.supporting as f64 / self.sampled as f64
        }
    }
}

/// The pose's image mapping on the normalized plane, keyframe → frame: the homography of a
/// planar or rotation model, else the infinite homography `R` (exact for distant points, the
/// local rotation and zoom of a patch otherwise).
pub fn local_mapping(estimate: &PoseEstimate) -> Matrix3<f64> {
    match (estimate.model, estimate.homography) {
        (PoseModel::Homography | PoseModel::Rotation, Some(h)) => h,
        _ => *estimate.pose.rotation.matrix(),
    }
}

/// Map keyframe pixel `p` to frame pixels through the normalized-plane mapping `h`.
fn map_pixel(
    p: &PixelPoint,
    h: &Matrix3<f64>,
    cam0: &CameraModel,
    cam1: &CameraModel,
) -> Option<PixelPoint> {
    let n = cam0.normalize(p).ok()?;
    let x = h * Vector3::new(n.x, n.y, 1.0);
    if x.z <= 1e-9 {
        return None;
    }
    let q = cam1.project(&NormalizedPoint::new(x.x / x.z, x.y / x.z));
    q.is_finite().then_some(q)
}

/// Compare keyframe and frame patches at up to `config.photometric_samples` inliers (evenly
/// spread over the list): the frame's patch is sampled at the matched pixel along the local
/// Jacobian of `h` (central differences), so rotation and zoom between the views are undone.
/// A sample is informative when both patches have contrast, and supports the pose when they
/// also correlate (ZNCC) at least `config.min_patch_correlation`.
pub fn photometric_support(
    inliers: &[PixelMatch],
    h: &Matrix3<f64>,
    images: (&GreyImage, &GreyImage),
    cameras: (&CameraModel, &CameraModel),
    config: &IntegrityConfig,
) -> PhotometricSupport {
    let (grey0, grey1) = images;
    let (cam0, cam1) = cameras;
    let n = inliers.len();
    let want = (config.photometric_samples as usize).min(n);
    let r = config.patch_radius as i32;
    let side = (2 * r + 1) as usize;
    let mut a = Vec::with_capacity(side * side);
    let mut b = Vec::with_capacity(side * side);
    let mut out = PhotometricSupport::default();
    for k in 0..want {
        let m = &inliers[k * n / want];
        out.sampled += 1;
        // Local Jacobian of the mapping at p0, by central differences of ±1 px.
        let step = |dx: f64, dy: f64| {
            let p = PixelPoint::new(m.p0.x + dx, m.p0.y + dy);
            map_pixel(&p, h, cam0, cam1)
        };
        let (Some(xp), Some(xm), Some(yp), Some(ym)) = (
            step(1.0, 0.0),
            step(-1.0, 0.0),
            step(0.0, 1.0),
            step(0.0, -1.0),
        ) else {
            continue;
        };
        let j = [
            [(xp.x - xm.x) / 2.0, (yp.x - ym.x) / 2.0],
            [(xp.y - xm.y) / 2.0, (yp.y - ym.y) / 2.0],
        ];
        a.clear();
        b.clear();
        'patch: for dy in -r..=r {
            for dx in -r..=r {
                let (dx, dy) = (dx as f64, dy as f64);
                let s0 = grey0.sample(m.p0.x + dx, m.p0.y + dy);
                let s1 = grey1.sample(
                    m.p1.x + j[0][0] * dx + j[0][1] * dy,
                    m.p1.y + j[1][0] * dx + j[1][1] * dy,
                );
                match (s0, s1) {
                    (Some(s0), Some(s1)) => {
                        a.push(s0 as f64);
                        b.push(s1 as f64);
                    }
                    _ => break 'patch,
                }
            }
        }
        if a.len() == side * side {
            if let Some(c) = zncc(&a, &b, config.min_patch_contrast) {
                out.informative += 1;
                if c >= config.min_patch_correlation {
                    out.supporting += 1;
                }
            }
        }
    }
    out
}

/// Translation parallax of the inliers, pixels: the median distance between each frame pixel
/// and where the rotation alone would put its keyframe pixel. Below the matcher's noise the
/// translation direction is not determined, whatever model won (NaN without inliers).
pub fn translation_parallax_px(
    inliers: &[PixelMatch],
    rotation: &Matrix3<f64>,
    cam0: &CameraModel,
    cam1: &CameraModel,
) -> f64 {
    let mut d: Vec<f64> = inliers
        .iter()
        .filter_map(|m| map_pixel(&m.p0, rotation, cam0, cam1).map(|q| q.distance(&m.p1)))
        .collect();
    if d.is_empty() {
        return f64::NAN;
    }
    d.sort_by(f64::total_cmp);
    d[d.len() / 2]
}

/// Fraction of the cells of a 4×4 grid holding an inlier, the smaller of the two images.
pub fn inlier_spread(inliers: &[PixelMatch], size0: (u32, u32), size1: (u32, u32)) -> f64 {
    const GRID: usize = 4;
    let occupied = |pick: &dyn Fn(&PixelMatch) -> PixelPoint, (w, h): (u32, u32)| {
        let mut cells = [false; GRID * GRID];
        for m in inliers {
            let p = pick(m);
            if !(p.x >= 0.0 && p.y >= 0.0 && p.x < w as f64 && p.y < h as f64) {
                continue;
            }
            let cx = ((p.x / w as f64) * GRID as f64) as usize;
            let cy = ((p.y / h as f64) * GRID as f64) as usize;
            cells[cy.min(GRID - 1) * GRID + cx.min(GRID - 1)] = true;
        }
        cells.iter().filter(|c| **c).count() as f64 / (GRID * GRID) as f64
    };
    occupied(&|m| m.p0, size0).min(occupied(&|m| m.p1, size1))
}

/// Per camera: the last verified rotation relative to its reference keyframe and the angular
/// velocity, for the constant-velocity prediction of the next frame's rotation.
#[derive(Debug, Clone)]
pub struct MotionState {
    /// The keyframe `rotation` is relative to.
    pub reference: KeyframeId,
    /// Reference → camera at `stamp_ns`.
    pub rotation: Rotation3<f64>,
    /// Stamp of that frame, nanoseconds.
    pub stamp_ns: i64,
    /// Rotation vector per second (left increment, camera frame); `None` until two verified
    /// frames on one track.
    pub velocity: Option<Vector3<f64>>,
}

impl MotionState {
    /// The predicted rotation (reference → camera) at `stamp_ns`.
    pub fn predict(&self, stamp_ns: i64) -> Rotation3<f64> {
        match self.velocity {
            Some(w) => {
                let dt = (stamp_ns - self.stamp_ns) as f64 * 1e-9;
                Rotation3::new(w * dt) * self.rotation
            }
            None => self.rotation,
        }
    }

    /// Degrees between `rotation` and the prediction; `None` when `reference` is not the
    /// state's (nothing to predict from).
    pub fn surprise_deg(
        &self,
        reference: &KeyframeId,
        rotation: &Rotation3<f64>,
        stamp_ns: i64,
    ) -> Option<f64> {
        (reference == &self.reference).then(|| {
            (rotation * self.predict(stamp_ns).inverse())
                .angle()
                .to_degrees()
        })
    }

    /// The state after a verified `rotation` at `stamp_ns` on `reference`: the velocity from
    /// the step when the reference is the same and time moved forward.
    pub fn advance(
        previous: Option<&MotionState>,
        reference: &KeyframeId,
        rotation: Rotation3<f64>,
        stamp_ns: i64,
    ) -> MotionState {
        let velocity = previous.and_then(|p| {
            let dt = (stamp_ns - p.stamp_ns) as f64 * 1e-9;
            if &p.reference == reference && dt > 0.0 {
                Some((rotation * p.rotation.inverse()).scaled_axis() / dt)
            } else {
                p.velocity
            }
        });
        MotionState {
            reference: reference.clone(),
            rotation,
            stamp_ns,
            velocity,
        }
    }

    /// The state when the frame at `stamp_ns` becomes the new reference `keyframe`: rotation
    /// identity, velocity kept.
    pub fn rebase(&self, keyframe: &KeyframeId, stamp_ns: i64) -> MotionState {
        MotionState {
            reference: keyframe.clone(),
            rotation: Rotation3::identity(),
            stamp_ns,
            velocity: self.velocity,
        }
    }
}

/// The factor a verified pose's covariance is multiplied by: the noise floor
/// `(floor / σ̂)²` when the measured inlier noise σ̂ is below it, the calibrated inflation, and
/// `1 / support` for weaker photometric evidence (a pose accepted on weak evidence carries a
/// larger covariance).
pub fn covariance_scale(noise_sigma_px: f64, support: f64, config: &IntegrityConfig) -> f64 {
    let floor = if noise_sigma_px > 0.0 && noise_sigma_px < config.covariance_noise_floor_px {
        (config.covariance_noise_floor_px / noise_sigma_px).powi(2)
    } else {
        1.0
    };
    let evidence = if config.min_photometric_support > 0.0 && support > 0.0 {
        (1.0 / support).clamp(1.0, 1.0 / config.min_photometric_support.max(1e-3))
    } else {
        1.0
    };
    floor * config.covariance_inflation * evidence
}

/// The rotation uncertainty a rotation or homography model cannot see: a sideways
/// translation in front of a far or planar scene moves the image as a rotation does, so such a
/// model's rotation absorbs any translation it could not resolve. Variance
/// `(ambiguity · median_flow / focal)²` (rad²) about the camera's x and y axes (the axes a
/// sideways translation mimics), zero for the essential model, which separates the two.
pub fn planar_ambiguity(
    model: PoseModel,
    median_flow_px: f64,
    focal_px: f64,
    ambiguity: f64,
) -> Matrix3<f64> {
    if model == PoseModel::Essential
        || focal_px.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || !median_flow_px.is_finite()
    {
        return Matrix3::zeros();
    }
    let sigma = ambiguity * median_flow_px / focal_px;
    Matrix3::from_diagonal(&Vector3::new(sigma * sigma, sigma * sigma, 0.0))
}

/// `covariance` scaled by `factor`, except the rows and columns that hold the "unknown"
/// variance of an unobservable translation (kept as they are: unknown stays unknown).
pub fn scale_covariance(covariance: &Matrix6<f64>, factor: f64) -> Matrix6<f64> {
    let unknown: Vec<bool> = (0..6)
        .map(|i| covariance[(i, i)] >= UNOBSERVABLE_TRANSLATION_VARIANCE)
        .collect();
    let mut out = *covariance;
    for i in 0..6 {
        for j in 0..6 {
            if !unknown[i] && !unknown[j] {
                out[(i, j)] *= factor;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::msgs::builtin_interfaces::Time;
    use image::RgbImage;

    fn textured(w: u32, h: u32, shift: (f64, f64)) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (x, y) = (x as f64 - shift.0, y as f64 - shift.1);
            let v = 128.0
                + 60.0 * (x * 0.31).sin() * (y * 0.23).cos()
                + 40.0 * (x * 0.07 + y * 0.11).sin();
            let v = v.clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        })
    }

    fn grid_matches(shift: (f64, f64), claimed: (f64, f64)) -> Vec<PixelMatch> {
        let mut out = Vec::new();
        for y in (20..220).step_by(20) {
            for x in (20..300).step_by(20) {
                let p0 = PixelPoint::new(x as f64, y as f64);
                let _ = shift;
                out.push(PixelMatch {
                    p0,
                    p1: PixelPoint::new(p0.x + claimed.0, p0.y + claimed.1),
                    confidence: 1.0,
                });
            }
        }
        out
    }

    #[test]
    fn patches_agree_on_true_matches_and_not_on_false_ones() {
        let cam = CameraModel::pinhole(250.0, 250.0, 159.5, 119.5, 320, 240);
        let kf = GreyImage::of(&textured(320, 240, (0.0, 0.0)));
        let cur = GreyImage::of(&textured(320, 240, (7.0, -4.0)));
        let config = IntegrityConfig::default();
        let id = Matrix3::identity();
        // The frame is the keyframe shifted by (7, -4): matches that say so are supported...
        let good = photometric_support(
            &grid_matches((7.0, -4.0), (7.0, -4.0)),
            &id,
            (&kf, &cur),
            (&cam, &cam),
            &config,
        );
        assert_eq!(good.sampled, 100);
        assert!(good.fraction() > 0.95, "{good:?}");
        assert!(good.informative > 90, "{good:?}");
        // ...matches that claim no motion are not.
        let bad = photometric_support(
            &grid_matches((7.0, -4.0), (0.0, 0.0)),
            &id,
            (&kf, &cur),
            (&cam, &cam),
            &config,
        );
        assert!(bad.fraction() < 0.2, "{bad:?}");
        // A black frame supports nothing, whatever the matches say.
        let black = GreyImage::of(&RgbImage::new(320, 240));
        assert_eq!(black.contrast(), 0.0);
        let none = photometric_support(
            &grid_matches((0.0, 0.0), (0.0, 0.0)),
            &id,
            (&kf, &black),
            (&cam, &cam),
            &config,
        );
        assert_eq!((none.informative, none.supporting), (0, 0));
    }

    #[test]
    fn a_rotated_view_is_compared_through_the_pose_mapping() {
        // The frame is the keyframe rolled by 90° about the optical axis (pixel (x, y) of the
        // keyframe appears at the frame's (cx − (y − cy), cy + (x − cx)) for a square image).
        let n = 241u32;
        let c = 120.0;
        let cam = CameraModel::pinhole(200.0, 200.0, c, c, n, n);
        let base = textured(n, n, (0.0, 0.0));
        let rolled = RgbImage::from_fn(n, n, |x, y| {
            // frame pixel (x, y) shows keyframe pixel (cx + (y − cy), cy − (x − cx))
            let sx = (c + (y as f64 - c)) as u32;
            let sy = (c - (x as f64 - c)) as u32;
            *base.get_pixel(sx, sy)
        });
        let r = Rotation3::from_axis_angle(&Vector3::z_axis(), std::f64::consts::FRAC_PI_2);
        let matches: Vec<PixelMatch> = (0..100)
            .map(|k| {
                let p0 =
                    PixelPoint::new(30.0 + (k % 10) as f64 * 18.0, 30.0 + (k / 10) as f64 * 18.0);
                let p1 = PixelPoint::new(c - (p0.y - c), c + (p0.x - c));
                PixelMatch {
                    p0,
                    p1,
                    confidence: 1.0,
                }
            })
            .collect();
        let config = IntegrityConfig::default();
        let grey = (GreyImage::of(&base), GreyImage::of(&rolled));
        let through_pose = photometric_support(
            &matches,
            r.matrix(),
            (&grey.0, &grey.1),
            (&cam, &cam),
            &config,
        );
        assert!(through_pose.fraction() > 0.9, "{through_pose:?}");
        // Compared axis-aligned (ignoring the roll) the same true matches look unrelated.
        let axis_aligned = photometric_support(
            &matches,
            &Matrix3::identity(),
            (&grey.0, &grey.1),
            (&cam, &cam),
            &config,
        );
        assert!(axis_aligned.fraction() < 0.3, "{axis_aligned:?}");
    }

    #[test]
    fn parallax_is_what_the_rotation_does_not_explain() {
        let cam = CameraModel::pinhole(250.0, 250.0, 159.5, 119.5, 320, 240);
        // Every frame pixel 3 px right of the keyframe's: a pure rotation about y explains
        // ~3 px at the centre, a zero rotation leaves the 3 px as parallax.
        let matches = grid_matches((0.0, 0.0), (3.0, 0.0));
        let none = translation_parallax_px(&matches, &Matrix3::identity(), &cam, &cam);
        assert!((none - 3.0).abs() < 1e-9, "{none}");
        let yaw = Rotation3::from_axis_angle(&Vector3::y_axis(), (3.0f64 / 250.0).atan());
        let explained = translation_parallax_px(&matches, yaw.matrix(), &cam, &cam);
        assert!(explained < 0.5, "{explained}");
    }

    #[test]
    fn an_empty_image_has_no_contrast_and_supports_nothing() {
        let empty = GreyImage::of(&RgbImage::new(0, 0));
        assert_eq!(empty.contrast(), 0.0);
        assert_eq!(empty.sample(0.0, 0.0), None);
        let cam = CameraModel::pinhole(250.0, 250.0, 159.5, 119.5, 320, 240);
        let kf = GreyImage::of(&textured(320, 240, (0.0, 0.0)));
        let none = photometric_support(
            &grid_matches((0.0, 0.0), (0.0, 0.0)),
            &Matrix3::identity(),
            (&kf, &empty),
            (&cam, &cam),
            &IntegrityConfig::default(),
        );
        assert_eq!((none.informative, none.supporting), (0, 0));
    }

    #[test]
    fn spread_counts_cells_in_both_images() {
        let spread: Vec<PixelMatch> = grid_matches((0.0, 0.0), (0.0, 0.0));
        assert_eq!(inlier_spread(&spread, (320, 240), (320, 240)), 1.0);
        // All matches land in one corner of image 1.
        let clustered: Vec<PixelMatch> = spread
            .iter()
            .map(|m| PixelMatch {
                p1: PixelPoint::new(m.p1.x * 0.2, m.p1.y * 0.2),
                ..*m
            })
            .collect();
        assert_eq!(
            inlier_spread(&clustered, (320, 240), (320, 240)),
            1.0 / 16.0
        );
    }

    #[test]
    fn motion_prediction_follows_constant_velocity() {
        let kf = KeyframeId {
            camera: "c".into(),
            stamp: Time { sec: 0, nanosec: 0 },
        };
        let yaw = |deg: f64| Rotation3::from_axis_angle(&Vector3::y_axis(), deg.to_radians());
        let s0 = MotionState::advance(None, &kf, yaw(2.0), 100_000_000);
        assert_eq!(s0.velocity, None);
        let s1 = MotionState::advance(Some(&s0), &kf, yaw(6.0), 200_000_000);
        // 4° per 0.1 s: the next frame is predicted at 10°.
        let surprise = s1.surprise_deg(&kf, &yaw(10.0), 300_000_000).unwrap();
        assert!(surprise < 1e-9, "{surprise}");
        let jump = s1.surprise_deg(&kf, &yaw(160.0), 300_000_000).unwrap();
        assert!((jump - 150.0).abs() < 1e-6, "{jump}");
        let other = KeyframeId {
            camera: "d".into(),
            ..kf.clone()
        };
        assert_eq!(s1.surprise_deg(&other, &yaw(10.0), 300_000_000), None);
        let rebased = s1.rebase(&other, 200_000_000);
        let surprise = rebased
            .surprise_deg(&other, &yaw(4.0), 300_000_000)
            .unwrap();
        assert!(surprise < 1e-9, "{surprise}");
    }

    #[test]
    fn planar_models_carry_the_rotation_translation_ambiguity() {
        // 25 px of median flow at f = 250 px: 0.1 rad of image motion, 20 % of it ambiguous.
        let add = planar_ambiguity(PoseModel::Rotation, 25.0, 250.0, 0.2);
        assert!((add[(0, 0)] - 0.02f64.powi(2)).abs() < 1e-15);
        assert!((add[(1, 1)] - 0.02f64.powi(2)).abs() < 1e-15);
        assert_eq!(add[(2, 2)], 0.0);
        assert_eq!(
            planar_ambiguity(PoseModel::Essential, 25.0, 250.0, 0.2),
            Matrix3::zeros()
        );
    }

    #[test]
    fn covariance_scale_has_a_floor_an_inflation_and_pays_for_weak_evidence() {
        let config = IntegrityConfig {
            covariance_noise_floor_px: 0.5,
            covariance_inflation: 4.0,
            min_photometric_support: 0.25,
            ..Default::default()
        };
        assert!((covariance_scale(1.0, 1.0, &config) - 4.0).abs() < 1e-12);
        assert!((covariance_scale(0.25, 1.0, &config) - 16.0).abs() < 1e-12);
        assert!((covariance_scale(1.0, 0.5, &config) - 8.0).abs() < 1e-12);
        assert!((covariance_scale(1.0, 0.01, &config) - 16.0).abs() < 1e-12);
        let mut cov = Matrix6::identity() * 1e-4;
        cov[(0, 0)] = UNOBSERVABLE_TRANSLATION_VARIANCE;
        let scaled = scale_covariance(&cov, 10.0);
        assert_eq!(scaled[(0, 0)], UNOBSERVABLE_TRANSLATION_VARIANCE);
        assert!((scaled[(3, 3)] - 1e-3).abs() < 1e-15);
    }
}
