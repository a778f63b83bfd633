//! rosbag2 MCAP files: reading camera topics and writing outputs as CDR ROS 2 messages.

/// Errors reading or writing bags.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}
