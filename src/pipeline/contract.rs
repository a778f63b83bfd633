//! The frame-processing contract between the inputs (ROS node, bag replay) and the tracker.
//!
//! Inputs deliver synchronized [`CameraFrame`]s; a [`FrameProcessor`] turns each into
//! [`FrameOutputs`] (ROS-free messages the adapters publish or write). The processor is
//! [`super::TrackerProcessor`]; [`super::FrameWorker`] runs it on a dedicated thread for both
//! the ROS node and `imd replay`.

use super::topics::{Output, OutputMessage, Published};
use super::{PipelineError, PoseScale, TrackState};
use crate::config::ImdConfig;
use crate::io::frames::CameraFrame;
use crate::io::msgs::builtin_interfaces::Time;
use crate::io::msgs::diagnostic_msgs::DiagnosticStatus;

/// Control requests to the processor (the node's `~/relocalize` and `~/reset` services).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlCommand {
    /// Relocalize against stored keyframes: one camera by name, or all (`None`).
    Relocalize(Option<String>),
    /// Forget keyframes and tracking state: one camera by name, or all (`None`).
    Reset(Option<String>),
    /// Save the map being built to its path ([`super::map`]; mapping mode only).
    SaveMap,
}

impl ControlCommand {
    /// `relocalize` or `reset`.
    pub fn name(&self) -> &'static str {
        match self {
            ControlCommand::Relocalize(_) => "relocalize",
            ControlCommand::Reset(_) => "reset",
            ControlCommand::SaveMap => "save_map",
        }
    }

    /// The camera the request names, `None` for all cameras.
    pub fn camera(&self) -> Option<&str> {
        match self {
            ControlCommand::Relocalize(c) | ControlCommand::Reset(c) => c.as_deref(),
            ControlCommand::SaveMap => None,
        }
    }
}

/// What processing one frame produced: the messages to publish, in publishing order (the
/// pose first: it is what a consumer waits for), and the frame's statuses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameOutputs {
    /// The frame's stamp (every message of the frame carries it).
    pub stamp: Time,
    /// Messages for the output topics, each naming its row of the output table.
    pub messages: Vec<Published>,
    /// Status reports for `/diagnostics` (the node aggregates them at 1 Hz, replay writes one
    /// array per frame).
    pub diagnostics: Vec<DiagnosticStatus>,
    /// Typed summary of what happened, for adapters that aggregate statistics (not published).
    pub report: Option<FrameReport>,
}

impl FrameOutputs {
    /// The message for `output`, if this frame has one.
    pub fn message(&self, output: Output) -> Option<&OutputMessage> {
        self.messages
            .iter()
            .find(|p| p.output == output)
            .map(|p| &p.message)
    }
}

/// A processed frame in numbers (what `imd replay` sums up).
#[derive(Debug, Clone, PartialEq)]
pub struct FrameReport {
    /// Tracking state.
    pub state: TrackState,
    /// The frame became a keyframe.
    pub new_keyframe: bool,
    /// Matches against the keyframe.
    pub matches: usize,
    /// Pose inliers.
    pub inliers: usize,
    /// The published pose's scale (`None` without a pose).
    pub scale: Option<PoseScale>,
    /// Time from receiving the image to the end of processing, ms.
    pub latency_ms: f64,
    /// Milliseconds per named stage.
    pub stage_ms: Vec<(String, f64)>,
}

/// What the scheduler knows about a frame's camera when it hands the frame over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// Frames of this camera dropped so far because a newer one replaced them unprocessed.
    pub dropped: u64,
    /// Frames of this camera skipped so far to honour `node.max_rate_hz`.
    pub rate_skipped: u64,
}

/// Turns frames into outputs. Runs on a worker thread, one frame at a time, always the newest
/// frame of each camera.
pub trait FrameProcessor: Send {
    /// Process one frame. An `Err` is logged with the camera and topic by the adapter, which
    /// then goes on with the next frame.
    fn process(
        &mut self,
        frame: CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<FrameOutputs, PipelineError>;
    /// Handle a control request; returns status lines for `/diagnostics`.
    fn control(&mut self, command: ControlCommand) -> Vec<DiagnosticStatus>;
    /// The configuration changed at run time (a ROS parameter was set). Processors apply
    /// what they can live; the default ignores it.
    fn reconfigure(&mut self, _config: &ImdConfig) {}
}
