#!/usr/bin/env python3
"""Side-by-side benchmark of imd against OpenCV SIFT and ORB on the held-out photos (issue 20).

    .venv/bin/python scripts/bench/bench_peers.py --model models/imd-tiny-synth \
        --out out/bench_peers.json [--pairs 2] [--size 640x480]

Pairs (all three methods see the very same images, in one run):
  - the held-out photos coffee and rocket, centre-cropped to 4:3 and resized to --size, as
    image 0; image 1 is image 0 warped by a known homography H (cv2.warpPerspective, bilinear,
    black outside), `--pairs` pairs per photo and cell, each with its own small random
    translation (±4 % of the size) so the pairs of a cell differ;
  - cells: in-plane rotation {0, 15, 30, 45, 60, 90, 135, 180}° about the centre, scale
    {1, 0.8, 0.65, 0.5, 0.35}, strong perspective (each corner moved by up to 25 % of the size),
    and photometric changes at identity geometry: dark (×0.35, gamma 1.8), washed out
    (0.35·x + 0.55), noisy (Gaussian σ 20/255), blurred (Gaussian σ 3 px);
  - unrelated: coffee against rocket (and the reverse), no correct match exists;
  - the Middlebury motorcycle stereo pair (held out) with its ground-truth disparity, at --size's
    long side.
Methods: imd (`imd match IMG0 IMG1 --model DIR --out CSV`, its default threshold, one libtorch
thread via OMP_NUM_THREADS=1, the time it reports for the match), SIFT (cv2.SIFT_create(),
brute-force L2 kNN with Lowe's ratio 0.8), ORB (cv2.ORB_create(5000), Hamming kNN, ratio 0.8);
OpenCV on one thread (cv2.setNumThreads(1)), timed over detection + description of both images
+ matching.
Metrics per cell (pooled over its pairs): precision within 1 and 3 px (error = |H·x0 − x1|),
mean correct matches (< 3 px) per pair, corner AUC@3/5/10 px of the homography fitted with
cv2.findHomography(RANSAC, 3 px, confidence 0.99999) (LoFTR's error_auc; fewer than 4 matches
is a failure), median ms. Unrelated pairs: median match count. Motorcycle: precision within
3 px of the disparity (|Δx − d| < 3 and |Δy| < 3 where d is known), match count.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from imd_scripts import ROOT, skimage_data  # noqa: E402
SKIMAGE_DATA = skimage_data()

ROTATIONS = [0, 15, 30, 45, 60, 90, 135, 180]
SCALES = [1.0, 0.8, 0.65, 0.5, 0.35]
PHOTOMETRIC = ["dark", "washed_out", "noisy", "blurred"]


def load_base(name, w, h):
    img = cv2.imread(str(SKIMAGE_DATA / name), cv2.IMREAD_COLOR)
    if img is None:
        sys.exit(f"cannot read {SKIMAGE_DATA / name}")
    ih, iw = img.shape[:2]
    if iw * h > ih * w:  # too wide: crop the sides
        cw = ih * w // h
        img = img[:, (iw - cw) // 2:(iw - cw) // 2 + cw]
    else:
        ch = iw * h // w
        img = img[(ih - ch) // 2:(ih - ch) // 2 + ch]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def about_centre(m, w, h):
    c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1]], float)
    return c @ m @ np.linalg.inv(c)


def homography(cell, w, h, rng):
    t = np.eye(3)
    t[0, 2], t[1, 2] = rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.04, 0.04) * h
    kind, value = cell
    if kind == "rotation":
        a = np.deg2rad(value)
        m = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        return t @ about_centre(m, w, h)
    if kind == "scale":
        return t @ about_centre(np.diag([value, value, 1.0]), w, h)
    if kind == "perspective":
        src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
        dst = src + rng.uniform(-0.25, 0.25, (4, 2)).astype(np.float32) * np.float32([w, h])
        return cv2.getPerspectiveTransform(src, dst).astype(float)
    return t  # photometric: identity geometry (plus the small translation)


def photometric(img, kind, rng):
    x = img.astype(np.float32) / 255.0
    if kind == "dark":
        x = (x * 0.35) ** 1.8
    elif kind == "washed_out":
        x = 0.35 * x + 0.55
    elif kind == "noisy":
        x = x + rng.normal(0, 20 / 255, x.shape).astype(np.float32)
    elif kind == "blurred":
        x = cv2.GaussianBlur(x, (0, 0), 3.0)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def opencv_matches(kind, img0, img1):
    cv2.setNumThreads(1)
    start = time.perf_counter()
    g0, g1 = (cv2.cvtColor(i, cv2.COLOR_BGR2GRAY) for i in (img0, img1))
    if kind == "sift":
        det, norm = cv2.SIFT_create(), cv2.NORM_L2
    else:
        det, norm = cv2.ORB_create(5000), cv2.NORM_HAMMING
    k0, d0 = det.detectAndCompute(g0, None)
    k1, d1 = det.detectAndCompute(g1, None)
    out = []
    if d0 is not None and d1 is not None and len(k0) >= 2 and len(k1) >= 2:
        for pair in cv2.BFMatcher(norm).knnMatch(d0, d1, k=2):
            if len(pair) == 2 and pair[0].distance < 0.8 * pair[1].distance:
                m = pair[0]
                out.append([*k0[m.queryIdx].pt, *k1[m.trainIdx].pt])
    ms = (time.perf_counter() - start) * 1000
    return np.array(out, float).reshape(-1, 4), ms


def imd_matches(imd, model, img0, img1, tmp):
    p0, p1, csv = tmp / "a.png", tmp / "b.png", tmp / "m.csv"
    cv2.imwrite(str(p0), img0)
    cv2.imwrite(str(p1), img1)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", RUST_LOG="error")
    r = subprocess.run([str(imd), "match", str(p0), str(p1), "--model", str(model), "--out",
                        str(csv)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"imd match failed: {r.stderr}")
    # "<n> matches (… mode, …) in <ms> ms: …"
    ms = float(r.stderr.split(" in ", 1)[1].split(" ms", 1)[0])
    m = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
    return m[:, :4].reshape(-1, 4), ms


def errors(m, h):
    if len(m) == 0:
        return np.zeros(0)
    p = np.c_[m[:, :2], np.ones(len(m))] @ h.T
    return np.linalg.norm(p[:, :2] / p[:, 2:] - m[:, 2:4], axis=1)


def corner_error(m, h, w, hh):
    if len(m) < 4:
        return np.inf
    est, _ = cv2.findHomography(m[:, :2], m[:, 2:4], cv2.RANSAC, 3.0, confidence=0.99999,
                                maxIters=10000)
    if est is None:
        return np.inf
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, hh - 1, 1], [0, hh - 1, 1]], float)
    a, b = c @ h.T, c @ est.T
    return float(np.mean(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1)))


def error_auc(errs, thresholds):
    errs = np.sort(np.asarray(errs, float))
    recall = (np.arange(len(errs)) + 1) / len(errs)
    errs, recall = np.r_[0.0, errs], np.r_[0.0, recall]
    out = {}
    for t in thresholds:
        i = np.searchsorted(errs, t)
        e, r = np.r_[errs[:i], t], np.r_[recall[:i], recall[i - 1]]
        out[f"auc@{t}"] = float(np.trapezoid(r, x=e) / t) * 100
    return out


def summarise(rows, w, h):
    errs = np.concatenate([r["err"] for r in rows]) if rows else np.zeros(0)
    n = max(len(errs), 1)
    res = {
        "prec@1": 100 * float((errs < 1).sum()) / n,
        "prec@3": 100 * float((errs < 3).sum()) / n,
        "correct": float(np.mean([(r["err"] < 3).sum() for r in rows])),
        "matches": float(np.mean([len(r["err"]) for r in rows])),
        "ms": float(statistics.median(r["ms"] for r in rows)),
    }
    res.update(error_auc([r["corner"] for r in rows], [3, 5, 10]))
    return res


def motorcycle(methods, w):
    left = cv2.imread(str(SKIMAGE_DATA / "motorcycle_left.png"), cv2.IMREAD_COLOR)
    right = cv2.imread(str(SKIMAGE_DATA / "motorcycle_right.png"), cv2.IMREAD_COLOR)
    disp = np.load(SKIMAGE_DATA / "motorcycle_disp.npz")["arr_0"]
    s = w / left.shape[1]
    size = (w, int(round(left.shape[0] * s)))
    l, r = (cv2.resize(i, size, interpolation=cv2.INTER_AREA) for i in (left, right))
    out = {}
    for name, fn in methods.items():
        m, ms = fn(l, r)
        m = m / s  # back to original pixels
        x = np.clip(np.round(m[:, 0]).astype(int), 0, disp.shape[1] - 1)
        y = np.clip(np.round(m[:, 1]).astype(int), 0, disp.shape[0] - 1)
        d = disp[y, x]
        known = np.isfinite(d)
        good = known & (np.abs((m[:, 0] - m[:, 2]) - d) < 3 / s) & (np.abs(m[:, 1] - m[:, 3]) < 3 / s)
        out[name] = {"matches": int(len(m)), "prec@3": 100 * float(good.sum()) / max(int(known.sum()), 1),
                     "ms": ms}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/imd-tiny-synth")
    ap.add_argument("--imd", default=str(ROOT / "target" / "release" / "imd"))
    ap.add_argument("--out", default="out/bench_peers.json")
    ap.add_argument("--pairs", type=int, default=2, help="pairs per photo and cell")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="imd,sift,orb")
    ap.add_argument("--cells", default="", help="only cells whose name starts with one of these "
                    "comma-separated prefixes, e.g. 'rotation 45,scale' (default: all)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    names = args.methods.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    methods = {
        "imd": lambda a, b: imd_matches(args.imd, args.model, a, b, tmp),
        "sift": lambda a, b: opencv_matches("sift", a, b),
        "orb": lambda a, b: opencv_matches("orb", a, b),
    }
    methods = {k: v for k, v in methods.items() if k in names}
    bases = {n.split(".")[0]: load_base(n, w, h) for n in ("coffee.png", "rocket.jpg")}
    cells = ([("rotation", r) for r in ROTATIONS] + [("scale", s) for s in SCALES]
             + [("perspective", "strong")] + [("photometric", p) for p in PHOTOMETRIC])
    if args.cells:
        keep = args.cells.split(",")
        cells = [c for c in cells if any(f"{c[0]} {c[1]}".startswith(k) for k in keep)]
    rng = np.random.default_rng(args.seed)
    table = {}
    for cell in cells:
        rows = {k: [] for k in methods}
        for photo, img0 in bases.items():
            for _ in range(args.pairs):
                hm = homography(cell, w, h, rng)
                img1 = cv2.warpPerspective(img0, hm, (w, h), flags=cv2.INTER_LINEAR)
                if cell[0] == "photometric":
                    img1 = photometric(img1, cell[1], rng)
                for name, fn in methods.items():
                    m, ms = fn(img0, img1)
                    rows[name].append({"err": errors(m, hm), "corner": corner_error(m, hm, w, h),
                                       "ms": ms})
        key = f"{cell[0]} {cell[1]}"
        table[key] = {k: summarise(v, w, h) for k, v in rows.items()}
        print(key, {k: {m: round(x, 1) for m, x in v.items()} for k, v in table[key].items()},
              flush=True)
    unrelated = {k: [] for k in methods}
    for a, b in (("coffee", "rocket"), ("rocket", "coffee")):
        for name, fn in methods.items():
            m, _ = fn(bases[a], bases[b])
            unrelated[name].append(len(m))
    table["unrelated"] = {k: {"median_matches": float(np.median(v)), "matches": v}
                          for k, v in unrelated.items()}
    print("unrelated", table["unrelated"], flush=True)
    table["motorcycle"] = motorcycle(methods, w)
    print("motorcycle", table["motorcycle"], flush=True)

    print()
    header = "| cell | " + " | ".join(
        f"{k} P@1 / P@3 / correct / AUC@3/5/10 / ms" for k in methods) + " |"
    print(header)
    print("|" + "---|" * (len(methods) + 1))
    for cell in cells:
        key = f"{cell[0]} {cell[1]}"
        parts = []
        for k in methods:
            r = table[key][k]
            parts.append(f"{r['prec@1']:.0f} / {r['prec@3']:.0f} / {r['correct']:.0f} / "
                         f"{r['auc@3']:.0f}/{r['auc@5']:.0f}/{r['auc@10']:.0f} / {r['ms']:.0f}")
        print(f"| {key} | " + " | ".join(parts) + " |")
    print("| unrelated (median matches) | " + " | ".join(
        f"{table['unrelated'][k]['median_matches']:.0f}" for k in methods) + " |")
    print("| motorcycle (P@3 / matches) | " + " | ".join(
        f"{table['motorcycle'][k]['prec@3']:.0f} / {table['motorcycle'][k]['matches']}"
        for k in methods) + " |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "size": [w, h], "pairs_per_photo":
                                          args.pairs, "seed": args.seed, "table": table},
                                         indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
