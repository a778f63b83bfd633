//! `imd`: match images, estimate poses, replay ROS 2 bags, evaluate and train.
//!
//! Each subcommand lives in its own file and only parses, calls the library and prints.

mod bag;
mod eval;
mod features;
mod homography;
mod imim;
mod info;
mod map;
mod match_bench;
mod match_cmd;
mod memory;
mod model_args;
mod pnp;
mod pose;
mod replay;
mod train;

use std::process::ExitCode;

/// A command that ran to its end but must not report success (data lost, batch lines
/// failed): its output is complete; the exit code says what went wrong.
#[derive(Debug)]
pub struct Incomplete {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl Incomplete {
    /// Exit code for "finished, but part of the input was lost or failed".
    pub const PARTIAL: u8 = 3;
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Incomplete {}

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "imd", version, about = "IMD learned image matcher", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print versions, libtorch and CUDA availability.
    Info(info::Args),
    /// Write the SD UNet features of one image (tensor `features`) to a safetensors file.
    Features(features::Args),
    /// Build the IMIM multi-instance benchmark from BURST annotations.
    Imim(imim::Args),
    /// Match two images; writes x0,y0,x1,y1,confidence in original pixels.
    Match(match_cmd::Args),
    /// Relative pose (essential / homography / rotation) from pixel matches.
    Pose(pose::Args),
    /// Homography from pixel matches.
    Homography(homography::Args),
    /// Metric absolute pose (PnP) from keyframe 3-D points and current-image pixels.
    Pnp(pnp::Args),
    /// Train IMD from a YAML config; writes a weights folder `imd match` loads.
    Train(train::Args),
    /// Evaluate a weights folder on a benchmark (pose, homography, IMIM, synthetic).
    Eval(eval::Args),
    /// Run the matcher node's pipeline on a rosbag2 bag (directory or file, MCAP or sqlite3);
    /// write its outputs as a bag.
    Replay(replay::Args),
    /// Saved keyframe maps: `imd map build BAG --out MAP` (mapping run), `imd map info MAP`.
    Map(map::Args),
    /// Inspect rosbag2 bags (`imd bag info PATH`: topics, types, counts, storage, files).
    Bag(bag::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(args),
        Command::Features(args) => features::run(args),
        Command::Imim(args) => imim::run(args),
        Command::Match(args) => match_cmd::run(args),
        Command::Pose(args) => pose::run(args),
        Command::Homography(args) => homography::run(args),
        Command::Pnp(args) => pnp::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Bag(args) => bag::run(args),
        Command::Map(args) => map::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            match err.downcast_ref::<Incomplete>() {
                Some(i) => ExitCode::from(i.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}
