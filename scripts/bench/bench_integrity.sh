#!/usr/bin/env bash
# Integrity benchmark: does any matcher make the tracker publish a confident wrong pose?
#
#   scripts/bench/bench_integrity.sh [--oracles-only]
#
# Runs the node's processor (config/matcher.yaml: pose, tracker and integrity sections) over
# the six sequences of scripts/fixtures/make_integrity_fixtures.py (tests/fixtures/integrity/: jumps
# to views with no overlap and back, a fast in-place turn, a hand-held roll to 90°, black /
# over-exposed / uniform / blurred frames, a repeated texture, a static camera) with four
# matchers: the ground-truth oracle, two lying ones (the ground-truth matches of another pair
# of the sequence; near-identity matches) and the demo model models/imd-tiny-synth (minutes of
# CPU; skipped with --oracles-only). Scoring and definitions: tests/it/pipeline/integrity.rs.
#
# Prints one table: per sequence and matcher, verified poses, confident wrong poses (rotation
# error > 5°, or translation direction > 30° where the baseline exceeds 5 cm), recall (frames
# overlapping their keyframe by > 50 % that got a verified pose), relocalizations (and returns
# to stored places that relocalized), rotation NEES, and the checks' cost per frame.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
scripts/bootstrap.sh >/dev/null

tests=(pipeline::integrity::ground pipeline::integrity::lying)
ignored=()
[ "${1:-}" = "--oracles-only" ] || ignored=(pipeline::integrity::integrity_demo_model)

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${tests[@]}"; do
  cargo test --quiet --test it "$t" -- --nocapture --test-threads 1 >>"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
done
for t in "${ignored[@]}"; do
  cargo test --quiet --test it "$t" -- --ignored --nocapture >>"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
done
grep -m1 '^| sequence' "$log"
grep -m1 '^|---' "$log"
grep '^| ' "$log" | grep -v '^| sequence' | sort -t'|' -k3,3 -s
grep '^demo model:' "$log" || true
