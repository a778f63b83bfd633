//! Inputs and outputs: sensor image encodings, ROS message model, rosbag2 MCAP, camera stream
//! synchronization, match files and visualizations.

pub mod bag;
pub mod frames;
pub mod image;
pub mod matches;
pub mod msgs;
pub mod paths;
pub mod sync;
pub mod viz;
