//! `imd_matcher`: the ROS 2 node (feature `ros`). All logic lives in `imd::ros`.
//!
//! Usage: `ros2 run imd imd_matcher --ros-args --params-file config/matcher.yaml`
//! (or `-p cameras.image_topics:=[/cam/image_raw] -p cameras.camera_info_topics:=[/cam/camera_info]`).

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match imd::ros::run() {
        // The ROS side is torn down; a frame still in flight on the worker is not waited for.
        Ok(()) => imd::ros::exit_now(0),
        Err(err) => {
            // Print the whole cause chain: r2r errors wrap rcl's reasons.
            eprintln!(
                "imd_matcher: error: {}",
                anyhow::Error::new(err)
                    .chain()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(": ")
            );
            ExitCode::FAILURE
        }
    }
}
