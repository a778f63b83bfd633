//! A calibrated stereo rig: left–right matches → metric points in the left camera's frame.
//!
//! Two paths: rectified pairs (the `P` matrices of both `CameraInfo`s, `Tx = −fx·B`) triangulate
//! from the disparity; a general rig (intrinsics and the right-from-left extrinsic) triangulates
//! the two rays (midpoint, then Gauss–Newton on the reprojection error in both images). Both
//! reject points with too little disparity (depth beyond what the baseline resolves), behind a
//! camera, or with a reprojection error above the threshold.

use nalgebra::{Matrix3, Rotation3, Vector2, Vector3};
use serde::{Deserialize, Serialize};

use super::camera::CameraModel;
use super::checked::{Checked, Validate};
use super::points::{PixelMatch, PixelPoint};
use super::pose::RelativePose;
use super::structure::CameraPoint;
use super::GeometryError;

/// Which rig geometry the stereo path can use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RigKind {
    /// Row-aligned images with equal focal lengths and principal point rows: disparity path.
    Rectified,
    /// Any calibrated pair: ray triangulation.
    General,
}

/// A calibrated pair: both cameras and the transform from the left camera's frame to the
/// right's, translation in metres.
#[derive(Debug, Clone, PartialEq)]
pub struct StereoRig {
    /// Left camera (the reference frame of the triangulated points).
    pub left: CameraModel,
    /// Right camera.
    pub right: CameraModel,
    /// `X_right = R·X_left + t`, metres.
    pub right_from_left: RelativePose,
    kind: RigKind,
}

fn invalid(field: &str, reason: String) -> GeometryError {
    GeometryError::InvalidCamera {
        field: field.to_string(),
        reason,
    }
}

impl StereoRig {
    /// A rectified rig from the row-major 3×4 `P` matrices of the left and right `CameraInfo`
    /// (`P = [fx' 0 cx' Tx; 0 fy' cy' Ty; 0 0 1 0]`, `Tx = −fx'·B` for the right camera, 0 for
    /// the left) and the image size. The rectified images have no distortion; the principal
    /// points may differ in x (Middlebury's `doffs`) but not in y.
    pub fn from_projections(
        p_left: &[f64; 12],
        p_right: &[f64; 12],
        width: u32,
        height: u32,
    ) -> Result<StereoRig, GeometryError> {
        let camera = |p: &[f64; 12], side: &str| -> Result<(CameraModel, Vector3<f64>), _> {
            for (i, v) in p.iter().enumerate() {
                if !v.is_finite() {
                    return Err(invalid(
                        &format!("{side} P[{i}]"),
                        format!("{v} is not finite"),
                    ));
                }
            }
            for (i, expected) in [
                (1usize, 0.0),
                (4, 0.0),
                (8, 0.0),
                (9, 0.0),
                (10, 1.0),
                (11, 0.0),
            ] {
                if (p[i] - expected).abs() > 1e-9 * p[0].abs().max(1.0) {
                    return Err(invalid(
                        &format!("{side} P[{i}]"),
                        format!(
                            "is {}, expected {expected} (P must be [fx 0 cx Tx; 0 fy cy Ty; 0 0 1 0])",
                            p[i]
                        ),
                    ));
                }
            }
            if !(p[0] > 0.0 && p[5] > 0.0) {
                return Err(invalid(
                    &format!("{side} P[0], P[5]"),
                    format!("focal lengths {} and {} must be > 0", p[0], p[5]),
                ));
            }
            let cam = CameraModel::pinhole(p[0], p[5], p[2], p[6], width, height);
            // P·[X; 1] = K·(X + (Tx/fx, Ty/fy, 0)): the camera's offset from the reference frame.
            Ok((cam, Vector3::new(p[3] / p[0], p[7] / p[5], 0.0)))
        };
        let (left, offset_left) = camera(p_left, "left")?;
        let (right, offset_right) = camera(p_right, "right")?;
        let (kl, kr) = (&left.intrinsics, &right.intrinsics);
        let tol = 1e-6 * kl.fx;
        if (kl.fx - kr.fx).abs() > tol || (kl.fy - kr.fy).abs() > tol || (kl.cy - kr.cy).abs() > tol
        {
            return Err(invalid(
                "right P",
                format!(
                    "not rectified with the left: fx {} vs {}, fy {} vs {}, cy {} vs {}",
                    kr.fx, kl.fx, kr.fy, kl.fy, kr.cy, kl.cy
                ),
            ));
        }
        let t = offset_right - offset_left;
        if t.x.is_nan() || t.x >= 0.0 || t.y.abs() > 1e-9 * t.x.abs() {
            return Err(invalid(
                "right P[3] (Tx)",
                format!(
                    "gives a baseline of ({}, {}) m; a rectified right camera needs Tx = −fx·B < 0 and Ty = 0",
                    -t.x, t.y
                ),
            ));
        }
        Ok(StereoRig {
            left,
            right,
            right_from_left: RelativePose::new(Rotation3::identity(), t),
            kind: RigKind::Rectified,
        })
    }

    /// A general rig from both cameras and the extrinsic (`X_right = R·X_left + t`, metres).
    pub fn from_extrinsics(
        left: CameraModel,
        right: CameraModel,
        right_from_left: RelativePose,
    ) -> Result<StereoRig, GeometryError> {
        let t = &right_from_left.translation;
        if !(t.iter().all(|v| v.is_finite()) && t.norm() > 0.0) {
            return Err(invalid(
                "extrinsic translation",
                format!("({}, {}, {}) m must be finite and nonzero", t.x, t.y, t.z),
            ));
        }
        if !right_from_left
            .rotation
            .matrix()
            .iter()
            .all(|v| v.is_finite())
        {
            return Err(invalid("extrinsic rotation", "must be finite".into()));
        }
        Ok(StereoRig {
            left,
            right,
            right_from_left,
            kind: RigKind::General,
        })
    }

    /// The baseline length, metres.
    pub fn baseline_m(&self) -> f64 {
        self.right_from_left.translation.norm()
    }

    /// Which triangulation [`Self::triangulate`] uses.
    pub fn kind(&self) -> RigKind {
        self.kind
    }

    /// Triangulate one left–right match into the left camera's frame, by the rig's path.
    pub fn triangulate(
        &self,
        left: &PixelPoint,
        right: &PixelPoint,
        opts: &StereoOptions,
    ) -> Result<CameraPoint, StereoRejection> {
        match self.kind {
            RigKind::Rectified => self.triangulate_rectified(left, right, opts),
            RigKind::General => self.triangulate_rays(left, right, opts),
        }
    }

    /// Disparity path (rectified rigs only): `Z = fx·B / ((x_l − cx_l) − (x_r − cx_r))`, the row
    /// taken as the mean of both; the reprojection error is half the row difference.
    pub fn triangulate_rectified(
        &self,
        left: &PixelPoint,
        right: &PixelPoint,
        opts: &StereoOptions,
    ) -> Result<CameraPoint, StereoRejection> {
        if !(left.is_finite() && right.is_finite()) {
            return Err(StereoRejection::NotFinite);
        }
        let (kl, kr) = (&self.left.intrinsics, &self.right.intrinsics);
        let baseline = -self.right_from_left.translation.x;
        let disparity = (left.x - kl.cx) - (right.x - kr.cx);
        if disparity < opts.min_disparity_px {
            return Err(StereoRejection::SmallDisparity);
        }
        if 0.5 * (left.y - right.y).abs() > opts.max_reprojection_px {
            return Err(StereoRejection::Reprojection);
        }
        let z = kl.fx * baseline / disparity;
        let y = 0.5 * (left.y + right.y);
        Ok(CameraPoint::new(
            (left.x - kl.cx) / kl.fx * z,
            (y - kl.cy) / kl.fy * z,
            z,
        ))
    }

    /// Ray path (any rig): the midpoint of the two rays' closest points, refined by
    /// Gauss–Newton on the pixel reprojection error in both images.
    pub fn triangulate_rays(
        &self,
        left: &PixelPoint,
        right: &PixelPoint,
        opts: &StereoOptions,
    ) -> Result<CameraPoint, StereoRejection> {
        let xl = self
            .left
            .normalize(left)
            .map_err(|_| StereoRejection::NotFinite)?;
        let xr = self
            .right
            .normalize(right)
            .map_err(|_| StereoRejection::NotFinite)?;
        let r = self.right_from_left.rotation.matrix();
        let t = &self.right_from_left.translation;
        // In the left frame: ray d0 from the origin, ray d1 from the right centre c1 = −Rᵀt.
        let d0 = xl.homogeneous();
        let d1 = r.transpose() * xr.homogeneous();
        let c1 = -(r.transpose() * t);
        // Parallax: the angle between the rays, in pixels at the left focal length.
        let cos = d0.normalize().dot(&d1.normalize()).clamp(-1.0, 1.0);
        if cos.acos() * self.left.intrinsics.focal() < opts.min_disparity_px {
            return Err(StereoRejection::SmallDisparity);
        }
        // λ0·d0 − λ1·d1 = c1 in least squares.
        let (a, b, c) = (d0.dot(&d0), d0.dot(&d1), d1.dot(&d1));
        let (e, f) = (d0.dot(&c1), d1.dot(&c1));
        let det = a * c - b * b;
        if det.is_nan() || det.abs() <= 1e-15 * a * c {
            return Err(StereoRejection::SmallDisparity);
        }
        let l0 = (c * e - b * f) / det;
        let l1 = (b * e - a * f) / det;
        if !(l0 > 0.0 && l1 > 0.0) {
            return Err(StereoRejection::BehindCamera);
        }
        let mut x = 0.5 * (d0 * l0 + c1 + d1 * l1);
        let (fl, fr) = (self.left.intrinsics.focal(), self.right.intrinsics.focal());
        let targets = [
            (Matrix3::identity(), Vector3::zeros(), xl, fl),
            (*r, *t, xr, fr),
        ];
        let reprojection = |x: &Vector3<f64>| -> Option<f64> {
            let mut worst: f64 = 0.0;
            for (rot, tr, obs, f) in &targets {
                let q = rot * x + tr;
                if q.z <= 0.0 {
                    return None;
                }
                let e = Vector2::new(q.x / q.z - obs.x, q.y / q.z - obs.y).norm() * f;
                worst = worst.max(e);
            }
            Some(worst)
        };
        for _ in 0..3 {
            let mut jtj = Matrix3::<f64>::zeros();
            let mut jtr = Vector3::<f64>::zeros();
            for (rot, tr, obs, f) in &targets {
                let q = rot * x + tr;
                if q.z <= 0.0 {
                    return Err(StereoRejection::BehindCamera);
                }
                let iz = 1.0 / q.z;
                let (u, v) = (q.x * iz, q.y * iz);
                let res = Vector2::new(u - obs.x, v - obs.y) * *f;
                let dpi = nalgebra::Matrix2x3::new(iz, 0.0, -u * iz, 0.0, iz, -v * iz) * *f;
                let j = dpi * rot;
                jtj += j.transpose() * j;
                jtr += j.transpose() * res;
            }
            let Some(step) = jtj.cholesky().map(|c| c.solve(&jtr)) else {
                break;
            };
            let next = x - step;
            match (reprojection(&next), reprojection(&x)) {
                (Some(en), Some(e)) if en <= e => x = next,
                _ => break,
            }
        }
        match reprojection(&x) {
            None => Err(StereoRejection::BehindCamera),
            Some(e) if e > opts.max_reprojection_px => Err(StereoRejection::Reprojection),
            Some(_) => Ok(CameraPoint::from_vector(&x)),
        }
    }

    /// Triangulate every match (`p0` left, `p1` right): the points that pass, with the index of
    /// the match each came from, and the number rejected.
    pub fn triangulate_matches(
        &self,
        matches: &[PixelMatch],
        opts: &Checked<StereoOptions>,
    ) -> Result<TriangulatedMatches, GeometryError> {
        let mut out = TriangulatedMatches::default();
        for (i, m) in matches.iter().enumerate() {
            match self.triangulate(&m.p0, &m.p1, opts) {
                Ok(p) => {
                    out.points.push(p);
                    out.source.push(i);
                }
                Err(_) => out.rejected += 1,
            }
        }
        Ok(out)
    }
}

/// Points triangulated from left–right matches.
#[derive(Debug, Clone, Default)]
pub struct TriangulatedMatches {
    /// Points in the left camera's frame, metres.
    pub points: Vec<CameraPoint>,
    /// For each point, the index of its match.
    pub source: Vec<usize>,
    /// Matches that gave no point.
    pub rejected: usize,
}

/// Why a match gave no point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StereoRejection {
    /// Non-finite or undistortable pixel.
    NotFinite,
    /// Disparity (or ray parallax, in pixels) below `min_disparity_px`.
    SmallDisparity,
    /// The point lies behind a camera.
    BehindCamera,
    /// Reprojection error above `max_reprojection_px` (for a rectified pair: rows disagree).
    Reprojection,
}

/// Triangulation thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StereoOptions {
    /// Smallest disparity, pixels: depth error grows as Z²/(f·B)·σ_d, so far points (small
    /// disparity) carry noise, not scale.
    pub min_disparity_px: f64,
    /// Largest reprojection error in either image, pixels.
    pub max_reprojection_px: f64,
    /// A later match of the keyframe takes the depth of the nearest triangulated keyframe pixel
    /// within this many pixels ([`super::SparseDepth`]).
    pub lookup_radius_px: f64,
    /// A later match with no triangulated pixel that near searches its right-image pixel along
    /// its epipolar line, between the depths of the triangulated pixels within this many pixels
    /// ([`super::stereo_guided`]); 0 turns the search off.
    pub guided_radius_px: f64,
    /// Half-size of the guided search's patches, pixels.
    pub guided_patch_radius: u32,
    /// Smallest patch correlation (ZNCC) the guided search accepts.
    pub guided_min_correlation: f64,
    /// A keyframe's left–right matches get their right pixel re-found by the same patches
    /// within this many pixels of disparity ([`super::stereo_guided::GuidedStereo::refine`]):
    /// the matcher's sub-pixel error is the disparity's; 0 turns it off.
    pub refine_radius_px: f64,
    /// The patches of these searches are sheared by the surface's slant, from the plane (in
    /// inverse depth) through the keyframe's stereo points within this many pixels
    /// ([`super::SparseDepth::inverse_depth_plane`]); 0 compares square patches.
    pub slant_radius_px: f64,
    /// Noise of the right pixels the patches measured, pixels: the stereo pose weights them by
    /// `(σ̂/right_pixel_sigma_px)²` against the matches (σ̂ the matches' residual σ) instead of
    /// alike; 0 weights them alike (docs/geometry.md: what each choice measured).
    pub right_pixel_sigma_px: f64,
}

impl Default for StereoOptions {
    fn default() -> Self {
        StereoOptions {
            min_disparity_px: 2.0,
            max_reprojection_px: 1.0,
            lookup_radius_px: 2.0,
            guided_radius_px: 8.0,
            guided_patch_radius: 4,
            guided_min_correlation: 0.8,
            refine_radius_px: 1.5,
            slant_radius_px: 16.0,
            right_pixel_sigma_px: 0.15,
        }
    }
}

impl Validate for StereoOptions {
    fn validate(&self) -> Result<(), GeometryError> {
        StereoOptions::validate(self)
    }
}

impl StereoOptions {
    /// Check ranges; errors name the field (`stereo.…`).
    pub fn validate(&self) -> Result<(), GeometryError> {
        for (name, v) in [
            ("min_disparity_px", self.min_disparity_px),
            ("max_reprojection_px", self.max_reprojection_px),
            ("lookup_radius_px", self.lookup_radius_px),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(GeometryError::InvalidOption {
                    field: format!("stereo.{name}"),
                    reason: format!("{v} is not a finite number > 0"),
                });
            }
        }
        let checks = [
            (
                "guided_radius_px",
                self.guided_radius_px.is_finite() && self.guided_radius_px >= 0.0,
                format!("{} is not a finite number ≥ 0", self.guided_radius_px),
            ),
            (
                "refine_radius_px",
                self.refine_radius_px.is_finite() && self.refine_radius_px >= 0.0,
                format!("{} is not a finite number ≥ 0", self.refine_radius_px),
            ),
            (
                "slant_radius_px",
                self.slant_radius_px.is_finite() && self.slant_radius_px >= 0.0,
                format!("{} is not a finite number ≥ 0", self.slant_radius_px),
            ),
            (
                "right_pixel_sigma_px",
                self.right_pixel_sigma_px.is_finite() && self.right_pixel_sigma_px >= 0.0,
                format!("{} is not a finite number ≥ 0", self.right_pixel_sigma_px),
            ),
            (
                "guided_patch_radius",
                (1..=8).contains(&self.guided_patch_radius),
                format!("{} is not within 1..=8", self.guided_patch_radius),
            ),
            (
                "guided_min_correlation",
                self.guided_min_correlation > 0.0 && self.guided_min_correlation <= 1.0,
                format!("{} is not within (0, 1]", self.guided_min_correlation),
            ),
        ];
        for (name, ok, reason) in checks {
            if !ok {
                return Err(GeometryError::InvalidOption {
                    field: format!("stereo.{name}"),
                    reason,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(fx: f64, cx: f64, cy: f64, tx: f64) -> [f64; 12] {
        [fx, 0.0, cx, tx, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    }

    #[test]
    fn rectified_and_ray_paths_agree_on_exact_points() {
        let (f, b) = (500.0, 0.12);
        let rig = StereoRig::from_projections(
            &p(f, 320.0, 240.0, 0.0),
            &p(f, 330.0, 240.0, -f * b),
            640,
            480,
        )
        .unwrap();
        assert!((rig.baseline_m() - b).abs() < 1e-12);
        let general = StereoRig::from_extrinsics(rig.left, rig.right, rig.right_from_left).unwrap();
        let opts = StereoOptions::default();
        for x in [Vector3::new(0.3, -0.2, 2.0), Vector3::new(-1.0, 0.5, 7.5)] {
            let pl = PixelPoint::new(f * x.x / x.z + 320.0, f * x.y / x.z + 240.0);
            let pr = PixelPoint::new(f * (x.x - b) / x.z + 330.0, pl.y);
            let a = rig.triangulate(&pl, &pr, &opts).unwrap().vector();
            let g = general.triangulate(&pl, &pr, &opts).unwrap().vector();
            assert!(
                (a - x).norm() < 1e-9 && (g - x).norm() < 1e-9,
                "{a} {g} {x}"
            );
        }
        // 0.5 px disparity: far beyond the useful range.
        let pl = PixelPoint::new(400.0, 200.0);
        let pr = PixelPoint::new(400.0 + 10.0 - 0.5, 200.0);
        assert_eq!(
            rig.triangulate(&pl, &pr, &opts),
            Err(StereoRejection::SmallDisparity)
        );
        // Rows 4 px apart: not a match of a rectified pair.
        let pr = PixelPoint::new(380.0, 204.0);
        assert_eq!(
            rig.triangulate(&pl, &pr, &opts),
            Err(StereoRejection::Reprojection)
        );
        assert_eq!(
            general.triangulate(&pl, &pr, &opts),
            Err(StereoRejection::Reprojection)
        );
    }

    #[test]
    fn bad_projections_are_named() {
        let e = StereoRig::from_projections(
            &p(500.0, 320.0, 240.0, 0.0),
            &p(500.0, 320.0, 240.0, 60.0),
            640,
            480,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Tx"), "{e}");
        let e = StereoRig::from_projections(
            &p(500.0, 320.0, 240.0, 0.0),
            &p(510.0, 320.0, 240.0, -60.0),
            640,
            480,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not rectified"), "{e}");
        let mut bad = p(500.0, 320.0, 240.0, 0.0);
        bad[5] = f64::NAN;
        assert!(StereoRig::from_projections(&bad, &bad, 640, 480).is_err());
    }
}
