//! imd: the IMD learned image matcher (Stable Diffusion 2.1 UNet features + cross-image prompts
//! + LoFTR-style coarse/fine matching) as a library, a CLI and a ROS 2 node.
//!
//! Layers depend only downward, with no module cycles:
//! 1. [`geometry`] (relative pose, homography, metric absolute pose from depth-lifted or
//!    stereo-triangulated points) knows nothing of torch, ROS or files;
//! 2. [`io`] holds formats only (images, the ROS message model, CDR, rosbag2 bags with their
//!    directory, MCAP / sqlite3 storage and compression, camera frames, match files);
//!    [`model`] is the network in torch behind the backbone seam
//!    [`model::source::FeatureSource`], with its one forward pass in [`model::matcher::forward`]
//!    and what the build runs on ([`model::runtime`]: device, precision, libtorch, CUDA);
//!    [`data`] reads datasets;
//! 3. [`config`] ([`config::ImdConfig`], every user setting) builds on the sections of those
//!    layers; [`train`] and [`eval`] use the model's forward pass and the data;
//! 4. [`pipeline`] owns the frame-processing contract ([`pipeline::FrameProcessor`]) and
//!    composes model + geometry into tracking;
//! 5. `ros` (the node) and the binaries are thin adapters over the pipeline.
//!
//! Each layer returns its own error type; [`Error`] gathers them for callers that use several.

pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod geometry;
pub mod io;
pub mod model;
pub mod pipeline;
#[cfg(feature = "ros")]
pub mod ros;
pub mod train;

pub use error::{Error, Result};
