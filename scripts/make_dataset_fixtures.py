#!/usr/bin/env python3
"""Write tiny instances of every dataset imd reads, in their real on-disk formats, under
``tests/fixtures/datasets/`` (read by ``tests/it/data.rs``). Photos are scikit-image's bundled
ones, downsized. Deterministic: rerunning rewrites identical files (JPEG/PNG encoders aside).

- ``megadepth/``: ``root/Undistorted_SfM/0000/images/*.jpg``, ``.h5`` depth maps under
  ``root/phoenix/S6/zl548/MegaDepth_v1/0000/dense0/depths/``, a scene info ``scene_info/
  0000_fixture.npz`` pickled exactly like LoFTR's (object arrays with ``None`` holes,
  ``pair_infos`` tuples), converted by ``scripts/convert_megadepth_index.py --convert-depth``
  to ``index/0000_fixture.json`` + ``.safetensors`` depth maps; ``megadepth_fixture.txt`` list.
- ``scannet/``: ``scans/scene0707_00/{color,pose}``, ``test.npz`` (uint16 ``name``,
  ``rel_pose``) and ``intrinsics.npz``, converted by ``scripts/convert_scannet_index.py`` to
  ``index.json``.
- ``hpatches/``: ``i_fixture``, ``v_fixture`` and an ignored ``i_dc`` sequence with
  ``1..6.ppm`` and ``H_1_k`` files; viewpoint images are real warps of image 1.
- ``burst/``: ``annotations/val/all_classes.json`` (BURST layout, masks as COCO compressed RLE
  made by the encoder below) and frames under ``frames/val/<dataset>/<seq>/``; ``rle_cases.json``
  holds random masks with their encodings. The encoder follows the documented format
  (pycocotools ``rleToString``); when pycocotools is installed the script checks it against it.
- ``photos/``: a few PNG photos for the synthetic homography dataset.
- ``*/expected.json``: values computed here (numpy) that the Rust tests compare against.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
from skimage import data as skdata

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "datasets"
PY = sys.executable


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    """A scikit-image photo as RGB uint8 resized to (w, h)."""
    img = getattr(skdata, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    img = img[..., :3]
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def write_rgb(path: Path, rgb: np.ndarray, **params) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = []
    if path.suffix == ".jpg":
        flags = [cv2.IMWRITE_JPEG_QUALITY, 90]
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), flags):
        raise RuntimeError(f"cannot write {path}")


# --- COCO compressed RLE (column-major runs starting with 0s) ---------------------------------

def rle_counts(mask: np.ndarray) -> list[int]:
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    counts, current, run = [], False, 0
    for v in flat:
        if v != current:
            counts.append(run)
            run, current = 0, v
        run += 1
    counts.append(run)
    return counts


def rle_encode(mask: np.ndarray) -> str:
    counts = rle_counts(mask)
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        while True:
            ch = x & 0x1F
            x >>= 5  # Python's >> on negative ints is arithmetic, as in C
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
            if not more:
                break
    return "".join(out)


def check_with_pycocotools(masks: list[np.ndarray], strings: list[str]) -> None:
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        print("pycocotools not installed: RLE encoder not cross-checked", file=sys.stderr)
        return
    for m, s in zip(masks, strings):
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
        assert ref == s, (ref, s)
    print("RLE encoder agrees with pycocotools", file=sys.stderr)


# --- MegaDepth ---------------------------------------------------------------------------------

def rot(axis: str, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def make_megadepth() -> None:
    base = OUT / "megadepth"
    shutil.rmtree(base, ignore_errors=True)
    root = base / "root"
    names = ["a", "b", "c"]
    photos = ["astronaut", "coffee", "chelsea"]
    size = (200, 150)
    n_entries = 5  # entries 1 and 3 are unused holes (None), like upstream files
    slots = [0, 2, 4]
    image_paths = np.empty(n_entries, dtype=object)
    depth_paths = np.empty(n_entries, dtype=object)
    intrinsics = np.empty(n_entries, dtype=object)
    poses = np.empty(n_entries, dtype=object)
    expected = {"images": {}, "pairs": []}
    for k, (slot, name, ph) in enumerate(zip(slots, names, photos)):
        rel_img = f"Undistorted_SfM/0000/images/{name}.jpg"
        rel_depth = f"phoenix/S6/zl548/MegaDepth_v1/0000/dense0/depths/{name}.h5"
        write_rgb(root / rel_img, photo(ph, size))
        # Depth: a slanted plane with a hole of zeros (MegaDepth has unknown depth as 0).
        ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
        depth = (5.0 + 0.01 * xs + 0.02 * ys + k).astype(np.float32)
        depth[10:20, 30:50] = 0.0
        (root / rel_depth).parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(root / rel_depth, "w") as f:
            f.create_dataset("depth", data=depth)
        K = np.array([[180.0 + 10 * k, 0, 99.5], [0, 181.0 + 10 * k, 74.5], [0, 0, 1]])
        T = np.eye(4)
        T[:3, :3] = rot("y", 5.0 * k) @ rot("z", 2.0 * k)
        T[:3, 3] = [0.3 * k, -0.1 * k, 0.05 * k]
        image_paths[slot], depth_paths[slot], intrinsics[slot], poses[slot] = rel_img, rel_depth, K, T
        expected["images"][rel_img] = {
            "K": K.tolist(),
            "depth_probe": [[5, 7, float(depth[7, 5])], [40, 15, float(depth[15, 40])], [199, 149, float(depth[149, 199])]],
        }
    pair_infos = [
        (np.array([0, 2]), 0.45, np.array([10.0, 20.0, 30.0, 40.0])),
        (np.array([2, 4]), 0.05, np.array([1.0, 2.0, 3.0, 4.0])),
        (np.array([0, 4]), 0.25, np.array([5.0, 6.0, 7.0, 8.0])),
    ]
    info = {
        "image_paths": image_paths,
        "depth_paths": depth_paths,
        "intrinsics": intrinsics,
        "poses": poses,
        "pair_infos": pair_infos,
    }
    npz = base / "scene_info" / "0000_fixture.npz"
    npz.parent.mkdir(parents=True)
    with open(npz, "wb") as f:
        pickle.dump(info, f)  # upstream files are pickles named .npz
    for (i, j), overlap, _ in pair_infos:
        T_0to1 = poses[j] @ np.linalg.inv(poses[i])
        expected["pairs"].append({"images": [image_paths[i], image_paths[j]], "overlap": overlap, "T_0to1": T_0to1.tolist()})
    (base / "megadepth_fixture.txt").write_text("0000_fixture\n")
    subprocess.run(
        [PY, str(ROOT / "scripts/convert_megadepth_index.py"), str(npz), "--out", str(base / "index"),
         "--convert-depth", "--root", str(root)],
        check=True,
    )
    for h5 in root.rglob("*.h5"):
        h5.unlink()  # the Rust side reads the converted maps; keep the fixture small
    (base / "expected.json").write_text(json.dumps(expected, indent=1))


# --- ScanNet -----------------------------------------------------------------------------------

def make_scannet() -> None:
    base = OUT / "scannet"
    shutil.rmtree(base, ignore_errors=True)
    scene = "scene0707_00"
    frames = [0, 15, 30]
    c2w = {}
    for k, (fr, ph) in enumerate(zip(frames, ["coffee", "astronaut", "rocket"])):
        write_rgb(base / "scans" / scene / "color" / f"{fr}.jpg", photo(ph, (320, 240)))
        T = np.eye(4)
        T[:3, :3] = rot("y", -4.0 * k) @ rot("z", 3.0 * k)
        T[:3, 3] = [1.0 + 0.2 * k, 2.0 - 0.1 * k, 1.5]
        c2w[fr] = T
        pose_file = base / "scans" / scene / "pose" / f"{fr}.txt"
        pose_file.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(pose_file, T, fmt="%.6f", delimiter=" ")
        c2w[fr] = np.loadtxt(pose_file)  # what a reader sees (6 decimals)
    names = np.array([[707, 0, 0, 15], [707, 0, 15, 30]], dtype=np.uint16)
    rel = []
    expected = {"pairs": []}
    for _, _, f0, f1 in names.tolist():
        T = np.linalg.inv(c2w[f1]) @ c2w[f0]  # LoFTR: w2c1 @ inv(w2c0)
        rel.append(T[:3, :].reshape(-1))
        expected["pairs"].append({"scene": scene, "frames": [f0, f1], "T_0to1": T.tolist()})
    K = np.array([[577.5, 0, 319.5], [0, 578.5, 239.5], [0, 0, 1]])
    np.savez(base / "test.npz", name=names, rel_pose=np.array(rel, dtype=np.float32))
    np.savez(base / "intrinsics.npz", **{scene: K, "scene0708_00": K * 2})
    expected["K"] = K.tolist()
    subprocess.run(
        [PY, str(ROOT / "scripts/convert_scannet_index.py"), str(base / "test.npz"),
         str(base / "intrinsics.npz"), "--out", str(base / "index.json")],
        check=True,
    )
    (base / "expected.json").write_text(json.dumps(expected, indent=1))


# --- HPatches ----------------------------------------------------------------------------------

def make_hpatches() -> None:
    base = OUT / "hpatches"
    shutil.rmtree(base, ignore_errors=True)
    rng = np.random.default_rng(5)
    expected = {}
    for seq, ph in [("i_fixture", "chelsea"), ("v_fixture", "coffee"), ("i_dc", "astronaut")]:
        img1 = photo(ph, (96, 72))
        d = base / seq
        d.mkdir(parents=True)
        cv2.imwrite(str(d / "1.ppm"), cv2.cvtColor(img1, cv2.COLOR_RGB2BGR))
        expected[seq] = {}
        for k in range(2, 7):
            if seq.startswith("v_"):
                H = np.array([[1.0 + 0.02 * k, 0.01 * k, -2.0 * k], [-0.015 * k, 1.0, 1.5 * k], [1e-4 * k, -2e-4 * k, 1.0]])
                img = cv2.warpPerspective(img1, H, (96, 72))
            else:
                H = np.eye(3)
                img = np.clip(img1.astype(np.float64) * (0.5 + 0.15 * k) + rng.normal(0, 3, img1.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"{k}.ppm"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            # HPatches writes H as three lines of space-separated numbers.
            (d / f"H_1_{k}").write_text("\n".join(" ".join(f"{v:.10g}" for v in row) for row in H) + "\n")
            expected[seq][str(k)] = H.tolist()
    (base / "expected.json").write_text(json.dumps(expected, indent=1))


# --- BURST / IMIM ------------------------------------------------------------------------------

def blob(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return (xs - cx) ** 2 + ((ys - cy) * 1.3) ** 2 < r * r


def make_burst() -> None:
    base = OUT / "burst"
    shutil.rmtree(base, ignore_errors=True)
    h, w = 48, 64
    person, car = 805, 211  # LVIS ids of "person" and "car"
    expected = {"areas": {}}

    def seq(sid, dataset, name, frames_tracks, track_cats, photo_name, skip_frames=()):
        files = [f"{t:05d}.jpg" for t in range(len(frames_tracks))]
        segs = []
        for t, tracks in enumerate(frames_tracks):
            frame = {}
            for tid, (cx, cy, r) in tracks.items():
                m = blob(h, w, cx + 2 * t, cy, r)
                frame[str(tid)] = {"rle": rle_encode(m), "is_gt": True, "score": 1.0}
                expected["areas"][f"{sid}/{t}/{tid}"] = int(m.sum())
            segs.append(frame)
            if t not in skip_frames:
                img = photo(photo_name, (w, h))
                write_rgb(base / "frames" / "val" / dataset / name / files[t], img)
        return {
            "width": w, "height": h, "id": sid, "seq_name": name, "dataset": dataset, "fps": 1,
            "all_image_paths": files, "annotated_image_paths": files,
            "neg_category_ids": [], "not_exhaustive_category_ids": [],
            "track_category_ids": {str(k): v for k, v in track_cats.items()},
            "segmentations": segs,
        }

    p = lambda x: (x, 20.0, 6.0)  # noqa: E731
    sequences = [
        # Persons 1, 2 in all frames, person 3 from frame 2 on, car 4 throughout; track 2 has
        # an empty mask in frame 1 (radius 0): it is not present there.
        seq(1, "LaSOT", "person-1",
            [{1: p(10), 2: p(30), 4: p(50)}, {1: p(10), 2: (30, 20, 0.0), 4: p(50)},
             {1: p(10), 2: p(30), 3: p(45), 4: p(50)}, {1: p(10), 2: p(30), 3: p(45), 4: p(50)}],
            {1: person, 2: person, 3: person, 4: car}, "astronaut"),
        # One person only: never qualifies.
        seq(2, "BDD", "b1c9c847-3bda4659", [{7: p(20)}, {7: p(22)}, {7: p(24)}],
            {7: person}, "coffee"),
        # Two cars in all frames, but frame 2's image is missing on disk: the best candidate
        # (0, 2) is skipped and (0, 1) chosen.
        seq(3, "YFCC100M", "v_f69ebe5b731d3e87c1a3992ee39c3b7e",
            [{5: p(15), 6: p(40)}, {5: p(15), 6: p(40)}, {5: p(15), 6: p(40)}],
            {5: car, 6: car}, "chelsea", skip_frames=(2,)),
        # Two persons in frames 0 and 1.
        seq(4, "ArgoVerse", "rear_right_00", [{8: p(12), 9: p(42)}, {8: p(14), 9: p(44)}],
            {8: person, 9: person}, "rocket"),
    ]
    ann = {
        "sequences": sequences,
        "categories": [
            {"id": car, "name": "car", "synset": "car.n.01", "def": "", "synonyms": ["car"]},
            {"id": person, "name": "person", "synset": "person.n.01", "def": "", "synonyms": ["person"]},
        ],
        "split": "val",
    }
    path = base / "annotations" / "val" / "all_classes.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(ann))

    # Random masks of odd sizes for decoder tests (long runs exercise multi-character counts
    # and negative differences).
    rng = np.random.default_rng(11)
    cases, masks, strings = [], [], []
    for k in range(12):
        hh, ww = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        if k % 3 == 0:
            m = rng.random((hh, ww)) < 0.5
        elif k % 3 == 1:
            m = blob(hh, ww, ww * rng.random(), hh * rng.random(), max(hh, ww) * rng.random())
        else:
            m = np.zeros((hh, ww), bool)
            m[: hh // 2] = True  # long runs
        s = rle_encode(m)
        masks.append(m)
        strings.append(s)
        cases.append({"height": hh, "width": ww, "rle": s, "counts": rle_counts(m),
                      "row_major": "".join("1" if v else "0" for v in m.reshape(-1))})
    check_with_pycocotools(masks, strings)
    (base / "rle_cases.json").write_text(json.dumps(cases))
    (base / "expected.json").write_text(json.dumps(expected, indent=1))


def make_photos() -> None:
    base = OUT / "photos"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    for name in ["astronaut", "coffee", "chelsea"]:
        write_rgb(base / f"{name}.png", photo(name, (160, 120)))
    (base / "notes.txt").write_text("not an image: the synthetic dataset must skip it\n")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    make_megadepth()
    make_scannet()
    make_hpatches()
    make_burst()
    make_photos()
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"fixtures in {OUT}: {total / 1e6:.2f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
