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
import pathlib

import numpy as np
import skimage
import skimage.io
import skimage.transform

MAX_SIDE = 640

TRAIN = ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
         "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
         "page.png", "retina.jpg", "text.png"]
HELDOUT = ["coffee.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    args = ap.parse_args()
    data = pathlib.Path(skimage.__file__).parent / "data"
    for split, names in [("train", TRAIN), ("heldout", HELDOUT)]:
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            img = skimage.io.imread(data / name)
            if img.ndim == 2:
                img = np.stack([img] * 3, axis=-1)
            img = img[..., :3].astype(np.uint8)
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
