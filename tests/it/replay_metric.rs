//! Metric scale through the node's pipeline, against ground truth.
//!
//! `scripts/make_metric_bag.py` renders the replay room (`tests/fixtures/replay`) for cam0's first
//! 24 frames with the depth registered to each image, as 16UC1 millimetres and as 32FC1 metres
//! (with holes and an inf patch), and a rectified right camera 0.12 m to the right (its
//! camera_info `P` carries `Tx = −fx·B`); the messages of a frame are written in both orders.
//! Frames come through the bag reader and [`imd::io::camera_sync::CameraSync`], as in the node
//! and `imd replay`, into the `TrackerProcessor` with the ground-truth oracle matcher (0.25 px
//! noise, 20 % outliers). Stereo keyframes are triangulated from the oracle's left–right
//! matches, so their depth carries the matcher's noise, as it would with a real matcher.

use std::path::PathBuf;
use std::sync::Arc;

use imd::config::{CamerasConfig, ImdConfig};
use imd::geometry::metrics::rotation_error_deg;
use imd::io::bag::{Bag, BagFrames};
use imd::pipeline::messages::UNKNOWN_VARIANCE;
use imd::pipeline::replay::{replay, ReplayOptions};
use imd::pipeline::{
    FrameOutputs, PoseScale, ScheduleInfo, TrackOutput, TrackState, TrackerConfig, TrackerProcessor,
};

use crate::pipeline::oracle::Oracle;
use crate::pipeline::scene::Scene;
use crate::util::generated_fixtures;

/// The generated bag and its ground truth (once per test run).
fn metric_fixture() -> PathBuf {
    generated_fixtures("make_metric_bag.py", "metric")
}

fn scene() -> Arc<Scene> {
    Arc::new(Scene::load_file(&metric_fixture().join("metric.json")))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    Monocular,
    DepthMillimetres,
    DepthMetres,
    /// Baseline from the camera_infos' `P`.
    StereoRectified,
    /// Baseline from `cameras.right_from_left`.
    StereoExtrinsic,
}

impl Input {
    fn scale(self) -> PoseScale {
        match self {
            Input::Monocular => PoseScale::Monocular,
            Input::DepthMillimetres | Input::DepthMetres => PoseScale::MetricDepth,
            Input::StereoRectified | Input::StereoExtrinsic => PoseScale::MetricStereo,
        }
    }
}

fn config(input: Input) -> ImdConfig {
    let list = |s: &str| vec![s.to_string()];
    let mut cameras = CamerasConfig {
        names: list("cam0"),
        image_topics: list("/cam0/image_raw/compressed"),
        camera_info_topics: list("/cam0/camera_info"),
        ..Default::default()
    };
    match input {
        Input::Monocular => {}
        Input::DepthMillimetres => cameras.depth_topics = list("/cam0/depth/image_raw"),
        Input::DepthMetres => cameras.depth_topics = list("/cam0/depth_m/image_raw"),
        Input::StereoRectified | Input::StereoExtrinsic => {
            cameras.right_image_topics = list("/cam0/right/image_raw/compressed");
            cameras.right_camera_info_topics = list("/cam0/right/camera_info");
            if input == Input::StereoExtrinsic {
                // X_right = X_left − (B, 0, 0), identity rotation.
                cameras.right_from_left = vec![-0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
            }
        }
    }
    let mut config = ImdConfig {
        cameras,
        tracker: TrackerConfig::default(),
        ..Default::default()
    };
    config.pose.max_iterations = 10_000;
    config.node.publish_debug_image = false;
    // The covariance calibration of the ground-truth oracle matcher: its pixel errors are
    // independent Gaussian noise (σ 0.25 px), exactly the geometry's model, so nothing is
    // inflated (the shipped inflation and noise floor are the demo model's; README
    // "Integrity").
    config.integrity.covariance_inflation = 1.0;
    config.integrity.covariance_noise_floor_px = 0.0;
    // ... and its 0.25 px noise determines a translation direction from a few pixels of
    // parallax (the shipped 10 px is for the demo model's 1–2 px errors).
    config.integrity.min_translation_parallax_px = 2.0;
    config
}

/// Every frame of the bag through the processor: the tracker outputs and their messages.
fn run(input: Input, scene: &Arc<Scene>) -> Vec<(TrackOutput, FrameOutputs)> {
    let config = config(input);
    let reader = Bag::open(&metric_fixture().join("metric.mcap")).unwrap();
    let cameras = config.cameras().unwrap();
    let frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s).unwrap();
    let mut processor =
        TrackerProcessor::new(Oracle::new(scene.clone()), &config, cameras).unwrap();
    frames
        .map(|f| {
            processor
                .track_frame(&f.unwrap(), &ScheduleInfo::default())
                .unwrap()
        })
        .collect()
}

fn odometry(m: &FrameOutputs) -> &imd::io::msgs::nav_msgs::Odometry {
    match m.message(imd::pipeline::Output::Odometry) {
        Some(imd::pipeline::OutputMessage::Odometry(o)) => o,
        other => panic!("expected an odometry, got {other:?}"),
    }
}

fn diagnostic<'a>(m: &'a FrameOutputs, key: &str) -> &'a str {
    m.diagnostics[0]
        .values
        .iter()
        .find(|v| v.key == key)
        .map(|v| v.value.as_str())
        .unwrap_or_else(|| panic!("no diagnostics key {key}"))
}

#[test]
fn depth_and_stereo_cameras_give_metric_odometry_within_two_percent_of_the_distance() {
    let scene = scene();
    for input in [
        Input::DepthMillimetres,
        Input::DepthMetres,
        Input::StereoRectified,
        Input::StereoExtrinsic,
    ] {
        let outputs = run(input, &scene);
        assert_eq!(outputs.len(), 24, "{input:?}: every frame completes");
        let (mut worst_r, mut poses, mut keyframes) = (0.0f64, 0, 0);
        let mut nees_sum = 0.0;
        // Per keyframe segment: (distance, error) of the frame farthest from the keyframe.
        let mut segment_end: std::collections::BTreeMap<usize, (f64, f64)> = Default::default();
        for (out, messages) in &outputs {
            keyframes += out.promoted.is_some() as usize;
            let (Some(pose), Some(kf)) = (&out.pose, &out.keyframe) else {
                assert_eq!(
                    out.state,
                    TrackState::NewKeyframe,
                    "{input:?}: {:?}",
                    out.reason
                );
                continue;
            };
            let metric = out.metric.as_ref().expect("a metric report");
            assert_eq!(
                pose.scale,
                input.scale(),
                "{input:?} at {:?}: {:?}",
                out.stamp,
                metric.failure
            );
            poses += 1;
            let a = scene.frame(&kf.camera, kf.stamp).unwrap();
            let b = scene.frame(&out.camera.name, out.stamp).unwrap();
            let gt = scene.relative(a, b);
            let travelled = gt.translation.norm();
            let e_t = (pose.pose.translation - gt.translation).norm();
            let e_r = rotation_error_deg(&pose.pose.rotation, &gt.rotation);
            worst_r = worst_r.max(e_r);
            let end = segment_end.entry(a.index).or_default();
            if travelled > end.0 {
                *end = (travelled, e_t);
            }
            let d = pose.pose.translation - gt.translation;
            let cov_t = pose.covariance.fixed_view::<3, 3>(0, 0).into_owned();
            let nees = (d.transpose() * cov_t.try_inverse().unwrap() * d)[0];
            nees_sum += nees;
            // Near the keyframe the noise floor dominates the 2 %: then within 3σ of the
            // published covariance (σ ≈ 1.5–2.5 mm a step of 7 cm from the keyframe).
            let sigma_t = cov_t.trace().sqrt();
            assert!(
                e_t < (0.02 * travelled).max(3.0 * sigma_t),
                "{input:?} #{}: {:.2} mm after {travelled:.3} m (σ {:.2} mm)",
                b.index,
                e_t * 1e3,
                sigma_t * 1e3
            );
            println!(
                "{input:?} #{} {:?} kf #{}: travelled {:.4} m, t error {:.2} mm ({:.3} %), R error \
                 {e_r:.4}°, {} lifted, {} PnP inliers, σ_t {:.2} mm, NEES {nees:.2}",
                b.index,
                out.state,
                a.index,
                travelled,
                e_t * 1e3,
                100.0 * e_t / travelled,
                metric.lifted,
                metric.inliers,
                cov_t.trace().sqrt() * 1e3
            );
            // Published: the position in metres, its covariance the PnP's (no unknown scale).
            let odom = odometry(messages);
            let p = &odom.pose.pose.position;
            let published = (p.x * p.x + p.y * p.y + p.z * p.z).sqrt();
            assert!((published - pose.pose.translation.norm()).abs() < 1e-9);
            let var_t =
                odom.pose.covariance[0] + odom.pose.covariance[7] + odom.pose.covariance[14];
            assert!(
                var_t > 0.0 && var_t < 1e-3,
                "{input:?}: translation variance {var_t} m²"
            );
            assert_eq!(diagnostic(messages, "scale"), input.scale().as_str());
            assert!(metric.inliers >= 12 && metric.lifted >= metric.inliers);
        }
        let worst_segment = segment_end
            .values()
            .map(|(d, e)| e / d)
            .fold(0.0f64, f64::max);
        let nees = nees_sum / poses as f64;
        println!(
            "metric replay {input:?}: {poses} poses, {keyframes} keyframes, segments {:?} \
             (distance m, error m), worst segment-end error {:.3} % of its distance, worst \
             rotation {worst_r:.4}°, translation NEES mean {nees:.2} (3 when calibrated)",
            segment_end,
            100.0 * worst_segment
        );
        assert!(poses >= 18, "{input:?}: {poses} poses");
        assert!(
            keyframes >= 2,
            "{input:?}: a sequence of several keyframe segments"
        );
        // The acceptance: < 2 % of the distance travelled per keyframe segment, < 0.5°.
        assert!(
            worst_segment < 0.02,
            "{input:?}: {:.3} %",
            100.0 * worst_segment
        );
        assert!(worst_r < 0.5, "{input:?}: rotation error {worst_r}°");
        // The published covariance is calibrated (χ² with 3 dof averages 3).
        assert!((0.5..9.0).contains(&nees), "{input:?}: NEES {nees}");
    }
}

#[test]
fn a_monocular_camera_keeps_the_unit_direction_and_the_unknown_scale() {
    let scene = scene();
    let outputs = run(Input::Monocular, &scene);
    let mut poses = 0;
    for (out, messages) in &outputs {
        let Some(pose) = &out.pose else { continue };
        assert!(out.metric.is_none());
        assert_eq!(pose.scale, PoseScale::Monocular);
        if out.keyframe.is_some() && pose.translation_observable {
            poses += 1;
            assert!((pose.pose.translation.norm() - 1.0).abs() < 1e-9);
            let c = &odometry(messages).pose.covariance;
            assert!(c[0] + c[7] + c[14] >= UNKNOWN_VARIANCE);
            assert_eq!(diagnostic(messages, "scale"), "monocular");
        }
    }
    assert!(poses >= 18, "{poses}");
}

#[test]
fn replay_counts_metric_frames_and_names_a_depth_topic_that_is_missing_or_not_an_image() {
    let scene = scene();
    let bag = metric_fixture().join("metric.mcap");
    let summary = replay(
        &bag,
        None,
        &config(Input::DepthMillimetres),
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap();
    let with_pose: u64 = summary.scales.values().sum();
    println!(
        "metric replay summary: scales {:?}, states {:?}",
        summary.scales, summary.states
    );
    assert_eq!(summary.frames_processed, 24);
    assert_eq!(summary.images_unpaired, 0);
    assert_eq!(
        summary.scales.get(&PoseScale::MetricDepth),
        Some(&with_pose)
    );
    assert!(with_pose >= 18);
    assert_eq!(summary.accounting.unaccounted, 0);

    let mut missing = config(Input::DepthMillimetres);
    missing.cameras.depth_topics = vec!["/cam0/aligned_depth".into()];
    let e = replay(
        &bag,
        None,
        &missing,
        Oracle::new(scene.clone()),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/cam0/aligned_depth") && e.contains("is not in"),
        "{e}"
    );
    let mut compressed = config(Input::DepthMillimetres);
    compressed.cameras.depth_topics = vec!["/cam0/right/image_raw/compressed".into()];
    let e = replay(
        &bag,
        None,
        &compressed,
        Oracle::new(scene),
        &ReplayOptions::default(),
        |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("sensor_msgs/msg/Image") && e.contains("CompressedImage"),
        "{e}"
    );
}
