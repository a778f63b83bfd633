#!/usr/bin/env python3
"""Convert LoFTR / Efficient LoFTR MegaDepth scene-info files to imd's JSON index.

The upstream scene infos (``scene_info_0.1_0.7/*.npz``, ``megadepth_test_1500_scene_info/*.npz``)
are pickled dicts despite the extension, with keys ``image_paths, depth_paths, intrinsics,
poses, pair_infos``: object arrays holding ``None`` for images in no pair, and ``pair_infos`` a
list of ``((i, j), overlap_score, central_matches)``. Rust cannot read pickles, so each file
becomes ``<out>/<stem>.json``::

    {"format": "imd.megadepth_scene_info.v1", "source": "<name>.npz",
     "image_paths": [str | null], "depth_paths": [str | null],
     "intrinsics": [3x3 | null], "poses": [4x4 world->camera | null],
     "pair_infos": [{"pair": [i, j], "overlap": float}]}

``central_matches`` is dropped (unused by training and evaluation).

With ``--convert-depth`` every referenced ``.h5`` depth map (dataset ``/depth``, float32) under
``--root`` is written, bit-exact, as a safetensors file holding one float32 tensor ``depth``
``[H, W]`` at the same relative path with the extension ``.safetensors`` under
``--depth-out`` (default: ``--root``), and ``depth_paths`` point to those files (relative to
the depth root). Existing outputs are kept unless ``--force``. Needs ``h5py`` (pinned in
scripts/requirements.txt).

Example (MegaDepth-1500)::

    .venv/bin/python scripts/data/convert_megadepth_index.py \\
        assets/megadepth_test_1500_scene_info/*.npz --out data/megadepth/index_1500
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np

FORMAT = "imd.megadepth_scene_info.v1"


def load_scene_info(path: Path) -> dict:
    """Read a scene info: a pickled dict (upstream) or a real .npz archive."""
    obj = np.load(path, allow_pickle=True)
    if isinstance(obj, np.lib.npyio.NpzFile):
        return {k: obj[k] for k in obj.files}
    if isinstance(obj, dict):
        return obj
    raise ValueError(f"{path}: neither a pickled dict nor an npz archive ({type(obj).__name__})")


def _maybe(value, shape):
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64).reshape(shape)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"non-finite matrix {arr.tolist()}")
    return arr.tolist()


def _path(value):
    if value is None:
        return None
    return str(value)


def convert_depth(h5_path: Path, out_path: Path, force: bool) -> None:
    import h5py
    from safetensors.numpy import save_file

    if out_path.exists() and not force:
        return
    with h5py.File(h5_path, "r") as f:
        depth = np.asarray(f["depth"], dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"{h5_path}: /depth has shape {depth.shape}, expected [H, W]")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    save_file({"depth": np.ascontiguousarray(depth)}, str(tmp))
    os.replace(tmp, out_path)


def convert(npz: Path, out_dir: Path, root: Path | None, depth_out: Path | None, force: bool) -> Path:
    info = load_scene_info(npz)
    missing = [k for k in ("image_paths", "depth_paths", "intrinsics", "poses", "pair_infos") if k not in info]
    if missing:
        raise ValueError(f"{npz}: missing keys {missing}")
    n = len(info["image_paths"])
    for key in ("depth_paths", "intrinsics", "poses"):
        if len(info[key]) != n:
            raise ValueError(f"{npz}: {key} has {len(info[key])} entries, image_paths {n}")
    pairs = []
    for k, entry in enumerate(info["pair_infos"]):
        (i, j), overlap = entry[0], entry[1]
        i, j = int(i), int(j)
        for idx in (i, j):
            if not (0 <= idx < n) or info["image_paths"][idx] is None:
                raise ValueError(f"{npz}: pair_infos[{k}] refers to image {idx} without entry")
        pairs.append({"pair": [i, j], "overlap": float(overlap)})

    depth_paths = [_path(p) for p in info["depth_paths"]]
    if root is not None:
        target_root = depth_out or root
        used = sorted({i for p in pairs for i in p["pair"]})
        for i in used:
            rel = depth_paths[i]
            if rel is None:
                raise ValueError(f"{npz}: image {i} is in a pair but has no depth path")
            src = root / rel
            dst_rel = str(Path(rel).with_suffix(".safetensors"))
            convert_depth(src, target_root / dst_rel, force)
            depth_paths[i] = dst_rel

    index = {
        "format": FORMAT,
        "source": npz.name,
        "image_paths": [_path(p) for p in info["image_paths"]],
        "depth_paths": depth_paths,
        "intrinsics": [_maybe(k, (3, 3)) for k in info["intrinsics"]],
        "poses": [_maybe(t, (4, 4)) for t in info["poses"]],
        "pair_infos": pairs,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = npz.name[: -len(".npz")] if npz.name.endswith(".npz") else npz.stem
    out = out_dir / f"{stem}.json"
    out.write_text(json.dumps(index))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz", nargs="+", type=Path, help="scene-info .npz files")
    ap.add_argument("--out", required=True, type=Path, help="folder for the <stem>.json indices")
    ap.add_argument("--convert-depth", action="store_true", help="also convert .h5 depth maps")
    ap.add_argument("--root", type=Path, help="MegaDepth root (holds phoenix/); needed with --convert-depth")
    ap.add_argument("--depth-out", type=Path, help="root for converted depth maps (default: --root)")
    ap.add_argument("--force", action="store_true", help="rewrite existing depth files")
    args = ap.parse_args(argv)
    if args.convert_depth and args.root is None:
        ap.error("--convert-depth needs --root")
    for npz in args.npz:
        out = convert(npz, args.out, args.root if args.convert_depth else None, args.depth_out, args.force)
        print(f"{npz} -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
