#!/usr/bin/env bash
# Build the device-check carry folder here, for a lent GPU machine (scripts/device/README in
# the main README, "Device check"): a release `imd` linked against torch 2.11.0+cu130 (the
# torch of the lent machines), the demo model, two 640×480 images, a small bag, the paper-size
# weight manifests and the scripts that run there.
#
#     scripts/device/build.sh            # → out/device-carry/ (size printed, ≤ 64 MiB)
#
# Run by hand, not in CI: a 530 MB wheel download (cached in .whl/) and a full release build
# (~8 min on 2 cores from a clean clone; the build folder out/device-build/ is kept, so a
# rebuild only recompiles what changed). The result is recorded in scripts/device/LAST_BUILD.md.
#
# How: tch 0.26 targets libtorch 2.13; against 2.11's headers its generated C++ fails at 15
# wrappers imd never calls. A copy of torch-sys with those bodies throwing
# (scripts/device/patch_torch_sys.py) is patched in with `--config patch.crates-io…` in a
# throwaway copy of the committed checkout (the patch rewrites Cargo.lock there, not here),
# with LIBTORCH_BYPASS_VERSION_CHECK=1. The wheel is unpacked next to a link to the project
# venv's nvidia/ wheels (CUDA 13, as torch 2.13+cu130), so torch's own $ORIGIN rpaths find
# cudart & co. at link time and when the binary runs here (CUDA then reports unavailable).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
start=$(date +%s)
TORCH=2.11.0
py=.venv/bin/python
step() { printf '\n==> %s (%s)\n' "$*" "$(date +%H:%M:%S)" >&2; }

[ -x "$py" ] || scripts/bootstrap.sh >/dev/null
if ! git diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs scripts/device 2>/dev/null; then
  echo "note: uncommitted changes in src/ Cargo.* build.rs scripts/device are NOT in the build (it uses HEAD)" >&2
fi

step "torch $TORCH wheel (cu130, manylinux_2_28, cp311: the headers and libraries are the same for every Python)"
mkdir -p .whl
wheel="$(ls .whl/torch-$TORCH-cp311-cp311-manylinux_2_28_x86_64.whl 2>/dev/null || true)"
if [ -z "$wheel" ]; then
  # pip looks in PIP_FIND_LINKS (/opt/wheels) before PyPI.
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 311 \
    --platform manylinux_2_28_x86_64 -d .whl "torch==$TORCH"
  wheel="$(ls .whl/torch-$TORCH-cp311-cp311-manylinux_2_28_x86_64.whl)"
fi
wheel_sha="$(sha256sum "$wheel" | cut -d' ' -f1)"
echo "$wheel sha256 $wheel_sha" >&2

step "unpack torch (lib, include, share, version.py)"
site="$root/.whl/torch-$TORCH-${wheel_sha:0:12}/site-packages"
if [ ! -f "$site/torch/version.py" ]; then
  rm -rf "$site" && mkdir -p "$site"
  "$py" - "$wheel" "$site" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(("torch/lib/", "torch/include/", "torch/share/")) or n == "torch/version.py"]
    z.extractall(dest, names)
print(f"{len(names)} files", file=sys.stderr)
PY
fi
venv_site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn "$venv_site/nvidia" "$site/nvidia"
export LIBTORCH="$site/torch"
grep -E "^(__version__|git_version|cuda)" "$LIBTORCH/version.py" >&2

work="$root/out/device-build"
step "throwaway copy of HEAD ($(git rev-parse --short HEAD)) in $work/src, patched torch-sys"
rm -rf "$work/src" "$work/torch-sys.new"
mkdir -p "$work/src"
git archive HEAD | tar -x -C "$work/src"
registry_torch_sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/torch-sys-0.26.0 | head -1)"
if [ -z "$registry_torch_sys" ]; then
  (cd "$work/src" && cargo fetch --quiet)
  registry_torch_sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/torch-sys-0.26.0 | head -1)"
fi
cp -a "$registry_torch_sys" "$work/torch-sys.new"
chmod -R u+w "$work/torch-sys.new"
"$py" scripts/device/patch_torch_sys.py "$work/torch-sys.new"
# Keep an identical earlier copy (and its timestamps): torch-sys's C++ then is not recompiled.
if [ -d "$work/torch-sys" ] && diff -rq "$work/torch-sys" "$work/torch-sys.new" >/dev/null; then
  rm -rf "$work/torch-sys.new"
else
  rm -rf "$work/torch-sys" && mv "$work/torch-sys.new" "$work/torch-sys"
fi

step "cargo build --release --bin imd against torch $TORCH"
if [ -d "$work/target/release" ]; then build_kind="incremental (out/device-build/target reused)"; else build_kind="clean (no build folder)"; fi
build_start=$(date +%s)
(
  cd "$work/src"
  LIBTORCH_BYPASS_VERSION_CHECK=1 LIBTORCH_CXX11_ABI=1 CARGO_TARGET_DIR="$work/target" \
    cargo build --release --bin imd \
    --config "patch.crates-io.torch-sys.path=\"$work/torch-sys\""
)
build_s=$(( $(date +%s) - build_start ))
bin="$work/target/release/imd"
readelf -d "$bin" | grep -q 'NEEDED.*libtorch_cuda.so' || { echo "libtorch_cuda.so is not NEEDED by $bin" >&2; exit 1; }
"$bin" info >&2

step "carry folder out/device-carry"
carry="$root/out/device-carry"
rm -rf "$carry" && mkdir -p "$carry/images" "$carry/bag" "$carry/models" "$carry/manifest"
cp "$bin" "$carry/imd"
strip "$carry/imd"
cp scripts/device/run.sh scripts/device/run.py scripts/device/make_weights.py "$carry/"
cp -r models/imd-tiny-synth "$carry/models/"
rm -f "$carry/models/imd-tiny-synth/train_log.csv"
cp tests/fixtures/eval/scannet/scans_test/scene0800_00/color/0.jpg "$carry/images/a.jpg"
cp tests/fixtures/eval/scannet/scans_test/scene0800_00/color/15.jpg "$carry/images/b.jpg"
cp tests/fixtures/replay/sequence.mcap "$carry/bag/"
cp scripts/device/manifest/*.json "$carry/manifest/"
chmod +x "$carry/run.sh" "$carry/imd"
binary_bytes=$(stat -c %s "$carry/imd")
carry_bytes=$(du -sb "$carry" | cut -f1)
"$py" - "$carry/BUILD.json" "$(git rev-parse HEAD)" "$TORCH" "$wheel_sha" "$binary_bytes" <<'PY'
import json, sys, datetime
path, commit, torch, sha, size = sys.argv[1:]
json.dump({"commit": commit, "torch": torch, "wheel_sha256": sha, "binary_bytes": int(size),
           "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
          open(path, "w"), indent=1)
PY
carry_mib=$(awk -v b="$carry_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
binary_mib=$(awk -v b="$binary_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$carry_bytes" -gt $((64 * 1024 * 1024)) ]; then
  echo "carry folder is $carry_mib MiB: over the 64 MiB limit" >&2
  exit 1
fi
total_s=$(( $(date +%s) - start ))

cat > scripts/device/LAST_BUILD.md <<MD
# Last \`scripts/device/build.sh\` run

Written by the script; commit it with the change that made the build.

| | |
|---|---|
| date (UTC) | $(date -u +'%Y-%m-%d %H:%M') |
| commit built | $(git rev-parse --short HEAD) |
| torch wheel | torch-$TORCH-cp311-cp311-manylinux_2_28_x86_64.whl, sha256 \`$wheel_sha\` |
| stripped \`imd\` | $binary_mib MiB ($binary_bytes bytes), \`libtorch_cuda.so\` NEEDED |
| carry folder | $carry_mib MiB ($carry_bytes bytes, limit 64 MiB) |
| cargo build --release | $build_s s, $build_kind |
| whole script | $total_s s |
MD
step "done: out/device-carry is $carry_mib MiB (binary $binary_mib MiB); build $build_s s, total $total_s s"
echo "on the GPU machine: carry out/device-carry, then: out/device-carry/run.sh  (report in \$OUT or ./device-report/)" >&2
