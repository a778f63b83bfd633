//! Relative pose refinement on the Sampson error over the 5-DoF essential manifold.
//!
//! Parameters: a rotation increment ω (R ← exp([ω]×)·R, in camera 1's frame) and a 2-D step β
//! in the tangent plane of the unit translation (t ← normalize(t + b₀β₀ + b₁β₁)).

use nalgebra::{Matrix3, Matrix6, Rotation3, SMatrix, SVector, Vector3};

use super::{levenberg_marquardt, LmOutcome, Problem, RobustLoss, Sandwich};
use crate::geometry::essential::{essential_from_pose, sampson_error_sq, skew};
use crate::geometry::pose::RelativePose;

/// An orthonormal basis (b₀, b₁) of the plane orthogonal to the unit vector `t`; a fixed
/// function of `t`, so linearization and retraction agree.
pub fn tangent_basis(t: &Vector3<f64>) -> (Vector3<f64>, Vector3<f64>) {
    let helper = if t.x.abs() < 0.9 {
        Vector3::x()
    } else {
        Vector3::y()
    };
    let b0 = t.cross(&helper).normalize();
    let b1 = t.cross(&b0);
    (b0, b1)
}

/// Sampson-error least squares over correspondences in homogeneous normalized coordinates.
pub(crate) struct RelativePoseProblem<'a> {
    pub x0: &'a [Vector3<f64>],
    pub x1: &'a [Vector3<f64>],
    pub loss: RobustLoss,
    /// Squared loss scale (normalized units).
    pub scale2: f64,
}

/// `∂E/∂(ω, β)` at a pose, each stored row-major as 9 numbers.
fn essential_derivatives(pose: &RelativePose) -> SMatrix<f64, 5, 9> {
    let r = pose.rotation.matrix();
    let tx = skew(&pose.translation);
    let (b0, b1) = tangent_basis(&pose.translation);
    let mut d = SMatrix::<f64, 5, 9>::zeros();
    let mats = [
        tx * skew(&Vector3::x()) * r,
        tx * skew(&Vector3::y()) * r,
        tx * skew(&Vector3::z()) * r,
        skew(&b0) * r,
        skew(&b1) * r,
    ];
    for (k, m) in mats.iter().enumerate() {
        for i in 0..3 {
            for j in 0..3 {
                d[(k, 3 * i + j)] = m[(i, j)];
            }
        }
    }
    d
}

/// Sampson residual of one correspondence and its gradient with respect to (ω, β), given
/// `E` and `∂E/∂(ω, β)` (rows of `d`).
#[inline]
fn residual_and_jacobian(
    e: &Matrix3<f64>,
    d: &SMatrix<f64, 5, 9>,
    x0: &Vector3<f64>,
    x1: &Vector3<f64>,
) -> Option<(f64, SVector<f64, 5>)> {
    let ex0 = e * x0;
    let etx1 = e.tr_mul(x1);
    let c = x1.dot(&ex0);
    let n = ex0.x * ex0.x + ex0.y * ex0.y + etx1.x * etx1.x + etx1.y * etx1.y;
    if n.is_nan() || n <= 0.0 {
        return None;
    }
    let inv_sqrt_n = 1.0 / n.sqrt();
    let r = c * inv_sqrt_n;
    // ∂r/∂E = x1·x0ᵀ/√n − c/n^{3/2}·(½ ∂n/∂E).
    let k = c * inv_sqrt_n * inv_sqrt_n * inv_sqrt_n;
    let mut g = [0.0f64; 9];
    for i in 0..3 {
        for j in 0..3 {
            let mut v = x1[i] * x0[j] * inv_sqrt_n;
            if i < 2 {
                v -= k * ex0[i] * x0[j];
            }
            if j < 2 {
                v -= k * x1[i] * etx1[j];
            }
            g[3 * i + j] = v;
        }
    }
    let mut jac = SVector::<f64, 5>::zeros();
    for p in 0..5 {
        let mut acc = 0.0;
        for q in 0..9 {
            acc += d[(p, q)] * g[q];
        }
        jac[p] = acc;
    }
    Some((r, jac))
}

impl Problem<5> for RelativePoseProblem<'_> {
    type Params = RelativePose;

    fn linearize(
        &self,
        pose: &RelativePose,
        jtj: &mut SMatrix<f64, 5, 5>,
        jtr: &mut SVector<f64, 5>,
    ) -> f64 {
        let e = essential_from_pose(pose);
        let d = essential_derivatives(pose);
        jtj.fill(0.0);
        jtr.fill(0.0);
        let mut cost = 0.0;
        for (x0, x1) in self.x0.iter().zip(self.x1) {
            let Some((r, jac)) = residual_and_jacobian(&e, &d, x0, x1) else {
                continue;
            };
            let s = r * r;
            cost += self.loss.rho(s, self.scale2);
            let w = self.loss.weight(s, self.scale2);
            if w == 0.0 {
                continue;
            }
            jtj.ger(w, &jac, &jac, 1.0);
            jtr.axpy(w * r, &jac, 1.0);
        }
        cost
    }

    fn cost(&self, pose: &RelativePose) -> f64 {
        let e = essential_from_pose(pose);
        let residuals = self
            .x0
            .iter()
            .zip(self.x1)
            .map(|(a, b)| sampson_error_sq(&e, a, b));
        self.loss.total(residuals, self.scale2)
    }

    fn retract(&self, pose: &RelativePose, delta: &SVector<f64, 5>) -> RelativePose {
        let omega = Vector3::new(delta[0], delta[1], delta[2]);
        let (b0, b1) = tangent_basis(&pose.translation);
        let t = (pose.translation + b0 * delta[3] + b1 * delta[4]).normalize();
        let r = Rotation3::from_scaled_axis(omega) * pose.rotation;
        RelativePose::new(
            Rotation3::from_matrix_unchecked(crate::geometry::essential::orthonormalize(
                r.matrix(),
            )),
            t,
        )
    }
}

/// Refine a pose on the given correspondences (homogeneous normalized coordinates).
pub(crate) fn refine_relative_pose(
    x0: &[Vector3<f64>],
    x1: &[Vector3<f64>],
    init: &RelativePose,
    loss: RobustLoss,
    scale: f64,
    max_iterations: usize,
) -> LmOutcome<RelativePose> {
    let problem = RelativePoseProblem {
        x0,
        x1,
        loss,
        scale2: scale * scale,
    };
    levenberg_marquardt(&problem, *init, max_iterations)
}

/// 6×6 covariance of a pose refined with `loss` (scale² `scale2`) on `x0, x1`, ordered
/// `[δt (3), δθ (3)]`: the sandwich estimate of [`super::Sandwich`], mapped from (ω, β) by
/// δθ = ω, δt = b₀β₀ + b₁β₁.
pub(crate) fn relative_pose_covariance(
    x0: &[Vector3<f64>],
    x1: &[Vector3<f64>],
    pose: &RelativePose,
    loss: RobustLoss,
    scale2: f64,
) -> Matrix6<f64> {
    let e = essential_from_pose(pose);
    let d = essential_derivatives(pose);
    let mut sandwich = Sandwich::<5>::new();
    for (a, b) in x0.iter().zip(x1) {
        if let Some((r, jac)) = residual_and_jacobian(&e, &d, a, b) {
            sandwich.add(&SVector::<f64, 1>::new(r), &jac.transpose(), loss, scale2);
        }
    }
    let cov5 = sandwich.covariance();
    let (b0, b1) = tangent_basis(&pose.translation);
    let mut m = SMatrix::<f64, 6, 5>::zeros();
    for i in 0..3 {
        m[(i, 3)] = b0[i];
        m[(i, 4)] = b1[i];
        m[(3 + i, i)] = 1.0;
    }
    m * cov5 * m.transpose()
}
