# Shared by the node benchmarks (scripts/bench/bench_node.sh, scripts/bench/bench_node_soak.sh):
# source it after `cd "$root"`. It sources ROS 2 unless one is sourced, keeps DDS on this machine,
# builds `imd_matcher` (IMD_PROFILE=release, the default, or debug), and defines
#   python                 the interpreter with rclpy (.ros/bin/python, else python3)
#   start_node OUT ARGS…   start the node with config/matcher.yaml, the demo model, no debug
#                          image and ARGS (more `-p` overrides), logging to OUT/node.log; sets
#                          `node` (its pid) and stops it (SIGINT) and removes OUT on exit.
# Usage: node_env DOMAIN_ID (the benchmark's own default ROS_DOMAIN_ID).

node_env() {
  if [ -z "${ROS_DISTRO:-}" ]; then
    # shellcheck disable=SC1091
    . .ros/env.sh
  fi
  export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$1}" FASTDDS_BUILTIN_TRANSPORTS=SHM
  export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$root/config/fastdds_shm.xml}"
  python="$root/.ros/bin/python"
  [ -x "$python" ] || python=python3
  profile="${IMD_PROFILE:-release}"
  if [ "$profile" = release ]; then
    cargo build --release --features ros --bin imd_matcher >&2
  else
    cargo build --features ros --bin imd_matcher >&2
  fi
}

start_node() {
  local out="$1"
  shift
  "target/$profile/imd_matcher" --ros-args --params-file config/matcher.yaml \
    -p model.model_dir:="$root/models/imd-tiny-synth" -p node.publish_debug_image:=false \
    "$@" >"$out/node.log" 2>&1 &
  node=$!
  # shellcheck disable=SC2064  # expand now: the trap must name this node and folder
  trap "kill -INT $node 2>/dev/null || true; rm -rf '$out'" EXIT
}
