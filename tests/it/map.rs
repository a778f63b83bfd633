//! Saved maps end to end: camera A builds a map from its bag, the map goes to disk and back,
//! camera B (other intrinsics, path, start and mount) localizes in it without a hint.
//!
//! `scripts/fixtures/make_map_bags.py` renders the replay room for both cameras with registered
//! depth (16UC1) and each robot's mount in `/tf_static`; the ground-truth oracle matcher (0.25 px
//! noise, 20 % outliers) stands in for the network, since the map and the relocalization are
//! the point here, not the model.

use std::path::PathBuf;
use std::sync::Arc;

use imd::config::{CamerasConfig, ImdConfig};
use imd::pipeline::map::run::{run_bag, run_bag_to, MapRun, MapRunSummary};
use imd::pipeline::map::{self, MapDepth, MapError};
use imd::pipeline::{PipelineError, PoseScale, TrackState};
use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};

use crate::pipeline::oracle::Oracle;
use crate::pipeline::scene::{GtFrame, Scene};
use crate::util::generated_fixtures;

fn fixture() -> PathBuf {
    generated_fixtures("fixtures/make_map_bags.py", "map")
}

fn scene() -> Arc<Scene> {
    Arc::new(Scene::load_file(&fixture().join("map.json")))
}

fn config(camera: &str) -> ImdConfig {
    let mut config = stereo_config(camera);
    config.cameras.right_image_topics.clear();
    config.cameras.right_camera_info_topics.clear();
    config.cameras.depth_topics = vec![format!("/{camera}/depth/image_raw")];
    config
}

/// `camera` as a rectified stereo pair (`map_*_stereo.mcap`).
fn stereo_config(camera: &str) -> ImdConfig {
    let list = |s: String| vec![s];
    let cameras = CamerasConfig {
        names: list(camera.into()),
        image_topics: list(format!("/{camera}/image_raw/compressed")),
        camera_info_topics: list(format!("/{camera}/camera_info")),
        right_image_topics: list(format!("/{camera}/right/image_raw/compressed")),
        right_camera_info_topics: list(format!("/{camera}/right/camera_info")),
        ..Default::default()
    };
    let mut config = Oracle::config(cameras);
    config.pose.max_iterations = 10_000;
    config
}

/// A ground-truth frame's optical frame in the world.
fn world_from(f: &GtFrame) -> Isometry3<f64> {
    let r_wc = f.r_cw.transpose();
    Isometry3::from_parts(
        Translation3::from(-(r_wc * f.t_cw)),
        UnitQuaternion::from_matrix(&r_wc),
    )
}

fn isometry(p: [f64; 3], q: [f64; 4]) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(p[0], p[1], p[2]),
        UnitQuaternion::from_quaternion(Quaternion::new(q[3], q[0], q[1], q[2])),
    )
}

/// One map pose's error against its covariance.
#[derive(Debug, Clone, Copy, Default)]
struct Consistency {
    /// Position error, metres.
    position_m: f64,
    /// Rotation error, radians.
    rotation_rad: f64,
    /// Root of the position block's trace, metres.
    position_sigma_m: f64,
    /// Root of the rotation block's trace, radians.
    rotation_sigma_rad: f64,
    /// `eᵀ Σ⁻¹ e` of the position (3 degrees of freedom).
    position_nees: f64,
    /// The same of the rotation (about the map frame's axes: `R_true = exp(φ)·R_got`).
    rotation_nees: f64,
}

impl Consistency {
    fn of(got: &Isometry3<f64>, want: &Isometry3<f64>, covariance: &[f64]) -> Self {
        let c = nalgebra::Matrix6::from_row_slice(covariance);
        let ep = want.translation.vector - got.translation.vector;
        let er = (want.rotation * got.rotation.inverse()).scaled_axis();
        let cp: nalgebra::Matrix3<f64> = c.fixed_view::<3, 3>(0, 0).into();
        let cr: nalgebra::Matrix3<f64> = c.fixed_view::<3, 3>(3, 3).into();
        let nees = |e: &nalgebra::Vector3<f64>, m: &nalgebra::Matrix3<f64>| {
            m.try_inverse()
                .map_or(f64::INFINITY, |inv| (e.transpose() * inv * e)[0])
        };
        Consistency {
            position_m: ep.norm(),
            rotation_rad: er.norm(),
            position_sigma_m: cp.trace().max(0.0).sqrt(),
            rotation_sigma_rad: cr.trace().max(0.0).sqrt(),
            position_nees: nees(&ep, &cp),
            rotation_nees: nees(&er, &cr),
        }
    }

    /// Medians of the errors and sigmas, means of the NEES.
    fn summary(all: &[Consistency]) -> Consistency {
        let median = |f: fn(&Consistency) -> f64| {
            let mut v: Vec<f64> = all.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mean = |f: fn(&Consistency) -> f64| all.iter().map(f).sum::<f64>() / all.len() as f64;
        Consistency {
            position_m: median(|c| c.position_m),
            rotation_rad: median(|c| c.rotation_rad),
            position_sigma_m: median(|c| c.position_sigma_m),
            rotation_sigma_rad: median(|c| c.rotation_sigma_rad),
            position_nees: mean(|c| c.position_nees),
            rotation_nees: mean(|c| c.rotation_nees),
        }
    }
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median position error {:.1} mm, σ {:.1} mm; median rotation error {:.3}°, σ {:.3}°; \
             mean NEES position {:.2} (3 DoF), rotation {:.2} (3 DoF)",
            self.position_m * 1e3,
            self.position_sigma_m * 1e3,
            self.rotation_rad.to_degrees(),
            self.rotation_sigma_rad.to_degrees(),
            self.position_nees,
            self.rotation_nees
        )
    }
}

fn build(scene: &Arc<Scene>) -> (map::KeyframeMap, MapRunSummary) {
    let bag = fixture().join("map_a.mcap");
    let (processor, summary) = run_bag(
        &bag,
        &config("cam0"),
        Oracle::new(scene.clone()),
        MapRun::Build,
    )
    .unwrap();
    let map = processor.export_map().unwrap().unwrap();
    (map, summary)
}

#[test]
fn a_map_built_by_camera_a_localizes_camera_b_without_a_hint() {
    let scene = scene();
    let (built, summary_a) = build(&scene);
    assert_eq!(summary_a.frames, 48);
    assert!(summary_a.failed.is_empty(), "{:?}", summary_a.failed);
    assert!(
        built.keyframes.len() >= 3,
        "{} keyframes",
        built.keyframes.len()
    );
    assert!(built.keyframes.iter().all(|k| k.depth.is_some()));
    assert_eq!(built.frame_id, "odom");

    // Through the disk and back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let report = map::save(&built, &dir, &map::Replace::AnyMap).unwrap();
    let oracle = Oracle::new(scene.clone());
    let identity = imd::pipeline::PairMatcher::identity(&oracle).unwrap();
    let loaded = map::load(&dir, Some(&identity)).unwrap();
    assert_eq!(loaded.keyframes.len(), built.keyframes.len());
    eprintln!(
        "map: {} keyframes, {} bytes ({} per keyframe)",
        report.keyframes,
        report.bytes,
        report.bytes / report.keyframes.max(1) as u64
    );

    // The map frame in the world, from the map's first keyframe (cam0's first frame).
    let first = loaded.keyframes.iter().min_by_key(|k| k.id.stamp).unwrap();
    let first_gt = scene.frame("cam0", first.id.stamp).unwrap();
    let map_from_world = first.pose.pose * world_from(first_gt).inverse();
    // The map's keyframe poses themselves agree with the ground truth.
    for k in &loaded.keyframes {
        let want = map_from_world * world_from(scene.frame("cam0", k.id.stamp).unwrap());
        let d = (k.pose.pose.translation.vector - want.translation.vector).norm();
        assert!(d < 0.05, "map keyframe {}: {:.1} mm off", k.id, d * 1e3);
    }

    // A mapping run's chain covariance grows with its drift and with every hold (the live
    // demo-model map: median σ 385 mm, yaw σ 11°). The map defines the map frame, so none of it
    // may reach a pose in the map: inflated here as such a run's would be, the map poses below
    // keep the registration's covariance (their NEES band fails otherwise).
    let mut loaded = loaded;
    for k in &mut loaded.keyframes {
        k.pose = k.pose.inflated(0.4f64.powi(2), 11f64.to_radians().powi(2));
    }
    let bag = fixture().join("map_b.mcap");
    let (_, summary) = run_bag(&bag, &config("camB"), oracle, MapRun::Localize(&loaded)).unwrap();
    assert_eq!(summary.frames, 36);
    let map_frames: Vec<&GtFrame> = loaded
        .keyframes
        .iter()
        .map(|k| scene.frame("cam0", k.id.stamp).unwrap())
        .collect();
    let Score {
        eligible,
        good,
        bad,
        worst_m,
        worst_deg,
        consistency,
        ..
    } = score_camera_b(&scene, &map_frames, &map_from_world, &summary, None);
    eprintln!(
        "camB: {good} of {eligible} overlapping frames within 5 cm and 1°, worst {:.1} mm \
         {worst_deg:.2}°; {} relocalized against the map",
        worst_m * 1e3,
        summary.relocalized
    );
    // The map poses' covariance against their errors: a consistent covariance gives a mean
    // NEES of 3 per 3-DoF block; [1, 9] allows a factor 3 either way (36 correlated frames).
    // Measured: position 3.4, rotation 2.6 (median σ 4.7 mm against 4.2 mm errors). Before the
    // map keyframes counted as exact: 0.74 and 0.66 (σ 11.1 mm) without the inflation above,
    // σ ≥ 400 mm with it.
    let c = Consistency::summary(&consistency);
    eprintln!("camB map poses: {c}");
    assert!(
        (1.0..=9.0).contains(&c.position_nees),
        "position NEES {:.2}",
        c.position_nees
    );
    assert!(
        (1.0..=9.0).contains(&c.rotation_nees),
        "rotation NEES {:.2}",
        c.rotation_nees
    );
    assert!(eligible >= 20, "{eligible} frames overlap the map");
    assert!(
        good as f64 >= 0.9 * eligible as f64,
        "{good} of {eligible} within 5 cm and 1°"
    );
    assert!(bad.is_empty(), "frames beyond 20 cm or 5°: {bad:?}");
    assert!(summary.relocalized >= 1);
    // The odometry chain goes on through map keyframes (never holding once localized), and
    // map → odom stays put (the chain's drift against the map, millimetres here).
    let first_localized = summary
        .per_frame
        .iter()
        .position(|f| f.position_m.is_some())
        .unwrap();
    let holding: Vec<usize> = summary.per_frame[first_localized..]
        .iter()
        .enumerate()
        .filter(|(_, f)| f.odom_state == Some("holding"))
        .map(|(i, _)| i + first_localized)
        .collect();
    assert!(holding.is_empty(), "odometry held at frames {holding:?}");
    let offsets: Vec<[f64; 3]> = summary
        .per_frame
        .iter()
        .filter_map(|f| f.map_from_odom_m)
        .collect();
    assert!(
        offsets.len() >= 30,
        "{} frames with map → odom",
        offsets.len()
    );
    let spread = offsets
        .iter()
        .map(|o| {
            ((o[0] - offsets[0][0]).powi(2)
                + (o[1] - offsets[0][1]).powi(2)
                + (o[2] - offsets[0][2]).powi(2))
            .sqrt()
        })
        .fold(0.0, f64::max);
    eprintln!("map → odom moved by at most {:.1} mm", spread * 1e3);
    assert!(spread < 0.05, "map → odom moved {:.1} mm", spread * 1e3);
    assert!(summary
        .per_frame
        .iter()
        .any(|f| f.state == TrackState::Relocalized && f.against_map_keyframe));
}

#[test]
fn a_map_of_another_model_is_refused_by_the_processor() {
    let scene = scene();
    let (mut built, _) = build(&scene);
    built.model = "sha256:another".into();
    let err = run_bag(
        &fixture().join("map_b.mcap"),
        &config("camB"),
        Oracle::new(scene),
        MapRun::Localize(&built),
    )
    .expect_err("another model's map must be refused");
    assert!(
        matches!(err, PipelineError::Map(MapError::Model { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("sha256:another"), "{err}");
}

#[test]
fn map_info_describes_a_map_and_names_a_corrupt_file() {
    let scene = scene();
    let (built, _) = build(&scene);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    map::save(&built, &dir, &map::Replace::AnyMap).unwrap();
    let info = |json: bool| {
        let mut c = std::process::Command::new(crate::util::imd_bin());
        c.args(["map", "info"]).arg(&dir);
        if json {
            c.arg("--json");
        }
        c.env("RUST_LOG", "warn").output().unwrap()
    };
    let out = info(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format_version"], map::FORMAT_VERSION);
    assert_eq!(v["keyframes"], built.keyframes.len());
    assert_eq!(v["keyframes_per_camera"]["cam0"], built.keyframes.len());
    assert_eq!(v["depth"]["16UC1"], built.keyframes.len());
    assert_eq!(v["frame_id"], "odom");
    let text = String::from_utf8_lossy(&info(false).stdout).to_string();
    assert!(text.contains("format:     version 2"), "{text}");

    // A flipped byte: the command fails naming the file and the checksum it expected.
    let manifest = map::load_manifest(&dir).unwrap();
    let blob = dir.join(&manifest.keyframes[0].image.path);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let out = info(false);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&*blob.to_string_lossy()) && stderr.contains("corrupt"),
        "{stderr}"
    );

    // `imd replay --map` on a folder without a map fails before loading any model.
    let out = std::process::Command::new(crate::util::imd_bin())
        .arg("replay")
        .arg(fixture().join("map_b.mcap"))
        .args([
            "--camera",
            "/camB/image_raw/compressed",
            "--model",
            "/nonexistent",
            "--map",
        ])
        .arg(tmp.path().join("nothing"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing: missing"), "{stderr}");

    // `imd map build --out` onto an existing map (even a damaged one) refuses without
    // --overwrite, before reading the bag or loading a model; the map stays as it was.
    let before = std::fs::read(dir.join(map::MANIFEST_FILE)).unwrap();
    let out = std::process::Command::new(crate::util::imd_bin())
        .args(["map", "build"])
        .arg(fixture().join("map_a.mcap"))
        .args([
            "--camera",
            "/cam0/image_raw/compressed",
            "--model",
            "/nonexistent",
            "--out",
        ])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--out")
            && stderr.contains("did not write")
            && stderr.contains("--overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.join(map::MANIFEST_FILE)).unwrap(), before);
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);
}

/// `~/save_map` on `p`: its status's level must be `level` and its message hold every one of
/// `needles`.
fn save_map_expecting<M: imd::pipeline::PairMatcher>(
    p: &mut imd::pipeline::TrackerProcessor<M>,
    level: u8,
    needles: &[&str],
) {
    use imd::pipeline::{ControlCommand, FrameProcessor};
    let status = p.control(ControlCommand::SaveMap);
    let message = &status[0].message;
    assert_eq!(status[0].level, level, "{message}");
    assert!(needles.iter().all(|n| message.contains(n)), "{message}");
}

#[test]
fn save_map_saves_while_mapping_and_refuses_in_localization() {
    use imd::io::msgs::diagnostic_msgs::DiagnosticStatus;
    use imd::pipeline::FrameProcessor;
    let scene = scene();
    let run = |bag: &str, camera: &str, how: MapRun<'_>| {
        run_bag(
            &fixture().join(bag),
            &config(camera),
            Oracle::new(scene.clone()),
            how,
        )
        .unwrap()
        .0
    };
    let mut processor = run("map_a.mcap", "cam0", MapRun::Build);
    save_map_expecting(&mut processor, DiagnosticStatus::WARN, &["map.path"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("saved");
    processor.set_map_path(&dir);
    save_map_expecting(&mut processor, DiagnosticStatus::OK, &[]);
    let loaded = map::load(&dir, None).unwrap();
    assert_eq!(
        loaded.keyframes.len(),
        processor.export_map().unwrap().unwrap().keyframes.len()
    );
    // Saving again replaces the run's own map.
    save_map_expecting(&mut processor, DiagnosticStatus::OK, &[]);

    // Another run mapping at the same path does not replace it (the user's earlier map) unless
    // `map.overwrite` is set, live; `map.path` set live saves elsewhere.
    let mut second = run("map_b.mcap", "camB", MapRun::Build);
    second.set_map_path(&dir);
    save_map_expecting(
        &mut second,
        DiagnosticStatus::ERROR,
        &["did not write", "map.overwrite"],
    );
    assert_eq!(
        map::load(&dir, None).unwrap().keyframes.len(),
        loaded.keyframes.len()
    );
    let mut live = config("camB");
    let elsewhere = tmp.path().join("elsewhere");
    live.map.path = elsewhere.display().to_string();
    second.reconfigure(&live);
    save_map_expecting(&mut second, DiagnosticStatus::OK, &[]);
    let n_second = map::load(&elsewhere, None).unwrap().keyframes.len();
    live.map.path = dir.display().to_string();
    live.map.overwrite = true;
    second.reconfigure(&live);
    save_map_expecting(&mut second, DiagnosticStatus::OK, &[]);
    assert_eq!(map::load(&dir, None).unwrap().keyframes.len(), n_second);
    // Localizing: the map is read-only.
    let mut localizing = run("map_b.mcap", "camB", MapRun::Localize(&loaded));
    localizing.set_map_path(&dir);
    save_map_expecting(&mut localizing, DiagnosticStatus::WARN, &["read-only"]);
}

#[test]
fn the_configured_map_opens_by_the_rule_localization_refuses_an_unusable_one() {
    use imd::config::{MapConfig, MapMode};
    use imd::pipeline::TrackerProcessor;
    let scene = scene();
    let (built, _) = build(&scene);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    map::save(&built, &dir, &map::Replace::AnyMap).unwrap();
    let processor = || {
        let config = config("camB");
        TrackerProcessor::new(
            Oracle::new(scene.clone()),
            &config,
            config.cameras().unwrap(),
        )
        .unwrap()
    };
    let cfg = |mode, path: &std::path::Path| MapConfig {
        path: path.display().to_string(),
        mode,
        frame_id: "map".into(),
        publish_tf: true,
        overwrite: false,
    };
    // No path: no map.
    assert_eq!(
        processor().open_map(&MapConfig::default(), "odom").unwrap(),
        None
    );
    // A good map localizes.
    let mut p = processor();
    let what = p
        .open_map(&cfg(MapMode::Localization, &dir), "odom")
        .unwrap();
    assert!(what.unwrap().contains("localizing"));
    assert_eq!(
        p.map_session().unwrap().map_keyframes(),
        built.keyframes.len()
    );
    // An unusable one: localization refuses (naming the file), mapping starts empty.
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, b"{\"format\": \"imd-keyframe-map\", \"vers").unwrap();
    let err = processor()
        .open_map(&cfg(MapMode::Localization, &dir), "odom")
        .unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
    let mut p = processor();
    let what = p
        .open_map(&cfg(MapMode::Mapping, &dir), "odom")
        .unwrap()
        .unwrap();
    assert!(what.contains("will not replace"), "{what}");
    assert_eq!(p.map_session().unwrap().mode(), MapMode::Mapping);
    let what = processor()
        .open_map(
            &MapConfig {
                overwrite: true,
                ..cfg(MapMode::Mapping, &dir)
            },
            "odom",
        )
        .unwrap()
        .unwrap();
    assert!(what.contains("will replace the unusable map"), "{what}");
    let missing = tmp.path().join("none");
    let err = processor()
        .open_map(&cfg(MapMode::Localization, &missing), "odom")
        .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

/// The `mount` of `camera` in map.json (its optical frame in `base_link`).
fn mount(camera: &str) -> Isometry3<f64> {
    let gt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("map.json")).unwrap())
            .unwrap();
    let m = &gt["mounts"][camera];
    let v = |key: &str| -> Vec<f64> {
        m[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (t, q) = (v("t"), v("q_xyzw"));
    isometry([t[0], t[1], t[2]], [q[0], q[1], q[2], q[3]])
}

fn pose_of(m: &serde_json::Value) -> Isometry3<f64> {
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    let (p, q) = (&m["position"], &m["orientation"]);
    isometry(
        [f(&p["x"]), f(&p["y"]), f(&p["z"])],
        [f(&q["x"]), f(&q["y"]), f(&q["z"]), f(&q["w"])],
    )
}

fn stamp_key(header: &serde_json::Value) -> (i64, u64) {
    (
        header["stamp"]["sec"].as_i64().unwrap(),
        header["stamp"]["nanosec"].as_u64().unwrap(),
    )
}

#[test]
fn localizing_writes_map_pose_and_map_to_odom_into_the_output_bag() {
    // `imd replay --map --out`: camera B's frames localized in A's map write `~/map_pose` (the
    // robot's base in the map, against ground truth) and `map → odom` on `/tf` (which, composed
    // with `~/odom`, is `~/map_pose`), and the map's status, read back by the independent
    // Python reader.
    let scene = scene();
    let (built, _) = build(&scene);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("localized.mcap");
    let mut cfg = config("camB");
    cfg.map.mode = imd::config::MapMode::Localization;
    cfg.map.frame_id = "world_map".into();
    let (_, summary) = run_bag_to(
        &fixture().join("map_b.mcap"),
        &cfg,
        Oracle::new(scene.clone()),
        MapRun::Localize(&built),
        Some(&out),
        0,
    )
    .unwrap();
    // `imd replay --map --max-frames N` stops after N frames, as without a map.
    let (_, first) = run_bag_to(
        &fixture().join("map_b.mcap"),
        &cfg,
        Oracle::new(scene.clone()),
        MapRun::Localize(&built),
        None,
        7,
    )
    .unwrap();
    assert_eq!((first.frames, first.per_frame.len()), (7, 7));
    assert!(summary.frames > 7);
    let decoded = crate::replay::read_back(&out);
    let on = |topic: &str| crate::replay::messages_on(&decoded, topic);
    let map_pose = on("/imd_matcher/map_pose");
    assert_eq!(map_pose.len() as u64, summary.localized);
    let odom: std::collections::BTreeMap<_, _> = on("/imd_matcher/odom")
        .into_iter()
        .map(|o| (stamp_key(&o["header"]), o))
        .collect();
    let map_to_odom: std::collections::BTreeMap<_, _> = on("/tf")
        .into_iter()
        .flat_map(|m| m["transforms"].as_array().unwrap())
        .filter(|t| t["child_frame_id"] == "odom")
        .map(|t| (stamp_key(&t["header"]), t))
        .collect();
    assert_eq!(
        map_to_odom.len(),
        odom.len()
            - summary
                .per_frame
                .iter()
                .position(|f| f.position_m.is_some())
                .unwrap()
    );

    // The map frame in the world, from the map's first keyframe (cam0's first frame).
    let first = built.keyframes.iter().min_by_key(|k| k.id.stamp).unwrap();
    let map_from_world =
        first.pose.pose * world_from(scene.frame("cam0", first.id.stamp).unwrap()).inverse();
    let mount_b = mount("camB");
    let (mut good, mut worst_m, mut worst_deg, mut worst_loop) = (0, 0.0f64, 0.0f64, 0.0f64);
    for m in &map_pose {
        assert_eq!(m["header"]["frame_id"], "world_map");
        let key = stamp_key(&m["header"]);
        let stamp = imd::io::msgs::builtin_interfaces::Time {
            sec: key.0 as i32,
            nanosec: key.1 as u32,
        };
        let got = pose_of(&m["pose"]["pose"]);
        let want =
            map_from_world * world_from(scene.frame("camB", stamp).unwrap()) * mount_b.inverse();
        let d = (got.translation.vector - want.translation.vector).norm();
        let r = got.rotation.angle_to(&want.rotation).to_degrees();
        good += (d <= 0.05 && r <= 1.0) as usize;
        worst_m = worst_m.max(d);
        worst_deg = worst_deg.max(r);
        let tf = map_to_odom[&key];
        assert_eq!(tf["header"]["frame_id"], "world_map");
        let t = &tf["transform"];
        let f = |v: &serde_json::Value| v.as_f64().unwrap();
        let (tr, q) = (&t["translation"], &t["rotation"]);
        let map_odom = isometry(
            [f(&tr["x"]), f(&tr["y"]), f(&tr["z"])],
            [f(&q["x"]), f(&q["y"]), f(&q["z"]), f(&q["w"])],
        );
        let via_odom = map_odom * pose_of(&odom[&key]["pose"]["pose"]);
        let gap = (via_odom.translation.vector - got.translation.vector).norm()
            + via_odom.rotation.angle_to(&got.rotation);
        worst_loop = worst_loop.max(gap);
    }
    eprintln!(
        "~/map_pose: {good} of {} within 5 cm and 1° of the ground truth, worst {:.1} mm \
         {worst_deg:.2}°; map → odom ∘ ~/odom vs ~/map_pose: {worst_loop:.1e}",
        map_pose.len(),
        worst_m * 1e3
    );
    assert!(map_pose.len() >= 30, "{} localized", map_pose.len());
    assert!(good as f64 >= 0.9 * map_pose.len() as f64);
    assert!(worst_m <= 0.20 && worst_deg <= 5.0);
    assert!(worst_loop < 1e-9, "{worst_loop}");
    // The map's status, once per frame.
    let statuses: Vec<&serde_json::Value> = on("/diagnostics")
        .into_iter()
        .flat_map(|d| d["status"].as_array().unwrap())
        .filter(|s| s["name"] == "imd_matcher: map")
        .collect();
    assert_eq!(statuses.len() as u64, summary.frames);
    let last = statuses.last().unwrap();
    let value = |key: &str| {
        last["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["key"] == key)
            .map(|kv| kv["value"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(value("map_mode"), "localization");
    assert_eq!(value("map_frame"), "world_map");
    assert_eq!(value("map_keyframes"), built.keyframes.len().to_string());
    assert_eq!(value("map_localized_frames"), summary.localized.to_string());
    assert_eq!(value("map_last_localized_camera"), "camB");
}

#[test]
fn a_stereo_map_keeps_its_points_and_localizes_camera_b_with_metric_stereo_poses() {
    // Both cameras a rectified pair and nothing else: the map's only metric depth is the
    // points its keyframes' pairs triangulated, saved and loaded with their rig.
    let scene = scene();
    let (processor, summary_a) = run_bag(
        &fixture().join("map_a_stereo.mcap"),
        &stereo_config("cam0"),
        Oracle::new(scene.clone()),
        MapRun::Build,
    )
    .unwrap();
    assert_eq!(summary_a.frames, 48);
    assert!(summary_a.failed.is_empty(), "{:?}", summary_a.failed);
    let built = processor.export_map().unwrap().unwrap();
    assert!(built.keyframes.len() >= 3, "{}", built.keyframes.len());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("map");
    let report = map::save(&built, &dir, &map::Replace::AnyMap).unwrap();
    let manifest = map::load_manifest(&dir).unwrap();
    let oracle = Oracle::new(scene.clone());
    let identity = imd::pipeline::PairMatcher::identity(&oracle).unwrap();
    let loaded = map::load(&dir, Some(&identity)).unwrap();
    let mut points = Vec::new();
    for (k, entry) in loaded.keyframes.iter().zip(&manifest.keyframes) {
        let Some(MapDepth::Stereo(s)) = &k.depth else {
            panic!("map keyframe {} without its stereo points", k.id)
        };
        assert_eq!(entry.depth, "stereo");
        assert_eq!(
            entry.stereo.as_ref().map(|e| e.points),
            Some(s.points.len())
        );
        assert!((s.rig.baseline_m() - 0.12).abs() < 1e-9);
        points.push(s.points.len());
    }
    eprintln!(
        "stereo map: {} keyframes, {} bytes ({} per keyframe), points per keyframe {points:?}",
        report.keyframes,
        report.bytes,
        report.bytes / report.keyframes.max(1) as u64
    );
    assert!(points.iter().all(|&n| n >= 100), "{points:?}");

    let first = loaded.keyframes.iter().min_by_key(|k| k.id.stamp).unwrap();
    let map_from_world =
        first.pose.pose * world_from(scene.frame("cam0", first.id.stamp).unwrap()).inverse();
    // The map's own keyframe poses (the mapping run's stereo odometry) against the ground
    // truth: what a pose in the map can be off by beyond its registration.
    let keyframe_mm: Vec<f64> = loaded
        .keyframes
        .iter()
        .map(|k| {
            let want = map_from_world * world_from(scene.frame("cam0", k.id.stamp).unwrap());
            1e3 * (k.pose.pose.translation.vector - want.translation.vector).norm()
        })
        .collect();
    eprintln!("stereo map keyframes off the ground truth by {keyframe_mm:.1?} mm");
    assert!(keyframe_mm.iter().all(|&d| d < 50.0), "{keyframe_mm:?}");
    let map_frames: Vec<&GtFrame> = loaded
        .keyframes
        .iter()
        .map(|k| scene.frame("cam0", k.id.stamp).unwrap())
        .collect();
    let (_, summary) = run_bag(
        &fixture().join("map_b_stereo.mcap"),
        &stereo_config("camB"),
        oracle,
        MapRun::Localize(&loaded),
    )
    .unwrap();
    assert_eq!(summary.frames, 36);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let Score {
        eligible,
        good,
        bad,
        worst_m,
        worst_deg,
        on_map,
        consistency,
    } = score_camera_b(
        &scene,
        &map_frames,
        &map_from_world,
        &summary,
        Some(PoseScale::MetricStereo),
    );
    eprintln!(
        "camB (stereo map): {good} of {eligible} overlapping frames metric_stereo within 5 cm \
         and 1°, worst {:.1} mm {worst_deg:.2}°; {on_map} against map keyframes, {} \
         relocalized; {}",
        worst_m * 1e3,
        summary.relocalized,
        Consistency::summary(&consistency)
    );
    assert!(eligible >= 20, "{eligible} frames overlap the map");
    assert!(
        good as f64 >= 0.9 * eligible as f64,
        "{good} of {eligible} metric_stereo within 5 cm and 1°"
    );
    assert!(bad.is_empty(), "frames beyond 20 cm or 5°: {bad:?}");
    assert!(summary.relocalized >= 1 && on_map >= 1);
}

#[test]
fn mapping_publishes_an_identity_map_to_odom_with_every_odom_unless_switched_off() {
    // While mapping the map frame is odom itself: `map → odom` is the identity from the first
    // frame, in the same `/tf` message as `odom → base_link`, so TF's tree map → odom →
    // base_link is connected (as rtabmap's is); `map.publish_tf: false` leaves it out; no
    // `~/map_pose` (the robot's pose in the map is `~/odom`'s).
    let scene = scene();
    let tmp = tempfile::tempdir().unwrap();
    for publish in [true, false] {
        let out = tmp.path().join(format!("mapping_{publish}.mcap"));
        let mut cfg = config("cam0");
        cfg.map.mode = imd::config::MapMode::Mapping;
        cfg.map.publish_tf = publish;
        let (processor, summary) = run_bag_to(
            &fixture().join("map_a.mcap"),
            &cfg,
            Oracle::new(scene.clone()),
            MapRun::Build,
            Some(&out),
            0,
        )
        .unwrap();
        assert_eq!(summary.frames, 48);
        assert_eq!(
            processor.map_from_odom(),
            Some(Isometry3::identity()),
            "mapping: map → odom is the identity"
        );
        let decoded = crate::replay::read_back(&out);
        let on = |topic: &str| crate::replay::messages_on(&decoded, topic);
        assert!(on("/imd_matcher/map_pose").is_empty());
        let odom = on("/imd_matcher/odom");
        assert_eq!(odom.len(), 48);
        let tf = on("/tf");
        let (mut map_to_odom, mut together) = (Vec::new(), 0);
        for m in &tf {
            let transforms = m["transforms"].as_array().unwrap();
            let child = |c: &str| transforms.iter().find(|t| t["child_frame_id"] == c);
            if let Some(t) = child("odom") {
                map_to_odom.push(t);
                together += child("base_link").is_some() as usize;
            }
        }
        if !publish {
            assert!(map_to_odom.is_empty(), "{} map → odom", map_to_odom.len());
            continue;
        }
        assert_eq!(map_to_odom.len(), odom.len(), "one map → odom per ~/odom");
        assert_eq!(
            together,
            odom.len(),
            "in the same /tf message as odom → base_link"
        );
        let odom_stamps: Vec<(i64, u64)> = odom.iter().map(|o| stamp_key(&o["header"])).collect();
        for (t, stamp) in map_to_odom.iter().zip(&odom_stamps) {
            assert_eq!(t["header"]["frame_id"], "map");
            assert_eq!(stamp_key(&t["header"]), *stamp);
            let tr = &t["transform"];
            let f = |v: &serde_json::Value| v.as_f64().unwrap();
            let (p, q) = (&tr["translation"], &tr["rotation"]);
            let iso = isometry(
                [f(&p["x"]), f(&p["y"]), f(&p["z"])],
                [f(&q["x"]), f(&q["y"]), f(&q["z"]), f(&q["w"])],
            );
            assert_eq!(iso, Isometry3::identity());
        }
    }
}

/// Camera B's map poses against the ground truth.
struct Score {
    /// Frames whose view overlaps a map keyframe's by ≥ 30 %.
    eligible: usize,
    /// Of those, localized within 5 cm and 1° (with the required scale).
    good: usize,
    /// Frames localized beyond 20 cm or 5°.
    bad: Vec<usize>,
    worst_m: f64,
    worst_deg: f64,
    /// Frames localized against a map keyframe (not a transient one).
    on_map: usize,
    consistency: Vec<Consistency>,
}

/// Score every frame of a localization run of camera B (`summary`) in the map whose keyframes
/// are `map_frames`; a frame counts as good only with `scale` when one is given.
fn score_camera_b(
    scene: &Scene,
    map_frames: &[&GtFrame],
    map_from_world: &Isometry3<f64>,
    summary: &MapRunSummary,
    scale: Option<PoseScale>,
) -> Score {
    let mut score = Score {
        eligible: 0,
        good: 0,
        bad: Vec::new(),
        worst_m: 0.0,
        worst_deg: 0.0,
        on_map: 0,
        consistency: Vec::new(),
    };
    for f in &summary.per_frame {
        let gt = scene.frame("camB", f.stamp).unwrap();
        let overlap = map_frames
            .iter()
            .map(|m| scene.overlap(gt, m, 8))
            .fold(0.0, f64::max);
        let overlaps = overlap >= 0.3;
        score.eligible += overlaps as usize;
        let (Some(p), Some(q)) = (f.position_m, f.orientation_xyzw) else {
            eprintln!(
                "camB #{}: {:?}, not localized (overlap {overlap:.2})",
                gt.index, f.state
            );
            continue;
        };
        let got = isometry(p, q);
        let want = map_from_world * world_from(gt);
        let d = (got.translation.vector - want.translation.vector).norm();
        let r = got.rotation.angle_to(&want.rotation).to_degrees();
        score.worst_m = score.worst_m.max(d);
        score.worst_deg = score.worst_deg.max(r);
        score.consistency.push(Consistency::of(
            &got,
            &want,
            f.covariance.as_deref().unwrap(),
        ));
        eprintln!(
            "camB #{}: {:?} {:?} {:.1} mm {:.2}° (overlap {overlap:.2}, map keyframe {})",
            gt.index,
            f.state,
            f.scale,
            d * 1e3,
            r,
            f.against_map_keyframe
        );
        score.on_map += f.against_map_keyframe as usize;
        if overlaps && d <= 0.05 && r <= 1.0 && scale.is_none_or(|s| f.scale == Some(s)) {
            score.good += 1;
        }
        if d > 0.20 || r > 5.0 {
            score.bad.push(gt.index);
        }
    }
    score
}
