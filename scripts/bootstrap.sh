#!/usr/bin/env bash
# Provision what imd builds and tests with, idempotently:
#   .venv      project virtualenv with the pinned scripts/requirements.txt (torch==2.13.0, the
#              libtorch that tch 0.26 links against, plus the Python test oracles)
#   .libtorch  symlink to the venv's torch package; .cargo/config.toml points LIBTORCH at it
# Prints the environment for building outside this checkout (e.g. with colcon).
# Nothing is downloaded when everything is already in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
req="scripts/requirements.txt"
stamp=".venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($python --version 2>&1)" >&2
  "$python" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing $req into .venv (torch is ~4 GB with its CUDA libraries)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

torch_dir="$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)"
version="$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"
if [ "$version" != "2.13.0" ]; then
  echo "bootstrap: .venv has torch '$version', tch 0.26 needs 2.13.0; delete .venv and rerun" >&2
  exit 1
fi
ln -sfn "$torch_dir" .libtorch

if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: cargo not found; install Rust from https://rustup.rs" >&2
  exit 1
fi

cat <<ENV
# imd build environment (already applied inside this checkout by .cargo/config.toml):
export LIBTORCH="$torch_dir"
export LIBTORCH_CXX11_ABI=1
ENV
