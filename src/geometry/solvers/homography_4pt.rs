//! The 4-point homography: direct linear transform on four correspondences.
//!
//! Callers pass well-conditioned coordinates (the robust estimator normalizes the whole point
//! set once, Hartley-style), so the DLT itself needs no per-sample normalization.

use nalgebra::{Matrix3, Vector2};

use super::nullspace::null_space;

/// Signed area of the triangle (a, b, c), twice.
#[inline]
fn orientation(a: &Vector2<f64>, b: &Vector2<f64>, c: &Vector2<f64>) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

/// `H` with `x1ᵢ ~ H·x0ᵢ` for four correspondences, scaled to unit Frobenius norm.
///
/// `None` for degenerate samples: three (nearly) collinear points in either image, or a point
/// triple whose orientation flips between the images (no plane in front of both cameras maps
/// that way, so the sample holds an outlier).
pub fn homography_4pt(x0: &[Vector2<f64>; 4], x1: &[Vector2<f64>; 4]) -> Option<Matrix3<f64>> {
    const TRIPLES: [[usize; 3]; 4] = [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]];
    let spread = |x: &[Vector2<f64>; 4]| {
        let mut m = 0.0f64;
        for p in &x[1..] {
            m = m.max((p - x[0]).norm_squared());
        }
        m
    };
    let (s0, s1) = (spread(x0), spread(x1));
    for t in TRIPLES {
        let o0 = orientation(&x0[t[0]], &x0[t[1]], &x0[t[2]]);
        let o1 = orientation(&x1[t[0]], &x1[t[1]], &x1[t[2]]);
        // Collinear if the triangle's area is tiny compared with the sample's extent.
        if o0.abs() <= 1e-8 * s0 || o1.abs() <= 1e-8 * s1 || (o0 > 0.0) != (o1 > 0.0) {
            return None;
        }
    }
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (x0[i].x, x0[i].y);
        let (u, v) = (x1[i].x, x1[i].y);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v];
    }
    let mut h = [[0.0f64; 9]; 1];
    if !null_space(&a, &mut h) {
        return None;
    }
    let hm = Matrix3::from_row_slice(&h[0]);
    hm.iter().all(|v| v.is_finite()).then_some(hm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_homography() {
        let h = Matrix3::new(1.1, 0.05, 0.3, -0.02, 0.95, -0.1, 0.04, -0.03, 1.0);
        let x0 = [
            Vector2::new(-1.0, -0.8),
            Vector2::new(0.9, -1.1),
            Vector2::new(1.2, 0.7),
            Vector2::new(-0.7, 1.0),
        ];
        let x1 = x0.map(|p| (h * p.push(1.0)).xy() / (h * p.push(1.0)).z);
        let got = homography_4pt(&x0, &x1).unwrap();
        let want = h / h.norm();
        let sign = if (got - want).norm() < (got + want).norm() {
            1.0
        } else {
            -1.0
        };
        // Noise-free, well-conditioned: exact up to rounding.
        assert!((got * sign - want).norm() < 1e-12, "{got} {want}");
        let collinear = [x0[0], x0[1], (x0[0] + x0[1]) * 0.5, x0[3]];
        assert!(homography_4pt(&collinear, &x1).is_none());
    }
}
