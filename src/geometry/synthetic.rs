//! Seeded synthetic two-view problems with known ground truth, for tests and benchmarks (the
//! protocol of `scripts/bench/bench_geometry.py`: f = 500, 640×480, depth U[2, 8], rotation 5–20°
//! about a random axis, baseline 0.5 in a random direction, Gaussian pixel noise on both images,
//! outliers drawn uniformly in image 1, matches shuffled).

use nalgebra::{Rotation3, Vector2, Vector3};

use super::camera::CameraModel;
use super::points::{PixelMatch, PixelPoint};
use super::pose::RelativePose;
use super::rng::Rng;

/// The scene's structure and motion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneKind {
    /// Points at random depths, motion with translation in a random direction.
    General,
    /// Like `General`, translation (nearly) along the optical axis.
    Forward,
    /// All points on a plane through (0, 0, `plane_distance`), tilted by up to `max_tilt_deg`.
    Planar,
    /// No translation.
    Rotation,
    /// A camera 1.5 m above flat ground looking along it, driving `baseline` forward with a
    /// little sideways drift, yaw ±5° and pitch/roll ±1°; points on the ground only.
    Ground,
}

/// Parameters of a synthetic problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneSpec {
    /// Structure and motion.
    pub kind: SceneKind,
    /// Matches in total (inliers + outliers).
    pub num_matches: usize,
    /// Fraction of outliers.
    pub outlier_ratio: f64,
    /// Standard deviation of the pixel noise on each coordinate of both images.
    pub noise_px: f64,
    /// Focal length (both axes), pixels.
    pub focal: f64,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Depth range of the points in camera 0.
    pub depth: (f64, f64),
    /// Rotation angle range, degrees.
    pub rotation_deg: (f64, f64),
    /// Length of the translation.
    pub baseline: f64,
    /// Distance of the plane (planar scenes).
    pub plane_distance: f64,
    /// Largest tilt of the plane's normal away from the optical axis, degrees.
    pub max_tilt_deg: f64,
}

impl Default for SceneSpec {
    fn default() -> Self {
        SceneSpec {
            kind: SceneKind::General,
            num_matches: 1000,
            outlier_ratio: 0.5,
            noise_px: 0.5,
            focal: 500.0,
            width: 640,
            height: 480,
            depth: (2.0, 8.0),
            rotation_deg: (5.0, 20.0),
            baseline: 0.5,
            plane_distance: 5.0,
            max_tilt_deg: 60.0,
        }
    }
}

/// A generated problem.
#[derive(Debug, Clone)]
pub struct SyntheticPair {
    /// Both images' camera.
    pub camera: CameraModel,
    /// Ground truth, `|t| = 1` (or 0 for pure rotation).
    pub gt: RelativePose,
    /// The matches, shuffled.
    pub matches: Vec<PixelMatch>,
    /// Which matches are true correspondences.
    pub is_inlier: Vec<bool>,
    /// Plane normal (camera 0) and distance, for planar scenes.
    pub plane: Option<(Vector3<f64>, f64)>,
}

/// Generate a problem. Scenes are rejection-sampled so every inlier is visible in both images.
pub fn generate(spec: &SceneSpec, rng: &mut Rng) -> SyntheticPair {
    let camera = CameraModel::pinhole(
        spec.focal,
        spec.focal,
        spec.width as f64 / 2.0,
        spec.height as f64 / 2.0,
        spec.width,
        spec.height,
    );
    let angle = rng
        .uniform_in(spec.rotation_deg.0, spec.rotation_deg.1)
        .to_radians();
    let rotation = Rotation3::from_scaled_axis(rng.unit_vector3() * angle);
    let translation = match spec.kind {
        SceneKind::Rotation => Vector3::zeros(),
        SceneKind::Forward => {
            Vector3::new(rng.uniform_in(-0.1, 0.1), rng.uniform_in(-0.1, 0.1), 1.0).normalize()
                * spec.baseline
        }
        _ => rng.unit_vector3() * spec.baseline,
    };
    let plane = match spec.kind {
        SceneKind::Planar => {
            let tilt = rng.uniform_in(0.0, spec.max_tilt_deg).to_radians();
            let phi = rng.uniform_in(0.0, std::f64::consts::TAU);
            let axis = Vector3::new(phi.cos(), phi.sin(), 0.0);
            let normal = Rotation3::from_scaled_axis(axis * tilt) * Vector3::z();
            Some((normal, normal.z * spec.plane_distance))
        }
        // y points down in camera frames: the ground is y = 1.5.
        SceneKind::Ground => Some((Vector3::y(), 1.5)),
        _ => None,
    };
    let (w, h) = (spec.width as f64, spec.height as f64);
    let k = camera.intrinsics;
    let num_outliers = (spec.outlier_ratio * spec.num_matches as f64).round() as usize;
    let num_inliers = spec.num_matches - num_outliers;
    let mut matches = Vec::with_capacity(spec.num_matches);
    let mut is_inlier = Vec::with_capacity(spec.num_matches);
    let mut guard = 0usize;
    while matches.len() < num_inliers && guard < 1000 * spec.num_matches.max(1) {
        guard += 1;
        let u = Vector2::new(rng.uniform_in(0.0, w), rng.uniform_in(0.0, h));
        let ray = Vector3::new((u.x - k.cx) / k.fx, (u.y - k.cy) / k.fy, 1.0);
        let depth = match plane {
            Some((n, d)) => d / n.dot(&ray),
            None => rng.uniform_in(spec.depth.0, spec.depth.1),
        };
        if depth.is_nan() || depth <= 0.0 {
            continue;
        }
        let x1 = rotation * (ray * depth) + translation;
        if x1.z < 0.1 {
            continue;
        }
        let p1 = Vector2::new(k.fx * x1.x / x1.z + k.cx, k.fy * x1.y / x1.z + k.cy);
        if !(0.0..w).contains(&p1.x) || !(0.0..h).contains(&p1.y) {
            continue;
        }
        let n = spec.noise_px;
        matches.push(PixelMatch {
            p0: PixelPoint::new(u.x + n * rng.normal(), u.y + n * rng.normal()),
            p1: PixelPoint::new(p1.x + n * rng.normal(), p1.y + n * rng.normal()),
            confidence: 1.0,
        });
        is_inlier.push(true);
    }
    for _ in 0..num_outliers {
        matches.push(PixelMatch {
            p0: PixelPoint::new(rng.uniform_in(0.0, w), rng.uniform_in(0.0, h)),
            p1: PixelPoint::new(rng.uniform_in(0.0, w), rng.uniform_in(0.0, h)),
            confidence: 1.0,
        });
        is_inlier.push(false);
    }
    // Fisher–Yates shuffle, so inliers are not a prefix.
    for i in (1..matches.len()).rev() {
        let j = rng.below(i + 1);
        matches.swap(i, j);
        is_inlier.swap(i, j);
    }
    let t_unit = if translation.norm() > 0.0 {
        translation.normalize()
    } else {
        translation
    };
    SyntheticPair {
        camera,
        gt: RelativePose::new(rotation, t_unit),
        matches,
        is_inlier,
        plane,
    }
}

/// A noise-free minimal sample for solver tests: a random pose (rotation of
/// `rotation_rad` = [lo, hi) about a random axis, unit translation in a random direction) and
/// `N` points drawn uniformly in the box `x`, `y`, `z` (camera 0), kept when in front of
/// camera 1 (z > 0.1). Returns the pose and the points as normalized rays `[x/z, y/z, 1]`.
pub fn minimal_sample<const N: usize>(
    rng: &mut Rng,
    rotation_rad: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
    z: [f64; 2],
) -> (RelativePose, [Vector3<f64>; N], [Vector3<f64>; N]) {
    let pose = RelativePose::new(
        Rotation3::from_scaled_axis(
            rng.unit_vector3() * rng.uniform_in(rotation_rad[0], rotation_rad[1]),
        ),
        rng.unit_vector3(),
    );
    let mut x0 = [Vector3::zeros(); N];
    let mut x1 = [Vector3::zeros(); N];
    let mut k = 0;
    while k < N {
        let p = Vector3::new(
            rng.uniform_in(x[0], x[1]),
            rng.uniform_in(y[0], y[1]),
            rng.uniform_in(z[0], z[1]),
        );
        let q = pose.transform(&p);
        if q.z > 0.1 {
            x0[k] = p / p.z;
            x1[k] = q / q.z;
            k += 1;
        }
    }
    (pose, x0, x1)
}
