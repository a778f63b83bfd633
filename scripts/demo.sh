#!/usr/bin/env bash
# The README's main job: match two bundled photos with the demo model and draw the matches.
#
# Bootstraps the project (scripts/bootstrap.sh: venv with scikit-image, libtorch), builds
# `imd` in release mode, and runs `imd match` with models/imd-tiny-synth on scikit-image's
# motorcycle stereo pair (Middlebury 2014; both photos are held out from the demo model's
# training). Writes out/demo_matches.csv and out/demo_matches.png and prints one line: the match
# count, and how many matches agree with Middlebury's ground-truth disparity within 3 px.
#
# models/imd-tiny-synth is a DEMO model (tiny, trained on CPU on synthetic homographies), not
# the paper's weights: see models/imd-tiny-synth/README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/bootstrap.sh >/dev/null
cargo build --release --quiet --bin imd
imd="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/imd"

data="$(.venv/bin/python -c 'import pathlib, skimage; print(pathlib.Path(skimage.__file__).parent / "data")')"
left="$data/motorcycle_left.png"
right="$data/motorcycle_right.png"
mkdir -p out
RUST_LOG=error "$imd" match "$left" "$right" --model models/imd-tiny-synth --resize 320 \
  --out out/demo_matches.csv --viz out/demo_matches.png 2>out/demo_match.log

.venv/bin/python - "$data/motorcycle_disp.npz" out/demo_matches.csv <<'PY'
import sys
import numpy as np
disp = np.load(sys.argv[1])["arr_0"]  # left-image disparity, inf = unknown
m = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1, ndmin=2)
n = len(m)
if n == 0:
    print("imd demo: 0 matches (see out/demo_match.log)")
    sys.exit(1)
x = np.clip(np.round(m[:, 0]).astype(int), 0, disp.shape[1] - 1)
y = np.clip(np.round(m[:, 1]).astype(int), 0, disp.shape[0] - 1)
d = disp[y, x]
known = np.isfinite(d)
good = known & (np.abs((m[:, 0] - m[:, 2]) - d) < 3) & (np.abs(m[:, 1] - m[:, 3]) < 3)
print(f"imd demo: {n} matches on the motorcycle stereo pair, {good.sum()}/{known.sum()} "
      f"({100 * good.sum() / max(known.sum(), 1):.0f} %) within 3 px of the ground-truth disparity; "
      f"wrote out/demo_matches.csv and out/demo_matches.png")
PY
