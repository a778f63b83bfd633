#!/usr/bin/env bash
# Reproduce the demo models on CPU.
#
#   scripts/train_demo.sh [--resume]        the first demo model, models/imd-tiny-synth:
#   1. scripts/data/demo_photos.py: scikit-image's photos → out/photos/{train,heldout};
#   2. scripts/fixtures/make_demo_backbone.py: the freshly initialised tiny SD2.1-structured
#      backbone (diffusers / transformers initialisation, seed 0) → out/demo-init;
#   3. imd train --config config/train_demo.yaml (seed 0, 1 libtorch thread, 1200 steps;
#      about 30 min on an idle core, longer on a shared machine) → out/imd-tiny-synth;
#   4. copy the weights folder (without checkpoints and log) to models/imd-tiny-synth and
#      record the training log next to it;
#   5. imd eval homography-synth on the held-out photos (the numbers in the model README).
#
#   scripts/train_demo.sh --v2 [--resume]   the second demo model (issue 20), fine-tuned from
#   the first: config/train_demo_v2.yaml (aggregated attention, full-circle rotation, scale
#   0.33–3, strong perspective, photometric changes, 20 % negative pairs, 5000 steps,
#   checkpoints every 200) → out/imd-tiny-synth-v2 (+ train_log.csv, checkpoints/), copied
#   (without checkpoints) to models/imd-tiny-synth-v2, then the same held-out evaluation →
#   out/imd-tiny-synth-v2-eval.json. It starts from out/imd-tiny-synth (the first model, step 3
#   above); when that folder is missing it is copied from the committed models/imd-tiny-synth
#   as long as that is still the first model.
#
# --resume continues an interrupted run from its checkpoints/last.safetensors.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

v2=false
resume=()
for arg in "$@"; do
  case "$arg" in
    --v2) v2=true ;;
    --resume) resume=(--resume-last) ;;
    *) echo "usage: scripts/train_demo.sh [--v2] [--resume]" >&2; exit 2 ;;
  esac
done

scripts/bootstrap.sh >/dev/null
cargo build --release --quiet --bin imd
imd="$(cargo metadata --format-version 1 --no-deps | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/imd"

if $v2; then
  if [ ${#resume[@]} -eq 0 ]; then
    .venv/bin/python scripts/data/demo_photos.py out/photos
    if [ ! -f out/imd-tiny-synth/heads.safetensors ]; then
      if grep -q "attention: aggregated" models/imd-tiny-synth/imd.yaml; then
        echo "models/imd-tiny-synth is no longer the first demo model: run scripts/train_demo.sh first" >&2
        exit 1
      fi
      mkdir -p out/imd-tiny-synth
      for part in imd.yaml heads.safetensors unet vae image_encoder; do
        cp -r "models/imd-tiny-synth/$part" "out/imd-tiny-synth/$part"
      done
    fi
    rm -rf out/imd-tiny-synth-v2
  fi
  mkdir -p out
  "$imd" train --config config/train_demo_v2.yaml "${resume[@]}"
  dst=models/imd-tiny-synth-v2
  mkdir -p "$dst"
  for part in imd.yaml heads.safetensors unet vae image_encoder train_log.csv; do
    rm -rf "${dst:?}/$part"
    cp -r "out/imd-tiny-synth-v2/$part" "$dst/$part"
  done
  "$imd" eval homography-synth --images out/photos/heldout --model "$dst" \
    --pairs 100 --seed 0 --width 256 --height 192 --out out/imd-tiny-synth-v2-eval.json
  exit 0
fi

if [ ${#resume[@]} -eq 0 ]; then
  .venv/bin/python scripts/data/demo_photos.py out/photos
  .venv/bin/python scripts/fixtures/make_demo_backbone.py out/demo-init --seed 0 >/dev/null
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
