//! Essential-matrix geometry: `E = [t]×·R` for the convention `x1 ~ R·x0 + t`, its
//! decomposition into poses with a cheirality check, and the Sampson error.

use nalgebra::{Matrix3, Rotation3, Vector3};

use super::pose::RelativePose;
pub use super::pose::{essential_from_pose, skew};

/// Project a nearly orthonormal matrix onto SO(3) with two Newton–Schulz steps
/// `R ← R·(3I − RᵀR)/2` (quadratic convergence near SO(3); exact rotations stay put).
pub(crate) fn orthonormalize(m: &Matrix3<f64>) -> Matrix3<f64> {
    let mut r = *m;
    for _ in 0..2 {
        r = 0.5 * r * (Matrix3::identity() * 3.0 - r.transpose() * r);
    }
    r
}

/// Numerators of the two depths of the point seen along `x0` (camera 0) and `x1` (camera 1),
/// triangulated by least squares: `λ0·R·x0 + t ≈ λ1·x1`. Both are scaled by the same positive
/// factor `|Rx0|²|x1|² − (Rx0·x1)²`, so only their signs matter.
#[inline]
pub fn depth_numerators(
    r: &Matrix3<f64>,
    t: &Vector3<f64>,
    x0: &Vector3<f64>,
    x1: &Vector3<f64>,
) -> (f64, f64) {
    let u = r * x0;
    let c = u.dot(x1);
    let uu = u.norm_squared();
    let vv = x1.norm_squared();
    let b0 = -u.dot(t);
    let b1 = x1.dot(t);
    (vv * b0 + c * b1, c * b0 + uu * b1)
}

/// Whether the correspondence triangulates in front of both cameras.
#[inline]
pub fn in_front(r: &Matrix3<f64>, t: &Vector3<f64>, x0: &Vector3<f64>, x1: &Vector3<f64>) -> bool {
    let (l0, l1) = depth_numerators(r, t, x0, x1);
    l0 > 0.0 && l1 > 0.0
}

/// Decompose an essential matrix into the poses `(R, t)`, `|t| = 1`, for which every given
/// correspondence lies in front of both cameras (usually exactly one of the four). Uses Horn's
/// closed form `R = cof(E) ∓ [t]×·E` (no SVD), `t` from the cross product of two columns.
pub fn poses_from_essential(
    e: &Matrix3<f64>,
    x0: &[Vector3<f64>],
    x1: &[Vector3<f64>],
    out: &mut Vec<RelativePose>,
) {
    let fro = e.norm();
    if !(fro > 0.0 && fro.is_finite()) {
        return;
    }
    // ‖[t]×R‖_F = √2·|t|: scale so that |t| = 1.
    let e = e * (std::f64::consts::SQRT_2 / fro);
    // t is orthogonal to every column of E.
    let (c0, c1, c2) = (
        e.column(0).into_owned(),
        e.column(1).into_owned(),
        e.column(2).into_owned(),
    );
    let cands = [c0.cross(&c1), c0.cross(&c2), c1.cross(&c2)];
    let mut t = cands[0];
    for c in &cands[1..] {
        if c.norm_squared() > t.norm_squared() {
            t = *c;
        }
    }
    let tn = t.norm();
    if tn.is_nan() || tn <= 0.0 {
        return;
    }
    let t = t / tn;
    // Cofactor matrix: rows are cross products of the other two rows.
    let (r0, r1, r2) = (
        e.row(0).transpose(),
        e.row(1).transpose(),
        e.row(2).transpose(),
    );
    let cof = Matrix3::from_rows(&[
        r1.cross(&r2).transpose(),
        r2.cross(&r0).transpose(),
        r0.cross(&r1).transpose(),
    ]);
    let tx_e = skew(&t) * e;
    for r in [cof - tx_e, cof + tx_e] {
        let r = orthonormalize(&r);
        // Depth signs flip together with t, so test t and keep ±t by the common sign.
        let mut sign = 0.0;
        let mut ok = true;
        for (a, b) in x0.iter().zip(x1) {
            let (l0, l1) = depth_numerators(&r, &t, a, b);
            let s = if l0 > 0.0 && l1 > 0.0 {
                1.0
            } else if l0 < 0.0 && l1 < 0.0 {
                -1.0
            } else {
                0.0
            };
            if s == 0.0 || (sign != 0.0 && s != sign) {
                ok = false;
                break;
            }
            sign = s;
        }
        if ok && sign != 0.0 {
            out.push(RelativePose::new(
                Rotation3::from_matrix_unchecked(r),
                t * sign,
            ));
        }
    }
}

/// Squared Sampson error of a correspondence (homogeneous normalized coordinates, `z = 1`):
/// `(x1ᵀEx0)² / ((Ex0)₁² + (Ex0)₂² + (Eᵀx1)₁² + (Eᵀx1)₂²)`, the first-order distance to the
/// epipolar constraint in the joint 4-D space of both points.
#[inline]
pub fn sampson_error_sq(e: &Matrix3<f64>, x0: &Vector3<f64>, x1: &Vector3<f64>) -> f64 {
    let ex0 = e * x0;
    let etx1 = e.transpose() * x1;
    let c = x1.dot(&ex0);
    let n = ex0.x * ex0.x + ex0.y * ex0.y + etx1.x * etx1.x + etx1.y * etx1.y;
    if n > 0.0 {
        c * c / n
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::rng::Rng;

    #[test]
    fn decomposition_recovers_the_pose_with_points_in_front() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let r = Rotation3::from_scaled_axis(rng.unit_vector3() * rng.uniform_in(0.0, 1.0));
            let t = rng.unit_vector3();
            let pose = RelativePose::new(r, t);
            let mut x0 = Vec::new();
            let mut x1 = Vec::new();
            while x0.len() < 5 {
                let p = Vector3::new(
                    rng.uniform_in(-2.0, 2.0),
                    rng.uniform_in(-2.0, 2.0),
                    rng.uniform_in(2.0, 8.0),
                );
                let q = pose.transform(&p);
                if q.z > 0.1 {
                    x0.push(p / p.z);
                    x1.push(q / q.z);
                }
            }
            let e = essential_from_pose(&pose) * -3.7;
            let mut out = Vec::new();
            poses_from_essential(&e, &x0, &x1, &mut out);
            assert_eq!(out.len(), 1);
            // Exact input: the rotation and translation come back to rounding.
            assert!((out[0].rotation.matrix() - r.matrix()).norm() < 1e-9);
            assert!((out[0].translation - t).norm() < 1e-9);
            for (a, b) in x0.iter().zip(&x1) {
                assert!(sampson_error_sq(&e, a, b) < 1e-24);
            }
        }
    }
}
