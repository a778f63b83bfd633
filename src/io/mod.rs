//! Inputs and outputs: sensor image encodings, rosbag2 MCAP, match files and visualizations.

pub mod bag;
pub mod image;
pub mod matches;
