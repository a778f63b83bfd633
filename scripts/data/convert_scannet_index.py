#!/usr/bin/env python3
"""Convert the ScanNet-1500 pair list (LoFTR ``assets/scannet_test_1500``) to imd's JSON index.

Inputs (real npz archives):
  ``test.npz``        ``name``: uint16 ``[N, 4]`` = (scene, sub-scene, frame0, frame1);
                      ``rel_pose``: float32 ``[N, 12]`` (3x4, informative);
  ``intrinsics.npz``  ``sceneXXXX_YY`` -> 3x3 intrinsics of the 640x480 images.

Output ``--out`` (JSON)::

    {"format": "imd.scannet_pairs.v1",
     "pairs": [{"scene": "scene0707_00", "frame0": 15, "frame1": 585, "rel_pose": [12]}],
     "intrinsics": {"scene0707_00": 3x3}}

Only the intrinsics of scenes that appear in pairs are kept. Example::

    .venv/bin/python scripts/data/convert_scannet_index.py assets/scannet_test_1500/test.npz \\
        assets/scannet_test_1500/intrinsics.npz --out data/scannet/index.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FORMAT = "imd.scannet_pairs.v1"


def convert(pairs_npz: Path, intrinsics_npz: Path) -> dict:
    with np.load(pairs_npz) as data:
        names = np.asarray(data["name"])
        rel = np.asarray(data["rel_pose"]) if "rel_pose" in data.files else None
    if names.ndim != 2 or names.shape[1] != 4:
        raise ValueError(f"{pairs_npz}: name has shape {names.shape}, expected [N, 4]")
    with np.load(intrinsics_npz) as data:
        intrinsics = {k: np.asarray(data[k], dtype=np.float64).reshape(3, 3) for k in data.files}
    pairs = []
    for k, (scene, sub, f0, f1) in enumerate(names.tolist()):
        name = f"scene{scene:04d}_{sub:02d}"
        if name not in intrinsics:
            raise ValueError(f"{intrinsics_npz}: no intrinsics for {name} (pair {k})")
        entry = {"scene": name, "frame0": int(f0), "frame1": int(f1)}
        if rel is not None:
            entry["rel_pose"] = [float(x) for x in rel[k].reshape(-1)]
        pairs.append(entry)
    used = sorted({p["scene"] for p in pairs})
    return {
        "format": FORMAT,
        "pairs": pairs,
        "intrinsics": {s: intrinsics[s].tolist() for s in used},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("test_npz", type=Path)
    ap.add_argument("intrinsics_npz", type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    index = convert(args.test_npz, args.intrinsics_npz)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(index))
    print(f"{len(index['pairs'])} pairs -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
