//! The 5-point essential-matrix solver (D. Nistér, "An efficient solution to the five-point
//! relative pose problem", PAMI 2004), on the route PoseLib's `relpose_5pt` also takes:
//!
//! 1. the 4-dimensional null space of the 5×9 epipolar constraints by Householder QR, so
//!    `E = x·X + y·Y + z·Z + W`;
//! 2. the ten cubic constraints `det E = 0` and `2·E·Eᵀ·E − tr(E·Eᵀ)·E = 0` as a 10×20 matrix
//!    over the monomials of (x, y, z), reduced by Gauss–Jordan elimination with partial pivoting;
//! 3. three rows combined into a 3×3 matrix `B(z)` with `B(z)·(x, y, 1)ᵀ = 0`, whose determinant
//!    is a degree-10 polynomial in z;
//! 4. its real roots by Sturm bisection ([`super::poly`]), then (x, y) from the null vector of
//!    `B(z)`.

use nalgebra::{Matrix3, Vector3};

use super::nullspace::null_space;
use super::poly;

/// Linear polynomial in (x, y, z): coefficients of `[x, y, z, 1]`.
type Lin = [f64; 4];
/// Quadratic: `[x², y², z², xy, xz, yz, x, y, z, 1]`.
type Quad = [f64; 10];
/// Cubic, in Nistér's monomial order: `[x³, y³, x²y, xy², x²z, x², y²z, y², xyz, xy,`
/// `xz², xz, x, yz², yz, y, z³, z², z, 1]`. The first ten are eliminated.
type Cubic = [f64; 20];

/// `QUAD_TIMES_LIN[q][l]`: index in [`Cubic`] of quadratic monomial `q` × linear monomial `l`.
const QUAD_TIMES_LIN: [[usize; 4]; 10] = [
    [0, 2, 4, 5],     // x²
    [3, 1, 6, 7],     // y²
    [10, 13, 16, 17], // z²
    [2, 3, 8, 9],     // xy
    [4, 8, 10, 11],   // xz
    [8, 6, 13, 14],   // yz
    [5, 9, 11, 12],   // x
    [9, 7, 14, 15],   // y
    [11, 14, 17, 18], // z
    [12, 15, 18, 19], // 1
];

#[inline]
fn lin_times_lin(a: &Lin, b: &Lin) -> Quad {
    [
        a[0] * b[0],
        a[1] * b[1],
        a[2] * b[2],
        a[0] * b[1] + a[1] * b[0],
        a[0] * b[2] + a[2] * b[0],
        a[1] * b[2] + a[2] * b[1],
        a[0] * b[3] + a[3] * b[0],
        a[1] * b[3] + a[3] * b[1],
        a[2] * b[3] + a[3] * b[2],
        a[3] * b[3],
    ]
}

#[inline]
fn add_quad_times_lin(acc: &mut Cubic, q: &Quad, l: &Lin) {
    for (i, qi) in q.iter().enumerate() {
        for (j, lj) in l.iter().enumerate() {
            acc[QUAD_TIMES_LIN[i][j]] += qi * lj;
        }
    }
}

#[inline]
fn quad_add(a: &Quad, b: &Quad, sb: f64) -> Quad {
    std::array::from_fn(|k| a[k] + sb * b[k])
}

/// Product of ascending-coefficient polynomials into `out` (length ≥ a.len() + b.len() − 1).
#[inline]
fn poly_mul(a: &[f64], b: &[f64], out: &mut [f64]) {
    for v in out.iter_mut() {
        *v = 0.0;
    }
    for (i, ai) in a.iter().enumerate() {
        for (j, bj) in b.iter().enumerate() {
            out[i + j] += ai * bj;
        }
    }
}

/// Monomials of [`Cubic`] at (x, y, z) and their partial derivatives.
#[inline]
fn monomials(x: f64, y: f64, z: f64) -> [[f64; 20]; 4] {
    let (xx, yy, zz, xy, xz, yz) = (x * x, y * y, z * z, x * y, x * z, y * z);
    [
        [
            xx * x,
            yy * y,
            xx * y,
            x * yy,
            xx * z,
            xx,
            yy * z,
            yy,
            xy * z,
            xy,
            x * zz,
            xz,
            x,
            y * zz,
            yz,
            y,
            zz * z,
            zz,
            z,
            1.0,
        ],
        [
            3.0 * xx,
            0.0,
            2.0 * xy,
            yy,
            2.0 * xz,
            2.0 * x,
            0.0,
            0.0,
            yz,
            y,
            zz,
            z,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            0.0,
            3.0 * yy,
            xx,
            2.0 * xy,
            0.0,
            0.0,
            2.0 * yz,
            2.0 * y,
            xz,
            x,
            0.0,
            0.0,
            0.0,
            zz,
            z,
            1.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        [
            0.0,
            0.0,
            0.0,
            0.0,
            xx,
            0.0,
            yy,
            0.0,
            xy,
            0.0,
            2.0 * xz,
            x,
            0.0,
            2.0 * yz,
            y,
            0.0,
            3.0 * zz,
            2.0 * z,
            1.0,
            0.0,
        ],
    ]
}

/// Gauss–Newton on the ten original cubic constraints in (x, y, z). The degree-10 polynomial
/// loses accuracy where two of its roots nearly coincide; in (x, y, z) those solutions are
/// still well separated, so one step restores full precision (a second one runs only when the
/// first moved the solution noticeably).
fn polish(constraints: &[[f64; 20]; 10], mut x: f64, mut y: f64, mut z: f64) -> (f64, f64, f64) {
    for _ in 0..2 {
        let mono = monomials(x, y, z);
        let mut jtj = Matrix3::zeros();
        let mut jtf = Vector3::zeros();
        for row in constraints {
            let mut f = 0.0;
            let mut j = Vector3::zeros();
            for k in 0..20 {
                f += row[k] * mono[0][k];
                j.x += row[k] * mono[1][k];
                j.y += row[k] * mono[2][k];
                j.z += row[k] * mono[3][k];
            }
            jtj += j * j.transpose();
            jtf += j * f;
        }
        let Some(inv) = jtj.try_inverse() else {
            break;
        };
        let d = inv * jtf;
        if !d.iter().all(|v| v.is_finite()) {
            break;
        }
        x -= d.x;
        y -= d.y;
        z -= d.z;
        if d.norm() <= 1e-9 * (1.0 + x.abs() + y.abs() + z.abs()) {
            break;
        }
    }
    (x, y, z)
}

/// All essential matrices (up to 10) with `x1ᵢᵀ·E·x0ᵢ = 0` for the five correspondences, each
/// scaled to unit Frobenius norm. Points are homogeneous normalized coordinates or bearings.
/// Degenerate samples give no solutions.
pub fn essential_5pt(x0: &[Vector3<f64>; 5], x1: &[Vector3<f64>; 5], out: &mut Vec<Matrix3<f64>>) {
    // 1. Null space of the constraints x1ᵀ E x0 = 0, E stored row-major.
    let mut a = [[0.0f64; 9]; 5];
    for (i, row) in a.iter_mut().enumerate() {
        for r in 0..3 {
            for c in 0..3 {
                row[3 * r + c] = x1[i][r] * x0[i][c];
            }
        }
    }
    let mut basis = [[0.0f64; 9]; 4];
    if !null_space(&a, &mut basis) {
        return;
    }
    let e: [Lin; 9] = std::array::from_fn(|k| [basis[0][k], basis[1][k], basis[2][k], basis[3][k]]);

    // 2. The ten cubic constraints.
    let mut m = [[0.0f64; 20]; 10];
    let mut s = [[[0.0f64; 10]; 3]; 3];
    for i in 0..3 {
        for j in i..3 {
            let mut q = [0.0f64; 10];
            for k in 0..3 {
                q = quad_add(&q, &lin_times_lin(&e[3 * i + k], &e[3 * j + k]), 1.0);
            }
            s[i][j] = q;
            s[j][i] = q;
        }
    }
    let trace = quad_add(&quad_add(&s[0][0], &s[1][1], 1.0), &s[2][2], 1.0);
    for i in 0..3 {
        for j in 0..3 {
            let row = &mut m[3 * i + j];
            for k in 0..3 {
                let mut t: Quad = std::array::from_fn(|n| 2.0 * s[i][k][n]);
                if i == k {
                    t = quad_add(&t, &trace, -1.0);
                }
                add_quad_times_lin(row, &t, &e[3 * k + j]);
            }
        }
    }
    let c0 = quad_add(
        &lin_times_lin(&e[4], &e[8]),
        &lin_times_lin(&e[5], &e[7]),
        -1.0,
    );
    let c1 = quad_add(
        &lin_times_lin(&e[5], &e[6]),
        &lin_times_lin(&e[3], &e[8]),
        -1.0,
    );
    let c2 = quad_add(
        &lin_times_lin(&e[3], &e[7]),
        &lin_times_lin(&e[4], &e[6]),
        -1.0,
    );
    add_quad_times_lin(&mut m[9], &c0, &e[0]);
    add_quad_times_lin(&mut m[9], &c1, &e[1]);
    add_quad_times_lin(&mut m[9], &c2, &e[2]);

    let constraints = m;
    // Gauss–Jordan on the first ten columns: row r becomes monomial r + Σ C·(last ten).
    let scale = m.iter().flatten().fold(0.0f64, |acc, v| acc.max(v.abs()));
    for col in 0..10 {
        let mut pivot = col;
        for r in col + 1..10 {
            if m[r][col].abs() > m[pivot][col].abs() {
                pivot = r;
            }
        }
        if m[pivot][col].abs() <= 1e-13 * scale {
            return;
        }
        m.swap(col, pivot);
        let inv = 1.0 / m[col][col];
        for v in m[col][col..].iter_mut() {
            *v *= inv;
        }
        let prow = m[col];
        for (r, row) in m.iter_mut().enumerate() {
            if r == col {
                continue;
            }
            let f = row[col];
            if f != 0.0 {
                for c in col..20 {
                    row[c] -= f * prow[c];
                }
            }
        }
    }

    // 3. ⟨e⟩ − z⟨f⟩ for the row pairs (x²z, x²), (y²z, y²), (xyz, xy): polynomials in z that
    //    multiply x, y and 1 (ascending powers of z).
    let mut bx = [[0.0f64; 4]; 3];
    let mut by = [[0.0f64; 4]; 3];
    let mut b1 = [[0.0f64; 5]; 3];
    for (k, (re, rf)) in [(4usize, 5usize), (6, 7), (8, 9)].into_iter().enumerate() {
        let (e, f) = (&m[re], &m[rf]);
        bx[k] = [e[12], e[11] - f[12], e[10] - f[11], -f[10]];
        by[k] = [e[15], e[14] - f[15], e[13] - f[14], -f[13]];
        b1[k] = [e[19], e[18] - f[19], e[17] - f[18], e[16] - f[17], -f[16]];
    }

    // det B(z), degree 10.
    let mut det = [0.0f64; 11];
    let mut t7a = [0.0f64; 8];
    let mut t7b = [0.0f64; 8];
    let mut t10 = [0.0f64; 11];
    let mut t6a = [0.0f64; 7];
    let mut t6b = [0.0f64; 7];
    // + bx0·(by1·b12 − b11·by2)
    poly_mul(&by[1], &b1[2], &mut t7a);
    poly_mul(&b1[1], &by[2], &mut t7b);
    let minor: [f64; 8] = std::array::from_fn(|i| t7a[i] - t7b[i]);
    poly_mul(&bx[0], &minor, &mut t10);
    for i in 0..11 {
        det[i] += t10[i];
    }
    // − by0·(bx1·b12 − b11·bx2)
    poly_mul(&bx[1], &b1[2], &mut t7a);
    poly_mul(&b1[1], &bx[2], &mut t7b);
    let minor: [f64; 8] = std::array::from_fn(|i| t7a[i] - t7b[i]);
    poly_mul(&by[0], &minor, &mut t10);
    for i in 0..11 {
        det[i] -= t10[i];
    }
    // + b10·(bx1·by2 − by1·bx2)
    poly_mul(&bx[1], &by[2], &mut t6a);
    poly_mul(&by[1], &bx[2], &mut t6b);
    let minor: [f64; 7] = std::array::from_fn(|i| t6a[i] - t6b[i]);
    poly_mul(&b1[0], &minor, &mut t10);
    for i in 0..11 {
        det[i] += t10[i];
    }

    // 4. Real roots, then (x, y) from the null vector of B(z).
    let mut roots = Vec::with_capacity(10);
    poly::real_roots(&det, &mut roots);
    for z in roots {
        let rows: [Vector3<f64>; 3] = std::array::from_fn(|k| {
            Vector3::new(
                poly::eval(&bx[k], z),
                poly::eval(&by[k], z),
                poly::eval(&b1[k], z),
            )
        });
        let candidates = [
            rows[0].cross(&rows[1]),
            rows[0].cross(&rows[2]),
            rows[1].cross(&rows[2]),
        ];
        let mut v = candidates[0];
        for c in &candidates[1..] {
            if c.norm_squared() > v.norm_squared() {
                v = *c;
            }
        }
        if v.z.is_nan() || v.z.abs() <= 1e-14 * v.norm() {
            continue;
        }
        let (x, y) = (v.x / v.z, v.y / v.z);
        let (x, y, z) = polish(&constraints, x, y, z);
        let ev: [f64; 9] =
            std::array::from_fn(|k| x * e[k][0] + y * e[k][1] + z * e[k][2] + e[k][3]);
        let em = Matrix3::from_row_slice(&ev);
        let n = em.norm();
        if n.is_finite() && n > 0.0 {
            out.push(em / n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::essential::essential_from_pose;
    use crate::geometry::rng::Rng;
    use crate::geometry::synthetic::minimal_sample;

    #[test]
    fn true_essential_is_among_the_solutions() {
        let mut rng = Rng::new(42);
        let mut worst = 0.0f64;
        for _ in 0..500 {
            let (pose, x0, x1) =
                minimal_sample::<5>(&mut rng, [0.05, 0.5], [-2.0, 2.0], [-2.0, 2.0], [2.0, 8.0]);
            let e_true = essential_from_pose(&pose);
            let e_true = e_true / e_true.norm();
            let mut sols = Vec::new();
            essential_5pt(&x0, &x1, &mut sols);
            let best = sols
                .iter()
                .map(|e| (e - e_true).norm().min((e + e_true).norm()))
                .fold(f64::INFINITY, f64::min);
            if best > 1e-11 {
                eprintln!("bad case: best {best:e} nsols {} ", sols.len());
            }
            worst = worst.max(best);
        }
        assert!(worst < 1e-9, "worst distance to the true E: {worst}");
    }
}
