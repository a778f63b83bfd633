#!/usr/bin/env bash
# The whole test suite on a fresh clone: provisions what it needs (scripts/bootstrap.sh), then
# lints, builds and runs every test, including the ROS layer against r2r's doc-only bindings.
# CI (.ci/run) runs exactly this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*" >&2; }

step "bootstrap (project venv with torch==2.13.0 and the Python test oracles)"
scripts/bootstrap.sh >/dev/null
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

step "format"
cargo fmt --check

step "clippy"
cargo clippy --all-targets -- -D warnings
cargo clippy --features ros-doc-only --all-targets -- -D warnings

step "tests"
cargo test --all-targets
cargo test --doc

step "ROS layer (r2r doc-only bindings: type-check the node, unit-test conversions)"
cargo check --features ros-doc-only --all-targets
cargo test --features ros-doc-only --lib ros::

step "Python scripts and launch file compile"
.venv/bin/python -m py_compile launch/matcher.launch.py models/*.py scripts/*.py
find launch models scripts -name __pycache__ -type d -prune -exec rm -rf {} +

step "imd info from the built binary, with no environment set"
env -i "$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/imd" info

printf '\nall tests passed\n' >&2
