#!/usr/bin/env python3
"""Side-by-side relative-pose benchmark: imd vs PoseLib 2.0.5 vs OpenCV USAC_MAGSAC.

Builds the standard synthetic grid (f = 500 px, 640x480, depth U[2, 8], rotation 5-20 deg about
a random axis, baseline 0.5 in a random direction, Gaussian noise sigma on both images, outliers
uniform in both images, matches shuffled) for N in {200, 1000, 5000} and outlier ratios
{0, 25, 50, 75 %}, plus a planar scene (plane through (0, 0, 5) tilted up to 60 deg), a
pure-rotation scene and a ground-plane scene (camera 1.5 m above the ground, driving 0.5 m
forward, yaw up to 5 deg). Every method gets identical arrays, problem by problem back to back (so
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

Absolute pose (`--problem absolute`, metric PnP for RGB-D / stereo odometry): keyframe points at
depth U[2, 8] m seen by the same camera, the current camera rotated 5-20 deg about a random axis
and moved 0.5 m in a random direction, Gaussian noise sigma on the current pixels, outliers pairing
a random keyframe point with a uniform pixel, N in {100, 500, 2000} x outlier ratios as above.
Both get the same threshold (`--pnp-threshold`, imd's default 2 px):

* imd:     `imd pnp --batch -` (P3P + LO-MSAC + Cauchy refinement; `elapsed_us`)
* poselib: `poselib.estimate_absolute_pose` (P3P LO-RANSAC + Cauchy bundle), `max_reproj_error`
           set to the same threshold, other options default

Pose error: max(rotation error in degrees, translation error in % of the true |t|); AUC@1/2/5 of
it (an estimate counts at threshold x when eR < x deg and eT < x %), medians, failure rate
(error > 10), median time and the imd/PoseLib ratio.

Usage: .venv/bin/python scripts/bench/bench_geometry.py [--trials 20] [--imd target/release/imd]
       .venv/bin/python scripts/bench/bench_geometry.py --problem absolute [--trials 50]
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from imd_scripts import error_auc, rodrigues  # noqa: E402

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


def unit(rng):
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def make_problem(rng, kind, n, outlier_ratio, noise):
    """One synthetic pair: (x0, x1, R, t_unit) with x1 ~ R x0 + t."""
    R = rodrigues(unit(rng) * np.deg2rad(rng.uniform(5, 20)))
    if kind == "ground":
        # A camera 1.5 m above flat ground, looking along it, driving 0.5 m forward with a
        # little sideways drift and yaw: the robot's commonest planar scene.
        R = rodrigues(np.array([rng.uniform(-1, 1), rng.uniform(-5, 5), rng.uniform(-1, 1)]) * np.pi / 180)
        c = np.array([rng.uniform(-0.05, 0.05), 0.0, 0.5])
        t = -R @ c
    elif kind == "rotation":
        t = np.zeros(3)
    elif kind == "forward":
        t = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 1.0])
        t = t / np.linalg.norm(t) * 0.5
    else:
        t = unit(rng) * 0.5
    plane = None
    if kind == "ground":
        plane = (np.array([0.0, 1.0, 0.0]), 1.5)
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


class ImdPnp:
    """A long-running `imd pnp --batch -`."""

    def __init__(self, binary, threshold):
        self.threshold = threshold
        self.proc = subprocess.Popen([binary, "pnp", "--batch", "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env={**os.environ, "RUST_LOG": "warn"})

    def __call__(self, x2d, x3d):
        line = json.dumps({"id": 0, "k": [F, F, W / 2, H / 2], "points": x3d.tolist(), "pixels": x2d.tolist(),
                           "threshold": self.threshold})
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        rec = json.loads(self.proc.stdout.readline())
        ms = rec["elapsed_us"] / 1000.0
        if "error" in rec:
            return None, None, ms, "failed"
        return np.array(rec["R"]), np.array(rec["t"]), ms, "pnp"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def poselib_pnp_runner(threshold):
    cam = {"model": "PINHOLE", "width": W, "height": H, "params": [F, F, W / 2, H / 2]}

    def run(x2d, x3d):
        t0 = time.perf_counter()
        pose, info = poselib.estimate_absolute_pose(x2d, x3d, cam, {"max_reproj_error": threshold}, {})
        ms = (time.perf_counter() - t0) * 1000
        if info.get("num_inliers", 0) < 4:
            return None, None, ms, "failed"
        return np.array(pose.R), np.array(pose.t), ms, "pnp"

    return run


def make_pnp_problem(rng, n, outlier_ratio, noise):
    """One synthetic PnP problem: (pixels, points, R, t) with x ~ K (R X + t), t in metres."""
    R = rodrigues(unit(rng) * np.deg2rad(rng.uniform(5, 20)))
    t = unit(rng) * 0.5
    n_out = int(round(outlier_ratio * n))
    n_in = n - n_out
    pts, pix = [], []
    have = 0
    while have < n_in:
        m = 2 * (n_in - have) + 16
        u = np.column_stack([rng.uniform(0, W, m), rng.uniform(0, H, m)])
        z = rng.uniform(2, 8, m)
        X = np.column_stack([(u[:, 0] - K[0, 2]) / F * z, (u[:, 1] - K[1, 2]) / F * z, z])
        X1 = X @ R.T + t
        with np.errstate(divide="ignore", invalid="ignore"):
            p1 = X1[:, :2] / X1[:, 2:3] * F + K[:2, 2]
        ok = (X1[:, 2] > 0.1) & (p1[:, 0] >= 0) & (p1[:, 0] < W) & (p1[:, 1] >= 0) & (p1[:, 1] < H)
        X, p1 = X[ok][: n_in - have], p1[ok][: n_in - have]
        pts.append(X)
        pix.append(p1)
        have += len(X)
    x3d = np.concatenate(pts)
    x2d = np.concatenate(pix) + rng.normal(scale=noise, size=(n_in, 2))
    u = np.column_stack([rng.uniform(0, W, n_out), rng.uniform(0, H, n_out)])
    z = rng.uniform(2, 8, n_out)
    o3d = np.column_stack([(u[:, 0] - K[0, 2]) / F * z, (u[:, 1] - K[1, 2]) / F * z, z])
    o2d = np.column_stack([rng.uniform(0, W, n_out), rng.uniform(0, H, n_out)])
    x2d, x3d = np.concatenate([x2d, o2d]), np.concatenate([x3d, o3d])
    perm = rng.permutation(n)
    return x2d[perm].copy(), x3d[perm].copy(), R, t


def summarize_pnp(problems, results):
    errs, er, et, times = [], [], [], []
    for (_, _, R_gt, t_gt), (R, t, ms, _) in zip(problems, results):
        times.append(ms)
        if R is None:
            errs.append(np.inf)
            er.append(np.inf)
            et.append(np.inf)
            continue
        e_r = rotation_error(R, R_gt)
        e_t = 100 * float(np.linalg.norm(np.asarray(t).ravel() - t_gt) / np.linalg.norm(t_gt))
        er.append(e_r)
        et.append(e_t)
        errs.append(max(e_r, e_t))
    auc = error_auc(errs, [1, 2, 5])
    return {
        "auc1": 100 * auc[0], "auc2": 100 * auc[1], "auc5": 100 * auc[2],
        "med_r": float(np.median(er)), "med_t_pct": float(np.median(et)),
        "fail": 100 * float(np.mean([e > FAIL_DEG for e in errs])),
        "med_ms": float(np.median(times)),
    }


def main_absolute(args):
    methods = [m for m in args.methods.split(",") if m in ("imd", "poselib")]
    runners = {}
    if "imd" in methods:
        runners["imd"] = ImdPnp(args.imd, args.pnp_threshold)
    if "poselib" in methods:
        runners["poselib"] = poselib_pnp_runner(args.pnp_threshold)
    print(f"absolute pose: imd vs poselib {getattr(poselib, '__version__', '?')}; sigma {args.noise} px, threshold "
          f"{args.pnp_threshold} px for both; error = max(eR deg, eT % of |t|), AUC x100; ms median, single-threaded")
    header = f"{'N':>5} {'out':>4} {'method':8} {'AUC1':>6} {'AUC2':>6} {'AUC5':>6} {'medR':>7} {'medT%':>7} " \
             f"{'fail%':>6} {'ms':>8} {'imd/PL':>7}"
    print(header)
    print("-" * len(header))
    report = []
    for n in [int(x) for x in args.pnp_sizes.split(",")]:
        for outl in [float(x) for x in args.outliers.split(",")]:
            rng = np.random.default_rng([args.seed, n, int(outl * 100), 14])
            problems = [make_pnp_problem(rng, n, outl, args.noise) for _ in range(args.trials)]
            results = run_interleaved(runners, problems)
            stats = {m: summarize_pnp(problems, results[m]) for m in methods}
            ratio = stats["imd"]["med_ms"] / stats["poselib"]["med_ms"] if len(stats) == 2 else float("nan")
            for m in methods:
                s = stats[m]
                r = f"{ratio:7.2f}" if m == "imd" else ""
                print(f"{n:5d} {int(outl * 100):3d}% {m:8} {s['auc1']:6.1f} {s['auc2']:6.1f} {s['auc5']:6.1f} "
                      f"{s['med_r']:7.3f} {s['med_t_pct']:7.3f} {s['fail']:6.1f} {s['med_ms']:8.3f} {r:>7}")
            sys.stdout.flush()
            report.append({"n": n, "outliers": outl, "trials": args.trials, "ratio_imd_poselib": ratio, **stats})
    if "imd" in runners:
        runners["imd"].close()
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"problem": "absolute", "noise": args.noise, "threshold_px": args.pnp_threshold,
                       "cells": report}, f, indent=1)


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
                    help="problems for the planar, rotation and ground cells (failure rates need more)")
    ap.add_argument("--sizes", default="200,1000,5000")
    ap.add_argument("--outliers", default="0,0.25,0.5,0.75")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", default="general,planar,rotation,ground", help="which cells to run")
    ap.add_argument("--methods", default="imd,poselib,opencv")
    ap.add_argument("--json", default="", help="also write all numbers here")
    ap.add_argument("--problem", choices=["relative", "absolute"], default="relative")
    ap.add_argument("--pnp-sizes", default="100,500,2000")
    ap.add_argument("--pnp-threshold", type=float, default=2.0, help="reprojection threshold for both, px")
    args = ap.parse_args()
    if not os.path.exists(args.imd):
        sys.exit(f"{args.imd} not found: build it with `cargo build --release --bin imd`")
    methods = args.methods.split(",")
    if "poselib" in methods and poselib is None:
        sys.exit("poselib is not installed (scripts/requirements.txt)")
    if "opencv" in methods and cv2 is None and args.problem == "relative":
        sys.exit("opencv is not installed (scripts/requirements.txt)")
    if args.problem == "absolute":
        return main_absolute(args)

    scenes = args.scenes.split(",")
    cells = []
    if "general" in scenes:
        cells += [("general", int(n), float(o), args.trials) for n in args.sizes.split(",") for o in args.outliers.split(",")]
    cells += [(s, 1000, 0.25, args.special_trials) for s in ("planar", "rotation", "ground") if s in scenes]
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
        rng = np.random.default_rng([args.seed, n, int(outl * 100), ["general", "planar", "rotation", "ground"].index(scene)])
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
