//! Minimal absolute pose from three 2-D–3-D correspondences (P3P), after the idea of Lambda Twist
//! (Persson & Nordberg, ECCV 2018): the depths λ of the three points along their bearings solve
//! three quadrics `λᵢ² + λⱼ² − 2bᵢⱼλᵢλⱼ = aᵢⱼ`; two homogeneous combinations of them span a pencil
//! of conics whose degenerate member (one real root of a cubic) factors into two planes through
//! the origin. On each plane the depths follow from one quadratic, a few Newton steps polish them,
//! and the pose comes from the two point triangles.

use nalgebra::{Matrix3, Rotation3, Vector3};

use crate::geometry::essential::orthonormalize;
use crate::geometry::pose::RelativePose;

/// Polishing steps of the depths (quadratic convergence: two to three reach machine precision).
const NEWTON_STEPS: usize = 4;

/// Append every pose `(R, t)` with `bearings[i] ∝ R·points[i] + t` (positive depth) to `out`;
/// returns how many were added (0–4). `bearings` need not be unit length. Degenerate samples
/// (collinear or coincident points, parallel bearings) give no pose.
pub fn p3p(
    bearings: &[Vector3<f64>; 3],
    points: &[Vector3<f64>; 3],
    out: &mut Vec<RelativePose>,
) -> usize {
    let before = out.len();
    let y = [
        bearings[0].normalize(),
        bearings[1].normalize(),
        bearings[2].normalize(),
    ];
    let d12 = points[0] - points[1];
    let d13 = points[0] - points[2];
    let d23 = points[1] - points[2];
    let (a12, a13, a23) = (d12.norm_squared(), d13.norm_squared(), d23.norm_squared());
    let normal = d12.cross(&d13);
    // Collinear (or coincident) world points: the triangle fixes no rotation about its line.
    let scale = a12.max(a13).max(a23);
    let area2 = normal.norm_squared();
    if area2.is_nan() || area2 <= 1e-20 * scale * scale {
        return 0;
    }
    let (b12, b13, b23) = (y[0].dot(&y[1]), y[0].dot(&y[2]), y[1].dot(&y[2]));
    // Homogeneous combinations a23·Q12 − a12·Q23 and a23·Q13 − a13·Q23 of the three quadrics.
    let d1 = Matrix3::new(
        a23,
        -a23 * b12,
        0.0,
        -a23 * b12,
        a23 - a12,
        a12 * b23,
        0.0,
        a12 * b23,
        -a12,
    );
    let d2 = Matrix3::new(
        a23,
        0.0,
        -a23 * b13,
        0.0,
        -a13,
        a13 * b23,
        -a23 * b13,
        a13 * b23,
        a23 - a13,
    );
    let Some(gamma) = degenerate_member(&d1, &d2) else {
        return 0;
    };
    let d0 = d1 + d2 * gamma;
    // The restriction of the pencil to either plane vanishes for D0; use the larger of D1, D2.
    let conic = if gamma.abs() > 1.0 { d1 } else { d2 };
    let x_inv = match Matrix3::from_columns(&[d12, d13, normal]).try_inverse() {
        Some(m) => m,
        None => return 0,
    };
    let a_sum = a12 + a13 + a23;
    let b = [b12, b13, b23];
    let a = [a12, a13, a23];
    let (planes, n) = factor_planes(&d0);
    for plane in planes {
        let Some(w) = plane_direction(&plane, &n) else {
            continue;
        };
        // λ = μ₀·n + μ₁·w; the conic restricted to the plane is a binary quadratic in μ.
        let q11 = n.dot(&(conic * n));
        let q12 = n.dot(&(conic * w));
        let q22 = w.dot(&(conic * w));
        let (roots, count) = binary_quadratic_roots(q11, q12, q22);
        for mu in &roots[..count] {
            let dir = n * mu[0] + w * mu[1];
            // Σ of the three quadrics is positive definite for distinct bearings: fixes |λ|.
            let norm = sum_form(&dir, &b);
            if norm.is_nan() || norm <= 0.0 {
                continue;
            }
            let mut lambda = dir * (a_sum / norm).sqrt();
            if lambda.x < 0.0 {
                lambda = -lambda;
            }
            if !(lambda.x > 0.0 && lambda.y > 0.0 && lambda.z > 0.0) {
                continue;
            }
            polish_depths(&mut lambda, &a, &b);
            if !(lambda.x > 0.0 && lambda.y > 0.0 && lambda.z > 0.0) {
                continue;
            }
            if let Some(pose) = pose_from_depths(&lambda, &y, points, &x_inv) {
                out.push(pose);
            }
        }
    }
    out.len() - before
}

/// Cofactor matrix (= adjugate for symmetric matrices).
#[inline]
fn cofactor(m: &Matrix3<f64>) -> Matrix3<f64> {
    let (c0, c1, c2) = (m.column(0), m.column(1), m.column(2));
    Matrix3::from_columns(&[c1.cross(&c2), c2.cross(&c0), c0.cross(&c1)])
}

/// A real γ with `det(D1 + γ·D2) = 0` whose conic is a real line pair (indefinite): among the
/// cubic's real roots, the one whose nonzero eigenvalues have the most opposite signs.
fn degenerate_member(d1: &Matrix3<f64>, d2: &Matrix3<f64>) -> Option<f64> {
    // det(A + γB) = det A + γ·⟨cof A, B⟩ + γ²·⟨A, cof B⟩ + γ³·det B.
    let c3 = d2.determinant();
    let c2 = d1.component_mul(&cofactor(d2)).sum();
    let c1 = cofactor(d1).component_mul(d2).sum();
    let c0 = d1.determinant();
    let mut roots = [0.0; 3];
    let count = cubic_real_roots(c3, c2, c1, c0, &mut roots);
    let mut best: Option<(f64, f64)> = None;
    for &root in &roots[..count] {
        // Newton polish on the cubic itself.
        let mut g = root;
        for _ in 0..2 {
            let f = ((c3 * g + c2) * g + c1) * g + c0;
            let df = (3.0 * c3 * g + 2.0 * c2) * g + c1;
            if df != 0.0 {
                let next = g - f / df;
                if next.is_finite() {
                    g = next;
                }
            }
        }
        let d0 = d1 + d2 * g;
        // Nonzero eigenvalues σ₁, σ₂: σ₁σ₂ = Σ principal 2×2 minors (third eigenvalue 0).
        let minors = cofactor(&d0).trace();
        let tr = d0.trace();
        let indefiniteness = -minors / (tr * tr - minors).max(f64::MIN_POSITIVE);
        if indefiniteness > 0.0 && best.is_none_or(|(_, b)| indefiniteness > b) {
            best = Some((g, indefiniteness));
        }
    }
    best.map(|(g, _)| g)
}

/// Real roots of `c3·x³ + c2·x² + c1·x + c0` (falls back to the quadratic when c3 vanishes).
fn cubic_real_roots(c3: f64, c2: f64, c1: f64, c0: f64, out: &mut [f64; 3]) -> usize {
    let scale = c3.abs().max(c2.abs()).max(c1.abs()).max(c0.abs());
    if !scale.is_finite() || scale <= 0.0 {
        return 0;
    }
    if c3.abs() < 1e-14 * scale {
        // Quadratic c2·x² + c1·x + c0.
        if c2.abs() < 1e-14 * scale {
            if c1 == 0.0 {
                return 0;
            }
            out[0] = -c0 / c1;
            return 1;
        }
        let disc = c1 * c1 - 4.0 * c2 * c0;
        if disc < 0.0 {
            return 0;
        }
        // Numerically stable pair.
        let q = -0.5 * (c1 + c1.signum() * disc.sqrt());
        out[0] = q / c2;
        if q == 0.0 {
            return 1;
        }
        out[1] = c0 / q;
        return 2;
    }
    // Monic x³ + a x² + b x + c, depressed by x = s − a/3: s³ + p s + q.
    let (a, b, c) = (c2 / c3, c1 / c3, c0 / c3);
    let shift = a / 3.0;
    let p = b - a * shift;
    let q = c - b * shift + 2.0 * shift * shift * shift;
    let disc = (q * 0.5).powi(2) + (p / 3.0).powi(3);
    if disc > 0.0 {
        // One real root (Cardano).
        let sq = disc.sqrt();
        let u = (-0.5 * q + sq).cbrt();
        let v = (-0.5 * q - sq).cbrt();
        out[0] = u + v - shift;
        1
    } else {
        // Three real roots (trigonometric form); p ≤ 0 here.
        let r = (-p / 3.0).max(0.0).sqrt();
        if r == 0.0 {
            out[0] = -shift;
            return 1;
        }
        let cos_arg = (-0.5 * q / (r * r * r)).clamp(-1.0, 1.0);
        let phi = cos_arg.acos() / 3.0;
        for (k, o) in out.iter_mut().enumerate() {
            *o = 2.0 * r * (phi - 2.0 * std::f64::consts::PI * k as f64 / 3.0).cos() - shift;
        }
        3
    }
}

/// The two planes `p·λ = 0` whose union is the degenerate conic `λᵀD0λ = 0` (rank 2,
/// indefinite), and D0's unit null vector (the lines' common point, in both planes).
fn factor_planes(d0: &Matrix3<f64>) -> ([Vector3<f64>; 2], Vector3<f64>) {
    let null = null_vector(d0);
    let tr = d0.trace();
    let minors = cofactor(d0).trace();
    let half = 0.5 * tr;
    let root = (half * half - minors).max(0.0).sqrt();
    let (s1, s2) = (half + root, half - root); // s1 > 0 > s2
                                               // Columns of D0 − σ₂I are (σ₁ − σ₂)(e₁·eₖ)e₁ − σ₂(n·eₖ)n: project n out of the largest.
    let m = d0 - Matrix3::identity() * s2;
    let mut best = m.column(0).into_owned();
    for k in 1..3 {
        if m.column(k).norm_squared() > best.norm_squared() {
            best = m.column(k).into_owned();
        }
    }
    let e1 = (best - null * null.dot(&best)).normalize();
    let e2 = null.cross(&e1);
    let s = if s1 > 0.0 {
        (-s2 / s1).max(0.0).sqrt()
    } else {
        0.0
    };
    ([e1 - e2 * s, e1 + e2 * s], null)
}

/// Unit null vector of a rank-2 symmetric matrix: the longest cross product of two rows.
fn null_vector(m: &Matrix3<f64>) -> Vector3<f64> {
    let (r0, r1, r2) = (
        m.row(0).transpose(),
        m.row(1).transpose(),
        m.row(2).transpose(),
    );
    let cands = [r0.cross(&r1), r0.cross(&r2), r1.cross(&r2)];
    let mut best = cands[0];
    for c in &cands[1..] {
        if c.norm_squared() > best.norm_squared() {
            best = *c;
        }
    }
    best.normalize()
}

/// The unit w completing the null vector n to an orthonormal basis (n, w) of the plane `p·λ = 0`.
fn plane_direction(p: &Vector3<f64>, n: &Vector3<f64>) -> Option<Vector3<f64>> {
    let w = p.cross(n);
    let len = w.norm();
    if len.is_nan() || len <= 1e-12 * p.norm() {
        return None;
    }
    Some(w / len)
}

/// Directions μ with `q11·μ₀² + 2q12·μ₀μ₁ + q22·μ₁² = 0`: the first `count` (0–2) entries.
fn binary_quadratic_roots(q11: f64, q12: f64, q22: f64) -> ([[f64; 2]; 2], usize) {
    let mut out = [[0.0; 2]; 2];
    let disc = q12 * q12 - q11 * q22;
    if disc.is_nan() || disc < 0.0 {
        return (out, 0);
    }
    let sq = disc.sqrt();
    // The ratio over the coordinate with the larger coefficient, by the stable quadratic formula.
    let swap = q11.abs() < q22.abs();
    let (lead, last) = if swap { (q22, q11) } else { (q11, q22) };
    if lead == 0.0 {
        return (out, 0);
    }
    // lead·r² + 2q12·r + last = 0
    let q = -(q12 + q12.signum() * sq);
    let mut count = 0;
    for r in [q / lead, if q != 0.0 { last / q } else { f64::NAN }] {
        if r.is_finite() && (count == 0 || sq > 0.0) {
            out[count] = if swap { [1.0, r] } else { [r, 1.0] };
            count += 1;
        }
    }
    (out, count)
}

/// `Σᵢⱼ (λᵢ² + λⱼ² − 2bᵢⱼλᵢλⱼ)` over the three pairs (`b` = [b12, b13, b23]).
#[inline]
fn sum_form(l: &Vector3<f64>, b: &[f64; 3]) -> f64 {
    2.0 * (l.x * l.x + l.y * l.y + l.z * l.z)
        - 2.0 * (b[0] * l.x * l.y + b[1] * l.x * l.z + b[2] * l.y * l.z)
}

/// Newton's method on the three depth equations (`a`, `b` ordered 12, 13, 23); a step is kept
/// only when it lowers the residual.
fn polish_depths(l: &mut Vector3<f64>, a: &[f64; 3], b: &[f64; 3]) {
    let residual = |l: &Vector3<f64>| {
        Vector3::new(
            l.x * l.x + l.y * l.y - 2.0 * b[0] * l.x * l.y - a[0],
            l.x * l.x + l.z * l.z - 2.0 * b[1] * l.x * l.z - a[1],
            l.y * l.y + l.z * l.z - 2.0 * b[2] * l.y * l.z - a[2],
        )
    };
    let mut r = residual(l);
    let mut err = r.norm_squared();
    for _ in 0..NEWTON_STEPS {
        if err == 0.0 {
            break;
        }
        let j = Matrix3::new(
            2.0 * (l.x - b[0] * l.y),
            2.0 * (l.y - b[0] * l.x),
            0.0,
            2.0 * (l.x - b[1] * l.z),
            0.0,
            2.0 * (l.z - b[1] * l.x),
            0.0,
            2.0 * (l.y - b[2] * l.z),
            2.0 * (l.z - b[2] * l.y),
        );
        let Some(step) = j.lu().solve(&r) else {
            break;
        };
        let next = *l - step;
        let rn = residual(&next);
        let en = rn.norm_squared();
        if en.is_nan() || en >= err {
            break;
        }
        *l = next;
        r = rn;
        err = en;
    }
}

/// The pose mapping the world triangle onto the camera-frame triangle `λᵢ·yᵢ`: with
/// `X = [d12, d13, d12×d13]` and the same for the camera points, `R = Y·X⁻¹`, `t = Y₁ − R·X₁`.
fn pose_from_depths(
    l: &Vector3<f64>,
    y: &[Vector3<f64>; 3],
    points: &[Vector3<f64>; 3],
    x_inv: &Matrix3<f64>,
) -> Option<RelativePose> {
    let c0 = y[0] * l.x;
    let e12 = c0 - y[1] * l.y;
    let e13 = c0 - y[2] * l.z;
    let yy = Matrix3::from_columns(&[e12, e13, e12.cross(&e13)]);
    let r = orthonormalize(&(yy * x_inv));
    if !r.iter().all(|v| v.is_finite()) {
        return None;
    }
    let t = c0 - r * points[0];
    Some(RelativePose::new(Rotation3::from_matrix_unchecked(r), t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::rng::Rng;

    /// A random pose (rotation up to `max_angle`, translation in a unit box) and three points in
    /// front of the camera, seen through exact bearings.
    fn problem(
        rng: &mut Rng,
        max_angle: f64,
        spread: f64,
    ) -> (RelativePose, [Vector3<f64>; 3], [Vector3<f64>; 3]) {
        loop {
            let pose = RelativePose::new(
                Rotation3::from_scaled_axis(rng.unit_vector3() * rng.uniform_in(0.0, max_angle)),
                Vector3::new(
                    rng.uniform_in(-1.0, 1.0),
                    rng.uniform_in(-1.0, 1.0),
                    rng.uniform_in(-1.0, 1.0),
                ),
            );
            let inv = pose.inverse();
            // Points in the camera frame at depth 2–8, mapped to the world.
            let cam: [Vector3<f64>; 3] = std::array::from_fn(|_| {
                Vector3::new(
                    rng.uniform_in(-spread, spread),
                    rng.uniform_in(-spread, spread),
                    rng.uniform_in(2.0, 8.0),
                )
            });
            let world = cam.map(|c| inv.transform(&c));
            if cam.iter().all(|c| c.z > 0.5) {
                return (pose, cam.map(|c| c / c.z), world);
            }
        }
    }

    fn best_error(poses: &[RelativePose], gt: &RelativePose) -> f64 {
        poses
            .iter()
            .map(|p| {
                (p.rotation.matrix() - gt.rotation.matrix()).norm()
                    + (p.translation - gt.translation).norm()
            })
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn recovers_the_true_pose_of_random_exact_problems() {
        let mut rng = Rng::new(5);
        let mut out = Vec::new();
        let mut worst: f64 = 0.0;
        for _ in 0..2000 {
            let (gt, bearings, world) = problem(&mut rng, std::f64::consts::PI, 2.0);
            out.clear();
            let n = p3p(&bearings, &world, &mut out);
            assert!(n <= 4 && n == out.len());
            let e = best_error(&out, &gt);
            worst = worst.max(e);
            // Every returned pose reprojects all three points (it is a solution, not noise).
            for p in &out {
                for (b, x) in bearings.iter().zip(&world) {
                    let c = p.transform(x);
                    assert!(c.z > 0.0);
                    assert!((c / c.z - b).norm() < 1e-6, "spurious solution");
                }
            }
        }
        // Polished in double precision: 1e-8 leaves room for the worst-conditioned of 2000.
        assert!(worst < 1e-8, "worst error {worst}");
    }

    #[test]
    fn near_degenerate_samples_stay_accurate_or_return_nothing() {
        let mut rng = Rng::new(6);
        let mut out = Vec::new();
        // Narrow field of view (points 5 cm apart at 2–8 m): bearings nearly parallel.
        let mut found = 0;
        for _ in 0..500 {
            let (gt, bearings, world) = problem(&mut rng, 1.0, 0.05);
            out.clear();
            p3p(&bearings, &world, &mut out);
            if !out.is_empty() {
                found += 1;
                // Relative accuracy limited by the conditioning, ~1e-6 at these angles.
                assert!(best_error(&out, &gt) < 1e-4);
            }
        }
        assert!(found >= 495, "{found} of 500 narrow samples solved");
        // Nearly collinear world points: either the true pose or nothing, never garbage.
        let mut solved = 0;
        for _ in 0..500 {
            let (gt, _, _) = problem(&mut rng, 1.0, 2.0);
            let inv = gt.inverse();
            let base = Vector3::new(0.0, 0.0, 4.0);
            let dir = Vector3::new(1.0, 0.2, 0.1);
            let cam = [
                base - dir,
                base + dir * 0.5,
                base + dir + Vector3::new(0.0, 1e-3, 0.0),
            ];
            let bearings = cam.map(|c| c / c.z);
            let world = cam.map(|c| inv.transform(&c));
            out.clear();
            p3p(&bearings, &world, &mut out);
            if !out.is_empty() && best_error(&out, &gt) < 1e-3 {
                solved += 1;
            }
        }
        assert!(solved >= 450, "{solved} of 500 near-collinear samples");
        // Exactly collinear and coincident points give nothing.
        let line = [
            Vector3::new(0.0, 0.0, 4.0),
            Vector3::new(1.0, 0.0, 4.0),
            Vector3::new(2.0, 0.0, 4.0),
        ];
        out.clear();
        assert_eq!(p3p(&line.map(|c| c / c.z), &line, &mut out), 0);
        let same = [line[0]; 3];
        assert_eq!(p3p(&same.map(|c| c / c.z), &same, &mut out), 0);
    }

    #[test]
    fn cubic_roots_match_their_factors() {
        let mut r = [0.0; 3];
        // (x − 1)(x − 2)(x + 3) = x³ − 7x + 6
        assert_eq!(cubic_real_roots(1.0, 0.0, -7.0, 6.0, &mut r), 3);
        let mut v = r.to_vec();
        v.sort_by(f64::total_cmp);
        for (a, b) in v.iter().zip([-3.0, 1.0, 2.0]) {
            assert!((a - b).abs() < 1e-12);
        }
        // (x − 2)(x² + 1)
        assert_eq!(cubic_real_roots(1.0, -2.0, 1.0, -2.0, &mut r), 1);
        assert!((r[0] - 2.0).abs() < 1e-12);
    }
}
