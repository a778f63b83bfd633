//! Pure-rotation refinement: `x1 ~ R·x0`, residual `π(R·x0) − x1` on the normalized plane,
//! steps `R ← exp([ω]×)·R`.

use nalgebra::{Matrix3, Rotation3, SMatrix, SVector, Vector2, Vector3};

use super::{levenberg_marquardt, LmOutcome, Problem, RobustLoss, Sandwich};

/// Rotation-only least squares over normalized correspondences.
pub(crate) struct RotationProblem<'a> {
    pub x0: &'a [Vector2<f64>],
    pub x1: &'a [Vector2<f64>],
    pub loss: RobustLoss,
    pub scale2: f64,
}

/// Residual of one correspondence and its Jacobian with respect to ω.
#[inline]
fn residual_and_jacobian(
    r: &Matrix3<f64>,
    x0: &Vector2<f64>,
    x1: &Vector2<f64>,
) -> Option<(Vector2<f64>, SMatrix<f64, 2, 3>)> {
    let p = r * x0.push(1.0);
    if p.z <= 1e-12 {
        return None;
    }
    let iz = 1.0 / p.z;
    let (u, v) = (p.x * iz, p.y * iz);
    let dpi = SMatrix::<f64, 2, 3>::new(iz, 0.0, -u * iz, 0.0, iz, -v * iz);
    // ∂(exp([ω]×)p)/∂ω = −[p]×
    let dp = -crate::geometry::essential::skew(&p);
    Some((Vector2::new(u - x1.x, v - x1.y), dpi * dp))
}

/// Squared transfer error of the rotation model (∞ when the point rotates behind camera 1).
#[inline]
pub fn rotation_error_sq(r: &Matrix3<f64>, x0: &Vector2<f64>, x1: &Vector2<f64>) -> f64 {
    let p = r * x0.push(1.0);
    if p.z <= 1e-12 {
        return f64::INFINITY;
    }
    (p.x / p.z - x1.x).powi(2) + (p.y / p.z - x1.y).powi(2)
}

impl Problem<3> for RotationProblem<'_> {
    type Params = Matrix3<f64>;

    fn linearize(
        &self,
        r: &Matrix3<f64>,
        jtj: &mut SMatrix<f64, 3, 3>,
        jtr: &mut SVector<f64, 3>,
    ) -> f64 {
        jtj.fill(0.0);
        jtr.fill(0.0);
        let mut cost = 0.0;
        for (a, b) in self.x0.iter().zip(self.x1) {
            let Some((res, j)) = residual_and_jacobian(r, a, b) else {
                continue;
            };
            let s = res.norm_squared();
            cost += self.loss.rho(s, self.scale2);
            let w = self.loss.weight(s, self.scale2);
            *jtj += w * j.transpose() * j;
            *jtr += w * j.transpose() * res;
        }
        cost
    }

    fn cost(&self, r: &Matrix3<f64>) -> f64 {
        let residuals = self
            .x0
            .iter()
            .zip(self.x1)
            .map(|(a, b)| rotation_error_sq(r, a, b));
        self.loss.total(residuals, self.scale2)
    }

    fn retract(&self, r: &Matrix3<f64>, delta: &SVector<f64, 3>) -> Matrix3<f64> {
        let step = Rotation3::from_scaled_axis(Vector3::new(delta[0], delta[1], delta[2]));
        crate::geometry::essential::orthonormalize(&(step.matrix() * r))
    }
}

/// Refine a rotation on normalized correspondences.
pub(crate) fn refine_rotation(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    init: &Matrix3<f64>,
    loss: RobustLoss,
    scale: f64,
    max_iterations: usize,
) -> LmOutcome<Matrix3<f64>> {
    let problem = RotationProblem {
        x0,
        x1,
        loss,
        scale2: scale * scale,
    };
    levenberg_marquardt(&problem, *init, max_iterations)
}

/// 3×3 sandwich covariance of ω (rad²) for a rotation refined with `loss` on `x0, x1`.
pub(crate) fn rotation_covariance(
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    r: &Matrix3<f64>,
    loss: RobustLoss,
    scale2: f64,
) -> Matrix3<f64> {
    let mut sandwich = Sandwich::<3>::new();
    for (a, b) in x0.iter().zip(x1) {
        if let Some((res, j)) = residual_and_jacobian(r, a, b) {
            sandwich.add(&res, &j, loss, scale2);
        }
    }
    sandwich.covariance()
}
