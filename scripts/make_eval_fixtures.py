#!/usr/bin/env python3
"""Write the evaluation fixtures under ``tests/fixtures/eval/``: tiny benchmarks in their real
on-disk formats whose images are *geometrically consistent* with their ground truth, so that
`imd eval` with the demo model produces real matches and non-trivial metrics
(``tests/it/eval.rs``). All images come from the demo model's **held-out** photos
(scikit-image's coffee, rocket, motorcycle_left; see ``scripts/demo_photos.py``).

- ``heldout/``: the held-out photos coffee and rocket (long side 640, JPEG) for
  ``imd eval homography-synth`` and the demo-model quality test.
- ``megadepth/``: MegaDepth-1500 layout — ``root/Undistorted_SfM/0015/images/*.jpg`` and a
  LoFTR-style pickled scene info ``scene_info/0015_eval.npz`` converted by
  ``scripts/convert_megadepth_index.py`` to ``index/0015_eval.json``. Images are renderings of
  a textured two-plane "open book" scene (non-planar, so the essential matrix is well posed)
  from two camera poses: image 0 is the photo, image 1 re-renders it from the second camera.
- ``scannet/``: ScanNet-1500 layout — ``scans_test/scene0800_00/{color,pose}``, ``test.npz``
  and ``intrinsics.npz`` converted by ``scripts/convert_scannet_index.py`` to ``index.json``;
  640×480 renderings of the same kind of scene (poses are camera-to-world, as ScanNet's).
- ``hpatches/``: two sequences ``i_eval`` (photometric changes, identity H) and ``v_eval``
  (real warps), ``1..6.ppm`` + ``H_1_k``.
- ``burst/``: BURST layout (``annotations/val/all_classes.json`` with COCO RLE masks, frames
  under ``frames/val/<dataset>/<seq>/``): two instances of one category (blobs) on a held-out
  photo; in frame 1 the whole image and the masks move by a known shift.

Deterministic. Usage: ``.venv/bin/python scripts/make_eval_fixtures.py``
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import skimage

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "eval"
PY = sys.executable
sys.path.insert(0, str(ROOT / "scripts"))
from make_dataset_fixtures import rle_encode  # noqa: E402  (the BURST fixtures' encoder)

SKIMAGE_DATA = Path(skimage.__file__).parent / "data"
HELDOUT = ["coffee.png", "rocket.jpg", "motorcycle_left.png"]


def load(name: str, size: tuple[int, int]) -> np.ndarray:
    """A held-out photo as RGB uint8 at (w, h) (area resampling; aspect as given)."""
    bgr = cv2.imread(str(SKIMAGE_DATA / name), cv2.IMREAD_COLOR)
    return cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = [cv2.IMWRITE_JPEG_QUALITY, 92] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), flags):
        raise RuntimeError(f"cannot write {path}")


def rot(axis: str, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def render_book(img0: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Image 1 of an "open book": two planes through the vertical line x = 0, z = 4 of camera
    0, each tilted 20° about it, textured by image 0 (camera 0 at the origin). Camera 1 is
    `X1 = R·X0 + t`. Each image-1 pixel's ray is intersected with both half-planes (nearest
    valid hit), projected into image 0 and sampled bilinearly; misses are black."""
    h, w = img0.shape[:2]
    Kinv = np.linalg.inv(K)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rays1 = np.stack([xs, ys, np.ones_like(xs)], -1) @ Kinv.T  # camera-1 rays
    # In camera-0 coordinates: X0 = Rᵀ(λ·r1 − t) = λ·a − b.
    a = rays1 @ R  # (Rᵀ r1)ᵀ = r1ᵀ R
    b = R.T @ t
    best = np.full((h, w), np.inf)
    hit = np.zeros((h, w, 3))
    z0 = 4.0
    for side, ang in [(-1, 20.0), (1, -20.0)]:
        # Plane through (0, *, z0) with normal n (rotated about y): n·X0 = n·(0, 0, z0).
        n = rot("y", ang) @ np.array([0.0, 0.0, 1.0])
        d = n[2] * z0
        den = a @ n
        lam = (d + n @ b) / np.where(np.abs(den) < 1e-12, np.nan, den)
        X = lam[..., None] * a - b
        ok = (lam > 0) & (np.sign(X[..., 0]) == side) & (lam < best)
        best = np.where(ok, lam, best)
        hit = np.where(ok[..., None], X, hit)
    p = hit @ K.T
    u = (p[..., 0] / p[..., 2]).astype(np.float32)
    v = (p[..., 1] / p[..., 2]).astype(np.float32)
    valid = np.isfinite(best)
    u[~valid] = -1e4
    v[~valid] = -1e4
    return cv2.remap(img0, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def book_depth_texture(photo: str, size: tuple[int, int], K: np.ndarray) -> np.ndarray:
    """Image 0 of the book scene: the photo itself (camera 0 sees the texture undistorted
    only up to the planes' tilt; any texture works for matching)."""
    return load(photo, size)


def poses() -> list[tuple[np.ndarray, np.ndarray]]:
    """Camera-1 poses `X1 = R·X0 + t` (|t| ≈ 0.3–0.5 at depth 4: real parallax)."""
    return [
        (rot("y", -6.0) @ rot("x", 2.0), np.array([0.45, -0.05, 0.05])),
        (rot("y", 5.0) @ rot("z", 3.0), np.array([-0.35, 0.08, -0.1])),
    ]


def make_megadepth() -> None:
    base = OUT / "megadepth"
    shutil.rmtree(base, ignore_errors=True)
    root = base / "root"
    w, h = 320, 240
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    image_paths, depth_paths, intrinsics, world2cam, pair_infos = [], [], [], [], []
    for k, ((R, t), ph) in enumerate(zip(poses(), ["rocket.jpg", "coffee.png"])):
        img0 = book_depth_texture(ph, (w, h), K)
        img1 = render_book(img0, K, R, t)
        for name, img, T in [(f"{k}a", img0, np.eye(4)), (f"{k}b", img1, None)]:
            if T is None:
                T = np.eye(4)
                T[:3, :3], T[:3, 3] = R, t
            rel = f"Undistorted_SfM/0015/images/{name}.jpg"
            write(root / rel, img)
            image_paths.append(rel)
            depth_paths.append(f"phoenix/S6/zl548/MegaDepth_v1/0015/dense0/depths/{name}.h5")
            intrinsics.append(K)
            world2cam.append(T)
        pair_infos.append((np.array([2 * k, 2 * k + 1]), 0.5, np.zeros(4)))
    obj = lambda xs: np.array(xs + [None], dtype=object)[:-1]  # noqa: E731  object arrays
    info = {
        "image_paths": obj(image_paths),
        "depth_paths": obj(depth_paths),
        "intrinsics": obj(intrinsics),
        "poses": obj(world2cam),
        "pair_infos": pair_infos,
    }
    npz = base / "scene_info" / "0015_eval.npz"
    npz.parent.mkdir(parents=True)
    with open(npz, "wb") as f:
        pickle.dump(info, f)  # upstream scene infos are pickles named .npz
    subprocess.run([PY, str(ROOT / "scripts/convert_megadepth_index.py"), str(npz), "--out",
                    str(base / "index")], check=True)


def make_scannet() -> None:
    base = OUT / "scannet"
    shutil.rmtree(base, ignore_errors=True)
    scene = "scene0800_00"
    w, h = 640, 480
    K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])
    names = []
    for k, ((R, t), ph) in enumerate(zip(poses(), ["motorcycle_left.png", "rocket.jpg"])):
        img0 = load(ph, (w, h))
        img1 = render_book(img0, K, R, t)
        f0, f1 = 100 * k, 100 * k + 15
        T1 = np.eye(4)
        T1[:3, :3], T1[:3, 3] = R, t  # world (= camera 0) → camera 1
        for fr, img, c2w in [(f0, img0, np.eye(4)), (f1, img1, np.linalg.inv(T1))]:
            write(base / "scans_test" / scene / "color" / f"{fr}.jpg", img)
            pose = base / "scans_test" / scene / "pose" / f"{fr}.txt"
            pose.parent.mkdir(parents=True, exist_ok=True)
            np.savetxt(pose, c2w, fmt="%.9f", delimiter=" ")
        names.append([800, 0, f0, f1])
    names = np.array(names, dtype=np.uint16)
    np.savez(base / "test.npz", name=names, rel_pose=np.zeros((len(names), 12), np.float32))
    np.savez(base / "intrinsics.npz", **{scene: K})
    subprocess.run([PY, str(ROOT / "scripts/convert_scannet_index.py"), str(base / "test.npz"),
                    str(base / "intrinsics.npz"), "--out", str(base / "index.json")], check=True)
    (base / "test.npz").unlink()
    (base / "intrinsics.npz").unlink()


def make_hpatches() -> None:
    base = OUT / "hpatches"
    shutil.rmtree(base, ignore_errors=True)
    w, h = 224, 168  # PPM is uncompressed: keep the fixture small
    rng = np.random.default_rng(7)
    for seq, ph in [("i_eval", "coffee.png"), ("v_eval", "rocket.jpg")]:
        img1 = load(ph, (w, h))
        d = base / seq
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "1.ppm"), cv2.cvtColor(img1, cv2.COLOR_RGB2BGR))
        for k in range(2, 7):
            if seq.startswith("v_"):
                c = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
                A = rot("z", 4.0 * (k - 1))
                A[:2, :2] *= 1.0 + 0.04 * (k - 1)
                A[2, :2] = [2e-4 * (k - 3), -1.5e-4 * (k - 2)]
                H = np.linalg.inv(c) @ A @ c
                H = H / H[2, 2]
                img = cv2.warpPerspective(img1, H, (w, h))
            else:
                H = np.eye(3)
                gain = 0.55 + 0.15 * k
                img = np.clip(img1 * gain + rng.normal(0, 2.0, img1.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"{k}.ppm"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            (d / f"H_1_{k}").write_text("\n".join(" ".join(f"{v:.12g}" for v in row) for row in H) + "\n")


def blob(h: int, w: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 < 1.0


def make_burst() -> None:
    base = OUT / "burst"
    shutil.rmtree(base, ignore_errors=True)
    w, h = 320, 240
    shift = (12, -6)  # frame 1 = frame 0 moved right 12 px, up 6 px
    person = 805
    photo = load("motorcycle_left.png", (w + 40, h + 40))
    frames, segs = [], []
    instances = {1: (95.0, 130.0, 55.0, 70.0), 2: (225.0, 120.0, 50.0, 75.0)}
    for t in range(2):
        dx, dy = (shift[0] * t, shift[1] * t)
        # Crop a moving window: content moves by (dx, dy) in the frame.
        x0, y0 = 20 - dx, 20 - dy
        frame = photo[y0:y0 + h, x0:x0 + w]
        name = f"{t:05d}.jpg"
        write(base / "frames" / "val" / "ArgoVerse" / "ring_front_eval" / name, frame)
        frames.append(name)
        segs.append({str(tid): {"rle": rle_encode(blob(h, w, cx + dx, cy + dy, rx, ry)),
                                "is_gt": True, "score": 1.0}
                     for tid, (cx, cy, rx, ry) in instances.items()})
    ann = {
        "sequences": [{
            "width": w, "height": h, "id": 1, "seq_name": "ring_front_eval", "dataset": "ArgoVerse",
            "fps": 1, "all_image_paths": frames, "annotated_image_paths": frames,
            "neg_category_ids": [], "not_exhaustive_category_ids": [],
            "track_category_ids": {"1": person, "2": person}, "segmentations": segs,
        }],
        "categories": [{"id": person, "name": "person", "synset": "person.n.01", "def": "",
                        "synonyms": ["person"]}],
        "split": "val",
    }
    path = base / "annotations" / "val" / "all_classes.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ann))


def make_heldout() -> None:
    """Held-out photos at the demo set's 640 px long side (as `scripts/demo_photos.py`
    prepares them), stored as high-quality JPEG to keep the fixture small."""
    base = OUT / "heldout"
    shutil.rmtree(base, ignore_errors=True)
    for name in ["coffee.png", "rocket.jpg"]:
        bgr = cv2.imread(str(SKIMAGE_DATA / name), cv2.IMREAD_COLOR)
        f = min(1.0, 640 / max(bgr.shape[:2]))
        size = (round(bgr.shape[1] * f), round(bgr.shape[0] * f))
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        base.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(base / (Path(name).stem + ".jpg")), small, [cv2.IMWRITE_JPEG_QUALITY, 95])


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    make_heldout()
    make_megadepth()
    make_scannet()
    make_hpatches()
    make_burst()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}: {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
