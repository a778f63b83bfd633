//! Homography decomposition into motion and plane (Ma, Soatto, Košecká, Sastry, "An Invitation
//! to 3-D Vision", §5.3.3).
//!
//! For a plane `nᵀX0 = d` seen by two calibrated cameras, `x1 ~ H·x0` with
//! `H = R + (t/d)·nᵀ`. Given H up to scale, there are four solutions `(R, t/d, n)`, two of which
//! survive the requirement that the points lie in front of both cameras; the remaining two-fold
//! ambiguity is intrinsic to planar scenes.

use nalgebra::{Matrix3, Vector3, SVD};

/// One decomposition `H = R + t_over_d·nᵀ`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanarMotion {
    /// Rotation camera 0 → camera 1.
    pub rotation: Matrix3<f64>,
    /// Translation divided by the plane's distance from camera 0.
    pub t_over_d: Vector3<f64>,
    /// Unit plane normal in camera 0's frame.
    pub normal: Vector3<f64>,
}

/// Scale `H` so that its middle singular value is 1, keeping its sign. `None` if degenerate.
pub fn normalize_homography(h: &Matrix3<f64>) -> Option<Matrix3<f64>> {
    let sv = h.singular_values();
    let mut s = [sv[0], sv[1], sv[2]];
    s.sort_by(|a, b| b.total_cmp(a));
    (s[1] > 0.0 && s[1].is_finite()).then(|| h / s[1])
}

/// All four decompositions of a calibrated homography (normalized image coordinates), or one
/// with `t_over_d = 0` when H is a rotation (σ1 ≈ σ3). The caller fixes H's sign so that
/// `x1ᵀ·H·x0 > 0` for its inliers and filters the solutions by cheirality.
pub fn decompose_homography(h: &Matrix3<f64>) -> Vec<PlanarMotion> {
    let Some(h) = normalize_homography(h) else {
        return Vec::new();
    };
    let svd = SVD::new(h.transpose() * h, false, true);
    let Some(vt) = svd.v_t else {
        return Vec::new();
    };
    // Eigenvalues of HᵀH with eigenvectors, sorted descending.
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let s1 = svd.singular_values[order[0]];
    let s3 = svd.singular_values[order[2]];
    let v: [Vector3<f64>; 3] = std::array::from_fn(|k| vt.row(order[k]).transpose());
    if s1 - s3 < 1e-12 {
        return vec![PlanarMotion {
            rotation: h,
            t_over_d: Vector3::zeros(),
            normal: Vector3::z(),
        }];
    }
    let a = (1.0 - s3).max(0.0).sqrt();
    let b = (s1 - 1.0).max(0.0).sqrt();
    let norm = (s1 - s3).sqrt();
    let (v1, v2, v3) = (v[0], v[1], v[2]);
    let mut out = Vec::with_capacity(4);
    for u in [(v1 * a + v3 * b) / norm, (v1 * a - v3 * b) / norm] {
        let big_u = Matrix3::from_columns(&[v2, u, v2.cross(&u)]);
        let hv2 = h * v2;
        let hu = h * u;
        let big_w = Matrix3::from_columns(&[hv2, hu, hv2.cross(&hu)]);
        let r = big_w * big_u.transpose();
        let n = v2.cross(&u);
        let t = (h - r) * n;
        out.push(PlanarMotion {
            rotation: r,
            t_over_d: t,
            normal: n,
        });
        out.push(PlanarMotion {
            rotation: r,
            t_over_d: -t,
            normal: -n,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Rotation3;

    #[test]
    fn one_solution_is_the_true_motion() {
        let r = Rotation3::from_euler_angles(0.1, -0.2, 0.15);
        let t = Vector3::new(0.3, -0.1, 0.05);
        let n = Vector3::new(0.2, -0.3, 1.0).normalize();
        let d = 4.0;
        let h = (r.matrix() + t * n.transpose() / d) * -2.5;
        let mut sols = decompose_homography(&(-h));
        assert_eq!(sols.len(), 4);
        sols.retain(|s| (s.normal - n).norm() < 1e-9);
        assert_eq!(sols.len(), 1);
        // Exact input: recovered to rounding.
        assert!((sols[0].rotation - r.matrix()).norm() < 1e-9);
        assert!((sols[0].t_over_d - t / d).norm() < 1e-9);
        for s in decompose_homography(&(-h)) {
            // Every solution reproduces H (normalized).
            let hn = normalize_homography(&(-h)).unwrap();
            assert!((s.rotation + s.t_over_d * s.normal.transpose() - hn).norm() < 1e-9);
            assert!((s.rotation.transpose() * s.rotation - Matrix3::identity()).norm() < 1e-9);
        }
    }
}
