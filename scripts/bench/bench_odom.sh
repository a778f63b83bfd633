#!/usr/bin/env bash
# Odometry benchmark: imd's metric odometry (RGB-D and stereo) vs OpenCV SIFT + PnP, on the
# rendered robot loop of scripts/fixtures/make_odom_fixtures.py, against ground truth.
#
#   scripts/bench/bench_odom.sh [--chain-keyframe-relative] [--release] [--coverage]
#                               [--stereo-option 'KEY: VALUE' ...] [--only rgbd|stereo] [OUT_DIR]
#
# Writes the two sequences (rgbd.mcap, stereo.mcap, odom.json: 284 frames, a 14.2 m loop with
# two half-turns, base_link ground truth, /tf_static mount) into OUT_DIR (default out/odom;
# skipped when already there), runs `imd replay` with the demo model models/imd-tiny-synth on CPU
# (cameras configured for depth / a right camera, model.resize_long_side 0: the 320x240 images
# as they are), then scripts/bench/bench_odom.py on each output: a table of ATE, end-point drift,
# RPE over 1 m, keyframe-relative metric errors and ms/frame for imd and the baseline (same
# frames, imd's keyframes), JSON in OUT_DIR/run/{rgbd,stereo}.json.
#
# --chain-keyframe-relative: chain imd's keyframe-relative /imd_matcher/odometry in the script
# (before the node publishes /imd_matcher/odom). IMD=path/to/imd overrides the binary.
# --stereo-option: a `stereo.*` setting for both runs, e.g. 'right_pixel_sigma_px: 0.15'.
# --only: run one of the two sequences.
# --coverage: then scripts/bench/bench_odom_stereo_coverage.py (exact-depth PnP on the matches a
# stereo keyframe can lift vs on all of them: is stereo's worst case the lookup's coverage?).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
chain=() profile=debug out=out/odom coverage=0 stereo_options="" sequences="rgbd stereo"
while [ $# -gt 0 ]; do
  case "$1" in
    --stereo-option) stereo_options+="
      $2"
      shift ;;
    --chain-keyframe-relative) chain=(--chain-keyframe-relative) ;;
    --release) profile=release ;;
    --coverage) coverage=1 ;;
    --only)
      case "$2" in rgbd | stereo) sequences="$2" ;; *) echo "--only: rgbd or stereo, not '$2'" >&2; exit 2 ;; esac
      shift ;;
    *) out="$1" ;;
  esac
  shift
done
export LIBTORCH="${LIBTORCH:-$root/.libtorch}"
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
target="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${IMD:-}" ]; then
  if [ "$profile" = release ]; then cargo build --release --bin imd; else cargo build --bin imd; fi
  IMD="$target/$profile/imd"
fi

mkdir -p "$out/run"
[ -f "$out/odom.json" ] || .venv/bin/python scripts/fixtures/make_odom_fixtures.py "$out"

for seq in $sequences; do
  if [ "$seq" = rgbd ]; then
    metric="      depth_topics: [/cam0/depth/image_raw]"
  else
    metric="      right_image_topics: [/cam0/right/image_raw/compressed]
      right_camera_info_topics: [/cam0/right/camera_info]"
  fi
  cat > "$out/run/$seq.yaml" <<YAML
imd_matcher:
  ros__parameters:
    model:
      resize_long_side: 0
    node:
      publish_debug_image: false
    cameras:
      names: [cam0]
      image_topics: [/cam0/image_raw/compressed]
      camera_info_topics: [/cam0/camera_info]
$metric${stereo_options:+
    stereo:$stereo_options}
YAML
  "$IMD" replay "$out/$seq.mcap" --config "$out/run/$seq.yaml" --model models/imd-tiny-synth \
    --out "$out/run/${seq}_out.mcap" >"$out/run/$seq.log" 2>&1 ||
    { tail -20 "$out/run/$seq.log" >&2; exit 1; }
  stereo=()
  [ "$seq" = stereo ] && stereo=(--stereo)
  .venv/bin/python scripts/bench/bench_odom.py --gt "$out/odom.json" --bag "$out/$seq.mcap" \
    --imd "$out/run/${seq}_out.mcap" --imd-log "$out/run/$seq.log" --json "$out/run/$seq.json" \
    "${stereo[@]}" "${chain[@]}"
done
[ "$coverage" = 1 ] && .venv/bin/python scripts/bench/bench_odom_stereo_coverage.py "$out" "$IMD"
exit 0
