#!/usr/bin/env python3
"""Reference values for imd's geometry tests (`tests/it/geometry.rs`), written to
`tests/fixtures/geometry/`:

* `error_auc.json`       LoFTR's `error_auc` (src/utils/metrics.py) on fixed error lists.
* `epipolar.json`        LoFTR's `symmetric_epipolar_distance` on fixed points and an E.
* `distortion.json`      OpenCV `projectPoints` / `fisheye.projectPoints` for the three
                         CameraInfo distortion models.
* `poselib_5pt.json`     PoseLib 2.0.5 `essential_matrix_5pt` on noise-free 5-point samples:
                         every real solution, to check that imd finds the same set.

Run from the repository root: `.venv/bin/python scripts/make_geometry_fixtures.py`.
Deterministic (fixed seeds); the files are small (tens of kB).
"""

import json
import os

import cv2
import numpy as np
import poselib

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "geometry")


def error_auc(errors, thresholds):
    """LoFTR's error_auc, written out with numpy (trapz renamed trapezoid in numpy 2)."""
    errors = [0] + sorted(list(errors))
    recall = list(np.linspace(0, 1, len(errors)))
    aucs = []
    for thr in thresholds:
        last_index = np.searchsorted(errors, thr)
        y = recall[:last_index] + [recall[last_index - 1]]
        x = errors[:last_index] + [thr]
        aucs.append(float(np.trapezoid(y, x) / thr))
    return aucs


def symmetric_epipolar_distance(pts0, pts1, E, K0, K1):
    """LoFTR's symmetric_epipolar_distance (squared), numpy instead of torch."""
    pts0 = (pts0 - K0[[0, 1], [2, 2]][None]) / K0[[0, 1], [0, 1]][None]
    pts1 = (pts1 - K1[[0, 1], [2, 2]][None]) / K1[[0, 1], [0, 1]][None]
    pts0 = np.concatenate([pts0, np.ones_like(pts0[:, :1])], -1)
    pts1 = np.concatenate([pts1, np.ones_like(pts1[:, :1])], -1)
    Ep0 = pts0 @ E.T
    p1Ep0 = np.sum(pts1 * Ep0, -1)
    Etp1 = pts1 @ E
    return p1Ep0**2 * (1.0 / (Ep0[:, 0] ** 2 + Ep0[:, 1] ** 2) + 1.0 / (Etp1[:, 0] ** 2 + Etp1[:, 1] ** 2))


def rodrigues(v):
    R, _ = cv2.Rodrigues(np.asarray(v, dtype=np.float64).reshape(3, 1))
    return R


def skew(t):
    return np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])


def make_error_auc(rng):
    cases = [
        {"errors": [3.0, 1.0], "thresholds": [5, 10, 20]},
        {"errors": [5.0, 10.0, 20.0, 0.0, 5.0], "thresholds": [5, 10, 20]},  # ties, values at thresholds
        {"errors": [float("inf")] * 3 + [0.5, 2.5], "thresholds": [5, 10, 20]},  # failures
        {"errors": list(rng.exponential(4.0, 50)), "thresholds": [5, 10, 20]},
        {"errors": list(rng.uniform(0, 30, 200)), "thresholds": [1, 3, 5, 10]},
        {"errors": [], "thresholds": [5]},
    ]
    for c in cases:
        c["auc"] = error_auc(c["errors"], c["thresholds"])
        c["errors"] = [e if np.isfinite(e) else "inf" for e in c["errors"]]
    return cases


def make_epipolar(rng):
    R = rodrigues([0.1, -0.2, 0.05])
    t = np.array([0.3, 0.1, -0.9])
    t /= np.linalg.norm(t)
    E = skew(t) @ R
    K0 = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    K1 = np.array([[600.0, 0, 300], [0, 590, 250], [0, 0, 1]])
    pts0 = rng.uniform([0, 0], [640, 480], (20, 2))
    pts1 = rng.uniform([0, 0], [640, 480], (20, 2))
    d = symmetric_epipolar_distance(pts0, pts1, E, K0, K1)
    return {"R": R.tolist(), "t": t.tolist(), "K0": K0.tolist(), "K1": K1.tolist(),
            "pts0": pts0.tolist(), "pts1": pts1.tolist(), "distance": d.tolist()}


def make_distortion(rng):
    K = np.array([[500.0, 0, 320], [0, 505, 240], [0, 0, 1]])
    # Points inside a 640x480 view: normalized coordinates up to ~0.8.
    X = np.column_stack([rng.uniform(-0.75, 0.75, 40), rng.uniform(-0.55, 0.55, 40), np.ones(40)])
    X *= rng.uniform(1, 5, (40, 1))
    rvec = np.zeros(3)
    tvec = np.zeros(3)
    models = []
    for name, D in [
        ("plumb_bob", [-0.2, 0.05, 1e-3, -5e-4, -0.01]),
        ("rational_polynomial", [0.3, -0.1, 1e-3, 2e-4, 0.01, 0.65, -0.05, 0.02]),
    ]:
        px, _ = cv2.projectPoints(X, rvec, tvec, K, np.array(D))
        models.append({"model": name, "D": D, "pixels": px.reshape(-1, 2).tolist()})
    D = [-0.013, 0.02, -0.01, 0.002]
    px, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), rvec, tvec, K, np.array(D))
    models.append({"model": "equidistant", "D": D, "pixels": px.reshape(-1, 2).tolist()})
    return {"K": K.ravel().tolist(), "width": 640, "height": 480, "points": X.tolist(), "models": models}


def make_poselib_5pt(rng, count=60):
    problems = []
    while len(problems) < count:
        R = rodrigues(rng.normal(size=3) * rng.uniform(0.05, 0.4))
        t = rng.normal(size=3)
        t /= np.linalg.norm(t)
        X = np.column_stack([rng.uniform(-2, 2, 5), rng.uniform(-2, 2, 5), rng.uniform(2, 8, 5)])
        Y = X @ R.T + t
        if np.any(Y[:, 2] < 0.1):
            continue
        x0 = X / np.linalg.norm(X, axis=1, keepdims=True)
        x1 = Y / np.linalg.norm(Y, axis=1, keepdims=True)
        sols = poselib.essential_matrix_5pt(x0, x1)
        E_true = skew(t) @ R
        problems.append({
            "x0": x0.tolist(), "x1": x1.tolist(),
            "E_true": (E_true / np.linalg.norm(E_true)).tolist(),
            "poselib": [(E / np.linalg.norm(E)).tolist() for E in sols],
        })
    return problems


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240601)
    files = {
        "error_auc.json": make_error_auc(rng),
        "epipolar.json": make_epipolar(rng),
        "distortion.json": make_distortion(rng),
        "poselib_5pt.json": {"poselib_version": poselib.__version__, "problems": make_poselib_5pt(rng)},
    }
    for name, data in files.items():
        path = os.path.join(OUT, name)
        with open(path, "w") as f:
            json.dump(data, f, indent=None, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
