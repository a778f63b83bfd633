//! Nonlinear least squares on manifolds: a small Levenberg–Marquardt driver with iteratively
//! reweighted robust losses, and the problems it solves (absolute pose on SE(3), relative pose
//! on the 5-DoF essential manifold, homography on the unit sphere of 3×3 matrices, pure rotation on SO(3)).

pub mod absolute_pose;
pub mod homography;
pub mod jackknife;
pub mod noise;
pub mod relative_pose;
pub mod rotation;
pub mod schedule;
pub mod stereo_pose;

use nalgebra::{SMatrix, SVector};
use serde::{Deserialize, Serialize};

/// Robust loss ρ(s) on squared residuals `s = r²`, with scale `c` (same unit as r).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RobustLoss {
    /// ρ = s (plain least squares).
    Squared,
    /// ρ = c²·ln(1 + s/c²): smooth, heavy-tailed; the default (as PoseLib's final refinement).
    #[default]
    Cauchy,
    /// ρ = s for s ≤ c², else 2c√s − c².
    Huber,
    /// ρ = min(s, c²): the MSAC cost itself; used by local optimisation.
    Truncated,
}

impl RobustLoss {
    /// Σ ρ(s) over squared residuals for squared scale `c2`; a non-finite residual (a point
    /// the model maps to infinity) adds nothing rather than poisoning the sum.
    pub fn total(self, squared_residuals: impl Iterator<Item = f64>, c2: f64) -> f64 {
        squared_residuals
            .filter(|s| s.is_finite())
            .map(|s| self.rho(s, c2))
            .sum()
    }

    /// ρ(s) for squared scale `c2`.
    #[inline]
    pub fn rho(self, s: f64, c2: f64) -> f64 {
        match self {
            RobustLoss::Squared => s,
            RobustLoss::Cauchy => c2 * (s / c2).ln_1p(),
            RobustLoss::Huber => {
                if s <= c2 {
                    s
                } else {
                    2.0 * (c2 * s).sqrt() - c2
                }
            }
            RobustLoss::Truncated => s.min(c2),
        }
    }

    /// ρ''(s), for the sandwich covariance (the truncation's jump is ignored).
    #[inline]
    pub fn weight_derivative(self, s: f64, c2: f64) -> f64 {
        match self {
            RobustLoss::Squared | RobustLoss::Truncated => 0.0,
            RobustLoss::Cauchy => {
                let q = 1.0 + s / c2;
                -1.0 / (c2 * q * q)
            }
            RobustLoss::Huber => {
                if s <= c2 {
                    0.0
                } else {
                    -0.5 * c2.sqrt() / (s * s.sqrt())
                }
            }
        }
    }

    /// IRLS weight ρ'(s).
    #[inline]
    pub fn weight(self, s: f64, c2: f64) -> f64 {
        match self {
            RobustLoss::Squared => 1.0,
            RobustLoss::Cauchy => 1.0 / (1.0 + s / c2),
            RobustLoss::Huber => {
                if s <= c2 {
                    1.0
                } else {
                    (c2 / s).sqrt()
                }
            }
            RobustLoss::Truncated => {
                if s < c2 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

/// A least-squares problem in `P` local parameters around a point on a manifold.
pub(crate) trait Problem<const P: usize> {
    /// A point on the manifold.
    type Params: Clone;
    /// Robust cost and the weighted normal equations `JᵀWJ`, `JᵀWr` at `x`.
    fn linearize(
        &self,
        x: &Self::Params,
        jtj: &mut SMatrix<f64, P, P>,
        jtr: &mut SVector<f64, P>,
    ) -> f64;
    /// Robust cost at `x`.
    fn cost(&self, x: &Self::Params) -> f64;
    /// Move from `x` by the local step `delta` (a retraction).
    fn retract(&self, x: &Self::Params, delta: &SVector<f64, P>) -> Self::Params;
}

/// Result of a Levenberg–Marquardt run.
#[derive(Debug, Clone)]
pub(crate) struct LmOutcome<T> {
    pub params: T,
    pub iterations: usize,
}

/// Levenberg–Marquardt with Marquardt's diagonal scaling. Stops on `max_iterations`, a
/// relative step below 1e-10, a relative cost decrease below 1e-12, or ten rejected dampings.
pub(crate) fn levenberg_marquardt<const P: usize, Q: Problem<P>>(
    problem: &Q,
    init: Q::Params,
    max_iterations: usize,
) -> LmOutcome<Q::Params> {
    let mut x = init;
    let mut lambda = 1e-4;
    let mut jtj = SMatrix::<f64, P, P>::zeros();
    let mut jtr = SVector::<f64, P>::zeros();
    let mut cost = problem.linearize(&x, &mut jtj, &mut jtr);
    let mut iterations = 0;
    'outer: while iterations < max_iterations {
        iterations += 1;
        let mut accepted = false;
        for _ in 0..10 {
            let mut a = jtj;
            for i in 0..P {
                a[(i, i)] += lambda * jtj[(i, i)].max(1e-12);
            }
            let Some(chol) = a.cholesky() else {
                lambda *= 10.0;
                continue;
            };
            let delta = -chol.solve(&jtr);
            if !delta.iter().all(|v| v.is_finite()) {
                break 'outer;
            }
            let candidate = problem.retract(&x, &delta);
            let new_cost = problem.cost(&candidate);
            if new_cost < cost {
                let decrease = cost - new_cost;
                x = candidate;
                lambda = (lambda * 0.1).max(1e-12);
                let small_step = delta.norm() < 1e-10;
                let small_decrease = decrease <= 1e-12 * cost;
                cost = problem.linearize(&x, &mut jtj, &mut jtr);
                accepted = true;
                if small_step || small_decrease {
                    break 'outer;
                }
                break;
            }
            lambda *= 10.0;
        }
        if !accepted {
            break;
        }
    }
    LmOutcome {
        params: x,
        iterations,
    }
}

/// Accumulates the sandwich (M-estimator) covariance `A⁻¹·B·A⁻¹·n/(n − P)` of a robust fit:
/// `A = Σ Jᵀ ∂ψ/∂r J`, `B = Σ Jᵀ ψ ψᵀ J`, with ψ(r) = ρ'(|r|²)·r the influence of residual r.
/// It measures the estimator's actual spread whatever the loss, and needs no separate σ.
pub(crate) struct Sandwich<const P: usize> {
    a: SMatrix<f64, P, P>,
    a_irls: SMatrix<f64, P, P>,
    b: SMatrix<f64, P, P>,
    n: usize,
    residual_dim: usize,
}

impl<const P: usize> Sandwich<P> {
    /// Empty accumulator.
    pub fn new() -> Self {
        Sandwich {
            a: SMatrix::zeros(),
            a_irls: SMatrix::zeros(),
            b: SMatrix::zeros(),
            n: 0,
            residual_dim: 1,
        }
    }

    /// Add a residual `r` (R-dimensional) with Jacobian `j` (R×P).
    pub fn add<const R: usize>(
        &mut self,
        r: &SVector<f64, R>,
        j: &SMatrix<f64, R, P>,
        loss: RobustLoss,
        c2: f64,
    ) {
        let s = r.norm_squared();
        let w = loss.weight(s, c2);
        let dw = loss.weight_derivative(s, c2);
        // ∂ψ/∂r = ρ'(s)·I + 2ρ''(s)·r·rᵀ
        let jr = j.transpose() * r;
        let jtj = j.transpose() * j;
        self.a += jtj * w + jr * jr.transpose() * (2.0 * dw);
        self.a_irls += jtj * w;
        self.b += jr * jr.transpose() * (w * w);
        self.n += 1;
        self.residual_dim = R;
    }

    /// The covariance; the IRLS Hessian replaces `A` when `A` is not positive definite (few
    /// points, many on the descending part of a redescending loss).
    pub fn covariance(&self) -> SMatrix<f64, P, P> {
        let dof = (self.n * self.residual_dim) as f64;
        let correction = if dof > P as f64 {
            dof / (dof - P as f64)
        } else {
            1.0
        };
        let a = if self.a.cholesky().is_some() {
            self.a
        } else {
            self.a_irls
        };
        let a_inv = pseudo_inverse_symmetric(&a);
        a_inv * self.b * a_inv * correction
    }
}

/// Pseudo-inverse of a symmetric positive semi-definite matrix (eigenvalues below 1e-12 of the
/// largest are dropped), so rank-deficient Hessians give finite covariances.
pub(crate) fn pseudo_inverse_symmetric<const P: usize>(
    jtj: &SMatrix<f64, P, P>,
) -> SMatrix<f64, P, P> {
    // Dynamic storage: fixed-size eigen-decompositions need typenum bounds a const generic
    // cannot give; this runs once per estimate.
    let eig = nalgebra::DMatrix::from_column_slice(P, P, jtj.as_slice()).symmetric_eigen();
    let max = eig.eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut inv = SMatrix::<f64, P, P>::zeros();
    for k in 0..P {
        let l = eig.eigenvalues[k];
        if l > 1e-12 * max && l > 0.0 {
            let v = eig.eigenvectors.column(k);
            for i in 0..P {
                for j in 0..P {
                    inv[(i, j)] += v[i] * v[j] / l;
                }
            }
        }
    }
    inv
}
