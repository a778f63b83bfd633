#!/usr/bin/env python3
"""Errors of `imd replay BAG --map MAP --summary-json S.json` against the ground truth of
scripts/fixtures/make_map_bags.py: each map keyframe's position error, and per localized frame the
position / rotation error in the map frame (the map frame placed in the world by the map's
first keyframe, camera A's first frame), counted against the acceptance bounds (5 cm and 1°;
20 cm or 5°), and the covariance against them: median position / rotation sigma and the mean
NEES of each 3-DoF block (3 when the covariance is consistent; summaries with `covariance`).

Run: .venv/bin/python scripts/bench/eval_map_localization.py MAP_JSON MAP_DIR SUMMARY_JSON
"""
import json, sys, numpy as np
gt = json.load(open(sys.argv[1])); man = json.load(open(sys.argv[2] + "/manifest.json")); loc = json.load(open(sys.argv[3]))
def key(s): return (s["sec"], s["nanosec"])
frames = {(f["camera"], key(f["stamp"])): f for f in gt["frames"]}
def qmat(q):
    x, y, z, w = q
    return np.array([[1-2*(y*y+z*z), 2*(x*y-z*w), 2*(x*z+y*w)], [2*(x*y+z*w), 1-2*(x*x+z*z), 2*(y*z-x*w)], [2*(x*z-y*w), 2*(y*z+x*w), 1-2*(x*x+y*y)]])
def world_from(f):
    R = np.array(f["r_cw"]).reshape(3, 3); t = np.array(f["t_cw"])
    T = np.eye(4); T[:3, :3] = R.T; T[:3, 3] = -R.T @ t; return T
def iso(p, q):
    T = np.eye(4); T[:3, :3] = qmat(q); T[:3, 3] = p; return T
k0 = min(man["keyframes"], key=lambda k: key(k["stamp"]))
map_from_world = iso(k0["position_m"], k0["orientation_xyzw"]) @ np.linalg.inv(world_from(frames[("cam0", key(k0["stamp"]))]))
for k in man["keyframes"]:
    want = map_from_world @ world_from(frames[("cam0", key(k["stamp"]))])
    print("map keyframe", key(k["stamp"]), "%.1f mm" % (1e3 * np.linalg.norm(want[:3, 3] - np.array(k["position_m"]))))
errs, consistency = [], []
for f in loc["per_frame"]:
    if f["position_m"] is None:
        errs.append(None); continue
    got = iso(f["position_m"], f["orientation_xyzw"])
    want = map_from_world @ world_from(frames[(f["camera"], key(f["stamp"]))])
    d = np.linalg.norm(got[:3, 3] - want[:3, 3])
    c = (np.trace(got[:3, :3].T @ want[:3, :3]) - 1) / 2
    r = np.degrees(np.arccos(np.clip(c, -1, 1)))
    errs.append((d, r))
    cov = f.get("covariance")
    if cov is not None:
        c = np.array(cov).reshape(6, 6)
        ep = want[:3, 3] - got[:3, 3]
        # R_true = exp(phi) R_got, phi about the map frame's axes (the covariance's convention).
        dr = want[:3, :3] @ got[:3, :3].T
        angle = np.arccos(np.clip((np.trace(dr) - 1) / 2, -1, 1))
        axis = np.array([dr[2, 1] - dr[1, 2], dr[0, 2] - dr[2, 0], dr[1, 0] - dr[0, 1]])
        phi = axis / (2 * np.sin(angle)) * angle if angle > 1e-12 else axis / 2
        consistency.append((np.sqrt(np.trace(c[:3, :3])), np.sqrt(np.trace(c[3:, 3:])),
                            ep @ np.linalg.solve(c[:3, :3], ep), phi @ np.linalg.solve(c[3:, 3:], phi)))
ok = [e for e in errs if e is not None]
print("frames", len(errs), "localized", len(ok))
print("within 5cm/1deg", sum(1 for d, r in ok if d <= 0.05 and r <= 1), "beyond 20cm/5deg", sum(1 for d, r in ok if d > 0.2 or r > 5))
if ok:
    print("median %.1f mm %.2f deg, worst %.1f mm %.2f deg" % (1e3*np.median([d for d, _ in ok]), np.median([r for _, r in ok]), 1e3*max(d for d, _ in ok), max(r for _, r in ok)))
if consistency:
    c = np.array(consistency)
    print("median sigma %.1f mm %.3f deg; mean NEES position %.2f rotation %.2f (3 DoF each)"
          % (1e3 * np.median(c[:, 0]), np.degrees(np.median(c[:, 1])), c[:, 2].mean(), c[:, 3].mean()))
