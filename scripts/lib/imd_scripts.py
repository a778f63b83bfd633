"""Helpers shared by the Python scripts under scripts/ (fixtures, bench, oracles, data), kept
here once instead of copied into each script.

A script in scripts/<group>/ imports it by path, so that it runs from any directory:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from imd_scripts import ROOT, write_json  # noqa: E402

Only numpy and the standard library at import time; scikit-image is imported where used.
Changing a helper changes the bytes of every fixture written with it: regenerate and compare.
"""

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# The repository root (this file is scripts/lib/imd_scripts.py).
ROOT = Path(__file__).resolve().parents[2]


# --- files ------------------------------------------------------------------------------------


def skimage_data():
    """The folder of scikit-image's bundled photos (of the running interpreter's install)."""
    return Path(importlib.util.find_spec("skimage").origin).parent / "data"


def skimage_rgb(name):
    """A bundled photo as read from disk, RGB: grey repeated to 3 channels, alpha dropped;
    dtype as stored."""
    import skimage.io

    img = skimage.io.imread(skimage_data() / name)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return img[..., :3]


def write_json(path, obj):
    """The fixtures' JSON layout: indent 1, trailing newline."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def print_sizes(paths):
    """`path: N bytes` per file, to stderr."""
    for p in paths:
        print(f"{p}: {os.path.getsize(p)} bytes", file=sys.stderr)


def print_folder_sizes(folder):
    """`name: N bytes` per file directly in `folder`, sorted, to stderr."""
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            print(f"{name}: {os.path.getsize(p)} bytes", file=sys.stderr)


def run_writer(write, out_dir, *args):
    """Create `out_dir`, call `write(out_dir, *args)` (it returns the paths it wrote), and
    report their sizes and the time taken on stderr."""
    os.makedirs(out_dir, exist_ok=True)
    start = time.monotonic()
    print_sizes(write(out_dir, *args))
    print(f"{time.monotonic() - start:.1f} s", file=sys.stderr)


# --- ROS messages -----------------------------------------------------------------------------


def stamp(t_ns):
    """builtin_interfaces/Time of a nanosecond time."""
    return {"sec": t_ns // 10**9, "nanosec": t_ns % 10**9}


def pad_rows(rows, step):
    """rows: H x row_bytes uint8 -> bytes with each row padded to `step` with 0xEE."""
    h, n = rows.shape
    out = np.full((h, step), 0xEE, dtype=np.uint8)
    out[:, :n] = rows
    return out.tobytes()


# --- geometry ---------------------------------------------------------------------------------


def rot(axis, deg):
    """Rotation by `deg` degrees about the x, y or z axis."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rodrigues(v):
    """Rotation matrix of an axis-angle vector (radians), Rodrigues' formula."""
    theta = np.linalg.norm(v)
    if theta < 1e-15:
        return np.eye(3)
    k = v / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def se3(r, t):
    """4x4 rigid transform from a rotation and a translation."""
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, np.asarray(t).reshape(3)
    return m


def error_auc(errors, thresholds):
    """LoFTR's error_auc (src/utils/metrics.py), written out with numpy (trapz renamed
    trapezoid in numpy 2)."""
    errors = [0] + sorted(list(errors))
    recall = list(np.linspace(0, 1, len(errors)))
    aucs = []
    for thr in thresholds:
        last_index = np.searchsorted(errors, thr)
        y = recall[:last_index] + [recall[last_index - 1]]
        x = errors[:last_index] + [thr]
        aucs.append(float(np.trapezoid(y, x) / thr))
    return aucs
