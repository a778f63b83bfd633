#!/usr/bin/env bash
# The node under a soak, live on ROS 2: two cameras publishing 640x480 frames at RATE Hz while
# parameters (valid and invalid, alternating, model.* among them) and the control services
# (~/relocalize, ~/reset, per camera) are called as fast as the node answers, for DURATION
# seconds. The node's resident memory is sampled every 0.25 s by the harness; the report gives
# its growth after the first minute (flat memory = no leak per call or frame), the calls
# answered and the frames tracked.
#
# Usage: scripts/bench/bench_node_soak.sh [DURATION_S] [RATE_HZ]   (defaults 300, 5; needs
#        scripts/ros_prefix.sh or an apt ROS 2)
#        IMD_PROFILE=debug scripts/bench/bench_node_soak.sh 60   (the test build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
duration="${1:-300}"
rate="${2:-5}"
# shellcheck source=scripts/lib/node.sh
. scripts/lib/node.sh
node_env 78
out="$(mktemp -d)"
start_node "$out" \
  -p "cameras.names:=[cam0, cam1]" \
  -p "cameras.image_topics:=[/cam0/image_raw, /cam1/image_raw]" \
  -p "cameras.camera_info_topics:=[/cam0/camera_info, /cam1/camera_info]" \
  -p "cameras.optical_frames:=['', '']"
"$python" tests/ros/live_harness.py soak --duration "$duration" --rate "$rate" \
  --out "$out/soak.json" --node-pid "$node" --time-limit "$((duration + 120))"
"$python" - "$out/soak.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss = r["rss_kib"]
c = r["soak"]
first = [k for t, k in rss if t <= 60] or [rss[0][1]]
after = [k for t, k in rss if t > 60]
print(f"soak: {c['frames']} frame pairs published, {r['odometry_received']} odometry received, "
      f"{c['param_calls']} parameter sets ({c['param_accepted']} accepted), "
      f"{c['service_calls']} service calls ({c['service_errors']} errors)")
print(f"node RSS: start {rss[0][1] / 1024:.0f} MiB, max in the first minute "
      f"{max(first) / 1024:.0f} MiB, max after {max(after or first) / 1024:.0f} MiB, "
      f"end {rss[-1][1] / 1024:.0f} MiB, growth after the first minute "
      f"{(max(after or first) - max(first)) / 1024:+.1f} MiB over {rss[-1][0]:.0f} s")
PY
