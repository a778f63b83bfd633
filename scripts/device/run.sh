#!/usr/bin/env bash
# The device check, one command (see run.py for the steps and the README's "Device check"):
#
#   ./run.sh                        # on the GPU machine, in the carry folder from build.sh
#   scripts/device/run.sh --cpu [--imd target/debug/imd]   # CPU dry run here (scripts/test.sh)
#
# Report: $OUT/device-report.json + $OUT/logs/ (./device-report/ when OUT is unset).
# Python: IMD_PYTHON, else /opt/torch/.venv/bin/python3 (the lent machines' torch 2.11), else
# the project's .venv, else python3 — it needs torch + safetensors for the random weights.
# Libraries: on a machine with /opt/torch, imd loads that torch's libraries (LD_LIBRARY_PATH;
# the binary's RUNPATH names the build machine's copy). IMD_TORCH_LIB overrides the folder.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gpu_torch=/opt/torch/.venv/lib/python3.12/site-packages/torch/lib
py="${IMD_PYTHON:-}"
if [ -z "$py" ]; then
  for c in /opt/torch/.venv/bin/python3 "$here/../../.venv/bin/python" "$here/.venv/bin/python"; do
    if [ -x "$c" ]; then py="$c"; break; fi
  done
fi
py="${py:-python3}"
lib="${IMD_TORCH_LIB:-}"
if [ -z "$lib" ] && [ -d "$gpu_torch" ]; then lib="$gpu_torch"; fi
if [ -n "$lib" ]; then export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
exec "$py" "$here/run.py" "$@"
