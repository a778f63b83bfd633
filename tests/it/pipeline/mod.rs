//! The tracker on a synthetic sequence with ground truth: `tests/fixtures/replay/sequence.mcap`
//! and `sequence.json`, written by `scripts/fixtures/make_replay_fixtures.py` (a textured room
//! rendered at 320×240 from known poses; cam0 pans right while moving, cam1 looks at the right side
//! and then, at its frame 15, jumps to where cam0 started). The matcher is [`oracle::Oracle`]:
//! ground-truth correspondences with σ = 0.25 px noise (0.5 px at 640×480) plus 20 % uniformly
//! random outliers, and an embedding computed from the pixels. Frames come through the same
//! bag reader and stamp pairing as `imd replay`.

pub mod integrity;
pub mod liars;
pub mod oracle;
pub mod scene;

use std::sync::Arc;

use imd::config::{CamerasConfig, ImdConfig};
use imd::geometry::metrics::{rotation_error_deg, translation_error_deg};
use imd::io::bag::{Bag, BagFrames};
use imd::io::frames::CameraFrame;
use imd::pipeline::{ControlCommand, FrameProcessor, ScheduleInfo};
use imd::pipeline::{TrackOutput, TrackState, TrackerConfig, TrackerProcessor};

use crate::util::fixture;
use oracle::Oracle;
use scene::Scene;

/// The sequence's cameras as configuration (pose RANSAC capped as in config/matcher.yaml).
pub fn sequence_config(scene: &Scene, tracker: TrackerConfig) -> ImdConfig {
    let mut config = ImdConfig {
        tracker,
        cameras: CamerasConfig {
            names: scene.cameras.iter().map(|c| c.name.clone()).collect(),
            image_topics: scene
                .cameras
                .iter()
                .map(|c| c.image_topic.clone())
                .collect(),
            camera_info_topics: scene
                .cameras
                .iter()
                .map(|c| c.camera_info_topic.clone())
                .collect(),
            optical_frames: Vec::new(),
            ..Default::default()
        },
        ..Default::default()
    };
    config.pose.max_iterations = 10_000;
    config.node.publish_tf = true;
    config
}

/// Every frame of the sequence through a processor; `before` may act on the processor before
/// each frame (requests, resets).
fn run(
    config: &ImdConfig,
    oracle: Oracle,
    mut before: impl FnMut(&mut TrackerProcessor<Oracle>, &CameraFrame),
) -> Vec<TrackOutput> {
    let reader = Bag::open(&fixture("replay/sequence.mcap")).unwrap();
    let cameras = config.cameras.resolve().unwrap();
    let frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s).unwrap();
    let mut processor = TrackerProcessor::new(oracle, config, cameras.clone()).unwrap();
    let mut outputs = Vec::new();
    for frame in frames {
        let frame = frame.unwrap();
        before(&mut processor, &frame);
        let (out, _) = processor
            .track_frame(&frame, &ScheduleInfo::default())
            .unwrap();
        outputs.push(out);
    }
    outputs
}

/// Rotation error (deg) and, when observable, translation direction error (deg) of an
/// output's pose against the ground truth.
/// The tracker's reason as text (`""` when tracking normally), for messages and `contains`.
fn why(out: &TrackOutput) -> &str {
    out.reason.as_deref().unwrap_or("")
}

fn pose_errors(scene: &Scene, out: &TrackOutput) -> Option<(f64, Option<f64>)> {
    let pose = out.pose.as_ref()?;
    let kf = out.keyframe.as_ref()?;
    let a = scene.frame(&kf.camera, kf.stamp).unwrap();
    let b = scene.frame(&out.camera.name, out.stamp).unwrap();
    let gt = scene.relative(a, b);
    let rot = rotation_error_deg(&pose.pose.rotation, &gt.rotation);
    let trans = pose
        .translation_observable
        .then(|| translation_error_deg(&pose.pose.translation, &gt.translation));
    Some((rot, trans))
}

/// True overlap of the frame with the keyframe it was matched against.
fn overlap(scene: &Scene, out: &TrackOutput) -> Option<f64> {
    let kf = out.keyframe.as_ref()?;
    let a = scene.frame(&kf.camera, kf.stamp).unwrap();
    let b = scene.frame(&out.camera.name, out.stamp).unwrap();
    Some(scene.overlap(a, b, 32))
}

fn index_of(scene: &Scene, out: &TrackOutput) -> usize {
    scene.frame(&out.camera.name, out.stamp).unwrap().index
}

fn log(scene: &Scene, out: &TrackOutput) {
    let errors = pose_errors(scene, out);
    eprintln!(
        "{} #{:2} {:12} kf {:34} matches {:4} inliers {:4} coverage {:.2} overlap {:.2} \
         model {:10} rot {:.3}° trans {:.2}°",
        out.camera.name,
        index_of(scene, out),
        out.state.as_str(),
        out.keyframe
            .as_ref()
            .map(|k| k.frame_name())
            .unwrap_or_default(),
        out.quality.matches,
        out.quality.inliers,
        out.quality.coverage,
        overlap(scene, out).unwrap_or(f64::NAN),
        out.pose.as_ref().map(|p| p.model.as_str()).unwrap_or("-"),
        errors.map_or(f64::NAN, |e| e.0),
        errors.and_then(|e| e.1).unwrap_or(f64::NAN),
    );
}

/// Coverage threshold of the promotion test.
const COVERAGE: f64 = 0.7;

#[test]
fn tracker_poses_keyframes_and_relocalization_follow_the_ground_truth() {
    let scene = Arc::new(Scene::load());
    let tracker = TrackerConfig {
        keyframe_min_coverage: COVERAGE,
        keyframe_min_inliers: 0,
        ..Default::default()
    };
    let config = sequence_config(&scene, tracker);
    let oracle = Oracle::new(scene.clone());
    let calls = oracle.calls.clone();
    let outputs = run(&config, oracle, |_, _| {});
    assert_eq!(outputs.len(), 70);
    for out in &outputs {
        log(&scene, out);
    }

    // Every image is prepared exactly once (keyframes reuse their cached features), and
    // matched once per frame plus once per relocalization candidate.
    let candidates: usize = outputs.iter().map(|o| o.relocalization.len()).sum();
    let with_keyframe = outputs.iter().filter(|o| o.keyframe.is_some()).count();
    assert_eq!(
        calls.prepared.load(std::sync::atomic::Ordering::Relaxed),
        70
    );
    let matched = calls.matched.load(std::sync::atomic::Ordering::Relaxed) as usize;
    // A relocalization after a failed reference adds its candidates to the frame's one match.
    assert_eq!(matched, with_keyframe + candidates);

    // Poses: rotation error < 1° on every frame with a pose (σ = 0.25 px gives ≈ 0.02–0.1°
    // on well-conditioned pairs; the worst case is a one-frame baseline that the model
    // selection rightly calls a pure rotation, whose estimate then absorbs the ~0.6° that a
    // 6 cm translation at 3–7 m shifts the image by). Every pose is checked.
    let mut rot_errors = Vec::new();
    let mut trans_errors = Vec::new();
    for out in &outputs {
        let is_first = out.keyframe.is_none();
        assert_eq!(out.pose.is_some(), !is_first, "{}", why(out));
        if let Some((rot, trans)) = pose_errors(&scene, out) {
            assert!(
                rot < 1.0,
                "{} #{}: rotation error {rot:.3}°",
                out.camera.name,
                index_of(&scene, out)
            );
            rot_errors.push(rot);
            trans_errors.extend(trans);
        }
    }
    rot_errors.sort_by(f64::total_cmp);
    trans_errors.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v[v.len() / 2];
    eprintln!(
        "rotation error median {:.3}° max {:.3}°; translation direction median {:.2}°",
        median(&rot_errors),
        rot_errors[rot_errors.len() - 1],
        median(&trans_errors)
    );
    assert_eq!(rot_errors.len(), 68);
    // Typical accuracy, not just the bound: half the rotations within 0.1°, half the
    // observable translation directions within 3°.
    assert!(median(&rot_errors) < 0.1);
    assert!(median(&trans_errors) < 3.0);

    // Keyframes: promoted when the inliers cover less than 70 % of the keyframe (8×8 cells).
    // Coverage counts a partly seen cell as seen, so it exceeds the true overlap by up to
    // about one cell row/column (1/8) per image edge the overlap boundary crosses: frames
    // that keep tracking have a true overlap above 0.7 − 0.15, promoted frames one below 0.7.
    let mut promotions = Vec::new();
    for out in outputs
        .iter()
        .filter(|o| o.keyframe.is_some() && o.state != TrackState::Relocalized)
    {
        let ov = overlap(&scene, out).unwrap();
        match out.state {
            TrackState::NewKeyframe => {
                assert!(out.quality.coverage < COVERAGE, "{}", why(out));
                assert!(ov < COVERAGE, "promoted at true overlap {ov:.2}");
                assert!(why(out).contains("keyframe_min_coverage"), "{}", why(out));
                promotions.push((out.camera.name.clone(), index_of(&scene, out), ov));
            }
            TrackState::Tracking => {
                assert!(out.quality.coverage >= COVERAGE);
                assert!(ov > COVERAGE - 0.15, "tracking at true overlap {ov:.2}");
            }
            other => panic!("unexpected state {other:?}: {}", why(out)),
        }
    }
    eprintln!("promotions (camera, frame, true overlap): {promotions:?}");
    // cam0 pans 1.5°/frame across a 65° field of view: about every 10 frames.
    let cam0: Vec<usize> = promotions
        .iter()
        .filter(|p| p.0 == "cam0")
        .map(|p| p.1)
        .collect();
    assert!((2..=4).contains(&cam0.len()), "{cam0:?}");
    // The promoted frame is the new reference: the next frame of that camera tracks against
    // it with a near-complete overlap.
    for out in outputs
        .iter()
        .filter(|o| o.state == TrackState::NewKeyframe)
    {
        let promoted = out.promoted.clone().unwrap();
        let next = outputs
            .iter()
            .find(|o| o.camera == out.camera && o.stamp > out.stamp);
        if let Some(next) = next.filter(|n| n.state != TrackState::Relocalized) {
            assert_eq!(next.keyframe.as_ref(), Some(&promoted));
            assert!(overlap(&scene, next).unwrap() > 0.9);
        }
    }

    // Relocalization: cam1's frame 15 sees nothing of its keyframe (true overlap ≈ 0), so
    // tracking fails and the stored keyframes of both cameras are ranked and verified; the
    // winner is a cam0 keyframe of the place cam1 jumped to.
    let jump = outputs
        .iter()
        .find(|o| o.camera.name == "cam1" && index_of(&scene, o) == 15)
        .unwrap();
    assert_eq!(jump.state, TrackState::Relocalized, "{}", why(jump));
    let kf = jump.keyframe.as_ref().unwrap();
    assert_eq!(kf.camera, "cam0");
    assert!(overlap(&scene, jump).unwrap() > 0.8);
    let previous_kf = scene
        .frame(
            "cam1",
            outputs
                .iter()
                .filter(|o| o.camera.name == "cam1" && o.stamp < jump.stamp)
                .filter_map(|o| o.promoted.as_ref())
                .next_back()
                .unwrap()
                .stamp,
        )
        .unwrap();
    let jump_gt = scene.frame("cam1", jump.stamp).unwrap();
    assert!(scene.overlap(previous_kf, jump_gt, 32) < 0.05);
    assert!(!jump.relocalization.is_empty());
    assert!(jump.relocalization[0].similarity.is_finite());
    // cam1 then tracks against the cam0 keyframe across cameras (different intrinsics and
    // distortion) with the same accuracy (checked above) and never gets lost.
    assert!(outputs.iter().all(|o| o.state != TrackState::Lost));
    let after: Vec<&TrackOutput> = outputs
        .iter()
        .filter(|o| o.camera.name == "cam1" && o.stamp > jump.stamp)
        .collect();
    assert!(after[0].keyframe.as_ref().unwrap().camera == "cam0");
}

#[test]
fn lost_tracking_without_relocalization_restarts_from_the_frame() {
    let scene = Arc::new(Scene::load());
    let tracker = TrackerConfig {
        relocalize_when_lost: false,
        ..Default::default()
    };
    let config = sequence_config(&scene, tracker);
    let outputs = run(&config, Oracle::new(scene.clone()), |_, _| {});
    let lost: Vec<&TrackOutput> = outputs
        .iter()
        .filter(|o| o.state == TrackState::Lost)
        .collect();
    assert_eq!(lost.len(), 1);
    let jump = lost[0];
    assert_eq!(
        (jump.camera.name.as_str(), index_of(&scene, jump)),
        ("cam1", 15)
    );
    assert!(jump.pose.is_none());
    assert!(jump.correspondences.iter().all(|c| !c.inlier));
    assert!(
        why(jump).contains("min_inliers") || why(jump).contains("no pose"),
        "{}",
        why(jump)
    );
    // Honest outputs: the lost frame's odometry has unknown covariance, relative to the
    // keyframe it failed against.
    let msgs = imd::pipeline::track_messages(jump, &Default::default());
    let Some(imd::pipeline::OutputMessage::Odometry(odom)) =
        msgs.message(imd::pipeline::Output::Odometry)
    else {
        panic!("a lost frame publishes a null odometry by default")
    };
    assert_eq!(
        odom.header.frame_id,
        jump.keyframe.as_ref().unwrap().frame_name()
    );
    assert_eq!(
        odom.pose.covariance[0],
        imd::pipeline::messages::UNKNOWN_VARIANCE
    );
    assert_eq!(
        odom.pose.covariance[35],
        imd::pipeline::messages::UNKNOWN_VARIANCE
    );
    // The frame became cam1's keyframe: the next frame tracks against it.
    let promoted = jump.promoted.clone().unwrap();
    assert_eq!(promoted.stamp, jump.stamp);
    let next = outputs
        .iter()
        .find(|o| o.camera.name == "cam1" && o.stamp > jump.stamp)
        .unwrap();
    assert_eq!(next.keyframe.as_ref(), Some(&promoted));
    assert_eq!(next.state, TrackState::Tracking);
}

#[test]
fn relocalization_on_request_reset_and_age_promotion() {
    let scene = Arc::new(Scene::load());
    let tracker = TrackerConfig {
        keyframe_min_coverage: 0.0,
        keyframe_min_inliers: 0,
        keyframe_max_age_frames: 6,
        relocalization_top_k: 2,
        ..Default::default()
    };
    let config = sequence_config(&scene, tracker);
    let index = |frame: &CameraFrame| {
        scene
            .frame(&frame.camera_name, frame.image.header().stamp)
            .unwrap()
            .index
    };
    let outputs = run(&config, Oracle::new(scene.clone()), |p, frame| {
        if frame.camera_name != "cam0" {
            return;
        }
        match index(frame) {
            20 => {
                let s = p.control(ControlCommand::Relocalize(Some("nope".into())));
                assert_eq!(s[0].level, 1);
                assert!(
                    s[0].message.contains("no camera named `nope`"),
                    "{}",
                    s[0].message
                );
            }
            22 => {
                let s = p.control(ControlCommand::Reset(None));
                assert!(
                    s[0].message.contains("keyframe(s) forgotten"),
                    "{}",
                    s[0].message
                );
            }
            25 => {
                let s = p.control(ControlCommand::Relocalize(Some("cam0".into())));
                assert!(s[0].message.contains("1 camera(s)"), "{}", s[0].message);
            }
            _ => {}
        }
    });
    let of = |camera: &str| -> Vec<&TrackOutput> {
        outputs.iter().filter(|o| o.camera.name == camera).collect()
    };
    let (cam0, cam1) = (of("cam0"), of("cam1"));
    // Age: a keyframe is replaced by the 6th frame tracked against it.
    let promoted: Vec<usize> = cam0
        .iter()
        .filter(|o| o.state == TrackState::NewKeyframe && o.keyframe.is_some())
        .map(|o| index_of(&scene, o))
        .collect();
    assert_eq!(&promoted[..3], &[6, 12, 18], "{promoted:?}");
    for o in cam0
        .iter()
        .filter(|o| o.state == TrackState::NewKeyframe && o.keyframe.is_some())
    {
        assert!(why(o).contains("keyframe_max_age_frames"), "{}", why(o));
    }
    // The reset (all cameras) makes the next frame of each camera a first frame.
    assert!(cam0[22].keyframe.is_none() && cam0[22].state == TrackState::NewKeyframe);
    let cam1_next = cam1.iter().find(|o| o.stamp > cam0[22].stamp).unwrap();
    assert!(cam1_next.keyframe.is_none(), "{}", why(cam1_next));
    // The request relocalizes cam0's frame 25 against the best of at most 2 candidates.
    let f25 = cam0[25];
    assert_eq!(f25.state, TrackState::Relocalized, "{}", why(f25));
    assert!(!f25.relocalization.is_empty() && f25.relocalization.len() <= 2);
    assert!(pose_errors(&scene, f25).unwrap().0 < 1.0);
    // Only the requested camera relocalized.
    assert_eq!(
        outputs
            .iter()
            .filter(|o| o.state == TrackState::Relocalized)
            .map(|o| (o.camera.name.as_str(), index_of(&scene, o)))
            .filter(|(c, _)| *c == "cam0")
            .collect::<Vec<_>>(),
        [("cam0", 25)]
    );
}

#[test]
fn the_keyframe_store_stays_bounded() {
    let scene = Arc::new(Scene::load());
    let tracker = TrackerConfig {
        keyframe_min_coverage: 0.0,
        keyframe_min_inliers: 0,
        keyframe_max_age_frames: 2,
        max_keyframes: 3,
        ..Default::default()
    };
    let config = sequence_config(&scene, tracker);
    let outputs = run(&config, Oracle::new(scene.clone()), |_, _| {});
    assert!(outputs.iter().all(|o| o.keyframes_stored <= 3));
    let promoted = outputs.iter().filter(|o| o.promoted.is_some()).count();
    assert!(promoted > 20, "{promoted}");
    // Evictions never took a keyframe a camera still tracks against: every frame found its
    // reference (no camera had to start over after its first frame).
    let first_frames = outputs.iter().filter(|o| o.keyframe.is_none()).count();
    assert_eq!(first_frames, 2);
    for out in &outputs {
        if let Some((rot, _)) = pose_errors(&scene, out) {
            assert!(rot < 1.0);
        }
    }
}

#[test]
fn config_matcher_yaml_declares_every_parameter() {
    // The shipped parameter file is complete (every parameter the node declares appears, so
    // the file documents them all), parses, and states the tracker defaults.
    let path = crate::util::root().join("config/matcher.yaml");
    let config = ImdConfig::from_file(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let body = &yaml["imd_matcher"]["ros__parameters"];
    fn leaves(prefix: &str, v: &serde_yaml::Value, out: &mut Vec<String>) {
        match v.as_mapping() {
            Some(m) => {
                for (k, v) in m {
                    let k = k.as_str().unwrap();
                    let name = if prefix.is_empty() {
                        k.to_string()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&name, v, out);
                }
            }
            None => out.push(prefix.to_string()),
        }
    }
    let mut in_file = Vec::new();
    leaves("", body, &mut in_file);
    in_file.sort();
    let mut declared: Vec<String> = ImdConfig::default()
        .to_flat()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    declared.sort();
    assert_eq!(in_file, declared);
    assert_eq!(config.tracker, TrackerConfig::default());
    assert_eq!(config.cameras.resolve().unwrap().len(), 1);
}

#[test]
fn readme_topic_table_is_the_output_table() {
    // docs/ros.md's "Published topics" table is the one the node publishes (OUTPUT_TOPICS):
    // same topics, order, types and enabling settings, and the QoS sentence under it.
    use imd::pipeline::topics::OutputQos;
    use imd::pipeline::OUTPUT_TOPICS;
    let readme = std::fs::read_to_string(crate::util::root().join("docs/ros.md")).unwrap();
    let section = readme.split("### Published topics").nth(1).unwrap();
    let rows: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| Topic"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let expected: Vec<String> = OUTPUT_TOPICS.iter().map(|t| t.readme_row()).collect();
    assert_eq!(rows, expected);
    assert!(OUTPUT_TOPICS
        .iter()
        .all(|t| t.qos == OutputQos::Reliable { depth: 10 }));
    assert!(section.contains("Publishers use the default QoS (reliable, keep last 10)."));
}
