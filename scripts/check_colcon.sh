#!/usr/bin/env bash
# The package as ROS users get it: `colcon build` (colcon-ros-cargo + cargo-ament-build from
# PyPI) of this checkout in a throw-away workspace, the install space checked, then the node
# started with the command line that launch/matcher.launch.py builds (tests/ros/check_launch.py;
# `ros2 launch` itself is not on PyPI) and served three frames by the live harness.
#
# Needs a sourced ROS 2 (`. .ros/env.sh` or apt) with colcon + colcon-ros-cargo, and the debug
# build of `imd_matcher` (`cargo build --features ros`): the workspace's build folder for imd
# is this checkout's target/, so colcon reuses it instead of building everything again.
#
# Usage: scripts/check_colcon.sh [--keep]   (workspace under /tmp, removed unless --keep)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${IMD_ROS_PYTHON:-$(command -v python3)}"
[ -x "$root/.ros/bin/python" ] && python="${IMD_ROS_PYTHON:-$root/.ros/bin/python}"
target="$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
  "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

ws="$(mktemp -d /tmp/imd-colcon.XXXXXX)"
cleanup() { [ "${1:-}" = "--keep" ] || rm -rf "$ws"; }
trap 'cleanup "${1:-}"' EXIT
mkdir -p "$ws/src" "$ws/build"
ln -s "$root" "$ws/src/imd"
ln -s "$target" "$ws/build/imd"

cd "$ws"
echo "check_colcon: colcon build in $ws" >&2
colcon build --packages-select imd --cargo-args --features ros >"$ws/colcon.log" 2>&1 ||
  { cat "$ws/colcon.log" >&2; exit 1; }

for f in lib/imd/imd_matcher share/imd/launch/matcher.launch.py share/imd/config/matcher.yaml \
  share/imd/package.xml share/ament_index/resource_index/packages/imd; do
  if [ ! -e "install/imd/$f" ]; then
    echo "check_colcon: install space lacks $f" >&2
    find install -maxdepth 4 >&2
    exit 1
  fi
done
echo "check_colcon: install space holds lib/imd/imd_matcher, share/imd/{launch,config,package.xml}" >&2

# The launch file's command line, with the demo model, run for real.
"$python" "$root/tests/ros/check_launch.py" --install "$ws/install/imd" --tmpdir "$ws" \
  model_dir:="$root/models/imd-tiny-synth" >"$ws/launch.json"
"$python" "$root/tests/ros/run_launched.py" "$ws/launch.json" --install "$ws/install/imd"
