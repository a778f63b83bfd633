//! imd: the IMD learned image matcher (Stable Diffusion 2.1 UNet features + cross-image
//! prompts + LoFTR-style coarse/fine matching) as a library, a CLI and a ROS 2 node.
//!
//! Layers depend only downward: [`geometry`] and [`io::image`] know nothing of torch or ROS;
//! [`model`] knows torch, not ROS; [`pipeline`] composes model + geometry; `ros`, [`io::bag`]
//! and the binaries are thin adapters. Every user setting lives in [`config::ImdConfig`].

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
pub mod runtime;
pub mod train;

pub use error::{Error, Result};
