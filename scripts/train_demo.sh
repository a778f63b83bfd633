#!/usr/bin/env bash
# Reproduce the demo model models/imd-tiny-synth from scratch, on CPU:
#   1. scripts/demo_photos.py: scikit-image's photos → out/photos/{train,heldout};
#   2. scripts/make_demo_backbone.py: the freshly initialised tiny SD2.1-structured backbone
#      (diffusers / transformers initialisation, seed 0) → out/demo-init;
#   3. imd train --config config/train_demo.yaml (seed 0, 1 libtorch thread, 1200 steps;
#      about 30 min on an idle core, longer on a shared machine) → out/imd-tiny-synth;
#   4. copy the weights folder (without checkpoints and log) to models/imd-tiny-synth and
#      record the training log next to it;
#   5. imd eval homography-synth on the held-out photos (the numbers in the model README).
# Pass --resume to continue an interrupted run from out/imd-tiny-synth/checkpoints/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/bootstrap.sh >/dev/null
cargo build --release --quiet --bin imd
imd="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/imd"

resume=()
if [ "${1:-}" = "--resume" ]; then
  resume=(--resume-last)
else
  .venv/bin/python scripts/demo_photos.py out/photos
  .venv/bin/python scripts/make_demo_backbone.py out/demo-init --seed 0 >/dev/null
  rm -rf out/imd-tiny-synth
fi
"$imd" train --config config/train_demo.yaml "${resume[@]}"

dst=models/imd-tiny-synth
mkdir -p "$dst"
for part in imd.yaml heads.safetensors unet vae image_encoder; do
  rm -rf "${dst:?}/$part"
  cp -r "out/imd-tiny-synth/$part" "$dst/$part"
done
cp out/imd-tiny-synth/train_log.csv "$dst/train_log.csv"
"$imd" eval homography-synth --images out/photos/heldout --model "$dst" --pairs 100 --seed 0 \
  --width 256 --height 192 --out out/imd-tiny-synth-eval.json
