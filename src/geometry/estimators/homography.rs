//! The homography estimator: 4-point samples, MSAC on the forward transfer error, LO by
//! truncated least squares. Works on whatever 2-D coordinates it is given; callers condition
//! them (see [`Conditioning`]).

use nalgebra::{Matrix3, Vector2};

use crate::geometry::ransac::{Estimator, Score};
use crate::geometry::refine::homography::refine_homography;
use crate::geometry::refine::RobustLoss;
use crate::geometry::solvers::homography_4pt;

/// A similarity `x ↦ s·(x − c)` that moves a point set's centroid to the origin and its mean
/// distance from it to √2 (Hartley), so the DLT is well conditioned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conditioning {
    /// Centroid.
    pub center: Vector2<f64>,
    /// Scale factor.
    pub scale: f64,
}

impl Conditioning {
    /// The conditioning of a point set (identity for degenerate sets).
    pub fn of(points: &[Vector2<f64>]) -> Self {
        if points.is_empty() {
            return Conditioning {
                center: Vector2::zeros(),
                scale: 1.0,
            };
        }
        let center = points.iter().sum::<Vector2<f64>>() / points.len() as f64;
        let mean = points.iter().map(|p| (p - center).norm()).sum::<f64>() / points.len() as f64;
        let scale = if mean > 0.0 && mean.is_finite() {
            std::f64::consts::SQRT_2 / mean
        } else {
            1.0
        };
        Conditioning { center, scale }
    }

    /// Apply to a point.
    pub fn apply(&self, p: &Vector2<f64>) -> Vector2<f64> {
        (p - self.center) * self.scale
    }

    /// As a 3×3 matrix.
    pub fn matrix(&self) -> Matrix3<f64> {
        let s = self.scale;
        Matrix3::new(
            s,
            0.0,
            -s * self.center.x,
            0.0,
            s,
            -s * self.center.y,
            0.0,
            0.0,
            1.0,
        )
    }

    /// Its inverse as a 3×3 matrix.
    pub fn inverse_matrix(&self) -> Matrix3<f64> {
        let s = 1.0 / self.scale;
        Matrix3::new(s, 0.0, self.center.x, 0.0, s, self.center.y, 0.0, 0.0, 1.0)
    }
}

/// MSAC score of `H` on the forward transfer error; points mapped behind the camera
/// (`(H·x0)_z ≤ 0`, with H's sign fixed by its sample) count as outliers.
pub fn score_homography(
    h: &Matrix3<f64>,
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    thr2: f64,
    bound: f64,
) -> Option<Score> {
    let (h00, h01, h02) = (h[(0, 0)], h[(0, 1)], h[(0, 2)]);
    let (h10, h11, h12) = (h[(1, 0)], h[(1, 1)], h[(1, 2)]);
    let (h20, h21, h22) = (h[(2, 0)], h[(2, 1)], h[(2, 2)]);
    let mut cost = 0.0;
    let mut inliers = 0;
    for (a, b) in x0.iter().zip(x1) {
        let z = h20 * a.x + h21 * a.y + h22;
        let px = h00 * a.x + h01 * a.y + h02;
        let py = h10 * a.x + h11 * a.y + h12;
        // r² < thr² ⇔ |p − z·x1|² < thr²·z² (z > 0): no division for outliers.
        let dx = px - z * b.x;
        let dy = py - z * b.y;
        let d2 = dx * dx + dy * dy;
        let z2 = z * z;
        if z > 0.0 && d2 < thr2 * z2 {
            inliers += 1;
            cost += d2 / z2;
        } else {
            cost += thr2;
        }
        if cost > bound {
            return None;
        }
    }
    Some(Score { inliers, cost })
}

/// Inlier flags of `H` (same test as [`score_homography`]).
pub fn homography_inliers(
    h: &Matrix3<f64>,
    x0: &[Vector2<f64>],
    x1: &[Vector2<f64>],
    thr2: f64,
) -> Vec<bool> {
    x0.iter()
        .zip(x1)
        .map(|(a, b)| {
            let p = h * a.push(1.0);
            p.z > 0.0 && (p.x / p.z - b.x).powi(2) + (p.y / p.z - b.y).powi(2) < thr2
        })
        .collect()
}

/// Make `H` map the given point to positive depth (`(H·x0)_z > 0`).
pub fn orient(h: &Matrix3<f64>, x0: &Vector2<f64>) -> Matrix3<f64> {
    if (h * x0.push(1.0)).z < 0.0 {
        -h
    } else {
        *h
    }
}

/// RANSAC adapter for homographies.
pub struct HomographyEstimator<'a> {
    x0: &'a [Vector2<f64>],
    x1: &'a [Vector2<f64>],
    thr2: f64,
    lo_thr2: f64,
    lo_iterations: usize,
    lo_x0: Vec<Vector2<f64>>,
    lo_x1: Vec<Vector2<f64>>,
}

impl<'a> HomographyEstimator<'a> {
    /// `threshold` in the units of `x1`.
    pub fn new(
        x0: &'a [Vector2<f64>],
        x1: &'a [Vector2<f64>],
        threshold: f64,
        lo_multiplier: f64,
        lo_iterations: usize,
    ) -> Self {
        HomographyEstimator {
            x0,
            x1,
            thr2: threshold * threshold,
            lo_thr2: (threshold * lo_multiplier).powi(2),
            lo_iterations,
            lo_x0: Vec::new(),
            lo_x1: Vec::new(),
        }
    }
}

impl Estimator for HomographyEstimator<'_> {
    type Model = Matrix3<f64>;
    const SAMPLE_SIZE: usize = 4;

    fn num_data(&self) -> usize {
        self.x0.len()
    }

    fn minimal_models(&mut self, sample: &[usize], models: &mut Vec<Matrix3<f64>>) {
        let a: [Vector2<f64>; 4] = std::array::from_fn(|k| self.x0[sample[k]]);
        let b: [Vector2<f64>; 4] = std::array::from_fn(|k| self.x1[sample[k]]);
        if let Some(h) = homography_4pt(&a, &b) {
            models.push(orient(&h, &a[0]));
        }
    }

    fn score(&self, model: &Matrix3<f64>, bound: f64) -> Option<Score> {
        score_homography(model, self.x0, self.x1, self.thr2, bound)
    }

    fn local_optimize(&mut self, model: &Matrix3<f64>) -> Matrix3<f64> {
        self.lo_x0.clear();
        self.lo_x1.clear();
        let flags = homography_inliers(model, self.x0, self.x1, self.lo_thr2);
        for (i, f) in flags.iter().enumerate() {
            if *f {
                self.lo_x0.push(self.x0[i]);
                self.lo_x1.push(self.x1[i]);
            }
        }
        if self.lo_x0.len() < 5 {
            return *model;
        }
        let out = refine_homography(
            &self.lo_x0,
            &self.lo_x1,
            model,
            RobustLoss::Truncated,
            self.thr2.sqrt(),
            self.lo_iterations,
        );
        orient(&out.params, &self.lo_x0[0])
    }
}
