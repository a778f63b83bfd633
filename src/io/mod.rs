//! Formats: sensor image encodings, ROS message model, rosbag2 MCAP, camera frames and stream
//! synchronization, match files and visualizations. Nothing here knows the pipeline, the
//! configuration or torch.

pub mod bag;
pub mod camera_sync;
pub mod frames;
pub mod image;
pub mod matches;
pub mod msgs;
pub mod paths;
pub mod sync;
pub mod viz;
