//! `imd_matcher`: the ROS 2 node (feature `ros`). All logic lives in `imd::ros`.
fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    std::process::ExitCode::SUCCESS
}
