//! Camera models: pinhole intrinsics plus the `sensor_msgs/CameraInfo` distortion models
//! (`plumb_bob`, `rational_polynomial`, `equidistant`), with the same formulas as OpenCV's
//! `projectPoints` / `fisheye::projectPoints`.
//!
//! [`CameraModel::normalize`] maps a pixel to the undistorted normalized image plane (iterative
//! Newton inversion with a convergence check); [`CameraModel::project`] is its inverse.

use nalgebra::{Matrix2, Matrix3, Vector2};
use serde::{Deserialize, Serialize};

use super::points::{NormalizedPoint, PixelPoint};
use super::GeometryError;

/// Pinhole intrinsics in pixels (no skew).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    /// Focal length along x, pixels.
    pub fx: f64,
    /// Focal length along y, pixels.
    pub fy: f64,
    /// Principal point x, pixels.
    pub cx: f64,
    /// Principal point y, pixels.
    pub cy: f64,
}

impl Intrinsics {
    /// Checked intrinsics: finite, positive focal lengths.
    pub fn new(fx: f64, fy: f64, cx: f64, cy: f64) -> Result<Self, GeometryError> {
        let k = Intrinsics { fx, fy, cx, cy };
        k.validate()?;
        Ok(k)
    }

    /// Mean focal length, used to convert pixel thresholds to the normalized plane.
    pub fn focal(&self) -> f64 {
        0.5 * (self.fx + self.fy)
    }

    /// The 3×3 calibration matrix `K`.
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }

    fn validate(&self) -> Result<(), GeometryError> {
        let check = |field: &str, v: f64, positive: bool| {
            if !v.is_finite() || (positive && v <= 0.0) {
                let expected = if positive {
                    "a finite number > 0"
                } else {
                    "a finite number"
                };
                Err(GeometryError::InvalidCamera {
                    field: field.to_string(),
                    reason: format!("{v} is not {expected}"),
                })
            } else {
                Ok(())
            }
        };
        check("fx", self.fx, true)?;
        check("fy", self.fy, true)?;
        check("cx", self.cx, false)?;
        check("cy", self.cy, false)
    }
}

/// Lens distortion, applied on the normalized image plane (OpenCV conventions).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Distortion {
    /// Ideal pinhole.
    #[default]
    None,
    /// Brown–Conrady radial + tangential; CameraInfo `plumb_bob`, `D = [k1, k2, p1, p2, k3]`.
    PlumbBob {
        k1: f64,
        k2: f64,
        p1: f64,
        p2: f64,
        k3: f64,
    },
    /// Rational radial + tangential; CameraInfo `rational_polynomial`,
    /// `D = [k1, k2, p1, p2, k3, k4, k5, k6]`.
    RationalPolynomial {
        k1: f64,
        k2: f64,
        k3: f64,
        k4: f64,
        k5: f64,
        k6: f64,
        p1: f64,
        p2: f64,
    },
    /// Kannala–Brandt fisheye (OpenCV `fisheye`); CameraInfo `equidistant`,
    /// `D = [k1, k2, k3, k4]`.
    Equidistant { k1: f64, k2: f64, k3: f64, k4: f64 },
}

/// Newton iterations allowed when inverting the distortion.
const UNDISTORT_MAX_ITERATIONS: usize = 40;
/// Convergence tolerance on the normalized plane (≈ 1e-10 px at f = 1000 px).
const UNDISTORT_TOLERANCE: f64 = 1e-13;

impl Distortion {
    /// Distort an undistorted normalized point: `(x, y) ↦ (x_d, y_d)`.
    pub fn distort(&self, p: Vector2<f64>) -> Vector2<f64> {
        self.distort_with_jacobian(p).0
    }

    /// Distortion and its 2×2 Jacobian `∂(x_d, y_d)/∂(x, y)`.
    pub fn distort_with_jacobian(&self, p: Vector2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        let (x, y) = (p.x, p.y);
        match *self {
            Distortion::None => (p, Matrix2::identity()),
            Distortion::PlumbBob { k1, k2, p1, p2, k3 } => {
                radial_tangential(x, y, [k1, k2, k3], [0.0; 3], p1, p2)
            }
            Distortion::RationalPolynomial {
                k1,
                k2,
                k3,
                k4,
                k5,
                k6,
                p1,
                p2,
            } => radial_tangential(x, y, [k1, k2, k3], [k4, k5, k6], p1, p2),
            Distortion::Equidistant { k1, k2, k3, k4 } => equidistant(x, y, [k1, k2, k3, k4]),
        }
    }

    /// Invert [`Distortion::distort`] by Newton's method. Fails when the iteration does not
    /// converge or lands where the distortion folds over (Jacobian determinant ≤ 0), i.e. the
    /// point lies outside the region where the model is one-to-one.
    pub fn undistort(&self, pd: Vector2<f64>) -> Result<Vector2<f64>, UndistortFailure> {
        match *self {
            Distortion::None => Ok(pd),
            Distortion::Equidistant { k1, k2, k3, k4 } => {
                undistort_equidistant(pd, [k1, k2, k3, k4])
            }
            _ => {
                let mut p = pd;
                for _ in 0..UNDISTORT_MAX_ITERATIONS {
                    let (d, j) = self.distort_with_jacobian(p);
                    let residual = d - pd;
                    if residual.norm() <= UNDISTORT_TOLERANCE * (1.0 + pd.norm()) {
                        return if j.determinant() > 0.0 && self.radial_factor(&p) > 0.0 {
                            Ok(p)
                        } else {
                            Err(UndistortFailure::OutsideValidRegion)
                        };
                    }
                    let step = j
                        .try_inverse()
                        .ok_or(UndistortFailure::OutsideValidRegion)?
                        * residual;
                    p -= step;
                    if !p.x.is_finite() || !p.y.is_finite() {
                        break;
                    }
                }
                Err(UndistortFailure::NoConvergence)
            }
        }
    }

    /// The radial scale `x_d/x` without tangential terms (1 for no or fisheye distortion); a
    /// non-positive value means the model has folded the point through the centre.
    fn radial_factor(&self, p: &Vector2<f64>) -> f64 {
        let r2 = p.norm_squared();
        let (k, kd) = match *self {
            Distortion::PlumbBob { k1, k2, k3, .. } => ([k1, k2, k3], [0.0; 3]),
            Distortion::RationalPolynomial {
                k1,
                k2,
                k3,
                k4,
                k5,
                k6,
                ..
            } => ([k1, k2, k3], [k4, k5, k6]),
            _ => return 1.0,
        };
        (1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2])))
            / (1.0 + r2 * (kd[0] + r2 * (kd[1] + r2 * kd[2])))
    }

    /// The CameraInfo `distortion_model` name.
    pub fn ros_name(&self) -> &'static str {
        match self {
            Distortion::None => "",
            Distortion::PlumbBob { .. } => "plumb_bob",
            Distortion::RationalPolynomial { .. } => "rational_polynomial",
            Distortion::Equidistant { .. } => "equidistant",
        }
    }
}

/// Why an undistortion failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndistortFailure {
    /// Newton's method did not reach the tolerance.
    NoConvergence,
    /// The solution lies where the model is not invertible (fold-over or beyond 90°).
    OutsideValidRegion,
}

impl std::fmt::Display for UndistortFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndistortFailure::NoConvergence => write!(
                f,
                "undistortion did not converge in {UNDISTORT_MAX_ITERATIONS} Newton iterations"
            ),
            UndistortFailure::OutsideValidRegion => {
                write!(
                    f,
                    "point lies outside the region where the distortion model is invertible"
                )
            }
        }
    }
}

/// OpenCV's radial (rational) + tangential model and its Jacobian.
fn radial_tangential(
    x: f64,
    y: f64,
    k: [f64; 3],
    kd: [f64; 3],
    p1: f64,
    p2: f64,
) -> (Vector2<f64>, Matrix2<f64>) {
    let r2 = x * x + y * y;
    let num = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2]));
    let den = 1.0 + r2 * (kd[0] + r2 * (kd[1] + r2 * kd[2]));
    let dnum = k[0] + r2 * (2.0 * k[1] + 3.0 * r2 * k[2]);
    let dden = kd[0] + r2 * (2.0 * kd[1] + 3.0 * r2 * kd[2]);
    let radial = num / den;
    // d(radial)/d(r²)
    let dradial = (dnum * den - num * dden) / (den * den);
    let xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
    let yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
    let j00 = radial + x * dradial * 2.0 * x + 2.0 * p1 * y + 6.0 * p2 * x;
    let j01 = x * dradial * 2.0 * y + 2.0 * p1 * x + 2.0 * p2 * y;
    let j10 = y * dradial * 2.0 * x + 2.0 * p1 * x + 2.0 * p2 * y;
    let j11 = radial + y * dradial * 2.0 * y + 6.0 * p1 * y + 2.0 * p2 * x;
    (Vector2::new(xd, yd), Matrix2::new(j00, j01, j10, j11))
}

/// OpenCV's fisheye model: θ = atan r, θ_d = θ(1 + k1θ² + k2θ⁴ + k3θ⁶ + k4θ⁸), p_d = p·θ_d/r.
fn equidistant(x: f64, y: f64, k: [f64; 4]) -> (Vector2<f64>, Matrix2<f64>) {
    let r2 = x * x + y * y;
    let r = r2.sqrt();
    if r < 1e-12 {
        // θ_d/r → 1 at the centre.
        return (Vector2::new(x, y), Matrix2::identity());
    }
    let theta = r.atan();
    let t2 = theta * theta;
    let poly = 1.0 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3])));
    let theta_d = theta * poly;
    let dtheta_d =
        1.0 + t2 * (3.0 * k[0] + t2 * (5.0 * k[1] + t2 * (7.0 * k[2] + t2 * 9.0 * k[3])));
    let scale = theta_d / r;
    // d(scale)/dr = (θ_d'·θ'·r − θ_d)/r², θ' = 1/(1 + r²)
    let dscale = (dtheta_d / (1.0 + r2) * r - theta_d) / r2;
    let (ux, uy) = (x / r, y / r);
    let j = Matrix2::new(
        scale + x * dscale * ux,
        x * dscale * uy,
        y * dscale * ux,
        scale + y * dscale * uy,
    );
    (Vector2::new(x * scale, y * scale), j)
}

fn undistort_equidistant(pd: Vector2<f64>, k: [f64; 4]) -> Result<Vector2<f64>, UndistortFailure> {
    let theta_d = pd.norm();
    if theta_d < 1e-12 {
        return Ok(pd);
    }
    // Solve θ(1 + k1θ² + …) = θ_d for θ by Newton, starting at θ = θ_d.
    let mut theta = theta_d;
    let mut converged = false;
    for _ in 0..UNDISTORT_MAX_ITERATIONS {
        let t2 = theta * theta;
        let f = theta * (1.0 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3])))) - theta_d;
        let df = 1.0 + t2 * (3.0 * k[0] + t2 * (5.0 * k[1] + t2 * (7.0 * k[2] + t2 * 9.0 * k[3])));
        if f.abs() <= UNDISTORT_TOLERANCE * (1.0 + theta_d) {
            if df <= 0.0 {
                return Err(UndistortFailure::OutsideValidRegion);
            }
            converged = true;
            break;
        }
        if df <= 0.0 {
            return Err(UndistortFailure::OutsideValidRegion);
        }
        theta -= f / df;
        if !theta.is_finite() {
            break;
        }
    }
    if !converged {
        return Err(UndistortFailure::NoConvergence);
    }
    if !(0.0..std::f64::consts::FRAC_PI_2).contains(&theta) {
        // The ray is at or beyond 90° from the axis: no point on the plane z = 1.
        return Err(UndistortFailure::OutsideValidRegion);
    }
    Ok(pd * (theta.tan() / theta_d))
}

/// A calibrated camera: intrinsics, distortion and image size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CameraModel {
    /// Pinhole intrinsics.
    pub intrinsics: Intrinsics,
    /// Lens distortion.
    pub distortion: Distortion,
    /// Image width in pixels (0 = unknown; only used for bounds, never for estimation).
    pub width: u32,
    /// Image height in pixels (0 = unknown).
    pub height: u32,
}

impl CameraModel {
    /// An undistorted pinhole camera. Unchecked: use [`Intrinsics::new`] to validate user input.
    pub fn pinhole(fx: f64, fy: f64, cx: f64, cy: f64, width: u32, height: u32) -> Self {
        CameraModel {
            intrinsics: Intrinsics { fx, fy, cx, cy },
            distortion: Distortion::None,
            width,
            height,
        }
    }

    /// A camera from the `sensor_msgs/CameraInfo` fields: `distortion_model`, `D`, row-major
    /// `K`, `width`, `height`. An empty model name or an all-zero `D` means no distortion.
    /// Errors name the offending field.
    pub fn from_camera_info(
        distortion_model: &str,
        d: &[f64],
        k: &[f64; 9],
        width: u32,
        height: u32,
    ) -> Result<CameraModel, GeometryError> {
        let invalid = |field: &str, reason: String| GeometryError::InvalidCamera {
            field: field.to_string(),
            reason,
        };
        for (i, v) in k.iter().enumerate() {
            if !v.is_finite() {
                return Err(invalid(&format!("K[{i}]"), format!("{v} is not finite")));
            }
        }
        // K = [fx s cx; 0 fy cy; 0 0 1]; we model no skew.
        let structural = [
            (1usize, 0.0, "skew, 0"),
            (3, 0.0, "0"),
            (6, 0.0, "0"),
            (7, 0.0, "0"),
            (8, 1.0, "1"),
        ];
        for (i, expected, what) in structural {
            if (k[i] - expected).abs() > 1e-9 * k[0].abs().max(1.0) {
                return Err(invalid(
                    &format!("K[{i}]"),
                    format!(
                        "is {}, expected {what} (K must be [fx 0 cx; 0 fy cy; 0 0 1])",
                        k[i]
                    ),
                ));
            }
        }
        for (i, name) in [(0usize, "fx"), (4, "fy")] {
            if k[i] <= 0.0 {
                return Err(invalid(
                    &format!("K[{i}] ({name})"),
                    format!("{} is not > 0", k[i]),
                ));
            }
        }
        for (i, v) in d.iter().enumerate() {
            if !v.is_finite() {
                return Err(invalid(&format!("D[{i}]"), format!("{v} is not finite")));
            }
        }
        let intrinsics = Intrinsics {
            fx: k[0],
            fy: k[4],
            cx: k[2],
            cy: k[5],
        };
        let need = |n: usize| {
            if d.len() == n {
                Ok(())
            } else {
                Err(invalid(
                    "D",
                    format!(
                        "`{distortion_model}` needs {n} coefficients, got {}",
                        d.len()
                    ),
                ))
            }
        };
        let distortion = if distortion_model.is_empty() || d.iter().all(|v| *v == 0.0) {
            Distortion::None
        } else {
            match distortion_model {
                "plumb_bob" => {
                    need(5)?;
                    Distortion::PlumbBob {
                        k1: d[0],
                        k2: d[1],
                        p1: d[2],
                        p2: d[3],
                        k3: d[4],
                    }
                }
                "rational_polynomial" => {
                    need(8)?;
                    Distortion::RationalPolynomial {
                        k1: d[0],
                        k2: d[1],
                        p1: d[2],
                        p2: d[3],
                        k3: d[4],
                        k4: d[5],
                        k5: d[6],
                        k6: d[7],
                    }
                }
                "equidistant" => {
                    need(4)?;
                    Distortion::Equidistant {
                        k1: d[0],
                        k2: d[1],
                        k3: d[2],
                        k4: d[3],
                    }
                }
                other => {
                    return Err(invalid(
                        "distortion_model",
                        format!(
                            "`{other}` is not supported; expected plumb_bob, rational_polynomial, equidistant or empty"
                        ),
                    ))
                }
            }
        };
        Ok(CameraModel {
            intrinsics,
            distortion,
            width,
            height,
        })
    }

    /// Pixel → undistorted normalized image plane.
    pub fn normalize(&self, p: &PixelPoint) -> Result<NormalizedPoint, GeometryError> {
        if !p.is_finite() {
            return Err(GeometryError::InvalidInput {
                what: format!("pixel ({}, {})", p.x, p.y),
                reason: "coordinates must be finite".into(),
            });
        }
        let k = &self.intrinsics;
        let pd = Vector2::new((p.x - k.cx) / k.fx, (p.y - k.cy) / k.fy);
        let u = self
            .distortion
            .undistort(pd)
            .map_err(|failure| GeometryError::Undistortion {
                x: p.x,
                y: p.y,
                reason: failure.to_string(),
            })?;
        Ok(NormalizedPoint::new(u.x, u.y))
    }

    /// Undistorted normalized image plane → pixel.
    pub fn project(&self, p: &NormalizedPoint) -> PixelPoint {
        let d = self.distortion.distort(Vector2::new(p.x, p.y));
        let k = &self.intrinsics;
        PixelPoint::new(k.fx * d.x + k.cx, k.fy * d.y + k.cy)
    }

    /// Whether the camera has no distortion.
    pub fn is_pinhole(&self) -> bool {
        matches!(self.distortion, Distortion::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cameras() -> Vec<CameraModel> {
        // Coefficients of the order of real calibrations (a 640×480 camera with f ≈ 500 px,
        // corners at r ≈ 0.8); each model stays one-to-one over the whole image.
        let k = [500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0];
        vec![
            CameraModel::from_camera_info(
                "plumb_bob",
                &[-0.2, 0.05, 1e-3, -5e-4, -0.01],
                &k,
                640,
                480,
            )
            .unwrap(),
            CameraModel::from_camera_info(
                "rational_polynomial",
                &[0.3, -0.1, 1e-3, 2e-4, 0.01, 0.65, -0.05, 0.02],
                &k,
                640,
                480,
            )
            .unwrap(),
            CameraModel::from_camera_info(
                "equidistant",
                &[-0.013, 0.02, -0.01, 0.002],
                &k,
                640,
                480,
            )
            .unwrap(),
        ]
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let h = 1e-6;
        for cam in cameras() {
            for p in [
                Vector2::new(0.3, -0.2),
                Vector2::new(-0.5, 0.4),
                Vector2::new(0.01, 0.0),
            ] {
                let (_, j) = cam.distortion.distort_with_jacobian(p);
                for c in 0..2 {
                    let mut dp = Vector2::zeros();
                    dp[c] = h;
                    let fd = (cam.distortion.distort(p + dp) - cam.distortion.distort(p - dp))
                        / (2.0 * h);
                    // Central differences are accurate to O(h²) ≈ 1e-12, rounding ≈ 1e-10.
                    assert!(
                        (fd - j.column(c)).norm() < 1e-8,
                        "{:?} {fd} {}",
                        cam.distortion,
                        j
                    );
                }
            }
        }
    }

    #[test]
    fn pixel_round_trip_below_a_micro_pixel() {
        for cam in cameras() {
            for v in (0..=480).step_by(20) {
                for u in (0..=640).step_by(20) {
                    let p = PixelPoint::new(u as f64, v as f64);
                    let n = cam.normalize(&p).unwrap();
                    let back = cam.project(&n);
                    assert!(
                        back.distance(&p) < 1e-6,
                        "{:?}: {p:?} -> {back:?}",
                        cam.distortion
                    );
                }
            }
        }
    }

    #[test]
    fn camera_info_errors_name_the_field() {
        let k = [400.0, 0.0, 320.0, 0.0, 410.0, 240.0, 0.0, 0.0, 1.0];
        let mut bad = k;
        bad[4] = 0.0;
        let e = CameraModel::from_camera_info("", &[], &bad, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("K[4] (fy)"), "{e}");
        bad = k;
        bad[2] = f64::NAN;
        let e = CameraModel::from_camera_info("", &[], &bad, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("K[2]"), "{e}");
        let e = CameraModel::from_camera_info("plumb_bob", &[0.1, 0.0], &k, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("D") && e.contains("5"), "{e}");
        let e = CameraModel::from_camera_info("kannala", &[0.1], &k, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("distortion_model"), "{e}");
        // All-zero D and an empty model both mean no distortion.
        let c = CameraModel::from_camera_info("plumb_bob", &[0.0; 5], &k, 640, 480).unwrap();
        assert!(c.is_pinhole());
        let c = CameraModel::from_camera_info("", &[], &k, 640, 480).unwrap();
        assert!(c.is_pinhole());
    }

    #[test]
    fn undistortion_reports_points_beyond_the_model() {
        // Strong barrel distortion folds over at r ≈ 1.3; a point far outside cannot invert.
        let cam = CameraModel {
            distortion: Distortion::PlumbBob {
                k1: -0.5,
                k2: 0.0,
                p1: 0.0,
                p2: 0.0,
                k3: 0.0,
            },
            ..CameraModel::pinhole(100.0, 100.0, 0.0, 0.0, 0, 0)
        };
        assert!(cam.normalize(&PixelPoint::new(300.0, 0.0)).is_err());
        assert!(cam.normalize(&PixelPoint::new(f64::NAN, 0.0)).is_err());
        assert!(cam.normalize(&PixelPoint::new(20.0, 10.0)).is_ok());
    }
}
