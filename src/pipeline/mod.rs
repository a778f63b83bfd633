//! Frames → keyframe tracking → matches + relative poses → messages. No ROS types.
//!
//! - [`Frame`]: decoded pixels + camera model (from CameraInfo) + stamp + camera identity.
//! - [`PairMatcher`]: the matcher seam (IMD's [`crate::model::ImdMatcher`], or a test oracle),
//!   split into per-image `prepare` (cached for keyframes) and per-pair `match_pair`.
//! - [`Tracker`]: per-camera reference keyframes, pose estimation with model selection,
//!   keyframe promotion ([`policy`]), a bounded keyframe store shared by all cameras
//!   ([`keyframes`]), relocalization by embedding retrieval + verification.
//! - [`integrity`]: the checks a pose must pass besides its inlier count (pixels, frame
//!   content, inlier spread, motion continuity) and the covariance calibration, so a
//!   hallucinating matcher never becomes a confident pose.
//! - [`TrackOutput`]: correspondences, pose + covariance + model, state, keyframe identity,
//!   timings; [`messages`] turns it into the ROS 2 messages the node and the replay publish.
//! - [`inputs`]: one camera's input side (frame assembly, counters, its diagnostics status),
//!   ROS-free; the node feeds it from its subscriptions.
//! - [`contract`]: what inputs hand the pipeline and get back ([`FrameProcessor`],
//!   [`FrameOutputs`], [`ControlCommand`]); [`TrackerProcessor`] (decode + track + messages)
//!   implements it, scheduled by [`FrameWorker`] (dedicated thread, newest frame per camera
//!   wins).
//! - [`odom`]: metric cameras' poses chained `odom ← keyframe ← current` and the robot's
//!   pose through each camera's mount ([`transforms`]: the TF tree the mounts come from);
//!   [`odom_messages`] publishes them.
//! - [`map`]: saved keyframe maps (a versioned, checksummed folder written atomically), built
//!   from a run (mapping) or loaded read-only to localize any camera in (localization).
//! - [`replay`]: `imd replay`'s engine on rosbag2 bags (MCAP or sqlite3).

pub mod cause_log;
pub mod contract;
pub mod frame;
pub mod inputs;
pub mod integrity;
pub mod keyframes;
pub mod map;
pub mod matcher;
pub mod messages;
pub mod metric;
pub mod odom;
pub mod odom_messages;
pub mod output;
pub mod policy;
pub mod processor;
pub mod replay;
pub mod topics;
pub mod tracker;
pub mod transforms;
pub mod worker;

pub use crate::config::TrackerConfig;
pub use cause_log::CauseLog;
pub use contract::{ControlCommand, FrameOutputs, FrameProcessor, FrameReport, ScheduleInfo};
pub use frame::{camera_model_for, CameraId, Frame, MetricImages, StereoView};
pub use inputs::{camera_status, control_services, CameraInput, CameraStats};
pub use keyframes::{Keyframe, KeyframeStore};
pub use matcher::{cosine_similarity, PairMatcher, PairMatches};
pub use messages::{track_messages, MessageContext};
pub use metric::{KeyframeDepth, MetricOptions, MetricReport, PoseScale};
pub use odom::{ChainState, ChainStep, Mount, MountSource, OdomChain, PoseWithCov};
pub use output::{
    Correspondence, IntegrityReport, KeyframeId, RelocalizationCandidate, TrackOutput,
    TrackQuality, TrackState, TrackTimings, TrackedPose,
};
pub use processor::TrackerProcessor;
pub use replay::{replay, ReplayOptions, ReplaySummary};
pub use topics::{MessageKind, Output, OutputMessage, OutputTopic, Published, OUTPUT_TOPICS};
pub use tracker::{Tracker, TrackerCounters};
pub use transforms::{LookupError, SharedTransforms, TransformTree};
pub use worker::{FrameSink, FrameWorker, WorkerCameraStats, WorkerError, WorkerOptions};

/// Errors of the tracking pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A configuration value out of range, named as in the configuration.
    #[error("config: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// The configuration failed its own checks.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The frame's camera_info does not describe its image.
    #[error("camera_info: {reason}")]
    CameraInfo { reason: String },
    /// The image could not be decoded.
    #[error(transparent)]
    Image(#[from] crate::io::image::ImageError),
    /// Invalid camera model or geometry input.
    #[error(transparent)]
    Geometry(#[from] crate::geometry::GeometryError),
    /// The network failed.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// Reading or writing a bag failed.
    #[error(transparent)]
    Bag(#[from] crate::io::bag::BagError),
    /// A frame's depth image or right view is unusable.
    #[error("{input}: {reason}")]
    Metric { input: String, reason: String },
    /// A saved map could not be read or written.
    #[error(transparent)]
    Map(#[from] map::MapError),
    /// A matcher broke its contract.
    #[error("matcher: {reason}")]
    Matcher { reason: String },
    /// The processing thread could not start, or died.
    #[error(transparent)]
    Worker(#[from] worker::WorkerError),
}
