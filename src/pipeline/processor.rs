//! [`TrackerProcessor`]: the [`FrameProcessor`] the node and `imd replay` run — decode, track,
//! build messages.

use std::time::Instant;

use super::contract::{ControlCommand, FrameOutputs, FrameProcessor, ScheduleInfo};
use super::matcher::PairMatcher;
use super::messages::{track_messages, MessageContext};
use super::metric::{attach_metric, MetricOptions};
use super::topics::Output;
use super::{Frame, PipelineError, TrackOutput, Tracker};
use crate::config::{CameraConfig, ImdConfig, NodeConfig};
use crate::io::frames::CameraFrame;
use crate::io::msgs::diagnostic_msgs::{DiagnosticStatus, KeyValue};
use crate::model::ImdMatcher;

/// Decodes each [`CameraFrame`], tracks it and turns the [`TrackOutput`] into messages.
#[derive(Debug)]
pub struct TrackerProcessor<M: PairMatcher> {
    tracker: Tracker<M>,
    cameras: Vec<CameraConfig>,
    node: NodeConfig,
}

impl TrackerProcessor<ImdMatcher> {
    /// Load the IMD matcher from `config.model` and build the processor for `cameras`
    /// ([`ImdConfig::cameras`]).
    pub fn load(config: &ImdConfig, cameras: Vec<CameraConfig>) -> Result<Self, PipelineError> {
        let matcher = ImdMatcher::load(&config.model)?;
        Self::new(matcher, config, cameras)
    }
}

impl<M: PairMatcher> TrackerProcessor<M> {
    /// A processor tracking `cameras` (resolved once by the caller, [`ImdConfig::cameras`])
    /// with `matcher` under `config` (tracker, pose, node).
    pub fn new(
        matcher: M,
        config: &ImdConfig,
        cameras: Vec<CameraConfig>,
    ) -> Result<Self, PipelineError> {
        let mut tracker = Tracker::new(matcher, config.tracker.clone(), config.pose.clone())?;
        tracker.set_metric_options(MetricOptions::of(config))?;
        tracker.set_integrity(config.integrity.clone())?;
        Ok(TrackerProcessor {
            tracker,
            cameras,
            node: config.node.clone(),
        })
    }

    /// The tracker.
    pub fn tracker(&self) -> &Tracker<M> {
        &self.tracker
    }

    /// The tracker, mutably.
    pub fn tracker_mut(&mut self) -> &mut Tracker<M> {
        &mut self.tracker
    }

    /// Decode and track one frame; returns the tracker output and the messages.
    pub fn track_frame(
        &mut self,
        frame: &CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<(TrackOutput, FrameOutputs), PipelineError> {
        let camera = self.cameras.get(frame.camera);
        let optical = camera.and_then(|c| c.optical_frame.as_deref());
        let mut decoded = Frame::from_camera_frame(frame, optical)?;
        if let Some(camera) = camera {
            attach_metric(&mut decoded, frame, camera)?;
        }
        let out = self.tracker.track(decoded)?;
        let ctx = MessageContext {
            publish_tf: Output::Tf.topic().enabled_by.enabled(&self.node),
            publish_debug_image: Output::DebugImage.topic().enabled_by.enabled(&self.node),
            latency_ms: frame.received.elapsed().as_secs_f64() * 1e3,
            dropped_frames: schedule.dropped,
            rate_skipped: schedule.rate_skipped,
            counters: self.tracker.counters(),
            lost_output: self.tracker.integrity().lost_output,
            lost_error_frames: self.tracker.integrity().lost_error_frames,
        };
        let messages = track_messages(&out, &ctx);
        Ok((out, messages))
    }
}

impl<M: PairMatcher> FrameProcessor for TrackerProcessor<M> {
    fn process(
        &mut self,
        frame: CameraFrame,
        schedule: &ScheduleInfo,
    ) -> Result<FrameOutputs, PipelineError> {
        let (_, messages) = self.track_frame(&frame, schedule)?;
        Ok(messages)
    }

    fn control(&mut self, command: ControlCommand) -> Vec<DiagnosticStatus> {
        let start = Instant::now();
        let what = command.name();
        let camera = command.camera().map(str::trim);
        let payload = camera.unwrap_or("");
        let known = camera.is_none_or(|c| self.cameras.iter().any(|k| k.name == c));
        let (level, message) = if !known {
            (
                DiagnosticStatus::WARN,
                format!(
                    "{what}: no camera named `{payload}`; expected one of [{}] or an empty \
                     string for all cameras",
                    self.cameras
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        } else {
            match command {
                ControlCommand::Relocalize(_) => {
                    let n = self.tracker.request_relocalization(camera);
                    (
                        DiagnosticStatus::OK,
                        format!("relocalize: requested for {n} camera(s) on their next frame"),
                    )
                }
                ControlCommand::Reset(_) => {
                    let n = self.tracker.reset(camera);
                    (
                        DiagnosticStatus::OK,
                        format!("reset: {n} keyframe(s) forgotten"),
                    )
                }
            }
        };
        if level == DiagnosticStatus::OK {
            log::info!("{message}");
        } else {
            log::warn!("{message}");
        }
        vec![DiagnosticStatus {
            level,
            name: "imd_matcher: control".into(),
            message,
            hardware_id: String::new(),
            values: vec![
                KeyValue::new("request", what),
                KeyValue::new("camera", payload),
                KeyValue::new(
                    "handled_ms",
                    format!("{:.3}", start.elapsed().as_secs_f64() * 1e3),
                ),
            ],
        }]
    }

    fn reconfigure(&mut self, config: &ImdConfig) {
        if let Err(e) = self
            .tracker
            .set_config(config.tracker.clone(), config.pose.clone())
        {
            log::error!("new tracker/pose parameters rejected: {e}");
        }
        if let Err(e) = self.tracker.set_metric_options(MetricOptions::of(config)) {
            log::error!("new absolute_pose/depth/stereo parameters rejected: {e}");
        }
        if let Err(e) = self.tracker.set_integrity(config.integrity.clone()) {
            log::error!("new integrity parameters rejected: {e}");
        }
        self.node = config.node.clone();
    }
}
