#!/usr/bin/env bash
# The node's own overhead, live on ROS 2: a 640x480 rgb8 Image (+ CameraInfo) published by an
# rclpy publisher (clock starts when publish() returns, so rclpy's Python → C conversion of the
# image is not counted) → the node's Odometry received by the same process, minus the pipeline's own
# time for that frame (`latency_ms` in the node's /diagnostics: image handed over by r2r →
# messages ready). What remains is DDS both ways, r2r's message conversions in and out, stamp
# pairing, scheduling and publishing. One frame at a time (no queueing), release build, demo
# model, shared-memory transport (config/fastdds_shm.xml).
#
# Usage: scripts/bench/bench_node.sh [FRAMES]   (default 30; needs scripts/ros_prefix.sh or apt ROS)
#        IMD_PROFILE=debug scripts/bench/bench_node.sh   (the test build, no release build)
# The conversion cost alone (r2r C structs ⇄ ours): cargo bench --features ros --bench pipeline -- ros_
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
frames="${1:-30}"
# shellcheck source=scripts/lib/node.sh
. scripts/lib/node.sh
node_env 77
out="$(mktemp -d)"
start_node "$out"
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
