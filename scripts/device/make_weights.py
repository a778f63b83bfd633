#!/usr/bin/env python3
"""Write a seeded random-weight imd weights folder from a manifest
(scripts/device/make_manifest.py): runs on the GPU machine with only torch + safetensors, so
the multi-GB paper-size folder is never carried.

    python3 make_weights.py manifest/paper.json OUT_DIR [--seed 0] [--device cuda]

Initialisation (sane activations through every layer, as make_random_model.py's heads):
matrices and kernels ~ N(0, 1/fan_in), biases and BN running means 0, 1-D weights (norm
scales) and BN running variances 1, CLIP's class / position embeddings ~ N(0, 0.02²).
imd.yaml is written as JSON (valid YAML), so no YAML package is needed.
"""

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}


def init(name, shape, gen, device):
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("bias", "running_mean"):
        return torch.zeros(shape, device=device)
    if leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
        return torch.ones(shape, device=device)
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, device=device)
    t = torch.randn(shape, generator=gen, device=device)
    if "embedding" in name and len(shape) <= 2 and "patch" not in name:
        return t * 0.02
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    return t / math.sqrt(fan_in)


def write(manifest, out, seed=0, device="cpu"):
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for rel, cfg in manifest["configs"].items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cfg, indent=1) + "\n")
    gen = torch.Generator(device=device).manual_seed(seed)
    total = 0
    for rel, spec in manifest["files"].items():
        tensors = {}
        for name, t in spec.items():
            x = init(name, t["shape"], gen, device).to(DTYPES[t["dtype"]])
            if name.endswith("num_batches_tracked"):
                x = x.to(torch.int64)
            tensors[name] = x.cpu().contiguous()
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path))
        total += path.stat().st_size
        del tensors
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    start = time.time()
    manifest = json.loads(args.manifest.read_text())
    total = write(manifest, args.out, args.seed, args.device)
    print(json.dumps({"out": str(args.out), "bytes": total, "seconds": round(time.time() - start, 1),
                      "device": args.device}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
