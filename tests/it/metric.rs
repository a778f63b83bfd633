//! Metric pose: P3P + LO-MSAC absolute pose, depth lifting and stereo triangulation against
//! ground truth.
//!
//! Fixtures in `tests/fixtures/metric/` come from `scripts/fixtures/make_rgbd_fixtures.py`: a
//! ray-cast RGB-D sequence (textured room and boxes, exact depth stored as 16UC1 mm and 32FC1 m
//! with sensor artefacts, oracle correspondences from the known geometry) and the Middlebury 2014
//! Motorcycle pair (`skimage.data.stereo_motorcycle`, GT disparity, published calibration).

use imd::geometry::depth::{lift_pixel, DepthRejection};
use imd::geometry::metrics::rotation_error_deg;
use imd::geometry::stereo::StereoRejection;
use imd::geometry::{
    estimate_absolute_pose, lift_matches, AbsolutePoseOptions, CameraModel, CameraPoint, Checked,
    DepthImage, DepthOptions, DepthSamples, GeometryError, PixelMatch, PixelPoint, PointMatch,
    RelativePose, Rng, StereoOptions, StereoRig,
};
use nalgebra::{Matrix3, Rotation3, Vector3};
use serde_json::Value;

use crate::util::fixture;

/// The oracle matcher's sub-pixel noise (tests/it/pipeline/oracle.rs), per coordinate.
const ORACLE_NOISE_PX: f64 = 0.25;

fn load(rel: &str) -> Value {
    let path = fixture(&format!("metric/{rel}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn world_to_camera(v: &Value) -> RelativePose {
    let rows: Vec<Vec<f64>> = v["R"].as_array().unwrap().iter().map(f64s).collect();
    let t = f64s(&v["t"]);
    RelativePose::new(
        Rotation3::from_matrix_unchecked(Matrix3::from_fn(|i, j| rows[i][j])),
        Vector3::new(t[0], t[1], t[2]),
    )
}

/// A keyframe's sensor depth as stored: 16UC1 PNG (mm) or raw little-endian 32FC1 (m).
enum Depth {
    Millimetres(Vec<u16>),
    Metres(Vec<f32>),
}

impl Depth {
    fn load(segment: &Value) -> Depth {
        let path = fixture(&format!(
            "metric/rgbd/{}",
            segment["depth"].as_str().unwrap()
        ));
        match segment["encoding"].as_str().unwrap() {
            "16UC1" => {
                let img = image::open(&path).unwrap().into_luma16();
                Depth::Millimetres(img.into_raw())
            }
            "32FC1" => {
                let bytes = std::fs::read(&path).unwrap();
                Depth::Metres(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            }
            other => panic!("unknown encoding {other}"),
        }
    }

    fn image(&self, w: usize, h: usize) -> DepthImage<'_> {
        let samples = match self {
            Depth::Millimetres(v) => DepthSamples::Millimetres(v),
            Depth::Metres(v) => DepthSamples::Metres(v),
        };
        DepthImage::new(w, h, samples).unwrap()
    }
}

struct Sequence {
    camera: CameraModel,
    poses: Vec<RelativePose>,
    json: Value,
}

fn sequence() -> Sequence {
    let json = load("rgbd/sequence.json");
    let k = f64s(&json["intrinsics"]);
    let (w, h) = (
        json["width"].as_u64().unwrap() as u32,
        json["height"].as_u64().unwrap() as u32,
    );
    let poses = json["poses_world_to_camera"]
        .as_array()
        .unwrap()
        .iter()
        .map(world_to_camera)
        .collect();
    Sequence {
        camera: CameraModel::pinhole(k[0], k[1], k[2], k[3], w, h),
        poses,
        json,
    }
}

/// Keyframe → frame, `X_frame = R·X_kf + t`, from world-to-camera poses.
fn relative(kf: &RelativePose, frame: &RelativePose) -> RelativePose {
    let r = frame.rotation * kf.rotation.inverse();
    RelativePose::new(r, frame.translation - r * kf.translation)
}

/// Oracle pixel matches of one keyframe–frame pair with σ-px noise on both images, and each
/// match's exact keyframe depth.
fn oracle_matches(pair: &Value, noise: f64, rng: &mut Rng) -> (Vec<PixelMatch>, Vec<f64>) {
    let mut matches = Vec::new();
    let mut z = Vec::new();
    for row in pair["matches"].as_array().unwrap() {
        let v = f64s(row);
        matches.push(PixelMatch {
            p0: PixelPoint::new(v[0] + noise * rng.normal(), v[1] + noise * rng.normal()),
            p1: PixelPoint::new(v[2] + noise * rng.normal(), v[3] + noise * rng.normal()),
            confidence: 1.0,
        });
        z.push(v[4]);
    }
    (matches, z)
}

#[test]
fn rgbd_sequence_with_the_oracle_matcher_gives_metric_poses() {
    let seq = sequence();
    let (w, h) = (seq.camera.width as usize, seq.camera.height as usize);
    let mut rng = Rng::new(14);
    let opts = Checked::new(AbsolutePoseOptions::default()).unwrap();
    let mut worst_t: f64 = 0.0;
    let mut worst_r: f64 = 0.0;
    let mut nees = Vec::new();
    for segment in seq.json["segments"].as_array().unwrap() {
        let kf = segment["keyframe"].as_u64().unwrap() as usize;
        let depth = Depth::load(segment);
        let image = depth.image(w, h);
        for pair in segment["pairs"].as_array().unwrap() {
            let frame = pair["frame"].as_u64().unwrap() as usize;
            let gt = relative(&seq.poses[kf], &seq.poses[frame]);
            let (matches, _) = oracle_matches(pair, ORACLE_NOISE_PX, &mut rng);
            let lifted = lift_matches(&matches, &image, &seq.camera, &Checked::default()).unwrap();
            let est = estimate_absolute_pose(&lifted.matches, &seq.camera, &opts).unwrap();
            // The distance travelled from the keyframe: |c_frame − c_kf| = |t_gt|.
            let travelled = gt.translation.norm();
            let e_t = (est.pose.translation - gt.translation).norm();
            let e_r = rotation_error_deg(&est.pose.rotation, &gt.rotation);
            let cov_t = est.covariance.fixed_view::<3, 3>(0, 0).into_owned();
            let d = est.pose.translation - gt.translation;
            nees.push((d.transpose() * cov_t.try_inverse().unwrap() * d)[0]);
            println!(
                "metric_rgbd kf {kf} → frame {frame}: travelled {travelled:.3} m, t error {:.2} mm \
                 ({:.3} %), R error {e_r:.4}°, σ_t {:.2} mm, {} of {} lifted, {} inliers, σ̂ {:.2} px",
                e_t * 1e3,
                100.0 * e_t / travelled,
                cov_t.trace().sqrt() * 1e3,
                lifted.matches.len(),
                matches.len(),
                est.num_inliers,
                est.noise_sigma_px
            );
            worst_t = worst_t.max(e_t / travelled);
            worst_r = worst_r.max(e_r);
        }
    }
    println!(
        "metric_rgbd worst: t {:.3} % of travelled, R {worst_r:.4}°",
        100.0 * worst_t
    );
    // The issue's acceptance: < 2 % of the distance travelled, < 0.5°.
    assert!(worst_t < 0.02, "translation error {:.3} %", 100.0 * worst_t);
    assert!(worst_r < 0.5, "rotation error {worst_r}°");
    // The covariance is calibrated: the translation errors' Mahalanobis distance averages 3 (χ²
    // with 3 dof) when Σ is right; over 12 pairs a factor 3 either way means Σ is wrong.
    let mean = nees.iter().sum::<f64>() / nees.len() as f64;
    println!("metric_rgbd translation NEES mean {mean:.2} (3 when calibrated)");
    assert!((1.0..9.0).contains(&mean), "NEES {mean}");
}

#[test]
fn depth_artefacts_and_edges_are_rejected() {
    let seq = sequence();
    let (w, h) = (seq.camera.width as usize, seq.camera.height as usize);
    let opts = DepthOptions::default();
    for segment in seq.json["segments"].as_array().unwrap() {
        let depth = Depth::load(segment);
        let image = depth.image(w, h);
        // Every pixel centre: each injected artefact (holes, inf, a 12 m window) and the boxes'
        // outlines must show up in its rejection class.
        let mut counts = std::collections::HashMap::new();
        for r in 0..h {
            for c in 0..w {
                let p = PixelPoint::new(c as f64, r as f64);
                let key = lift_pixel(&image, &seq.camera, &p, &opts).err();
                *counts.entry(key).or_insert(0usize) += 1;
            }
        }
        let n = |k: DepthRejection| counts.get(&Some(k)).copied().unwrap_or(0);
        println!("{}: {counts:?}", segment["depth"]);
        // Two 8×12 holes (and a 6×6 inf patch in 32FC1), the 10×16 window beyond range.
        assert!(n(DepthRejection::Missing) >= 2 * 96, "{counts:?}");
        assert_eq!(n(DepthRejection::OutOfRange), 160, "{counts:?}");
        assert!(n(DepthRejection::Edge) > 200, "{counts:?}");
        assert!(counts[&None] > w * h * 8 / 10, "{counts:?}");
    }
    // Noisy keyframe pixels near an outline round to the other surface: without the edge test
    // some lifted depths belong to the wrong surface (> 5 % off the exact depth), with it none.
    let segment = &seq.json["segments"][0];
    let depth = Depth::load(segment);
    let image = depth.image(w, h);
    let no_edges = DepthOptions {
        max_relative_jump: 1e9,
        reject_near_holes: false,
        ..opts.clone()
    };
    let mut wrong = [0usize; 2];
    let mut rng = Rng::new(3);
    for pair in segment["pairs"].as_array().unwrap() {
        let (matches, z) = oracle_matches(pair, 0.5, &mut rng);
        for (k, o) in [&opts, &no_edges].into_iter().enumerate() {
            for (m, z0) in matches.iter().zip(&z) {
                if let Ok(p) = lift_pixel(&image, &seq.camera, &m.p0, o) {
                    if (p.z - z0).abs() > 0.05 * z0 {
                        wrong[k] += 1;
                    }
                }
            }
        }
    }
    println!(
        "wrong-surface depths: with edge test {}, without {}",
        wrong[0], wrong[1]
    );
    assert_eq!(wrong[0], 0);
    assert!(wrong[1] > 0);
}

/// The Middlebury rig as a rectified CameraInfo pair: `P_right[3] = Tx = −f·B`.
fn middlebury_rig(data: &Value) -> StereoRig {
    let f = data["focal_px"].as_f64().unwrap();
    let (cx0, cx1, cy) = (
        data["cx_left"].as_f64().unwrap(),
        data["cx_right"].as_f64().unwrap(),
        data["cy"].as_f64().unwrap(),
    );
    let b = data["baseline_mm"].as_f64().unwrap() * 1e-3;
    let p = |cx: f64, tx: f64| [f, 0.0, cx, tx, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0];
    let (w, h) = (
        data["width"].as_u64().unwrap() as u32,
        data["height"].as_u64().unwrap() as u32,
    );
    StereoRig::from_projections(&p(cx0, 0.0), &p(cx1, -f * b), w, h).unwrap()
}

fn middlebury_matches(data: &Value, noise: f64, rng: &mut Rng) -> (Vec<PixelMatch>, Vec<f64>) {
    let mut out = Vec::new();
    let mut z = Vec::new();
    for row in data["matches"].as_array().unwrap() {
        let v = f64s(row);
        out.push(PixelMatch {
            p0: PixelPoint::new(v[0] + noise * rng.normal(), v[1] + noise * rng.normal()),
            p1: PixelPoint::new(v[2] + noise * rng.normal(), v[3] + noise * rng.normal()),
            confidence: 1.0,
        });
        z.push(v[4] * 1e-3);
    }
    (out, z)
}

#[test]
fn middlebury_stereo_triangulates_the_dataset_depth_and_pnp_recovers_the_baseline() {
    let data = load("middlebury.json");
    let rig = middlebury_rig(&data);
    let baseline = data["baseline_mm"].as_f64().unwrap() * 1e-3;
    assert!((rig.baseline_m() - baseline).abs() < 1e-12);
    let general = StereoRig::from_extrinsics(rig.left, rig.right, rig.right_from_left).unwrap();
    let opts = StereoOptions::default();
    // Exact GT matches: the disparity path reproduces the dataset's Z = f·B/(d + doffs), so the
    // rig from P (Tx = −f·B, principal points apart by doffs) is the dataset's; the ray path
    // agrees with it.
    let (exact, z_gt) = middlebury_matches(&data, 0.0, &mut Rng::new(0));
    let mut worst: f64 = 0.0;
    for (m, z) in exact.iter().zip(&z_gt) {
        let a = rig.triangulate(&m.p0, &m.p1, &opts).unwrap();
        let g = general.triangulate(&m.p0, &m.p1, &opts).unwrap();
        worst = worst
            .max((a.z - z).abs() / z)
            .max((a.vector() - g.vector()).norm() / z);
    }
    // The fixture rounds z to 0.1 µm and x_right to 1e-5 px (1e-7 of the disparity).
    assert!(worst < 1e-6, "relative depth error {worst}");

    // Noisy matches: points from one draw, the right camera's PnP from an independent draw (a
    // second matching of the pair), so the structure's noise reaches the pose.
    let mut rng = Rng::new(193);
    let (first, _) = middlebury_matches(&data, ORACLE_NOISE_PX, &mut rng);
    let (second, _) = middlebury_matches(&data, ORACLE_NOISE_PX, &mut rng);
    let points = rig
        .triangulate_matches(&first, &Checked::new(opts.clone()).unwrap())
        .unwrap();
    let correspondences: Vec<PointMatch> = points
        .points
        .iter()
        .zip(&points.source)
        .map(|(p, &i)| PointMatch {
            point: *p,
            pixel: second[i].p1,
        })
        .collect();
    let est = estimate_absolute_pose(&correspondences, &rig.right, &Checked::default()).unwrap();
    let t = est.pose.translation;
    let e_r = rotation_error_deg(&est.pose.rotation, &Rotation3::identity());
    let sigma_t = est.covariance[(0, 0)].sqrt();
    println!(
        "metric_middlebury: |t| = {:.3} mm (GT 193.001), t = ({:.3}, {:.3}, {:.3}) mm, R error {e_r:.4}°, \
         σ_tx {:.3} mm, {} points ({} rejected), {} inliers",
        t.norm() * 1e3,
        t.x * 1e3,
        t.y * 1e3,
        t.z * 1e3,
        sigma_t * 1e3,
        points.points.len(),
        points.rejected,
        est.num_inliers
    );
    // Depth noise per point: σ_d = √2·0.25 px on d + doffs ≈ 40–90 px gives 0.4–0.9 %; it is
    // independent between points, so over ~1500 points the baseline is good to well under
    // 1 % (2 mm); the same bound for the other axes, and 0.1° of rotation.
    assert!((t.norm() - baseline).abs() < 0.002, "|t| = {}", t.norm());
    assert!((t - Vector3::new(-baseline, 0.0, 0.0)).norm() < 0.003);
    assert!(e_r < 0.1, "rotation error {e_r}°");
}

// ---------------------------------------------------------------- synthetic absolute pose

/// A synthetic PnP problem (the protocol of scripts/bench/bench_geometry.py --pnp): f = 500,
/// 640×480, keyframe points at depth U[2, 8] m, the camera rotated 5–20° and moved 0.5 m; σ-px
/// noise on the current pixels; outliers with random pixels.
fn pnp_problem(
    rng: &mut Rng,
    n: usize,
    outliers: f64,
    noise: f64,
) -> (Vec<PointMatch>, RelativePose) {
    let camera = synthetic_camera();
    let k = camera.intrinsics;
    let gt = RelativePose::new(
        Rotation3::from_scaled_axis(rng.unit_vector3() * rng.uniform_in(5.0, 20.0).to_radians()),
        rng.unit_vector3() * 0.5,
    );
    let n_out = (outliers * n as f64).round() as usize;
    let mut out = Vec::new();
    while out.len() < n - n_out {
        let (u, v) = (rng.uniform_in(0.0, 640.0), rng.uniform_in(0.0, 480.0));
        let z = rng.uniform_in(2.0, 8.0);
        let x = Vector3::new((u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z);
        let q = gt.transform(&x);
        if q.z < 0.1 {
            continue;
        }
        let (pu, pv) = (k.fx * q.x / q.z + k.cx, k.fy * q.y / q.z + k.cy);
        if !(0.0..640.0).contains(&pu) || !(0.0..480.0).contains(&pv) {
            continue;
        }
        out.push(PointMatch {
            point: CameraPoint::from_vector(&x),
            pixel: PixelPoint::new(pu + noise * rng.normal(), pv + noise * rng.normal()),
        });
    }
    for _ in 0..n_out {
        let z = rng.uniform_in(2.0, 8.0);
        let (u, v) = (rng.uniform_in(0.0, 640.0), rng.uniform_in(0.0, 480.0));
        out.push(PointMatch {
            point: CameraPoint::new((u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z),
            pixel: PixelPoint::new(rng.uniform_in(0.0, 640.0), rng.uniform_in(0.0, 480.0)),
        });
    }
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i + 1));
    }
    (out, gt)
}

fn synthetic_camera() -> CameraModel {
    CameraModel::pinhole(500.0, 500.0, 320.0, 240.0, 640, 480)
}

#[test]
fn absolute_pose_is_accurate_under_outliers_and_its_covariance_matches_the_spread() {
    let camera = synthetic_camera();
    let opts = Checked::new(AbsolutePoseOptions::default()).unwrap();
    let mut rng = Rng::new(21);
    for outliers in [0.0, 0.5, 0.8] {
        let mut worst_t: f64 = 0.0;
        let mut worst_r: f64 = 0.0;
        for _ in 0..20 {
            let (m, gt) = pnp_problem(&mut rng, 500, outliers, 0.5);
            let est = estimate_absolute_pose(&m, &camera, &opts).unwrap();
            worst_t = worst_t.max((est.pose.translation - gt.translation).norm());
            worst_r = worst_r.max(rotation_error_deg(&est.pose.rotation, &gt.rotation));
        }
        println!(
            "pnp outliers {outliers}: worst t {:.2} mm, R {worst_r:.4}°",
            worst_t * 1e3
        );
        // σ = 0.5 px at f = 500 over ≥ 100 inliers at 2–8 m: a few mm and a few hundredths of a
        // degree per trial; 2 cm and 0.2° bound the worst of 20 with a wide margin.
        assert!(
            worst_t < 0.02 && worst_r < 0.2,
            "{outliers}: {worst_t} {worst_r}"
        );
    }
    // Calibration: fixed geometry, 150 noise draws; the empirical spread of the estimates
    // matches the mean predicted covariance (NEES ≈ 6 for the 6-DoF pose).
    let (base, gt) = pnp_problem(&mut Rng::new(5), 400, 0.0, 0.0);
    let mut nees = 0.0;
    let trials = 150;
    for k in 0..trials {
        let mut noise = Rng::new(100 + k);
        let m: Vec<PointMatch> = base
            .iter()
            .map(|m| PointMatch {
                point: m.point,
                pixel: PixelPoint::new(
                    m.pixel.x + 0.5 * noise.normal(),
                    m.pixel.y + 0.5 * noise.normal(),
                ),
            })
            .collect();
        let est = estimate_absolute_pose(&m, &camera, &opts).unwrap();
        let dr = (est.pose.rotation * gt.rotation.inverse()).scaled_axis();
        let dt = est.pose.translation - gt.translation;
        let e = nalgebra::Vector6::new(dt.x, dt.y, dt.z, dr.x, dr.y, dr.z);
        nees += (e.transpose() * est.covariance.try_inverse().unwrap() * e)[0] / trials as f64;
    }
    println!("pnp NEES {nees:.2} (6 when calibrated)");
    // 150 draws: the mean of χ²₆ has standard error 0.28; ±25 % is > 5 standard errors.
    assert!((4.5..7.5).contains(&nees), "NEES {nees}");
}

#[test]
fn absolute_pose_failures_are_errors() {
    let camera = synthetic_camera();
    let opts = Checked::new(AbsolutePoseOptions::default()).unwrap();
    let (m, _) = pnp_problem(&mut Rng::new(1), 50, 0.0, 0.5);
    assert!(matches!(
        estimate_absolute_pose(&m[..2], &camera, &opts),
        Err(GeometryError::TooFewMatches { got: 2, needed: 3 })
    ));
    // Pure outliers: no pose reaches min_inliers.
    let (m, _) = pnp_problem(&mut Rng::new(2), 300, 1.0, 0.5);
    assert!(matches!(
        estimate_absolute_pose(&m, &camera, &opts),
        Err(GeometryError::NoModel { .. })
    ));
    // Collinear points: the rotation about their line is free (P3P refuses every sample, or the
    // collinearity check refuses the inliers).
    let line: Vec<PointMatch> = (0..40)
        .map(|i| {
            let x = Vector3::new(-1.0 + 0.05 * i as f64, 0.2, 4.0);
            PointMatch {
                point: CameraPoint::from_vector(&x),
                pixel: PixelPoint::new(500.0 * x.x / 4.0 + 320.0, 500.0 * 0.2 / 4.0 + 240.0),
            }
        })
        .collect();
    assert!(matches!(
        estimate_absolute_pose(&line, &camera, &opts),
        Err(GeometryError::NoModel { .. })
    ));
    // Non-finite points are named.
    let mut bad = pnp_problem(&mut Rng::new(3), 20, 0.0, 0.5).0;
    bad[7].point.z = f64::NAN;
    let err = estimate_absolute_pose(&bad, &camera, &opts).unwrap_err();
    assert!(err.to_string().contains("correspondence 7"), "{err}");
    // Stereo rejects what it cannot triangulate.
    let rig = middlebury_rig(&load("middlebury.json"));
    let far = rig.triangulate(
        &PixelPoint::new(300.0, 200.0),
        &PixelPoint::new(300.0 + 31.0, 200.0),
        &StereoOptions::default(),
    );
    assert_eq!(far, Err(StereoRejection::SmallDisparity));
}

#[test]
fn cli_pnp_batch_answers_every_line() {
    let (m, gt) = pnp_problem(&mut Rng::new(8), 200, 0.3, 0.5);
    let points: Vec<[f64; 3]> = m
        .iter()
        .map(|c| [c.point.x, c.point.y, c.point.z])
        .collect();
    let pixels: Vec<[f64; 2]> = m.iter().map(|c| [c.pixel.x, c.pixel.y]).collect();
    let good = serde_json::json!({"id": "a", "k": [500.0, 500.0, 320.0, 240.0],
                                  "points": points, "pixels": pixels});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.jsonl");
    let short = r#"{"id": "b", "k": [500, 500, 320, 240], "points": [[0, 0, 1]], "pixels": [[1, 2], [3, 4]]}"#;
    std::fs::write(&path, format!("{good}\n{short}\n")).unwrap();
    let out = std::process::Command::new(crate::util::imd_bin())
        .args(["pnp", "--batch"])
        .arg(&path)
        .output()
        .unwrap();
    // One invalid line: every line answered, exit code 3.
    assert_eq!(out.status.code(), Some(3));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let t = f64s(&lines[0]["t"]);
    // σ = 0.5 px, 140 inliers: millimetres; 1 cm is a wide bound.
    assert!((Vector3::new(t[0], t[1], t[2]) - gt.translation).norm() < 0.01);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[1]["error_kind"], "input");
    assert!(
        lines[1]["error"].as_str().unwrap().contains("pixels"),
        "{}",
        lines[1]
    );
}

// ---------------------------------------------------------------- the demo model

/// The demo model (`models/imd-tiny-synth`) on the RGB-D sequence: `imd match` keyframe →
/// frame, then depth lifting and PnP as with the oracle. About 15 s of CPU matching per pair, so
/// not part of CI: `cargo test --features ros --test it -- --ignored metric::demo --nocapture`.
#[test]
#[ignore]
fn demo_model_on_the_rgbd_sequence() {
    let seq = sequence();
    let (w, h) = (seq.camera.width as usize, seq.camera.height as usize);
    let dir = tempfile::tempdir().unwrap();
    let frames = fixture("metric/rgbd/frames");
    let model = crate::util::root().join("models/imd-tiny-synth");
    let mut worst_t: f64 = 0.0;
    let mut worst_r: f64 = 0.0;
    for segment in seq.json["segments"].as_array().unwrap() {
        let kf = segment["keyframe"].as_u64().unwrap() as usize;
        let depth = Depth::load(segment);
        let image = depth.image(w, h);
        for pair in segment["pairs"].as_array().unwrap() {
            let frame = pair["frame"].as_u64().unwrap() as usize;
            let csv = dir.path().join(format!("{kf}_{frame}.csv"));
            let status = std::process::Command::new(crate::util::imd_bin())
                .arg("match")
                .arg(frames.join(format!("{kf:02}.jpg")))
                .arg(frames.join(format!("{frame:02}.jpg")))
                .arg("--model")
                .arg(&model)
                .arg("--out")
                .arg(&csv)
                .env("RUST_LOG", "error")
                .status()
                .unwrap();
            assert!(status.success());
            let matches = imd::io::matches::read_matches_csv(&csv).unwrap();
            let gt = relative(&seq.poses[kf], &seq.poses[frame]);
            let lifted = lift_matches(&matches, &image, &seq.camera, &Checked::default()).unwrap();
            let est =
                estimate_absolute_pose(&lifted.matches, &seq.camera, &Checked::default()).unwrap();
            let travelled = gt.translation.norm();
            let e_t = (est.pose.translation - gt.translation).norm() / travelled;
            let e_r = rotation_error_deg(&est.pose.rotation, &gt.rotation);
            println!(
                "metric_demo kf {kf} → frame {frame}: travelled {travelled:.2} m, t error {:.2} % \
                 of it, R error {e_r:.3}°, {} matches, {} lifted, {} inliers, σ̂ {:.2} px",
                100.0 * e_t,
                matches.len(),
                lifted.matches.len(),
                est.num_inliers,
                est.noise_sigma_px
            );
            worst_t = worst_t.max(e_t);
            worst_r = worst_r.max(e_r);
        }
    }
    println!(
        "metric_demo worst: t {:.2} %, R {worst_r:.3}°",
        100.0 * worst_t
    );
    // The issue's acceptance holds for the demo model too (measured: 1.24 %, 0.055°).
    assert!(worst_t < 0.02 && worst_r < 0.5, "{worst_t} {worst_r}");
}
