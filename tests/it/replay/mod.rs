//! `imd replay` on bags written by `scripts/fixtures/make_replay_fixtures.py` with PyPI's
//! `mcap-ros2-support` (`tests/fixtures/replay/`), outputs read back with PyPI's `mcap` reader
//! (`scripts/oracles/check_mcap.py`):
//! - the engine (`imd::pipeline::replay`) with the ground-truth oracle on the two-camera
//!   sequence: outputs per topic as the manifest says, and the poses, recovered by a
//!   consumer from the messages alone (stamps, frame ids), against the ground truth;
//! - realtime scheduling with a matcher slower than the bag: newest frame wins, drops counted;
//! - the CLI with the random-weight model on `encodings.mcap` (odd encodings, padded rows, a
//!   truncated CDR message, an image with too little data): outputs per topic, the malformed
//!   message reported with topic + index and skipped, the undecodable frame reported.

mod dirs;
mod metric;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use imd::geometry::metrics::rotation_error_deg;
use imd::io::msgs::builtin_interfaces::Time;
use imd::pipeline::replay::{replay, ReplayOptions};
use imd::pipeline::{KeyframeId, TrackerConfig};
use nalgebra::{Quaternion, Rotation3, UnitQuaternion, Vector3};
use serde_json::Value;

use crate::pipeline::oracle::Oracle;
use crate::pipeline::scene::Scene;
use crate::pipeline::sequence_config;
use crate::util::{fixture, imd_bin, root, venv_python};

fn manifest(bag: &str) -> Value {
    let text = std::fs::read_to_string(fixture("replay/manifest.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    m["bags"][bag].clone()
}

/// The output bag decoded by the independent Python reader.
pub(crate) fn read_back(path: &std::path::Path) -> Value {
    let python = venv_python();
    assert!(
        python.exists(),
        "{} missing (scripts/bootstrap.sh)",
        python.display()
    );
    let out = Command::new(&python)
        .arg(root().join("scripts/oracles/check_mcap.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check_mcap.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn counts(decoded: &Value) -> std::collections::BTreeMap<String, u64> {
    let mut c = std::collections::BTreeMap::new();
    for m in decoded["messages"].as_array().unwrap() {
        *c.entry(m["topic"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    c
}

fn expected_counts(bag: &str, debug_image: bool) -> std::collections::BTreeMap<String, u64> {
    manifest(bag)["expected_outputs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| debug_image || !k.ends_with("debug_image"))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn time(v: &Value) -> Time {
    Time {
        sec: v["sec"].as_i64().unwrap() as i32,
        nanosec: v["nanosec"].as_u64().unwrap() as u32,
    }
}

#[test]
fn replay_with_the_oracle_writes_what_a_consumer_can_check_against_ground_truth() {
    let scene = Arc::new(Scene::load());
    let mut config = sequence_config(&scene, TrackerConfig::default());
    // Debug images are large as JSON; the CLI test below covers them.
    config.node.publish_debug_image = false;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mcap");
    let mut progress = Vec::new();
    let summary = replay(
        &fixture("replay/sequence.mcap"),
        Some(&out),
        &config,
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |p| progress.push(p.images_read),
    )
    .unwrap();
    assert_eq!(summary.frames_read, 70);
    assert_eq!(summary.frames_processed, 70);
    assert_eq!((summary.dropped, summary.frames_failed), (0, 0));
    assert!(summary.malformed.is_empty() && summary.failed.is_empty());
    assert_eq!(progress.len(), 70);
    assert_eq!(progress.last(), Some(&70));
    assert_eq!(summary.states.get("relocalized"), Some(&1));
    assert!(summary.latency_ms.median > 0.0);
    assert_eq!(summary.accounting.images_read, 70);
    assert_balanced(&summary);
    assert!(!summary.data_loss.lost_data());

    let decoded = read_back(&out);
    assert_eq!(decoded["profile"], "ros2");
    let expected = expected_counts("sequence.mcap", false);
    assert_eq!(counts(&decoded), expected);
    assert_eq!(summary.outputs, expected);
    let schema = |topic: &str| {
        decoded["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["topic"] == topic)
            .map(|c| c["schema_name"].as_str().unwrap().to_string())
    };
    assert_eq!(
        schema("/imd_matcher/odometry").as_deref(),
        Some("nav_msgs/msg/Odometry")
    );
    assert_eq!(
        schema("/imd_matcher/correspondences").as_deref(),
        Some("sensor_msgs/msg/PointCloud2")
    );

    // A consumer's view: current frame = (header.stamp, child_frame_id → camera), keyframe =
    // header.frame_id parsed as <camera>/keyframe/<sec>.<nanosec>. The pose is the current
    // camera in the keyframe camera's frame: orientation Rᵀ, position −Rᵀ·t̂.
    let camera_of_frame = |frame_id: &str| {
        scene
            .cameras
            .iter()
            .find(|c| c.frame_id == frame_id)
            .map(|c| c.name.clone())
            .unwrap()
    };
    let mut checked = 0;
    let mut first_frames = 0;
    for m in decoded["messages"].as_array().unwrap() {
        if m["topic"] != "/imd_matcher/odometry" {
            continue;
        }
        let msg = &m["message"];
        let stamp = time(&msg["header"]["stamp"]);
        assert_eq!(m["log_time"].as_i64().unwrap(), stamp.as_nanos());
        let camera = camera_of_frame(msg["child_frame_id"].as_str().unwrap());
        let kf = KeyframeId::parse_frame_name(msg["header"]["frame_id"].as_str().unwrap())
            .expect("header.frame_id names a keyframe");
        let current = scene.frame(&camera, stamp).expect("stamp of a real frame");
        let keyframe = scene
            .frame(&kf.camera, kf.stamp)
            .expect("keyframe of a real frame");
        let cov: Vec<f64> = msg["pose"]["covariance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        if kf.camera == camera && kf.stamp == stamp {
            // The camera's first frame: its own keyframe, exact identity.
            first_frames += 1;
            assert!(cov.iter().all(|c| *c == 0.0));
            continue;
        }
        let o = &msg["pose"]["pose"]["orientation"];
        let q = UnitQuaternion::from_quaternion(Quaternion::new(
            o["w"].as_f64().unwrap(),
            o["x"].as_f64().unwrap(),
            o["y"].as_f64().unwrap(),
            o["z"].as_f64().unwrap(),
        ));
        let gt = scene.relative(keyframe, current);
        let r_est: Rotation3<f64> = q.to_rotation_matrix().inverse();
        let err = rotation_error_deg(&r_est, &gt.rotation);
        assert!(err < 1.0, "{camera} {stamp:?}: {err}°");
        // Position: the unit direction of the camera's displacement in the keyframe frame
        // (its length is the unknown monocular scale, with a huge variance along it).
        let p = &msg["pose"]["pose"]["position"];
        let p = Vector3::new(
            p["x"].as_f64().unwrap(),
            p["y"].as_f64().unwrap(),
            p["z"].as_f64().unwrap(),
        );
        if p.norm() > 0.0 {
            assert!((p.norm() - 1.0).abs() < 1e-9);
            let gt_p = -(gt.rotation.inverse() * gt.translation);
            let along = p.dot(&gt_p.normalize());
            assert!(along > 0.9, "{camera} {stamp:?}: direction cos {along}");
            let var_along = (0..3)
                .map(|i| (0..3).map(|j| p[i] * cov[i * 6 + j] * p[j]).sum::<f64>())
                .sum::<f64>();
            assert!(var_along > 1e5, "scale must be reported unknown");
        }
        // Rotation variances are small and positive when a pose was verified.
        for i in 3..6 {
            assert!(cov[i * 7] > 0.0 && cov[i * 7] < 1e-2, "{:?}", &cov[21..]);
        }
        checked += 1;
    }
    assert_eq!((checked, first_frames), (68, 2));

    // Correspondences: same stamp and optical frame as the odometry; fields as documented.
    let clouds: Vec<&Value> = decoded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["topic"] == "/imd_matcher/correspondences")
        .collect();
    let c = &clouds[0]["message"];
    let names: Vec<&str> = c["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x0", "y0", "x1", "y1", "confidence", "inlier"]);
    assert_eq!(c["point_step"], 24);
    let width = c["width"].as_u64().unwrap() as usize;
    assert_eq!(c["data"].as_array().unwrap().len(), width * 24);
    assert!(width > 500);
    // Diagnostics name the state and the keyframe.
    let diag = decoded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["topic"] == "/diagnostics"
                && m["message"]["status"][0]["message"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("relocalized"))
        })
        .expect("a relocalized status");
    let values = diag["message"]["status"][0]["values"].as_array().unwrap();
    let value = |k: &str| {
        values
            .iter()
            .find(|kv| kv["key"] == k)
            .map(|kv| kv["value"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(value("state"), "relocalized");
    assert_eq!(value("keyframe_camera"), "cam0");
    assert!(value("relocalization_candidates").contains("cam0/keyframe/"));
}

#[test]
fn realtime_replay_drops_frames_a_slow_matcher_cannot_keep_up_with() {
    let scene = Arc::new(Scene::load());
    let mut config = sequence_config(&scene, TrackerConfig::default());
    config.node.publish_debug_image = false;
    let mut oracle = Oracle::new(scene.clone());
    // 30 ms per match while the bag plays at 10× (a frame of each camera every 10 ms).
    oracle.match_delay = Duration::from_millis(30);
    let options = ReplayOptions {
        realtime: true,
        rate: 10.0,
        ..Default::default()
    };
    let summary = replay(
        &fixture("replay/sequence.mcap"),
        None,
        &config,
        oracle,
        &options,
        |_| {},
    )
    .unwrap();
    assert_eq!(summary.frames_read, 70);
    assert!(summary.dropped > 10, "{summary:?}");
    // Nothing is lost silently: every frame read was processed or counted as dropped.
    assert_eq!(
        summary.frames_processed + summary.dropped + summary.frames_failed,
        70
    );
    assert_eq!(summary.accounting.images_read, 70);
    assert_balanced(&summary);
    assert_eq!(
        summary.outputs.get("/imd_matcher/odometry"),
        Some(&summary.frames_processed)
    );
}

fn run_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(imd_bin())
        .arg("replay")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn cli_replays_odd_encodings_with_the_real_matcher_and_skips_what_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mcap");
    let summary_path = dir.path().join("summary.json");
    let model = fixture("matching/random_model");
    let (ok, stderr) = run_cli(&[
        fixture("replay/encodings.mcap").to_str().unwrap(),
        "--config",
        fixture("replay/replay.yaml").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let m = manifest("encodings.mcap");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();

    // The truncated CDR message: reported with topic and per-topic index, skipped.
    let bad = &m["malformed"][0];
    let reported = &summary["malformed"][0];
    assert_eq!(reported["topic"], bad["topic"]);
    assert_eq!(reported["index"], bad["index"]);
    assert!(
        stderr.contains(&format!(
            "{} #{}",
            bad["topic"].as_str().unwrap(),
            bad["index"]
        )),
        "{stderr}"
    );
    // The image whose data is one row short: decoded, refused with the reason, skipped.
    let short = &m["undecodable"][0];
    let failed = &summary["failed"][0];
    assert_eq!(failed["topic"], short["topic"]);
    let st = time(&short["stamp"]);
    assert_eq!(failed["stamp"], format!("{}.{:09}", st.sec, st.nanosec));
    assert!(
        failed["reason"].as_str().unwrap().contains("step × height"),
        "{failed}"
    );
    // Every other frame was processed, in every encoding.
    let per_camera = m["frames_per_camera"].as_object().unwrap();
    let processed: u64 = per_camera.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(summary["frames_processed"], processed);
    assert_eq!(summary["frames_failed"], 1);
    assert!(stderr.contains(&format!(
        "replayed {}",
        fixture("replay/encodings.mcap").display()
    )));

    // Outputs per topic, read back by the independent reader.
    let decoded = read_back(&out);
    let expected = expected_counts("encodings.mcap", true);
    assert_eq!(counts(&decoded), expected);
    let types: std::collections::BTreeMap<String, String> = decoded["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["topic"].as_str().unwrap().to_string(),
                c["schema_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(types["/imd_matcher/debug_image"], "sensor_msgs/msg/Image");
    assert_eq!(types["/tf"], "tf2_msgs/msg/TFMessage");
    assert_eq!(types["/diagnostics"], "diagnostic_msgs/msg/DiagnosticArray");
    // The failed frame has an ERROR diagnostics entry at its stamp.
    let error = decoded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["topic"] == "/diagnostics" && x["message"]["status"][0]["level"] == 2)
        .expect("an ERROR status for the failed frame");
    assert_eq!(time(&error["message"]["header"]["stamp"]), st);
    // Debug images: keyframe | current side by side, rgb8.
    let img = decoded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["topic"] == "/imd_matcher/debug_image")
        .unwrap();
    assert_eq!(img["message"]["encoding"], "rgb8");
    assert_eq!(img["message"]["width"], 320);
    assert_eq!(img["message"]["height"], 120);
}

#[test]
fn cli_camera_flags_replace_the_config_cameras() {
    // config/matcher.yaml as shipped (one /camera/image_raw camera, no TF), cameras from
    // flags, camera_info topics derived from the image topics' namespaces.
    let dir = tempfile::tempdir().unwrap();
    let summary_path = dir.path().join("summary.json");
    let model = fixture("matching/random_model");
    let (ok, stderr) = run_cli(&[
        fixture("replay/encodings.mcap").to_str().unwrap(),
        "--config",
        root().join("config/matcher.yaml").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--camera",
        "/cam0/image_raw",
        "--max-frames",
        "3",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["frames_read"], 3);
    assert_eq!(summary["outputs"]["/imd_matcher/odometry"], 3);
    assert!(summary["outputs"].get("/tf").is_none());

    // A topic that is not in the bag is an error naming it and what the bag has.
    let (ok, stderr) = run_cli(&[
        fixture("replay/encodings.mcap").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--camera",
        "/front/image_raw",
    ]);
    assert!(!ok);
    assert!(stderr.contains("/front/image_raw"), "{stderr}");
    assert!(stderr.contains("/cam0/image_raw"), "{stderr}");
}

// ---- Damaged and hostile bags: data loss, accounting, outputs vs inputs, realtime gaps ----

fn oracle_config(scene: &Scene) -> imd::config::ImdConfig {
    let mut config = sequence_config(scene, TrackerConfig::default());
    config.node.publish_debug_image = false;
    config
}

fn assert_balanced(summary: &imd::pipeline::replay::ReplaySummary) {
    let a = &summary.accounting;
    assert!(a.balanced(), "{a:?}");
    assert_eq!(a.unaccounted, 0, "{a:?}");
    assert_eq!(
        a.processed + a.failed + a.dropped + a.rate_skipped,
        summary.frames_read,
        "{a:?}"
    );
}

#[test]
fn replay_skips_a_corrupt_chunk_reports_the_loss_and_accounts_for_every_image() {
    let scene = Arc::new(Scene::load());
    let config = oracle_config(&scene);
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(fixture("replay/sequence.mcap")).unwrap();
    // Chunk 2 of 4 (bytes 504935..1022763, 10 messages on each of the 4 topics).
    assert_eq!(b[504935], 0x06);
    b[504935 + 9 + 4000] ^= 0xff;
    let bag = dir.path().join("damaged.mcap");
    std::fs::write(&bag, &b).unwrap();
    let summary = replay(
        &bag,
        Some(&dir.path().join("out.mcap")),
        &config,
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap();
    let loss = &summary.data_loss;
    assert!(loss.indexed);
    assert_eq!((loss.chunks_read, loss.chunks_lost), (3, 1));
    assert_eq!(loss.messages_lost, 40);
    assert_eq!(loss.losses.len(), 1);
    assert_eq!(
        (loss.losses[0].start, loss.losses[0].end),
        (504935, 1022763)
    );
    // 70 images in the bag, 20 in the lost chunk: 50 read, every one accounted for.
    assert_eq!(summary.accounting.images_read, 50);
    assert_balanced(&summary);
    assert_eq!(summary.frames_processed, summary.frames_read);
    assert_eq!(
        summary.accounting.images_read + 20,
        70,
        "read + lost = the bag's images"
    );
}

/// Rewrite `sequence.mcap` through imd's own writer, letting `edit` change or drop messages.
fn rewrite(
    dst: &std::path::Path,
    mut edit: impl FnMut(&str, u64, &mut imd::io::bag::BagPayload) -> Option<u64>,
) {
    use imd::io::bag::{BagPayload, BagReader, BagWriter};
    let r = BagReader::open(&fixture("replay/sequence.mcap")).unwrap();
    let topics: Vec<String> = r.topics().iter().map(|t| t.name.clone()).collect();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut w = BagWriter::create(dst).unwrap();
    for m in r.messages(&refs).unwrap() {
        let mut m = m.unwrap();
        let Some(t) = edit(&m.topic, m.index, &mut m.payload) else {
            continue;
        };
        match &m.payload {
            BagPayload::Image(x) => w.write(&m.topic, t, x),
            BagPayload::CompressedImage(x) => w.write(&m.topic, t, x),
            BagPayload::CameraInfo(x) => w.write(&m.topic, t, x),
            BagPayload::Tf(x) => w.write(&m.topic, t, x),
        }
        .unwrap();
    }
    w.finish().unwrap();
}

fn stamp_of(p: &mut imd::io::bag::BagPayload) -> &mut Time {
    use imd::io::bag::BagPayload;
    match p {
        BagPayload::Image(x) => &mut x.header.stamp,
        BagPayload::CompressedImage(x) => &mut x.header.stamp,
        BagPayload::CameraInfo(x) => &mut x.header.stamp,
        BagPayload::Tf(_) => unreachable!("the replay fixture has no TF"),
    }
}

#[test]
fn an_image_left_unpaired_at_the_end_and_an_invalid_stamp_are_counted() {
    let scene = Arc::new(Scene::load());
    let config = oracle_config(&scene);
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("edited.mcap");
    rewrite(&bag, |topic, index, p| {
        let t = stamp_of(p).as_nanos() as u64;
        match (topic, index) {
            // cam0's last camera_info is gone: its last image never pairs.
            ("/cam0/camera_info", 39) => None,
            // cam1 image #5: nanosec out of range.
            ("/cam1/image_raw/compressed", 5) => {
                stamp_of(p).nanosec = 1_500_000_000;
                Some(t)
            }
            _ => Some(t),
        }
    });
    let summary = replay(
        &bag,
        None,
        &config,
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap();
    let a = summary.accounting;
    assert_eq!(a.images_read, 70);
    assert_eq!((a.unpaired, a.malformed), (1, 1), "{a:?}");
    assert_eq!(summary.images_unpaired, 1);
    assert_eq!(summary.malformed.len(), 1);
    assert_eq!(summary.malformed[0].topic, "/cam1/image_raw/compressed");
    assert!(
        summary.malformed[0].reason.contains("nanosec"),
        "{}",
        summary.malformed[0].reason
    );
    assert_eq!(summary.frames_read, 68);
    assert_balanced(&summary);
    assert!(!summary.data_loss.lost_data());
}

#[test]
fn realtime_caps_the_wait_across_a_stamp_gap_and_rejects_absurd_rates() {
    let scene = Arc::new(Scene::load());
    let config = oracle_config(&scene);
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("gap.mcap");
    // A one-day jump in the stamps after 1700000002 s (the frames after it have no ground
    // truth: the oracle fails them, which is counted).
    let day = 86_400_000_000_000u64;
    rewrite(&bag, |_, _, p| {
        let s = stamp_of(p);
        let mut t = s.as_nanos() as u64;
        if s.sec >= 1_700_000_002 {
            t += day;
            *s = Time::from_nanos(t as i64);
        }
        Some(t)
    });
    let options = ReplayOptions {
        realtime: true,
        rate: 10.0,
        max_wait_s: 0.2,
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let summary = replay(
        &bag,
        None,
        &config,
        Oracle::new(scene.clone()),
        &options,
        |_| {},
    )
    .unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert_eq!(summary.waits_capped, 1, "{summary:?}");
    assert!(wall < 20.0, "{wall} s");
    assert_eq!(summary.accounting.images_read, 70);
    assert_balanced(&summary);

    for (rate, max_wait) in [
        (1e-9, 1.0),
        (1e6, 1.0),
        (f64::NAN, 1.0),
        (1.0, -1.0),
        (1.0, 1e9),
    ] {
        let options = ReplayOptions {
            realtime: true,
            rate,
            max_wait_s: max_wait,
            ..Default::default()
        };
        let e = replay(
            &bag,
            None,
            &config,
            Oracle::new(scene.clone()),
            &options,
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside"), "{rate} {max_wait}: {e}");
    }
}

#[test]
fn replay_refuses_to_write_over_its_input_bag() {
    let scene = Arc::new(Scene::load());
    let config = oracle_config(&scene);
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("in.mcap");
    std::fs::copy(fixture("replay/sequence.mcap"), &bag).unwrap();
    let before = std::fs::read(&bag).unwrap();
    let hard = dir.path().join("hard.mcap");
    std::fs::hard_link(&bag, &hard).unwrap();
    let soft = dir.path().join("soft.mcap");
    std::os::unix::fs::symlink(&bag, &soft).unwrap();
    let dotted = dir.path().join(".").join("in.mcap");
    for (out, how) in [
        (&bag, "is input"),
        (&dotted, "is the same file as"),
        (&hard, "is a hard link to"),
        (&soft, "is a symlink to"),
    ] {
        let e = replay(
            &bag,
            Some(out),
            &config,
            Oracle::new(scene.clone()),
            &ReplayOptions::default(),
            |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(how) && e.contains("destroy the input"), "{e}");
    }
    assert_eq!(
        std::fs::read(&bag).unwrap(),
        before,
        "the input is untouched"
    );
}

#[test]
fn cli_exits_3_on_data_loss_unless_allowed_and_refuses_outputs_over_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture("matching/random_model");
    // chunks.mcap with its first chunk (frames 0..3) corrupt; one frame is replayed.
    let mut b = std::fs::read(fixture("bags/chunks.mcap")).unwrap();
    b[73 + 9 + 300] ^= 0xff;
    let bag = dir.path().join("damaged.mcap");
    std::fs::write(&bag, &b).unwrap();
    let summary_path = dir.path().join("summary.json");
    let args = |extra: &[&str]| {
        let mut v = vec![
            bag.to_str().unwrap().to_string(),
            "--config".into(),
            fixture("replay/replay.yaml").to_str().unwrap().to_string(),
            "--model".into(),
            model.to_str().unwrap().to_string(),
            "--camera".into(),
            "/cam0/image_raw".into(),
            "--max-frames".into(),
            "1".into(),
            "--summary-json".into(),
            summary_path.to_str().unwrap().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>| {
        Command::new(imd_bin())
            .arg("replay")
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(args(&[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--allow-data-loss"), "{stderr}");
    assert!(stderr.contains("bytes 73..1680"), "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["data_loss"]["chunks_lost"], 1);
    assert_eq!(summary["data_loss"]["messages_lost"], 8);
    assert_eq!(summary["frames_processed"], 1);
    let out = run(args(&["--allow-data-loss"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --out over the input bag, and --summary-json over it: refused, bag intact.
    let out = run(args(&["--out", bag.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("destroy the input"));
    assert_eq!(std::fs::read(&bag).unwrap(), b);
    let mut a = args(&[]);
    let n = a.len();
    a[n - 1] = bag.to_str().unwrap().to_string();
    let out = run(a);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read(&bag).unwrap(), b);

    // `imd match … --out A.png` (or --viz) over an input image: refused before any work.
    let img = dir.path().join("a.png");
    std::fs::copy(fixture("bags/expected/unindexed_0.png"), &img).unwrap();
    let png = std::fs::read(&img).unwrap();
    for flag in ["--out", "--viz"] {
        let out = Command::new(imd_bin())
            .args([
                "match",
                img.to_str().unwrap(),
                img.to_str().unwrap(),
                "--model",
            ])
            .arg(&model)
            .args([flag, img.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(flag) && e.contains("destroy the input"), "{e}");
    }
    assert_eq!(std::fs::read(&img).unwrap(), png);
}

#[test]
fn cli_replay_of_a_lying_length_bag_stays_within_the_intact_bags_memory() {
    // unindexed.mcap with image #1's record length claiming 64 GiB (the kind of file that made
    // the previous reader allocate the claim): the replay's peak RSS (VmHWM, in the summary)
    // stays within a few MiB of the intact bag's, and the loss is reported (exit 3).
    let dir = tempfile::tempdir().unwrap();
    let lying = dir.path().join("lying.mcap");
    std::fs::write(&lying, crate::io::damage::lying_unindexed()).unwrap();
    let model = fixture("matching/random_model");
    let mut peaks = Vec::new();
    for (bag, code, frames) in [(fixture("bags/unindexed.mcap"), 0, 2), (lying, 3, 1)] {
        let summary_path = dir.path().join("s.json");
        let out = Command::new(imd_bin())
            .arg("replay")
            .arg(&bag)
            .args(["--config"])
            .arg(fixture("replay/replay.yaml"))
            .arg("--model")
            .arg(&model)
            .args(["--camera", "/cam0/image_raw", "--summary-json"])
            .arg(&summary_path)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
        assert_eq!(s["frames_processed"], frames);
        peaks.push(s["peak_rss_mib"].as_f64().unwrap());
    }
    eprintln!(
        "replay peak RSS: intact {:.1} MiB, lying length {:.1} MiB",
        peaks[0], peaks[1]
    );
    assert!(peaks[0] > 0.0);
    assert!(peaks[1] < peaks[0] + 16.0, "{peaks:?}");
}

/// The messages on `topic` of an output bag read back by [`read_back`].
pub(crate) fn messages_on<'a>(
    decoded: &'a serde_json::Value,
    topic: &str,
) -> Vec<&'a serde_json::Value> {
    decoded["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["topic"] == topic)
        .map(|m| &m["message"])
        .collect()
}
