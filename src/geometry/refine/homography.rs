//! Homography refinement on the forward transfer error `π(H·x0) − x1`.
//!
//! `H` lives on the unit sphere of 3×3 matrices; steps are taken in an orthonormal basis of its
//! tangent space (8 parameters), then renormalized.

use nalgebra::{Matrix3, SMatrix, SVector, Vector2};

use super::{levenberg_marquardt, LmOutcome, Problem, RobustLoss};

/// Forward transfer least squares over 2-D correspondences.
pub(crate) struct HomographyProblem<'a> {
    pub x0: &'a [Vector2<f64>],
    pub x1: &'a [Vector2<f64>],
    pub loss: RobustLoss,
    pub scale2: f64,
}

/// Eight orthonormal 3×3 matrices orthogonal to the unit-norm `h` (Householder complement).
fn tangent_basis(h: &Matrix3<f64>) -> [Matrix3<f64>; 8] {
    let hv: [f64; 9] = std::array::from_fn(|k| h[(k / 3, k % 3)]);
    // Reflector P = I − 2vvᵀ with P·e₀ = ±h; its other columns span h⊥.
    let sign = if hv[0] >= 0.0 { 1.0 } else { -1.0 };
    let mut v = hv;
    v[0] += sign;
    let vn2: f64 = v.iter().map(|x| x * x).sum();
    std::array::from_fn(|k| {
        let col = k + 1;
        Matrix3::from_fn(|i, j| {
            let row = 3 * i + j;
            let delta = if row == col { 1.0 } else { 0.0 };
            delta - 2.0 * v[row] * v[col] / vn2
        })
    })
}

/// Transfer residual and its Jacobian with respect to the 9 entries of H (row-major).
#[inline]
fn residual_and_jacobian(
    h: &Matrix3<f64>,
    x0: &Vector2<f64>,
    x1: &Vector2<f64>,
) -> Option<(Vector2<f64>, SMatrix<f64, 2, 9>)> {
    let p = h * x0.push(1.0);
    if p.z.abs() < 1e-12 {
        return None;
    }
    let iz = 1.0 / p.z;
    let u = p.x * iz;
    let v = p.y * iz;
    let r = Vector2::new(u - x1.x, v - x1.y);
    let xh = [x0.x, x0.y, 1.0];
    let mut j = SMatrix::<f64, 2, 9>::zeros();
    for c in 0..3 {
        j[(0, c)] = xh[c] * iz;
        j[(0, 6 + c)] = -u * xh[c] * iz;
        j[(1, 3 + c)] = xh[c] * iz;
        j[(1, 6 + c)] = -v * xh[c] * iz;
    }
    Some((r, j))
}

/// Squared forward transfer error `|π(H·x0) − x1|²` (∞ when x0 maps to infinity).
#[inline]
pub fn transfer_error_sq(h: &Matrix3<f64>, x0: &Vector2<f64>, x1: &Vector2<f64>) -> f64 {
    let p = h * x0.push(1.0);
    if p.z.abs() < 1e-12 {
        return f64::INFINITY;
    }
    (p.x / p.z - x1.x).powi(2) + (p.y / p.z - x1.y).powi(2)
}

impl Problem<8> for HomographyProblem<'_> {
    type Params = Matrix3<f64>;

    fn linearize(
        &self,
        h: &Matrix3<f64>,
        jtj: &mut SMatrix<f64, 8, 8>,
        jtr: &mut SVector<f64, 8>,
    ) -> f64 {
        let basis = tangent_basis(h);
        let mut bm = SMatrix::<f64, 9, 8>::zeros();
        for (k, b) in basis.iter().enumerate() {
            for q in 0..9 {
                bm[(q, k)] = b[(q / 3, q % 3)];
            }
        }
        jtj.fill(0.0);
        jtr.fill(0.0);
        let mut cost = 0.0;
        for (a, b) in self.x0.iter().zip(self.x1) {
            let Some((r, j9)) = residual_and_jacobian(h, a, b) else {
                continue;
            };
            let s = r.norm_squared();
            cost += self.loss.rho(s, self.scale2);
            let w = self.loss.weight(s, self.scale2);
            if w == 0.0 {
                continue;
            }
            let j = j9 * bm;
            *jtj += w * j.transpose() * j;
            *jtr += w * j.transpose() * r;
        }
        cost
    }

    fn cost(&self, h: &Matrix3<f64>) -> f64 {
        let residuals = self
            .x0
            .iter()
            .zip(self.x1)
            .map(|(a, b)| transfer_error_sq(h, a, b));
        self.loss.total(residuals, self.scale2)
    }

    fn retract(&self, h: &Matrix3<f64>, delta: &SVector<f64, 8>) -> Matrix3<f64> {
        let basis = tangent_basis(h);
        let mut n = *h;
        for (k, b) in basis.iter().enumerate() {
            n += b * delta[k];
        }
        n / n.norm()
    }
}

/// Refine `H` (any scale; returned with unit Frobenius norm).
pub(crate) fn refine_homography(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    init: &Matrix3<f64>,
    loss: RobustLoss,
    scale: f64,
    max_iterations: usize,
) -> LmOutcome<Matrix3<f64>> {
    let problem = HomographyProblem {
        x0,
        x1,
        loss,
        scale2: scale * scale,
    };
    levenberg_marquardt(&problem, init / init.norm(), max_iterations)
}
