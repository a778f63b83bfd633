#!/usr/bin/env bash
# Long seeded mutation fuzzing of the bag reader, the CDR decoder, the image decoders,
# metadata.yaml parsing, the sqlite3 storage reader and bounded zstd payload decompression
# (tests/it/fuzz.rs, stable Rust, no cargo-fuzz): MINUTES per target (default 1), seed SEED
# (default: the clock); TARGETS (comma-separated: bag,cdr,image,meta,zstd,sqlite; default all). Prints per target: iterations, panics, inputs accepted, seconds and
# peak RSS; exits non-zero if any input panicked (those inputs are saved under
# target/fuzz-crashes/ for regression cases).
#
#   scripts/fuzz.sh [MINUTES] [SEED] [TARGETS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
minutes="${1:-1}"
seconds="$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')"
export IMD_FUZZ_SECONDS="$seconds"
if [[ $# -ge 2 ]]; then
  export IMD_FUZZ_SEED="$2"
fi
if [[ $# -ge 3 ]]; then
  export IMD_FUZZ_TARGETS="$3"
fi
export RUST_LOG="${RUST_LOG:-off}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
# With the project's ROS prefix, build as scripts/test.sh does (`--features ros`), so the test
# binary and its dependencies are reused instead of built a second time.
features=()
if [ -f .ros/env.sh ] && [ -z "${ROS_DISTRO:-}" ]; then
  # shellcheck disable=SC1091
  . .ros/env.sh
fi
[ -n "${ROS_DISTRO:-}" ] && features=(--features ros)
cargo test "${features[@]}" --test it -- --exact fuzz::long --ignored --nocapture >"$log" 2>&1
rc=$?
set -e
grep -E '^(FUZZ|fuzz:|fuzz [a-z]+ +[0-9]|test result|thread|error)' "$log" || tail -20 "$log"
exit "$rc"
