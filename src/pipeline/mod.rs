//! Frames → keyframe tracking → matches + relative poses. No ROS types.

use serde::{Deserialize, Serialize};

/// Errors of the tracking pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Other(String),
}

/// Tracker configuration (placeholder until the pipeline module lands).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {}
