//! The r2r ROS 2 node (feature `ros`): parameters, subscriptions, services,
//! publishers and message conversions. Everything of substance is ROS-free and lives in
//! [`crate::io`]; this layer converts and wires.
//!
//! - [`msgs`]: r2r message structs ⇄ [`crate::io::msgs`].
//! - [`params`]: ROS parameters ⇄ [`crate::config::ImdConfig`].
//! - [`node`]: the `imd_matcher` node ([`run`], [`run_with`]).

pub mod msgs;
pub mod node;
pub mod params;

pub use node::{convert_to_native, exit_now, run, run_with, MakeProcessor, NodeError};
