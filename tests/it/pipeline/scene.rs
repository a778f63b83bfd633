//! The ground truth of `tests/fixtures/replay/sequence.json`
//! (scripts/fixtures/make_replay_fixtures.py): cameras, the textured room's planes, per-frame
//! poses; projection, ray casting and the true overlap of two views.

use imd::geometry::{CameraModel, NormalizedPoint, PixelPoint, RelativePose};
use imd::io::msgs::builtin_interfaces::Time;
use nalgebra::{Matrix3, Rotation3, Vector3};
use serde_json::Value;

use crate::util::fixture;

/// A camera of the sequence.
#[derive(Debug, Clone)]
pub struct GtCamera {
    pub name: String,
    pub model: CameraModel,
    /// Optical frame (what the node publishes as child_frame_id).
    pub frame_id: String,
    pub image_topic: String,
    pub camera_info_topic: String,
}

/// A rectangle `origin + a·u + b·v`, `a ∈ [0, size.0]`, `b ∈ [0, size.1]`.
#[derive(Debug, Clone)]
pub struct Plane {
    pub origin: Vector3<f64>,
    pub u: Vector3<f64>,
    pub v: Vector3<f64>,
    pub size: (f64, f64),
}

/// One frame: `X_cam = r_cw · X_world + t_cw`.
#[derive(Debug, Clone)]
pub struct GtFrame {
    pub camera: String,
    pub index: usize,
    pub stamp: Time,
    pub r_cw: Matrix3<f64>,
    pub t_cw: Vector3<f64>,
    /// How the rendered image was damaged on purpose (`black`, `overexposed`, `uniform`,
    /// `blur`; scripts/fixtures/make_integrity_fixtures.py), `None` for a clean frame.
    pub degraded: Option<String>,
}

impl GtFrame {
    /// Camera centre in world coordinates.
    pub fn center(&self) -> Vector3<f64> {
        -(self.r_cw.transpose() * self.t_cw)
    }
}

/// The whole ground truth.
#[derive(Debug, Clone)]
pub struct Scene {
    pub cameras: Vec<GtCamera>,
    pub planes: Vec<Plane>,
    pub frames: Vec<GtFrame>,
}

fn vec3(v: &Value) -> Vector3<f64> {
    let a: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    Vector3::new(a[0], a[1], a[2])
}

/// A JSON array of numbers.
pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

impl Scene {
    /// Load `tests/fixtures/replay/sequence.json`.
    pub fn load() -> Scene {
        Scene::load_file(&fixture("replay/sequence.json"))
    }

    /// Load a ground-truth file of the same schema (`scripts/fixtures/make_metric_bag.py` writes
    /// one).
    pub fn load_file(path: &std::path::Path) -> Scene {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let gt: Value = serde_json::from_str(&text).unwrap();
        let cameras = gt["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let k: [f64; 9] = f64s(&c["k"]).try_into().unwrap();
                let model = CameraModel::from_camera_info(
                    c["distortion_model"].as_str().unwrap(),
                    &f64s(&c["d"]),
                    &k,
                    c["width"].as_u64().unwrap() as u32,
                    c["height"].as_u64().unwrap() as u32,
                )
                .unwrap();
                GtCamera {
                    name: c["name"].as_str().unwrap().into(),
                    model,
                    frame_id: c["frame_id"].as_str().unwrap().into(),
                    image_topic: c["image_topic"].as_str().unwrap().into(),
                    camera_info_topic: c["camera_info_topic"].as_str().unwrap().into(),
                }
            })
            .collect();
        let planes = gt["planes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let size = f64s(&p["size"]);
                Plane {
                    origin: vec3(&p["origin"]),
                    u: vec3(&p["u"]),
                    v: vec3(&p["v"]),
                    size: (size[0], size[1]),
                }
            })
            .collect();
        let frames = gt["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| GtFrame {
                camera: f["camera"].as_str().unwrap().into(),
                index: f["index"].as_u64().unwrap() as usize,
                stamp: Time {
                    sec: f["stamp"]["sec"].as_i64().unwrap() as i32,
                    nanosec: f["stamp"]["nanosec"].as_u64().unwrap() as u32,
                },
                r_cw: Matrix3::from_row_slice(&f64s(&f["r_cw"])),
                t_cw: vec3(&f["t_cw"]),
                degraded: f["degraded"].as_str().map(str::to_string),
            })
            .collect();
        Scene {
            cameras,
            planes,
            frames,
        }
    }

    pub fn camera(&self, name: &str) -> &GtCamera {
        self.cameras.iter().find(|c| c.name == name).unwrap()
    }

    /// The frame of `camera` at `stamp`.
    pub fn frame(&self, camera: &str, stamp: Time) -> Option<&GtFrame> {
        self.frames
            .iter()
            .find(|f| f.camera == camera && f.stamp == stamp)
    }

    /// Ground-truth relative pose `X_b = R·X_a + t` (metric `t`).
    pub fn relative(&self, a: &GtFrame, b: &GtFrame) -> RelativePose {
        let r = b.r_cw * a.r_cw.transpose();
        let t = b.t_cw - r * a.t_cw;
        RelativePose::new(Rotation3::from_matrix_unchecked(r), t)
    }

    /// Nearest intersection of the ray `origin + s·dir` (s > 0) with the room.
    pub fn hit(&self, origin: &Vector3<f64>, dir: &Vector3<f64>) -> Option<Vector3<f64>> {
        let mut best: Option<(f64, Vector3<f64>)> = None;
        for p in &self.planes {
            let n = p.u.cross(&p.v);
            let denom = dir.dot(&n);
            if denom.abs() < 1e-12 {
                continue;
            }
            let s = (p.origin - origin).dot(&n) / denom;
            if s <= 1e-6 || best.is_some_and(|(b, _)| s >= b) {
                continue;
            }
            let x = origin + dir * s;
            let a = (x - p.origin).dot(&p.u);
            let b = (x - p.origin).dot(&p.v);
            if (0.0..=p.size.0).contains(&a) && (0.0..=p.size.1).contains(&b) {
                best = Some((s, x));
            }
        }
        best.map(|(_, x)| x)
    }

    /// Pixel of world point `x` in `frame` (camera `model`), when in front and inside the
    /// image. The room is convex and cameras are inside it, so nothing else can occlude.
    pub fn project(
        &self,
        model: &CameraModel,
        frame: &GtFrame,
        x: &Vector3<f64>,
    ) -> Option<PixelPoint> {
        let c = frame.r_cw * x + frame.t_cw;
        if c.z < 0.05 {
            return None;
        }
        let p = model.project(&NormalizedPoint::new(c.x / c.z, c.y / c.z));
        let inside = p.x >= -0.5
            && p.y >= -0.5
            && p.x < model.width as f64 - 0.5
            && p.y < model.height as f64 - 0.5;
        inside.then_some(p)
    }

    /// World point seen at pixel `p` of `frame`.
    pub fn backproject(
        &self,
        model: &CameraModel,
        frame: &GtFrame,
        p: &PixelPoint,
    ) -> Option<Vector3<f64>> {
        let n = model.normalize(p).ok()?;
        let dir = frame.r_cw.transpose() * Vector3::new(n.x, n.y, 1.0);
        self.hit(&frame.center(), &dir)
    }

    /// True overlap: the fraction of `a`'s pixels (sampled on a `grid × grid` lattice of cell
    /// centres) whose surface point is visible in `b`.
    pub fn overlap(&self, a: &GtFrame, b: &GtFrame, grid: usize) -> f64 {
        let ma = self.camera(&a.camera).model;
        let mb = self.camera(&b.camera).model;
        let mut seen = 0;
        let mut total = 0;
        for j in 0..grid {
            for i in 0..grid {
                let p = PixelPoint::new(
                    (i as f64 + 0.5) / grid as f64 * ma.width as f64 - 0.5,
                    (j as f64 + 0.5) / grid as f64 * ma.height as f64 - 0.5,
                );
                let Some(x) = self.backproject(&ma, a, &p) else {
                    continue;
                };
                total += 1;
                seen += self.project(&mb, b, &x).is_some() as usize;
            }
        }
        if total == 0 {
            0.0
        } else {
            seen as f64 / total as f64
        }
    }

    /// Points on the room's surfaces: a grid of `spacing` metres on every plane, each point
    /// jittered by up to ±spacing/2 (seeded).
    pub fn surface_points(&self, spacing: f64, seed: u64) -> Vec<Vector3<f64>> {
        let mut rng = imd::geometry::Rng::new(seed);
        let mut out = Vec::new();
        for p in &self.planes {
            let (na, nb) = (
                (p.size.0 / spacing).floor() as usize,
                (p.size.1 / spacing).floor() as usize,
            );
            for i in 0..na {
                for j in 0..nb {
                    let a = (i as f64 + 0.5 + rng.uniform_in(-0.5, 0.5)) * spacing;
                    let b = (j as f64 + 0.5 + rng.uniform_in(-0.5, 0.5)) * spacing;
                    out.push(p.origin + p.u * a + p.v * b);
                }
            }
        }
        out
    }
}
