//! The essential-matrix estimator: 5-point samples, MSAC on the squared Sampson error, a
//! cheirality test for the points that pass it, and LO by truncated least squares.

use nalgebra::Vector3;

use crate::geometry::essential::{essential_from_pose, poses_from_essential};
use crate::geometry::pose::RelativePose;
use crate::geometry::ransac::{Estimator, Score};
use crate::geometry::refine::relative_pose::refine_relative_pose;
use crate::geometry::refine::RobustLoss;
use crate::geometry::solvers::essential_5pt;

/// Correspondences on the normalized planes, kept twice: as homogeneous vectors for the solvers
/// and refinement, and as structure-of-arrays for the scoring loop.
#[derive(Debug, Clone, Default)]
pub struct NormalizedCorrespondences {
    /// `(x, y, 1)` in camera 0.
    pub x0: Vec<Vector3<f64>>,
    /// `(x, y, 1)` in camera 1.
    pub x1: Vec<Vector3<f64>>,
    u0: Vec<f64>,
    v0: Vec<f64>,
    u1: Vec<f64>,
    v1: Vec<f64>,
}

impl NormalizedCorrespondences {
    /// From pairs of normalized points.
    pub fn new(pairs: impl IntoIterator<Item = ([f64; 2], [f64; 2])>) -> Self {
        let mut c = NormalizedCorrespondences::default();
        for (a, b) in pairs {
            c.x0.push(Vector3::new(a[0], a[1], 1.0));
            c.x1.push(Vector3::new(b[0], b[1], 1.0));
            c.u0.push(a[0]);
            c.v0.push(a[1]);
            c.u1.push(b[0]);
            c.v1.push(b[1]);
        }
        c
    }

    /// Number of correspondences.
    pub fn len(&self) -> usize {
        self.x0.len()
    }

    /// No correspondences.
    pub fn is_empty(&self) -> bool {
        self.x0.is_empty()
    }

    /// The subset at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self::new(
            indices
                .iter()
                .map(|&i| ([self.u0[i], self.v0[i]], [self.u1[i], self.v1[i]])),
        )
    }

    /// MSAC score of a pose: squared Sampson error truncated at `thr2`; a point is an inlier
    /// when below `thr2` and in front of both cameras (else it costs `thr2`). `None` once the
    /// running cost exceeds `bound`.
    pub fn score(&self, pose: &RelativePose, thr2: f64, bound: f64) -> Option<Score> {
        if bound.is_finite() && self.msac_lower_bound_exceeds(pose, thr2, bound) {
            return None;
        }
        self.visit(pose, thr2, bound, |_, _| {})
    }

    /// Whether `Σ min(r², thr²)` without the depth test (a lower bound of the MSAC cost, since a
    /// point failing the test costs thr²) exceeds `bound`. Branch-free blocks the compiler can
    /// vectorize reject most RANSAC hypotheses several times faster than the exact pass.
    fn msac_lower_bound_exceeds(&self, pose: &RelativePose, thr2: f64, bound: f64) -> bool {
        const BLOCK: usize = 64;
        let e = essential_from_pose(pose);
        let (e00, e01, e02) = (e[(0, 0)], e[(0, 1)], e[(0, 2)]);
        let (e10, e11, e12) = (e[(1, 0)], e[(1, 1)], e[(1, 2)]);
        let (e20, e21, e22) = (e[(2, 0)], e[(2, 1)], e[(2, 2)]);
        let mut cost = 0.0;
        let n = self.len();
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let (u0, v0, u1, v1) = (
                &self.u0[start..end],
                &self.v0[start..end],
                &self.u1[start..end],
                &self.v1[start..end],
            );
            let mut r2 = [0.0f64; BLOCK];
            for i in 0..u0.len() {
                let (x, y, u, v) = (u0[i], v0[i], u1[i], v1[i]);
                let ex = e00 * x + e01 * y + e02;
                let ey = e10 * x + e11 * y + e12;
                let ez = e20 * x + e21 * y + e22;
                let c = u * ex + v * ey + ez;
                let fx = e00 * u + e10 * v + e20;
                let fy = e01 * u + e11 * v + e21;
                let norm = ex * ex + ey * ey + fx * fx + fy * fy;
                let q = c * c / norm;
                // Written as a comparison so it maps to `minpd`; NaN (0/0) and ∞ give thr².
                r2[i] = if q < thr2 { q } else { thr2 };
            }
            // Four partial sums: a single accumulator would serialize the additions.
            let mut acc = [0.0f64; 4];
            for chunk in r2.chunks_exact(4) {
                for k in 0..4 {
                    acc[k] += chunk[k];
                }
            }
            cost += (acc[0] + acc[1]) + (acc[2] + acc[3]);
            if cost > bound {
                return true;
            }
            start = end;
        }
        false
    }

    /// Inlier flags and squared Sampson errors of a pose (∞ for points behind a camera).
    pub fn classify(&self, pose: &RelativePose, thr2: f64) -> (Vec<bool>, Vec<f64>) {
        let mut inliers = vec![false; self.len()];
        let mut errors = vec![f64::INFINITY; self.len()];
        self.visit(pose, thr2, f64::INFINITY, |i, r2| {
            errors[i] = r2;
            inliers[i] = r2 < thr2;
        });
        (inliers, errors)
    }

    /// The scoring loop. `on_point(i, r²)` sees every point visited: r² is its squared Sampson
    /// error, or ∞ when it is within the threshold but behind a camera.
    #[inline]
    fn visit(
        &self,
        pose: &RelativePose,
        thr2: f64,
        bound: f64,
        mut on_point: impl FnMut(usize, f64),
    ) -> Option<Score> {
        let e = essential_from_pose(pose);
        let r = pose.rotation.matrix();
        let t = &pose.translation;
        let (e00, e01, e02) = (e[(0, 0)], e[(0, 1)], e[(0, 2)]);
        let (e10, e11, e12) = (e[(1, 0)], e[(1, 1)], e[(1, 2)]);
        let (e20, e21, e22) = (e[(2, 0)], e[(2, 1)], e[(2, 2)]);
        let mut cost = 0.0;
        let mut inliers = 0;
        let n = self.len();
        let (u0, v0, u1, v1) = (&self.u0[..n], &self.v0[..n], &self.u1[..n], &self.v1[..n]);
        for i in 0..n {
            let (x, y, u, v) = (u0[i], v0[i], u1[i], v1[i]);
            let ex = e00 * x + e01 * y + e02;
            let ey = e10 * x + e11 * y + e12;
            let ez = e20 * x + e21 * y + e22;
            let c = u * ex + v * ey + ez;
            let fx = e00 * u + e10 * v + e20;
            let fy = e01 * u + e11 * v + e21;
            let norm = ex * ex + ey * ey + fx * fx + fy * fy;
            let c2 = c * c;
            if c2 < thr2 * norm {
                // Sampson inlier: now the (costlier) two-ray depth test.
                let p = r * Vector3::new(x, y, 1.0);
                let cos = p.x * u + p.y * v + p.z;
                let pp = x * x + y * y + 1.0;
                let qq = u * u + v * v + 1.0;
                let b0 = -(p.x * t.x + p.y * t.y + p.z * t.z);
                let b1 = u * t.x + v * t.y + t.z;
                let l0 = qq * b0 + cos * b1;
                let l1 = cos * b0 + pp * b1;
                if l0 > 0.0 && l1 > 0.0 {
                    let r2 = c2 / norm;
                    inliers += 1;
                    cost += r2;
                    on_point(i, r2);
                } else {
                    cost += thr2;
                    on_point(i, f64::INFINITY);
                }
            } else {
                cost += thr2;
                on_point(i, if norm > 0.0 { c2 / norm } else { f64::INFINITY });
            }
            if cost > bound {
                return None;
            }
        }
        Some(Score { inliers, cost })
    }
}

/// RANSAC adapter for relative pose.
pub struct RelativePoseEstimator<'a> {
    data: &'a NormalizedCorrespondences,
    thr2: f64,
    lo_thr2: f64,
    lo_iterations: usize,
    essentials: Vec<nalgebra::Matrix3<f64>>,
    lo_x0: Vec<Vector3<f64>>,
    lo_x1: Vec<Vector3<f64>>,
}

impl<'a> RelativePoseEstimator<'a> {
    /// `threshold` on the normalized plane; LO uses points within `lo_multiplier × threshold`.
    pub fn new(
        data: &'a NormalizedCorrespondences,
        threshold: f64,
        lo_multiplier: f64,
        lo_iterations: usize,
    ) -> Self {
        RelativePoseEstimator {
            data,
            thr2: threshold * threshold,
            lo_thr2: (threshold * lo_multiplier).powi(2),
            lo_iterations,
            essentials: Vec::with_capacity(10),
            lo_x0: Vec::new(),
            lo_x1: Vec::new(),
        }
    }
}

impl Estimator for RelativePoseEstimator<'_> {
    type Model = RelativePose;
    const SAMPLE_SIZE: usize = 5;

    fn num_data(&self) -> usize {
        self.data.len()
    }

    fn minimal_models(&mut self, sample: &[usize], models: &mut Vec<RelativePose>) {
        let x0: [Vector3<f64>; 5] = std::array::from_fn(|k| self.data.x0[sample[k]]);
        let x1: [Vector3<f64>; 5] = std::array::from_fn(|k| self.data.x1[sample[k]]);
        self.essentials.clear();
        essential_5pt(&x0, &x1, &mut self.essentials);
        for e in &self.essentials {
            poses_from_essential(e, &x0, &x1, models);
        }
    }

    fn score(&self, model: &RelativePose, bound: f64) -> Option<Score> {
        self.data.score(model, self.thr2, bound)
    }

    fn local_optimize(&mut self, model: &RelativePose) -> RelativePose {
        self.lo_x0.clear();
        self.lo_x1.clear();
        let lo_thr2 = self.lo_thr2;
        let (x0, x1) = (&mut self.lo_x0, &mut self.lo_x1);
        let data = self.data;
        data.visit(model, lo_thr2, f64::INFINITY, |i, r2| {
            if r2 < lo_thr2 {
                x0.push(data.x0[i]);
                x1.push(data.x1[i]);
            }
        });
        if self.lo_x0.len() < 6 {
            return *model;
        }
        refine_relative_pose(
            &self.lo_x0,
            &self.lo_x1,
            model,
            RobustLoss::Truncated,
            self.thr2.sqrt(),
            self.lo_iterations,
        )
        .params
    }
}
