//! Absolute pose refinement on SE(3): reprojection residual `π(R·X + t) − x` on the current
//! camera's normalized plane; steps `R ← exp([ω]×)·R`, `t ← t + δt` (both in the current
//! camera's frame), parameters ordered `[δt, ω]` like ROS covariances.

use nalgebra::{Matrix6, Rotation3, SMatrix, SVector, Vector2, Vector3};

use super::{levenberg_marquardt, LmOutcome, Problem, RobustLoss, Sandwich};
use crate::geometry::essential::{orthonormalize, skew};
use crate::geometry::pose::RelativePose;
use crate::geometry::structure::MIN_DEPTH;

/// Squared residual charged to a point behind the camera: the whole normalized plane's scale
/// (≈ f pixels), the same in `cost` and `linearize`, with no gradient.
const BEHIND_CAMERA_SQ: f64 = 1.0;

/// Robust reprojection least squares over 2-D–3-D correspondences.
pub(crate) struct AbsolutePoseProblem<'a> {
    /// Keyframe points, metres.
    pub points: &'a [Vector3<f64>],
    /// `(x, y, 1)` observations on the normalized plane.
    pub rays: &'a [Vector3<f64>],
    pub loss: RobustLoss,
    /// Squared loss scale (normalized units).
    pub scale2: f64,
}

/// Residual of one correspondence and its Jacobian with respect to `[δt, ω]`; `None` behind the
/// camera.
#[inline]
fn residual_and_jacobian(
    pose: &RelativePose,
    x: &Vector3<f64>,
    ray: &Vector3<f64>,
) -> Option<(Vector2<f64>, SMatrix<f64, 2, 6>)> {
    let rx = pose.rotation * x;
    let q = rx + pose.translation;
    if q.z <= MIN_DEPTH {
        return None;
    }
    let iz = 1.0 / q.z;
    let (u, v) = (q.x * iz, q.y * iz);
    let dpi = SMatrix::<f64, 2, 3>::new(iz, 0.0, -u * iz, 0.0, iz, -v * iz);
    // ∂q/∂δt = I, ∂q/∂ω = −[R·X]×
    let drot = dpi * (-skew(&rx));
    let mut j = SMatrix::<f64, 2, 6>::zeros();
    j.fixed_view_mut::<2, 3>(0, 0).copy_from(&dpi);
    j.fixed_view_mut::<2, 3>(0, 3).copy_from(&drot);
    Some((Vector2::new(u - ray.x, v - ray.y), j))
}

/// Squared reprojection error, [`BEHIND_CAMERA_SQ`] behind the camera.
#[inline]
fn error_sq(pose: &RelativePose, x: &Vector3<f64>, ray: &Vector3<f64>) -> f64 {
    let q = pose.transform(x);
    if q.z <= MIN_DEPTH {
        return BEHIND_CAMERA_SQ;
    }
    (q.x / q.z - ray.x).powi(2) + (q.y / q.z - ray.y).powi(2)
}

impl Problem<6> for AbsolutePoseProblem<'_> {
    type Params = RelativePose;

    fn linearize(
        &self,
        pose: &RelativePose,
        jtj: &mut SMatrix<f64, 6, 6>,
        jtr: &mut SVector<f64, 6>,
    ) -> f64 {
        jtj.fill(0.0);
        jtr.fill(0.0);
        let mut cost = 0.0;
        for (x, ray) in self.points.iter().zip(self.rays) {
            let Some((r, j)) = residual_and_jacobian(pose, x, ray) else {
                cost += self.loss.rho(BEHIND_CAMERA_SQ, self.scale2);
                continue;
            };
            let s = r.norm_squared();
            cost += self.loss.rho(s, self.scale2);
            let w = self.loss.weight(s, self.scale2);
            if w == 0.0 {
                continue;
            }
            *jtj += (j.transpose() * j) * w;
            *jtr += (j.transpose() * r) * w;
        }
        cost
    }

    fn cost(&self, pose: &RelativePose) -> f64 {
        let residuals = self
            .points
            .iter()
            .zip(self.rays)
            .map(|(x, ray)| error_sq(pose, x, ray));
        self.loss.total(residuals, self.scale2)
    }

    fn retract(&self, pose: &RelativePose, delta: &SVector<f64, 6>) -> RelativePose {
        let t = pose.translation + Vector3::new(delta[0], delta[1], delta[2]);
        let step = Rotation3::from_scaled_axis(Vector3::new(delta[3], delta[4], delta[5]));
        // The translation is not rotated by the step: t is a coordinate of the current frame.
        let r = orthonormalize((step * pose.rotation).matrix());
        RelativePose::new(Rotation3::from_matrix_unchecked(r), t)
    }
}

/// Refine a pose on keyframe points (metres) and normalized observations.
pub(crate) fn refine_absolute_pose(
    points: &[Vector3<f64>],
    rays: &[Vector3<f64>],
    init: &RelativePose,
    loss: RobustLoss,
    scale: f64,
    max_iterations: usize,
) -> LmOutcome<RelativePose> {
    let problem = AbsolutePoseProblem {
        points,
        rays,
        loss,
        scale2: scale * scale,
    };
    levenberg_marquardt(&problem, *init, max_iterations)
}

/// 6×6 sandwich covariance of `[δt (m), δθ (rad)]` of a pose refined with `loss` (scale²
/// `scale2`) on these correspondences.
pub(crate) fn absolute_pose_covariance(
    points: &[Vector3<f64>],
    rays: &[Vector3<f64>],
    pose: &RelativePose,
    loss: RobustLoss,
    scale2: f64,
) -> Matrix6<f64> {
    let mut sandwich = Sandwich::<6>::new();
    for (x, ray) in points.iter().zip(rays) {
        if let Some((r, j)) = residual_and_jacobian(pose, x, ray) {
            sandwich.add(&r, &j, loss, scale2);
        }
    }
    sandwich.covariance()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobian_matches_finite_differences() {
        let pose = RelativePose::new(
            Rotation3::from_scaled_axis(Vector3::new(0.1, -0.2, 0.05)),
            Vector3::new(0.3, -0.1, 0.2),
        );
        let x = Vector3::new(0.4, -0.3, 3.0);
        let ray = Vector3::new(0.1, 0.05, 1.0);
        let problem = AbsolutePoseProblem {
            points: &[x],
            rays: &[ray],
            loss: RobustLoss::Squared,
            scale2: 1.0,
        };
        let (r0, j) = residual_and_jacobian(&pose, &x, &ray).unwrap();
        for k in 0..6 {
            let mut d = SVector::<f64, 6>::zeros();
            d[k] = 1e-7;
            let moved = problem.retract(&pose, &d);
            let (r1, _) = residual_and_jacobian(&moved, &x, &ray).unwrap();
            let fd = (r1 - r0) / 1e-7;
            assert!((fd - j.column(k)).norm() < 1e-6, "parameter {k}");
        }
    }
}
