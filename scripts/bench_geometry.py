#!/usr/bin/env python3
"""Side-by-side relative-pose benchmark: imd vs PoseLib 2.0.5 vs OpenCV USAC_MAGSAC.

Builds the standard synthetic grid (f = 500 px, 640x480, depth U[2, 8], rotation 5-20 deg about
a random axis, baseline 0.5 in a random direction, Gaussian noise sigma on both images, outliers
uniform in both images, matches shuffled) for N in {200, 1000, 5000} and outlier ratios
{0, 25, 50, 75 %}, plus a planar scene (plane through (0, 0, 5) tilted up to 60 deg) and a
pure-rotation scene. Every method gets identical arrays, problem by problem back to back (so
load changes on a shared machine hit every method alike); all run single-threaded:

* imd:     `imd pose --batch -` fed one problem at a time (the estimator's own `elapsed_us`,
           parsing excluded)
* poselib: `poselib.estimate_relative_pose` with its defaults (1 px threshold)
* opencv:  `cv2.findEssentialMat(method=USAC_MAGSAC, prob=0.9999, threshold=1)` + `recoverPose`

Metrics per cell and method: AUC@5/10/20 (LoFTR's `error_auc`) of max(rotation error, unfolded
translation error) -- the posebench convention; folded AUC@5 (LoFTR) as an extra column --,
median rotation / translation errors, failure rate (error > 10 deg or no result), median time,
and the imd/PoseLib time ratio. Pure rotation: the translation is unobservable, so only the
rotation error counts (as LoFTR does for a zero ground-truth translation).

Usage: .venv/bin/python scripts/bench_geometry.py [--trials 20] [--imd target/release/imd]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import cv2  # noqa: E402
except ImportError:  # pragma: no cover
    cv2 = None
try:
    import poselib  # noqa: E402
except ImportError:  # pragma: no cover
    poselib = None

F, W, H = 500.0, 640, 480
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
FAIL_DEG = 10.0


def rodrigues(v):
    theta = np.linalg.norm(v)
    if theta < 1e-15:
        return np.eye(3)
    k = v / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def unit(rng):
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def make_problem(rng, kind, n, outlier_ratio, noise):
    """One synthetic pair: (x0, x1, R, t_unit) with x1 ~ R x0 + t."""
    R = rodrigues(unit(rng) * np.deg2rad(rng.uniform(5, 20)))
    if kind == "rotation":
        t = np.zeros(3)
    elif kind == "forward":
        t = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 1.0])
        t = t / np.linalg.norm(t) * 0.5
    else:
        t = unit(rng) * 0.5
    plane = None
    if kind == "planar":
        tilt, phi = np.deg2rad(rng.uniform(0, 60)), rng.uniform(0, 2 * np.pi)
        normal = rodrigues(np.array([np.cos(phi), np.sin(phi), 0.0]) * tilt) @ np.array([0, 0, 1.0])
        plane = (normal, normal[2] * 5.0)
    n_out = int(round(outlier_ratio * n))
    n_in = n - n_out
    p0s, p1s = [], []
    have = 0
    while have < n_in:
        m = 2 * (n_in - have) + 16
        u = np.column_stack([rng.uniform(0, W, m), rng.uniform(0, H, m)])
        ray = np.column_stack([(u[:, 0] - K[0, 2]) / F, (u[:, 1] - K[1, 2]) / F, np.ones(m)])
        if plane is None:
            depth = rng.uniform(2, 8, m)
        else:
            depth = plane[1] / (ray @ plane[0])
        X1 = (ray * depth[:, None]) @ R.T + t
        with np.errstate(divide="ignore", invalid="ignore"):
            p1 = X1[:, :2] / X1[:, 2:3] * F + K[:2, 2]
        ok = (depth > 0) & (X1[:, 2] > 0.1) & (p1[:, 0] >= 0) & (p1[:, 0] < W) & (p1[:, 1] >= 0) & (p1[:, 1] < H)
        u, p1 = u[ok][: n_in - have], p1[ok][: n_in - have]
        p0s.append(u)
        p1s.append(p1)
        have += len(u)
    x0 = np.concatenate(p0s) + rng.normal(scale=noise, size=(n_in, 2))
    x1 = np.concatenate(p1s) + rng.normal(scale=noise, size=(n_in, 2))
    o0 = np.column_stack([rng.uniform(0, W, n_out), rng.uniform(0, H, n_out)])
    o1 = np.column_stack([rng.uniform(0, W, n_out), rng.uniform(0, H, n_out)])
    x0, x1 = np.concatenate([x0, o0]), np.concatenate([x1, o1])
    perm = rng.permutation(n)
    tn = np.linalg.norm(t)
    return x0[perm].copy(), x1[perm].copy(), R, (t / tn if tn > 0 else t)


def rotation_error(R, R_gt):
    return float(np.rad2deg(np.arccos(np.clip((np.trace(R.T @ R_gt) - 1) / 2, -1, 1))))


def translation_error(t, t_gt):
    """Unfolded angle (degrees); 0 when the ground truth has no translation."""
    if np.linalg.norm(t_gt) == 0:
        return 0.0
    n = np.linalg.norm(t) * np.linalg.norm(t_gt)
    if n == 0:
        return 90.0
    return float(np.rad2deg(np.arccos(np.clip(np.dot(t, t_gt) / n, -1, 1))))


def error_auc(errors, thresholds):
    """LoFTR's error_auc (src/utils/metrics.py)."""
    errors = [0] + sorted(list(errors))
    recall = list(np.linspace(0, 1, len(errors)))
    aucs = []
    for thr in thresholds:
        last = np.searchsorted(errors, thr)
        y = recall[:last] + [recall[last - 1]]
        x = errors[:last] + [thr]
        aucs.append(np.trapezoid(y, x) / thr)
    return aucs


class Imd:
    """A long-running `imd pose --batch -`: one JSON line in, one result line out."""

    def __init__(self, binary, extra_args=()):
        self.proc = subprocess.Popen([binary, "pose", "--batch", "-", *extra_args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env={**os.environ, "RUST_LOG": "warn"})

    def __call__(self, x0, x1):
        line = json.dumps({"id": 0, "k0": [F, F, W / 2, H / 2], "k1": [F, F, W / 2, H / 2],
                           "matches": np.column_stack([x0, x1]).tolist()})
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        rec = json.loads(self.proc.stdout.readline())
        ms = rec["elapsed_us"] / 1000.0
        if "error" in rec:
            return None, None, ms, "failed"
        return np.array(rec["R"]), np.array(rec["t"]), ms, rec["model"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def poselib_runner():
    cam = {"model": "PINHOLE", "width": W, "height": H, "params": [F, F, W / 2, H / 2]}

    def run(x0, x1):
        t0 = time.perf_counter()
        pose, info = poselib.estimate_relative_pose(x0, x1, cam, cam, {}, {})
        ms = (time.perf_counter() - t0) * 1000
        if info.get("num_inliers", 0) < 5:
            return None, None, ms, "failed"
        return np.array(pose.R), np.array(pose.t), ms, "essential"

    return run


def opencv_runner():
    cv2.setNumThreads(1)

    def run(x0, x1):
        t0 = time.perf_counter()
        E, mask = cv2.findEssentialMat(x0, x1, K, method=cv2.USAC_MAGSAC, prob=0.9999, threshold=1.0)
        R = t = None
        if E is not None and E.shape[0] >= 3:
            _, R, t, _ = cv2.recoverPose(E[:3], x0, x1, K, mask=mask)
        ms = (time.perf_counter() - t0) * 1000
        if R is None:
            return None, None, ms, "failed"
        return R, t.ravel(), ms, "essential"

    return run


def run_interleaved(runners, problems):
    """Each problem goes to every method back to back (order rotating), so load changes on a
    shared machine hit all methods alike; the first problem runs once more as a warm-up."""
    names = list(runners)
    for name in names:
        runners[name](*problems[0][:2])
    results = {name: [] for name in names}
    for k, (x0, x1, _, _) in enumerate(problems):
        order = names[k % len(names):] + names[:k % len(names)]
        for name in order:
            results[name].append(runners[name](x0, x1))
    return results


def summarize(problems, results):
    errs, errs_folded, er, et, times, models = [], [], [], [], [], []
    for (_, _, R_gt, t_gt), (R, t, ms, model) in zip(problems, results):
        times.append(ms)
        models.append(model)
        if R is None:
            errs.append(np.inf)
            errs_folded.append(np.inf)
            er.append(np.inf)
            et.append(np.inf)
            continue
        e_r = rotation_error(R, R_gt)
        e_t = translation_error(t, t_gt)
        er.append(e_r)
        et.append(e_t)
        errs.append(max(e_r, e_t))
        errs_folded.append(max(e_r, min(e_t, 180 - e_t)))
    auc = error_auc(errs, [5, 10, 20])
    return {
        "auc5": 100 * auc[0], "auc10": 100 * auc[1], "auc20": 100 * auc[2],
        "auc5_folded": 100 * error_auc(errs_folded, [5])[0],
        "med_r": float(np.median(er)), "med_t": float(np.median(et)),
        "fail": 100 * float(np.mean([e > FAIL_DEG for e in errs])),
        "med_ms": float(np.median(times)),
        "models": {m: models.count(m) for m in sorted(set(models))},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imd", default="target/release/imd")
    ap.add_argument("--trials", type=int, default=20, help="problems per grid cell")
    ap.add_argument("--special-trials", type=int, default=100,
                    help="problems for the planar and rotation cells (failure rates need more)")
    ap.add_argument("--sizes", default="200,1000,5000")
    ap.add_argument("--outliers", default="0,0.25,0.5,0.75")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-special", action="store_true", help="skip the planar and rotation cells")
    ap.add_argument("--methods", default="imd,poselib,opencv")
    ap.add_argument("--json", default="", help="also write all numbers here")
    args = ap.parse_args()
    if not os.path.exists(args.imd):
        sys.exit(f"{args.imd} not found: build it with `cargo build --release --bin imd`")
    methods = args.methods.split(",")
    if "poselib" in methods and poselib is None:
        sys.exit("poselib is not installed (scripts/requirements.txt)")
    if "opencv" in methods and cv2 is None:
        sys.exit("opencv is not installed (scripts/requirements.txt)")

    cells = [("general", int(n), float(o), args.trials) for n in args.sizes.split(",") for o in args.outliers.split(",")]
    if not args.no_special:
        cells += [("planar", 1000, 0.25, args.special_trials), ("rotation", 1000, 0.25, args.special_trials)]
    versions = {"poselib": getattr(poselib, "__version__", "?"), "opencv": getattr(cv2, "__version__", "?")}
    print(f"imd vs poselib {versions['poselib']} vs opencv {versions['opencv']} USAC_MAGSAC; sigma {args.noise} px; "
          f"AUC of max(eR, eT unfolded) x100; times in ms (median), single-threaded")
    header = f"{'scene':9} {'N':>5} {'out':>4} {'method':8} {'AUC5':>6} {'AUC10':>6} {'AUC20':>6} {'AUC5f':>6} " \
             f"{'medR':>7} {'medT':>7} {'fail%':>6} {'ms':>8} {'imd/PL':>7}  models"
    print(header)
    print("-" * len(header))
    runners = {}
    if "imd" in methods:
        runners["imd"] = Imd(args.imd)
    if "poselib" in methods:
        runners["poselib"] = poselib_runner()
    if "opencv" in methods:
        runners["opencv"] = opencv_runner()
    report = []
    for scene, n, outl, trials in cells:
        rng = np.random.default_rng([args.seed, n, int(outl * 100), ["general", "planar", "rotation"].index(scene)])
        problems = [make_problem(rng, scene, n, outl, args.noise) for _ in range(trials)]
        results = run_interleaved({m: runners[m] for m in methods}, problems)
        stats = {m: summarize(problems, results[m]) for m in methods}
        ratio = stats["imd"]["med_ms"] / stats["poselib"]["med_ms"] if {"imd", "poselib"} <= set(stats) else float("nan")
        for m in methods:
            s = stats[m]
            r = f"{ratio:7.2f}" if m == "imd" else ""
            models = ",".join(f"{k}:{v}" for k, v in s["models"].items()) if m == "imd" else ""
            print(f"{scene:9} {n:5d} {int(outl * 100):3d}% {m:8} {s['auc5']:6.1f} {s['auc10']:6.1f} {s['auc20']:6.1f} "
                  f"{s['auc5_folded']:6.1f} {s['med_r']:7.3f} {s['med_t']:7.3f} {s['fail']:6.1f} {s['med_ms']:8.2f} {r:>7}  {models}")
        sys.stdout.flush()
        report.append({"scene": scene, "n": n, "outliers": outl, "trials": trials, "ratio_imd_poselib": ratio, **{m: stats[m] for m in methods}})
    if "imd" in runners:
        runners["imd"].close()
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"versions": versions, "noise": args.noise, "cells": report}, f, indent=1)


if __name__ == "__main__":
    main()
