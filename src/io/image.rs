//! Image files and ROS `sensor_msgs/Image` payloads → RGB / grey images the model takes.

/// Errors decoding images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}
