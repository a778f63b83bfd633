#!/usr/bin/env python3
"""Calibrate `integrity.no_overlap_inliers` for a model: how many RANSAC inliers its matches
give on pairs of photos that share nothing.

A matcher that never learned to say "no match" returns hundreds of matches on unrelated
images, and RANSAC finds a consistent subset among them. The tracker must not call that a
pose, so a pose needs more inliers than this chance level. This script measures it on pairs of
scikit-image's *training* photos (never the held-out ones, never the test sequences): each photo
is cut to a 320x240 camera-sized frame, each pair is matched with `imd match` (the model and the
node's network input size) and solved with `imd pose` (the node's pose options), and the script
prints every pair, the maximum, and the value to configure: the maximum plus 20 %.

Run: .venv/bin/python scripts/bench/calibrate_integrity.py [--model models/imd-tiny-synth]
         [--imd target/release/imd] [--config config/matcher.yaml] [--pairs 10]
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from imd_scripts import ROOT, skimage_rgb  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "scripts", "data"))
from demo_photos import TRAIN  # noqa: E402  (the training split; coffee, rocket, motorcycles held out)
W, H = 320, 240


def frame(name):
    img = skimage_rgb(name)
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(float(np.ptp(img)), 1e-9)).astype(np.uint8)
    h, w = img.shape[:2]
    s = max(W / w, H / h)
    img = cv2.resize(img, (math.ceil(w * s), math.ceil(h * s)), interpolation=cv2.INTER_AREA)
    return img[:H, :W]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "imd-tiny-synth"))
    ap.add_argument("--imd", default=os.path.join(ROOT, "target", "release", "imd"))
    ap.add_argument("--config", default=os.path.join(ROOT, "config", "matcher.yaml"))
    ap.add_argument("--pairs", type=int, default=10)
    a = ap.parse_args()
    env = dict(os.environ, RUST_LOG="error")
    with open(a.config) as f:
        params = yaml.safe_load(f)["imd_matcher"]["ros__parameters"]
    resize = str(params["model"]["resize_long_side"])  # the node's network input size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        names = [os.path.splitext(n)[0] for n in TRAIN]
        for file, name in zip(TRAIN, names):
            cv2.imwrite(os.path.join(tmp, f"{name}.png"), frame(file)[..., ::-1])
        # Pair photo i with photo i + 7 (mod 15): every pair distinct, no photo with itself.
        for i in range(min(a.pairs, len(names))):
            p, q = names[i], names[(i + 7) % len(names)]
            out = os.path.join(tmp, f"{p}-{q}.csv")
            subprocess.run([a.imd, "match", os.path.join(tmp, f"{p}.png"),
                            os.path.join(tmp, f"{q}.png"), "--model", a.model, "--resize", resize,
                            "--out", out],
                           check=True, env=env, stdout=subprocess.DEVNULL)
            with open(out) as f:
                matches = sum(1 for _ in csv.DictReader(f))
            res = subprocess.run([a.imd, "pose", "--matches", out, "--k0",
                                  f"250,250,{(W - 1) / 2},{(H - 1) / 2}", "--config", a.config],
                                 env=env, capture_output=True, text=True)
            inliers = json.loads(res.stdout)["inliers"] if res.returncode == 0 else 0
            rows.append((p, q, matches, inliers))
            print(f"{p} / {q}: {matches} matches, {inliers} inliers", file=sys.stderr)
    worst = max(r[3] for r in rows)
    print(json.dumps({"model": a.model, "pairs": [{"a": p, "b": q, "matches": m, "inliers": n}
                                                  for p, q, m, n in rows],
                      "max_inliers": worst,
                      "no_overlap_inliers": math.ceil(1.2 * worst)}, indent=1))


if __name__ == "__main__":
    main()
