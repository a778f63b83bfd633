#!/usr/bin/env bash
# Bag read throughput, side by side: imd's reader (`imd bag check`: read + decode every camera
# message, as `imd replay` does) against PyPI `rosbags` (read + deserialize every message) on
# the same bags, in MCAP, sqlite3, MCAP with zstd chunks and rosbag2 per-message zstd.
#
#   scripts/bench/bench_bag.sh [MB] [OUT_DIR] [RUNS]
#
# Writes the bags (MB megabytes of 640x480 rgb8 images, default 200, under OUT_DIR, default
# /tmp/imd_bench_bag; not committed) with scripts/bench/make_rosbag2_bench.py, then reads each bag
# RUNS times (default 3) with both readers, alternating, after one warm-up read each (the page
# cache then holds the files: this measures parsing, decompression and decoding, not the
# disk). Prints per bag the median MB/s of image data of each and their ratio.
#
# IMD_BIN (default target/debug/imd, built here with the `ros` feature like every build of this
# crate: the dev profile is opt-level 1 for imd, 2 for dependencies; set IMD_BIN to a release
# build for release figures).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
mb="${1:-200}"
out="${2:-/tmp/imd_bench_bag}"
runs="${3:-3}"
imd="${IMD_BIN:-$root/target/debug/imd}"
if [ -z "${IMD_BIN:-}" ]; then
  # shellcheck disable=SC1091
  [ -f .ros/env.sh ] && . .ros/env.sh
  cargo build --features ros --bin imd
fi
[ -f "$out/sqlite3/metadata.yaml" ] ||
  .venv/bin/python scripts/bench/make_rosbag2_bench.py "$out" "$mb"

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mbs() { .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["image_mb_per_s"])'; }

printf '%-10s %9s %14s %16s %8s\n' bag "size MB" "imd MB/s" "rosbags MB/s" ratio
for bag in mcap sqlite3 mcap_zstd msg_zstd; do
  dir="$out/$bag"
  size=$(du -sm "$dir" | cut -f1)
  RUST_LOG=off "$imd" bag check --json "$dir" >/dev/null
  .venv/bin/python scripts/bench/bench_rosbags_read.py "$dir" >/dev/null
  ours=(); theirs=()
  for _ in $(seq "$runs"); do
    ours+=("$(RUST_LOG=off "$imd" bag check --json "$dir" | mbs)")
    theirs+=("$(.venv/bin/python scripts/bench/bench_rosbags_read.py "$dir" | mbs)")
  done
  a=$(printf '%s\n' "${ours[@]}" | median)
  b=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-10s %9s %14.1f %16.1f %7.2fx\n' "$bag" "$size" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')"
done
