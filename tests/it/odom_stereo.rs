//! Stereo vs depth metric odometry on the deeper robot loop, against ground truth.
//!
//! `scripts/make_odom_fixtures.py` renders a robot driving a 14.2 m loop (284 frames, two
//! half-turns) in an 8 m room: walls 2.5–5.5 m away, a camera 0.5 m above the floor pitched
//! down 10°, a 0.12 m rectified stereo pair and registered depth of the same frames. Frames go
//! through the bag reader and the node's `TrackerProcessor` with the ground-truth oracle matcher
//! made to behave like a learned one (`models/imd-tiny-synth` measured on the same sequence):
//! keyframe pixels placed anew in every pair (up to 2 px from where the keyframe's stereo match
//! put them), 15 % of the matches 3–8 px off, 0.35 px noise (the demo model's disparity error
//! is 0.3–0.5 px), 20 % random pairs, surface points every 0.1 m. Each keyframe-relative metric
//! pose is compared with the ground truth; the acceptance (item 8): stereo's worst error
//! within 2× depth's. Before the fixes (stored stereo point used off its own ray in the lookup,
//! joint refinement over every correspondence) stereo's worst segment end was 3.98 % against
//! depth's 0.79 % (5.0×, the "5× worse in the worst case"); after, 0.92 % (1.15×).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use imd::config::{CamerasConfig, ImdConfig};
use imd::io::bag::{Bag, BagFrames};
use imd::pipeline::{PoseScale, ScheduleInfo, TrackerConfig, TrackerProcessor};

use crate::pipeline::oracle::Oracle;
use crate::pipeline::scene::Scene;
use crate::util::generated_fixtures;

fn fixture() -> PathBuf {
    generated_fixtures("make_odom_fixtures.py", "odom")
}

fn config(stereo: bool) -> ImdConfig {
    let list = |s: &str| vec![s.to_string()];
    let mut cameras = CamerasConfig {
        names: list("cam0"),
        image_topics: list("/cam0/image_raw/compressed"),
        camera_info_topics: list("/cam0/camera_info"),
        ..Default::default()
    };
    if stereo {
        cameras.right_image_topics = list("/cam0/right/image_raw/compressed");
        cameras.right_camera_info_topics = list("/cam0/right/camera_info");
    } else {
        cameras.depth_topics = list("/cam0/depth/image_raw");
    }
    let mut config = ImdConfig {
        cameras,
        tracker: TrackerConfig::default(),
        ..Default::default()
    };
    config.node.publish_debug_image = false;
    // The oracle's calibration (tests/it/replay_metric.rs): its errors are the geometry's model.
    config.integrity.covariance_inflation = 1.0;
    config.integrity.covariance_noise_floor_px = 0.0;
    config.integrity.min_translation_parallax_px = 2.0;
    config
}

/// Keyframe-relative metric translation errors of one run.
#[derive(Debug, Default)]
struct Errors {
    frames: usize,
    metric: usize,
    /// (distance from the keyframe m, error m) of frames at least 0.1 m from their keyframe.
    far: Vec<(f64, f64)>,
    /// Per keyframe: (distance, error) of its farthest frame.
    segment_end: BTreeMap<usize, (f64, f64)>,
}

impl Errors {
    fn pct(v: &[(f64, f64)]) -> Vec<f64> {
        let mut p: Vec<f64> = v.iter().map(|(d, e)| 100.0 * e / d).collect();
        p.sort_by(f64::total_cmp);
        p
    }
    fn worst_segment_pct(&self) -> f64 {
        let ends: Vec<_> = self.segment_end.values().copied().collect();
        *Self::pct(&ends).last().unwrap()
    }
    fn summary(&self) -> String {
        let p = Self::pct(&self.far);
        let ends: Vec<_> = self.segment_end.values().copied().collect();
        let e = Self::pct(&ends);
        format!(
            "{} frames, {} metric; frames ≥ 0.1 m from their keyframe: {}, error median {:.2} %, \
             p90 {:.2} %, max {:.2} %; {} segment ends: median {:.2} %, max {:.2} %",
            self.frames,
            self.metric,
            p.len(),
            p[p.len() / 2],
            p[p.len() * 9 / 10],
            p[p.len() - 1],
            e.len(),
            e[e.len() / 2],
            e[e.len() - 1]
        )
    }
}

fn run(stereo: bool, scene: &Arc<Scene>) -> Errors {
    let dir = fixture();
    let config = config(stereo);
    let reader = Bag::open(&dir.join(if stereo { "stereo.mcap" } else { "rgbd.mcap" })).unwrap();
    let cameras = config.cameras().unwrap();
    let frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s).unwrap();
    // Every 0.1 m: 400–1000 points in view even 2 m from a wall, as many as the demo model
    // matches at 320×240.
    let mut oracle = Oracle::with_spacing(scene.clone(), 0.1);
    oracle.noise_px = 0.35;
    oracle.keyframe_offset_px = 2.0;
    oracle.near_outlier_ratio = 0.15;
    let mut processor = TrackerProcessor::new(oracle, &config, cameras).unwrap();
    let scale = if stereo {
        PoseScale::MetricStereo
    } else {
        PoseScale::MetricDepth
    };
    let mut errors = Errors::default();
    for f in frames {
        let (out, _) = processor
            .track_frame(&f.unwrap(), &ScheduleInfo::default())
            .unwrap();
        errors.frames += 1;
        let (Some(pose), Some(kf)) = (&out.pose, &out.keyframe) else {
            continue;
        };
        if pose.scale != scale {
            continue;
        }
        errors.metric += 1;
        let a = scene.frame(&kf.camera, kf.stamp).unwrap();
        let b = scene.frame(&out.camera.name, out.stamp).unwrap();
        let gt = scene.relative(a, b);
        let d = gt.translation.norm();
        let e = (pose.pose.translation - gt.translation).norm();
        if d >= 0.1 {
            errors.far.push((d, e));
        }
        let end = errors.segment_end.entry(a.index).or_default();
        if d > end.0 {
            *end = (d, e);
        }
    }
    errors.segment_end.retain(|_, (d, _)| *d >= 0.1);
    errors
}

#[test]
fn stereo_worst_error_is_within_twice_depths_on_the_deeper_loop() {
    let dir = fixture();
    let scene = Arc::new(Scene::load_file(&dir.join("odom.json")));
    let depth = run(false, &scene);
    let stereo = run(true, &scene);
    println!("depth:  {}", depth.summary());
    println!("stereo: {}", stereo.summary());
    for (name, e) in [("depth", &depth), ("stereo", &stereo)] {
        assert_eq!(e.frames, 284, "{name}");
        assert!(e.metric >= 250, "{name}: {} metric poses", e.metric);
        assert!(e.segment_end.len() >= 10, "{name}: {:?}", e.segment_end);
    }
    let (d, s) = (depth.worst_segment_pct(), stereo.worst_segment_pct());
    let worst = |e: &Errors| *Errors::pct(&e.far).last().unwrap();
    println!(
        "worst segment end: depth {d:.2} %, stereo {s:.2} % ({:.2}×); worst frame: depth {:.2} %, \
         stereo {:.2} %",
        s / d,
        worst(&depth),
        worst(&stereo)
    );
    assert!(d < 3.0, "depth worst segment end {d:.2} %");
    assert!(
        s <= 2.0 * d,
        "stereo worst segment end {s:.2} % vs depth {d:.2} %"
    );
    assert!(
        worst(&stereo) <= 2.0 * worst(&depth),
        "stereo worst frame {:.2} % vs depth {:.2} %",
        worst(&stereo),
        worst(&depth)
    );
}
