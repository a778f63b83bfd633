//! A bag through the tracker with a map: `imd map build` (mapping) and `imd replay --map`
//! (localization). Frames go straight from the bag to the processor, in order, none dropped
//! (no realtime pacing); `imd replay --map --out` writes every frame's messages, the map's
//! included (`~/map_pose`, `map → odom` on `/tf`, the map's status), as the node publishes them.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{KeyframeMap, Localized};
use crate::config::ImdConfig;
use crate::io::bag::{Bag, BagError, BagFrames, BagOutput};
use crate::io::msgs::builtin_interfaces::Time;
use crate::pipeline::replay::{diagnostics_message, static_transforms, write_published};
use crate::pipeline::{
    FrameOutputs, PairMatcher, PipelineError, PoseScale, ScheduleInfo, TrackOutput, TrackState,
    TrackerProcessor,
};

/// What to do with the map.
#[derive(Debug, Clone, Copy)]
pub enum MapRun<'a> {
    /// Build a map (its frame: `node.odom_frame`).
    Build,
    /// Localize in this map.
    Localize(&'a KeyframeMap),
}

/// One frame's result.
#[derive(Debug, Clone, Serialize)]
pub struct FrameInMap {
    /// The camera's name.
    pub camera: String,
    /// The image stamp.
    pub stamp: Time,
    /// The tracker's state.
    pub state: TrackState,
    /// The optical frame's position in the map, metres (`None`: not localized).
    pub position_m: Option<[f64; 3]>,
    /// Its orientation, x y z w.
    pub orientation_xyzw: Option<[f64; 4]>,
    /// The position's standard deviation (root of the covariance trace), metres.
    pub position_sigma_m: Option<f64>,
    /// The map pose's covariance, ROS order (x, y, z, rotation about x, y, z of the map
    /// frame), row-major, 36 numbers.
    pub covariance: Option<Vec<f64>>,
    /// The scale of the frame's pose against its keyframe (`None`: no verified pose).
    pub scale: Option<PoseScale>,
    /// Measured against a keyframe of the map (not a transient one).
    pub against_map_keyframe: bool,
    /// The odometry chain's state (`tracking`, `holding`, …; `None`: monocular).
    pub odom_state: Option<&'static str>,
    /// The odom frame's position in the map (`map → odom`) so far (mapping: the identity).
    pub map_from_odom_m: Option<[f64; 3]>,
}

impl FrameInMap {
    fn of(out: &TrackOutput, l: Option<&Localized>) -> Self {
        let t = l.map(|l| l.pose.pose.translation.vector);
        let q = l.map(|l| l.pose.pose.rotation);
        FrameInMap {
            camera: out.camera.name.clone(),
            stamp: out.stamp,
            state: out.state,
            position_m: t.map(|t| [t.x, t.y, t.z]),
            orientation_xyzw: q.map(|q| [q.i, q.j, q.k, q.w]),
            position_sigma_m: l.map(|l| {
                (l.pose.covariance[(0, 0)] + l.pose.covariance[(1, 1)] + l.pose.covariance[(2, 2)])
                    .max(0.0)
                    .sqrt()
            }),
            covariance: l.map(|l| l.pose.covariance_array().to_vec()),
            scale: out.pose.as_ref().map(|p| p.scale),
            against_map_keyframe: l.is_some_and(|l| l.against_map_keyframe),
            odom_state: None,
            map_from_odom_m: None,
        }
    }
}

/// A run's summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MapRunSummary {
    /// `mapping` or `localization`.
    pub mode: String,
    /// Frames tracked.
    pub frames: u64,
    /// Frames that failed (decode, matcher), with why.
    pub failed: Vec<String>,
    /// Frames with a pose in the map.
    pub localized: u64,
    /// Frames relocalized against a map keyframe.
    pub relocalized: u64,
    /// Map keyframes (loaded, or kept while mapping).
    pub map_keyframes: usize,
    /// Time to insert the map's keyframes (re-preparing their images), seconds.
    pub map_load_s: f64,
    /// Tracking wall time, seconds.
    pub wall_s: f64,
    /// Every frame, in bag order.
    pub per_frame: Vec<FrameInMap>,
}

/// Run every frame of `bag` through a processor with `matcher` under `config`, mapping or
/// localizing; returns the processor (to export the map) and the summary.
pub fn run_bag<M: PairMatcher>(
    bag: &Path,
    config: &ImdConfig,
    matcher: M,
    run: MapRun<'_>,
) -> Result<(TrackerProcessor<M>, MapRunSummary), PipelineError> {
    run_bag_to(bag, config, matcher, run, None, 0)
}

/// [`run_bag`], writing every frame's messages and statuses to the output bag `output` (MCAP
/// file or rosbag2 folder) when given, on the node's topics (`imd replay`'s layout); stops after
/// `max_frames` frames (0 = all, as `imd replay --max-frames`).
pub fn run_bag_to<M: PairMatcher>(
    bag: &Path,
    config: &ImdConfig,
    matcher: M,
    run: MapRun<'_>,
    output: Option<&Path>,
    max_frames: u64,
) -> Result<(TrackerProcessor<M>, MapRunSummary), PipelineError> {
    let cameras = config.cameras().map_err(|e| PipelineError::InvalidConfig {
        field: "cameras".into(),
        reason: e.to_string(),
    })?;
    let reader = Bag::open(bag)?;
    let mut writer = output.map(BagOutput::create).transpose()?;
    let mut processor = TrackerProcessor::new(matcher, config, cameras.clone())?
        .with_transforms(static_transforms(&reader));
    let mut summary = MapRunSummary::default();
    let t = Instant::now();
    match run {
        MapRun::Build => {
            processor.start_mapping(&config.node.odom_frame);
            summary.mode = "mapping".into();
        }
        MapRun::Localize(map) => {
            processor.localize_in(map)?;
            // Named in the map's status, as the node names its `map.path`.
            let path = config.map.path.trim();
            if !path.is_empty() {
                processor.set_map_path(path);
            }
            summary.mode = "localization".into();
        }
    }
    summary.map_load_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let frames = BagFrames::new(&reader, &cameras, config.node.sync_tolerance_s)?;
    let limit = if max_frames == 0 {
        usize::MAX
    } else {
        usize::try_from(max_frames).unwrap_or(usize::MAX)
    };
    for frame in frames.take(limit) {
        let frame = frame?;
        match processor.track_frame(&frame, &ScheduleInfo::default()) {
            Ok((out, outputs)) => {
                if let Some(w) = writer.as_mut() {
                    write_frame(w, outputs)?;
                }
                summary.frames += 1;
                let mut f = FrameInMap::of(&out, processor.localized());
                f.odom_state = processor.chain_state().map(|s| s.as_str());
                f.map_from_odom_m = processor.map_from_odom().map(|t| {
                    let v = t.translation.vector;
                    [v.x, v.y, v.z]
                });
                summary.per_frame.push(f);
            }
            Err(e) => summary.failed.push(format!(
                "{} at {}: {e}",
                frame.camera_name,
                frame.image.header().stamp
            )),
        }
    }
    summary.wall_s = t.elapsed().as_secs_f64();
    if let Some(w) = writer {
        w.finish()?;
    }
    if let Some(s) = processor.map_session() {
        let c = s.counters();
        summary.localized = c.localized;
        summary.relocalized = c.relocalized;
        summary.map_keyframes = s.map_keyframes();
    }
    Ok((processor, summary))
}

/// One frame's messages, then its `/diagnostics` array.
fn write_frame(bag: &mut BagOutput, outputs: FrameOutputs) -> Result<(), BagError> {
    for published in &outputs.messages {
        write_published(bag, outputs.stamp, published)?;
    }
    write_published(
        bag,
        outputs.stamp,
        &diagnostics_message(outputs.stamp, outputs.diagnostics),
    )
}
