//! The absolute-pose estimator: P3P samples, MSAC on the squared reprojection error on the
//! current camera's normalized plane (points behind the camera cost the full threshold), and LO
//! by truncated least squares on SE(3).

use nalgebra::Vector3;

use crate::geometry::pose::RelativePose;
use crate::geometry::ransac::{Estimator, Score};
use crate::geometry::refine::absolute_pose::refine_absolute_pose;
use crate::geometry::refine::RobustLoss;
use crate::geometry::solvers::p3p;
use crate::geometry::structure::MIN_DEPTH;

/// 2-D–3-D correspondences: keyframe points (metres) and their observations on the current
/// camera's normalized plane, kept as vectors for the solvers and refinement and as
/// structure-of-arrays for the scoring loop.
#[derive(Debug, Clone, Default)]
pub struct PointCorrespondences {
    /// Keyframe-frame points, metres.
    pub points: Vec<Vector3<f64>>,
    /// `(x, y, 1)` on the current camera's normalized plane.
    pub rays: Vec<Vector3<f64>>,
    px: Vec<f64>,
    py: Vec<f64>,
    pz: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
}

impl PointCorrespondences {
    /// From pairs of (point in metres, normalized observation).
    pub fn new(pairs: impl IntoIterator<Item = ([f64; 3], [f64; 2])>) -> Self {
        let mut c = PointCorrespondences::default();
        for (p, x) in pairs {
            c.points.push(Vector3::new(p[0], p[1], p[2]));
            c.rays.push(Vector3::new(x[0], x[1], 1.0));
            c.px.push(p[0]);
            c.py.push(p[1]);
            c.pz.push(p[2]);
            c.u.push(x[0]);
            c.v.push(x[1]);
        }
        c
    }

    /// Number of correspondences.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// No correspondences.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Squared reprojection error of correspondence `i` under `pose` (∞ behind the camera).
    #[inline]
    pub fn error_sq(&self, pose: &RelativePose, i: usize) -> f64 {
        let q = pose.transform(&self.points[i]);
        if q.z <= MIN_DEPTH {
            return f64::INFINITY;
        }
        (q.x / q.z - self.u[i]).powi(2) + (q.y / q.z - self.v[i]).powi(2)
    }

    /// MSAC score: squared reprojection errors truncated at `thr2` (points behind the camera
    /// cost `thr2`); `None` once the running cost exceeds `bound`. Branch-free blocks of 64 the
    /// compiler vectorizes, with the bound checked between blocks.
    pub fn score(&self, pose: &RelativePose, thr2: f64, bound: f64) -> Option<Score> {
        const BLOCK: usize = 64;
        let r = pose.rotation.matrix();
        let (r00, r01, r02) = (r[(0, 0)], r[(0, 1)], r[(0, 2)]);
        let (r10, r11, r12) = (r[(1, 0)], r[(1, 1)], r[(1, 2)]);
        let (r20, r21, r22) = (r[(2, 0)], r[(2, 1)], r[(2, 2)]);
        let (tx, ty, tz) = (pose.translation.x, pose.translation.y, pose.translation.z);
        let n = self.len();
        let mut cost = 0.0;
        let mut inliers = 0usize;
        let mut start = 0;
        while start < n {
            let end = (start + BLOCK).min(n);
            let (px, py, pz) = (
                &self.px[start..end],
                &self.py[start..end],
                &self.pz[start..end],
            );
            let (u, v) = (&self.u[start..end], &self.v[start..end]);
            let mut acc = [0.0f64; 4];
            let mut count = [0usize; 4];
            for i in 0..px.len() {
                let (x, y, z) = (px[i], py[i], pz[i]);
                let qx = r00 * x + r01 * y + r02 * z + tx;
                let qy = r10 * x + r11 * y + r12 * z + ty;
                let qz = r20 * x + r21 * y + r22 * z + tz;
                let iz = 1.0 / qz;
                let ex = qx * iz - u[i];
                let ey = qy * iz - v[i];
                let e = ex * ex + ey * ey;
                // Comparisons, not branches: NaN and points behind the camera give thr².
                let ok = qz > MIN_DEPTH && e < thr2;
                acc[i & 3] += if ok { e } else { thr2 };
                count[i & 3] += ok as usize;
            }
            cost += (acc[0] + acc[1]) + (acc[2] + acc[3]);
            inliers += count.iter().sum::<usize>();
            if cost > bound {
                return None;
            }
            start = end;
        }
        Some(Score { inliers, cost })
    }

    /// Inlier flags and squared reprojection errors (∞ behind the camera).
    pub fn classify(&self, pose: &RelativePose, thr2: f64) -> (Vec<bool>, Vec<f64>) {
        let errors: Vec<f64> = (0..self.len()).map(|i| self.error_sq(pose, i)).collect();
        (errors.iter().map(|e| *e < thr2).collect(), errors)
    }
}

/// Most points a local optimisation works on (as for relative pose).
const LO_MAX_POINTS: usize = 256;

/// RANSAC adapter for absolute pose.
pub struct AbsolutePoseEstimator<'a> {
    data: &'a PointCorrespondences,
    thr2: f64,
    lo_thr2: f64,
    lo_iterations: usize,
    lo_points: Vec<Vector3<f64>>,
    lo_rays: Vec<Vector3<f64>>,
}

impl<'a> AbsolutePoseEstimator<'a> {
    /// `threshold` on the normalized plane; LO uses points within `lo_multiplier × threshold`.
    pub fn new(
        data: &'a PointCorrespondences,
        threshold: f64,
        lo_multiplier: f64,
        lo_iterations: usize,
    ) -> Self {
        AbsolutePoseEstimator {
            data,
            thr2: threshold * threshold,
            lo_thr2: (threshold * lo_multiplier).powi(2),
            lo_iterations,
            lo_points: Vec::new(),
            lo_rays: Vec::new(),
        }
    }
}

impl Estimator for AbsolutePoseEstimator<'_> {
    type Model = RelativePose;
    const SAMPLE_SIZE: usize = 3;

    fn num_data(&self) -> usize {
        self.data.len()
    }

    fn minimal_models(&mut self, sample: &[usize], models: &mut Vec<RelativePose>) {
        let rays: [Vector3<f64>; 3] = std::array::from_fn(|k| self.data.rays[sample[k]]);
        let points: [Vector3<f64>; 3] = std::array::from_fn(|k| self.data.points[sample[k]]);
        p3p(&rays, &points, models);
    }

    fn score(&self, model: &RelativePose, bound: f64) -> Option<Score> {
        self.data.score(model, self.thr2, bound)
    }

    fn local_optimize(&mut self, model: &RelativePose) -> RelativePose {
        self.lo_points.clear();
        self.lo_rays.clear();
        let data = self.data;
        let mut within = 0usize;
        for i in 0..data.len() {
            if data.error_sq(model, i) < self.lo_thr2 {
                within += 1;
            }
        }
        if within < 4 {
            return *model;
        }
        // LO only has to find the right basin; the final refinement uses every inlier. An even
        // subsample (every k-th point, deterministic) caps its cost on large, clean sets.
        let stride = within.div_ceil(LO_MAX_POINTS);
        let mut k = 0usize;
        for i in 0..data.len() {
            if data.error_sq(model, i) < self.lo_thr2 {
                if k.is_multiple_of(stride) {
                    self.lo_points.push(data.points[i]);
                    self.lo_rays.push(data.rays[i]);
                }
                k += 1;
            }
        }
        refine_absolute_pose(
            &self.lo_points,
            &self.lo_rays,
            model,
            RobustLoss::Truncated,
            self.thr2.sqrt(),
            self.lo_iterations,
        )
        .params
    }
}
