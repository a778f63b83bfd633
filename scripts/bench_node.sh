#!/usr/bin/env bash
# The node's own overhead, live on ROS 2: a 640x480 rgb8 Image (+ CameraInfo) published by an
# rclpy publisher (clock starts when publish() returns, so rclpy's Python → C conversion of the
# image is not counted) → the node's Odometry received by the same process, minus the pipeline's own
# time for that frame (`latency_ms` in the node's /diagnostics: image handed over by r2r →
# messages ready). What remains is DDS both ways, r2r's message conversions in and out, stamp
# pairing, scheduling and publishing. One frame at a time (no queueing), release build, demo
# model, shared-memory transport (config/fastdds_shm.xml).
#
# Usage: scripts/bench_node.sh [FRAMES]   (default 30; needs scripts/ros_prefix.sh or apt ROS)
#        IMD_PROFILE=debug scripts/bench_node.sh   (the test build, no release build)
# The conversion cost alone (r2r C structs ⇄ ours): cargo bench --features ros --bench pipeline -- ros_
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
frames="${1:-30}"
if [ -z "${ROS_DISTRO:-}" ]; then
  # shellcheck disable=SC1091
  . .ros/env.sh
fi
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-77}" FASTDDS_BUILTIN_TRANSPORTS=SHM
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$root/config/fastdds_shm.xml}"
python="$root/.ros/bin/python"
[ -x "$python" ] || python=python3
profile="${IMD_PROFILE:-release}"
if [ "$profile" = release ]; then
  cargo build --release --features ros --bin imd_matcher >&2
else
  cargo build --features ros --bin imd_matcher >&2
fi
out="$(mktemp -d)"
target/$profile/imd_matcher --ros-args --params-file config/matcher.yaml \
  -p model.model_dir:="$root/models/imd-tiny-synth" -p node.publish_debug_image:=false \
  >"$out/node.log" 2>&1 &
node=$!
trap 'kill -INT $node 2>/dev/null || true; rm -rf "$out"' EXIT
"$python" tests/ros/live_harness.py pace --frames "$frames" --with-diagnostics \
  --out "$out/pace.json" --node-pid "$node" --time-limit 600
"$python" - "$out/pace.json" <<'PY'
import json, statistics, sys
rec = json.load(open(sys.argv[1]))
recv = {tuple(o["stamp"]): o["t"] for o in rec["odometry"]}
rows = []
for p in rec["published"][1:]:  # frame 0 is the first keyframe (no matching)
    if p.get("latency_ms") is None:
        continue
    e2e = (recv[tuple(p["stamp"])] - p["t_sent"]) * 1e3
    rows.append((e2e, p["latency_ms"], e2e - p["latency_ms"]))
over = sorted(r[2] for r in rows)
print(f"bench_node: {len(rows)} frames 640x480 rgb8; end-to-end median "
      f"{statistics.median(r[0] for r in rows):.1f} ms, pipeline median "
      f"{statistics.median(r[1] for r in rows):.1f} ms; node overhead median "
      f"{statistics.median(over):.2f} ms, p90 {over[int(0.9 * (len(over) - 1))]:.2f} ms, "
      f"max {over[-1]:.2f} ms (target: median <= 2 ms)")
PY
