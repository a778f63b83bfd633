//! Criterion benches of the pipeline's own cost around the network, at 640×480:
//! - `track_frame`: one `Tracker::track` call with a matcher that returns precomputed matches
//!   (the geometry's synthetic scene: 1000 matches, 20 % outliers, σ = 0.5 px), i.e. pose
//!   estimation + keyframe policy + bookkeeping;
//! - `decode_frame_rgb8`: a `sensor_msgs/Image` + CameraInfo → `Frame` (decode, camera model);
//! - `messages`: `TrackOutput` → every ROS message, with and without the debug image;
//! - with `--features ros`, `ros_*`: the real r2r message path of one frame — the incoming
//!   Image + CameraInfo from rcl's C structs into ours (what a typed subscription does), and
//!   every outgoing message from ours into rcl's C structs (what `publish` does); DDS itself
//!   is not included (the live node benchmark, `scripts/bench/bench_node.sh`, measures it).
//!
//! Run: `cargo bench --bench pipeline [--features ros]`. The end-to-end replay benchmark (network included,
//! throughput, latency, memory over thousands of frames) is `scripts/bench/bench_replay.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use image::RgbImage;
use imd::geometry::synthetic::{generate, SceneSpec};
use imd::geometry::{PixelMatch, PoseOptions, Rng};
use imd::io::frames::{CameraFrame, CameraImage};
use imd::io::msgs::builtin_interfaces::Time;
use imd::io::msgs::sensor_msgs::{CameraInfo, Image};
use imd::io::msgs::std_msgs::Header;
use imd::model::StageTimings;
use imd::pipeline::{
    track_messages, CameraId, Frame, MessageContext, PairMatcher, PairMatches, PipelineError,
    Tracker, TrackerConfig,
};

/// Returns the same precomputed matches for every pair.
#[derive(Debug)]
struct Replayed {
    matches: Vec<PixelMatch>,
}

impl PairMatcher for Replayed {
    type Prepared = ();
    fn prepare(&mut self, frames: &[&Frame]) -> Result<Vec<()>, PipelineError> {
        Ok(vec![(); frames.len()])
    }
    fn prepare_timings(&self, _: &()) -> StageTimings {
        StageTimings::default()
    }
    fn embedding<'a>(&self, _: &'a ()) -> &'a [f32] {
        &[]
    }
    fn match_pair(&mut self, _: &(), _: &()) -> Result<PairMatches, PipelineError> {
        Ok(PairMatches {
            matches: self.matches.clone(),
            timings: StageTimings::default(),
        })
    }
}

fn camera_info() -> CameraInfo {
    CameraInfo {
        width: 640,
        height: 480,
        k: [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
        ..Default::default()
    }
}

fn frame(image: &Arc<RgbImage>, k: i64) -> Frame {
    let mut f = Frame::new(
        CameraId {
            index: 0,
            name: "cam0".into(),
        },
        Time::from_nanos(k * 100_000_000),
        "cam0_optical",
        RgbImage::new(1, 1),
        imd::geometry::CameraModel::pinhole(500.0, 500.0, 320.0, 240.0, 640, 480),
    );
    f.image = image.clone();
    f
}

fn bench(c: &mut Criterion) {
    let spec = SceneSpec {
        outlier_ratio: 0.2,
        ..Default::default()
    };
    let pair = generate(&spec, &mut Rng::new(3));
    let image = Arc::new(RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }));
    let pose = PoseOptions {
        max_iterations: 10_000,
        ..Default::default()
    };
    // Never promote: every call tracks against the first frame.
    let config = TrackerConfig {
        keyframe_min_coverage: 0.0,
        keyframe_min_inliers: 0,
        ..Default::default()
    };
    let mut tracker = Tracker::new(
        Replayed {
            matches: pair.matches.clone(),
        },
        config,
        pose,
    )
    .unwrap();
    tracker.track(frame(&image, 0)).unwrap();
    let mut k = 1;
    let mut last = None;
    c.bench_function("track_frame_1000_matches", |b| {
        b.iter(|| {
            k += 1;
            last = Some(tracker.track(black_box(frame(&image, k))).unwrap());
        })
    });
    // The bench above does not run when filtered out (`cargo bench -- ros_`): track once here.
    let out = last.unwrap_or_else(|| tracker.track(frame(&image, k + 1)).unwrap());

    let raw = CameraFrame {
        camera: 0,
        camera_name: "cam0".into(),
        image: CameraImage::Raw(Image {
            header: Header::default(),
            height: 480,
            width: 640,
            encoding: "rgb8".into(),
            is_bigendian: 0,
            step: 640 * 3,
            data: image.as_raw().clone(),
        }),
        info: camera_info(),
        metric: None,
        received: Instant::now(),
    };
    c.bench_function("decode_frame_rgb8_640x480", |b| {
        b.iter(|| Frame::from_camera_frame(black_box(&raw), None).unwrap())
    });

    let mut ctx = MessageContext {
        publish_tf: true,
        publish_debug_image: true,
        ..Default::default()
    };
    c.bench_function("messages_with_debug_image", |b| {
        b.iter(|| track_messages(black_box(&out), &ctx))
    });
    ctx.publish_debug_image = false;
    c.bench_function("messages_without_debug_image", |b| {
        b.iter(|| track_messages(black_box(&out), &ctx))
    });
    #[cfg(feature = "ros")]
    {
        ctx.publish_debug_image = true;
        ros_conversions(c, &raw, &track_messages(&out, &ctx));
    }
}

/// rcl C structs ⇄ ours, for one frame in and its outputs out.
#[cfg(feature = "ros")]
fn ros_conversions(c: &mut Criterion, input: &CameraFrame, outputs: &imd::pipeline::FrameOutputs) {
    use r2r::{NativeMsg as WrappedNativeMsg, WrappedTypesupport};
    type RImage = r2r::sensor_msgs::msg::Image;
    type RInfo = r2r::sensor_msgs::msg::CameraInfo;
    let CameraImage::Raw(image) = &input.image else {
        unreachable!("the bench frame is raw")
    };
    let native_image = WrappedNativeMsg::<RImage>::from(&RImage::from(image.clone()));
    let native_info = WrappedNativeMsg::<RInfo>::from(&RInfo::from(input.info.clone()));
    c.bench_function("ros_input_image_camera_info_640x480", |b| {
        b.iter(|| {
            let image = Image::try_from(RImage::from_native(black_box(&native_image))).unwrap();
            let info = CameraInfo::try_from(RInfo::from_native(black_box(&native_info))).unwrap();
            (image, info)
        })
    });
    let publish = |out: &imd::pipeline::FrameOutputs, debug: bool| {
        use imd::pipeline::Output;
        let mut n = 0usize;
        for p in &out.messages {
            if p.output == Output::DebugImage && !debug {
                continue;
            }
            imd::ros::convert_to_native(p.message.clone());
            n += 1;
        }
        let diag = imd::io::msgs::diagnostic_msgs::DiagnosticArray {
            header: Default::default(),
            status: out.diagnostics.clone(),
        };
        let r: r2r::diagnostic_msgs::msg::DiagnosticArray = diag.into();
        drop(WrappedNativeMsg::from(&r));
        n
    };
    c.bench_function("ros_outputs_without_debug_image", |b| {
        b.iter(|| publish(black_box(outputs), false))
    });
    c.bench_function("ros_outputs_with_debug_image", |b| {
        b.iter(|| publish(black_box(outputs), true))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
