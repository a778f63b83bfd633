#!/usr/bin/env bash
# Replay benchmark on CPU: throughput, per-stage latency and memory over a long replay.
#
#   scripts/bench/bench_replay.sh [FRAMES] [OUT_DIR] [-- extra `imd replay` flags]
#
# Writes a single-camera 160x120 rgb8 bag of FRAMES frames (default 5000) with
# scripts/fixtures/make_replay_fixtures.py --long-bag, then replays it with the release `imd` and
# the random-weight model tests/fixtures/matching/random_model (the real forward pass at SD2.1's
# structure with tiny channel counts: a small config, not IMD's real cost) in two tracker
# configurations:
#   lost:     the default tracker; random weights never verify a pose, so every frame is lost
#             and relocalizes (1 + relocalization_top_k = 4 pair matches per frame): the worst
#             case for the pipeline, with keyframes churning through the bounded store;
#   tracking: relocalization off (1 pair match per frame, as while tracking).
# Prints frames/s, latency, median stage times, and resident memory sampled every 100 frames
# (first / last / max) plus /usr/bin/time's peak RSS: memory must stay flat.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
frames="${1:-5000}"
out="${2:-/tmp/imd_bench_replay}"
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
export LIBTORCH="${LIBTORCH:-$root/.libtorch}"

cargo build --release --bin imd
bag="$out/long_$frames.mcap"
[ -f "$bag" ] ||
  .venv/bin/python scripts/fixtures/make_replay_fixtures.py --long-bag "$bag" --frames "$frames"

for mode in lost tracking; do
  reloc=true
  [ "$mode" = tracking ] && reloc=false
  cat > "$out/$mode.yaml" <<YAML
imd_matcher:
  ros__parameters:
    model:
      resize_long_side: 0
      num_threads: 1
    pose:
      max_iterations: 1000
    tracker:
      relocalize_when_lost: $reloc
    cameras:
      names: [cam0]
      image_topics: [/cam0/image_raw]
      camera_info_topics: [/cam0/camera_info]
      optical_frames: [""]
    node:
      publish_debug_image: true
YAML
  echo "== $mode: imd replay $bag ($frames frames)" >&2
  /usr/bin/time -v target/release/imd replay "$bag" --config "$out/$mode.yaml" \
    --model tests/fixtures/matching/random_model --out "$out/$mode.mcap" \
    --summary-json "$out/$mode.json" "$@" 2> "$out/$mode.stderr" || {
      tail -20 "$out/$mode.stderr" >&2; exit 1; }
  .venv/bin/python - "$out/$mode.json" "$out/$mode.stderr" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read())
mem = s["memory_mib"]
print(f"frames {s['frames_processed']} in {s['wall_s']:.1f} s: {s['frames_per_s']:.2f} frames/s; "
      f"states {s['states']}; dropped {s['dropped']}")
l = s["latency_ms"]
print(f"latency ms: median {l['median']:.1f}, p90 {l['p90']:.1f}, max {l['max']:.1f}")
print("median stage ms: " + ", ".join(f"{k[:-3]} {v:.2f}" for k, v in s["stage_median_ms"].items() if v > 0))
if mem:
    first, last = mem[0], mem[-1]
    later = [m for n, m in mem if n >= mem[len(mem) // 5][0]]
    print(f"resident MiB: at {first[0]} frames {first[1]:.1f}, at {last[0]} frames {last[1]:.1f}, "
          f"max {max(m for _, m in mem):.1f}; after the first 20 %: min {min(later):.1f} max {max(later):.1f}")
if peak:
    print(f"peak RSS (time -v): {int(peak.group(1)) / 1024:.1f} MiB")
print("outputs: " + ", ".join(f"{k} {v}" for k, v in s["outputs"].items()))
PY
done
