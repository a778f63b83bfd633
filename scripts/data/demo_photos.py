#!/usr/bin/env python3
"""Split scikit-image's bundled photos into the demo model's training and held-out sets.

Writes RGB PNGs to OUT/train/ and OUT/heldout/ (grey images become 3 identical channels).
The held-out photos are never seen in training; `imd eval homography-synth --images
OUT/heldout` measures the demo model on them, and the demo runs `imd match` on the held-out
motorcycle stereo pair.

Photos longer than 640 px (retina, hubble_deep_field, rocket, the motorcycles) are reduced to
a 640 px long side (area averaging) so that generating training pairs stays cheap on a CPU.

Left out of both sets: images that are not photos of textured scenes (chessboards, logo,
horse silhouette, colour wheel, phantom, multipage TIFFs) and the 102×102 microaneurysms crop.

Usage: .venv/bin/python scripts/data/demo_photos.py out/photos
"""

import argparse
import os
import pathlib
import sys

import numpy as np
import skimage.io
import skimage.transform

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from imd_scripts import skimage_rgb  # noqa: E402

MAX_SIDE = 640

TRAIN = ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
         "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
         "page.png", "retina.jpg", "text.png"]
HELDOUT = ["coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    args = ap.parse_args()
    for split, names in [("train", TRAIN), ("heldout", HELDOUT)]:
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            img = skimage_rgb(name).astype(np.uint8)
            h, w = img.shape[:2]
            if max(h, w) > MAX_SIDE:
                f = MAX_SIDE / max(h, w)
                size = (round(h * f), round(w * f))
                img = skimage.transform.resize(img, size, anti_aliasing=True, preserve_range=True)
                img = np.clip(np.round(img), 0, 255).astype(np.uint8)
            skimage.io.imsave(folder / (pathlib.Path(name).stem + ".png"), img, check_contrast=False)
        print(f"{folder}: {len(names)} photos")


if __name__ == "__main__":
    main()
