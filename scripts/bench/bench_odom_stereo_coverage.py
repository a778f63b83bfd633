#!/usr/bin/env python3
"""How much of stereo's worst case is the share of matches a stereo keyframe can lift?

For every frame of an `imd replay` of stereo.mcap (scripts/bench/bench_odom.sh): imd's own
keyframe-current matches (/imd_matcher/correspondences), the keyframe's left/right matches
(`imd match`, same model, same threshold), then OpenCV PnP (seeded RANSAC + LM) with the EXACT
depth of rgbd.mcap (same frames) on all matches vs on the matches whose keyframe pixel has a
stereo match within 2 px (stereo.lookup_radius_px: the ones imd's stereo path can lift). If the
subset alone is far off with exact depth, stereo's worst case is the lookup's coverage, not the
triangulation.

Run: .venv/bin/python scripts/bench/bench_odom_stereo_coverage.py out/odom [IMD_BINARY]
"""
import json
import os
import subprocess
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_odom as b  # noqa: E402

cv2.setRNGSeed(0)
odom_dir = sys.argv[1]
imd_bin = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
    os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "imd")
gt = b.GroundTruth(os.path.join(odom_dir, 'odom.json')); K = gt.k; f = K[0, 0]
M = gt.mount; Mi = np.linalg.inv(M)
out = os.path.join(odom_dir, 'run', 'stereo_out.mcap')
work = os.path.join(odom_dir, 'run', 'keyframes'); os.makedirs(work, exist_ok=True)
msgs = b.read_messages(out, [b.ODOMETRY, '/imd_matcher/correspondences'])
kfo, corr = {}, {}
dt = np.dtype([('x0','<f4'),('y0','<f4'),('x1','<f4'),('y1','<f4'),('c','<f4'),('i','u1'),('p','V3')])
for t, _, m in msgs:
    s = b.ns(m.header.stamp)
    if t == b.ODOMETRY: kfo[s] = b.keyframe_stamp(m.header.frame_id)
    else: corr[s] = np.frombuffer(bytes(m.data), dtype=dt)
kfs = sorted(set(kfo.values()))
imgs = {}
for topic, _, m in b.read_messages(os.path.join(odom_dir, 'stereo.mcap'), ['/cam0/image_raw/compressed', '/cam0/right/image_raw/compressed']):
    s = b.ns(m.header.stamp)
    if s in kfs:
        p = f"{work}/{gt.index[s]}{'R' if 'right' in topic else 'L'}.jpg"
        open(p, 'wb').write(bytes(m.data))
depth = {}
for topic, _, m in b.read_messages(os.path.join(odom_dir, 'rgbd.mcap'), ['/cam0/depth/image_raw']):
    s = b.ns(m.header.stamp)
    if s in kfs: depth[s] = (np.frombuffer(bytes(m.data), '<u2').reshape(240, 320) / 1000.).astype(np.float32)
stp = {}
for s in kfs:
    k = gt.index[s]; csv = f'{work}/{k}.csv'
    if not os.path.exists(csv):
        subprocess.run([imd_bin, 'match', '--model', 'models/imd-tiny-synth', '--resize', '0', f'{work}/{k}L.jpg', f'{work}/{k}R.jpg', '--out', csv], check=True, capture_output=True)
    st = np.loadtxt(csv, delimiter=',', skiprows=1)
    disp = st[:, 0] - st[:, 2]; ok = (disp >= 2) & (np.abs(st[:, 1] - st[:, 3]) <= 2)
    stp[s] = st[ok, :2]
def lift(u, v, z): return np.stack([(u - K[0, 2]) / f * z, (v - K[1, 2]) / f * z, z], -1)
def pnp(obj, img, G):
    if len(obj) < 12: return None
    ok, r, t, inl = cv2.solvePnPRansac(obj, img, K, None, iterationsCount=2000, reprojectionError=2.0, confidence=0.9999, flags=cv2.SOLVEPNP_EPNP)
    if not ok or inl is None or len(inl) < 12: return None
    inl = inl.ravel(); r, t = cv2.solvePnPRefineLM(obj[inl], img[inl], K, None, r, t)
    T = np.linalg.inv(b.se3(cv2.Rodrigues(r)[0], t))
    return np.linalg.norm(T[:3, 3] - G[:3, 3]) / np.linalg.norm(G[:3, 3])
rows = {'all': [], 'subset': []}; ends = {'all': {}, 'subset': {}}; nsub = []
for s in gt.stamps:
    kf = kfo.get(s)
    if kf is None or kf == s or s not in corr: continue
    G = Mi @ np.linalg.inv(gt.base[gt.index[kf]]) @ gt.base[gt.index[s]] @ M
    d = np.linalg.norm(G[:3, 3])
    if d < 0.1: continue
    c = corr[s]; u, v = c['x0'].astype(np.float64), c['y0'].astype(np.float64); img = np.stack([c['x1'], c['y1']], -1).astype(np.float64)
    D = depth[kf]; z = cv2.remap(D, u.astype(np.float32).reshape(-1, 1), v.astype(np.float32).reshape(-1, 1), cv2.INTER_NEAREST).ravel().astype(np.float64)
    d2 = ((np.stack([u, v], -1)[:, None] - stp[kf][None]) ** 2).sum(-1).min(1)
    sub = d2 <= 4.0; nsub.append((sub.sum(), len(c)))
    for name, sel in (('all', np.ones(len(c), bool)), ('subset', sub)):
        e = pnp(lift(u[sel], v[sel], z[sel]), img[sel], G)
        if e is None: continue
        rows[name].append(100 * e)
        prev = ends[name].get(kf)
        if prev is None or d > prev[0]: ends[name][kf] = (d, 100 * e)
res = {}
for name in rows:
    r = np.array(rows[name]); e = np.array([v[1] for v in ends[name].values()])
    res[name] = dict(frames=len(r), median=float(np.median(r)), p90=float(np.percentile(r, 90)), max=float(r.max()), seg_end_median=float(np.median(e)), seg_end_max=float(e.max()))
    print(f"GT depth, {name:6s} matches: {len(r)} frames >= 0.1 m, error median {np.median(r):.2f} % p90 {np.percentile(r,90):.2f} % max {r.max():.2f} %; segment ends median {np.median(e):.2f} % max {e.max():.2f} %")
ns = np.array(nsub); print(f"stereo-liftable share of imd's matches: median {np.median(ns[:,0]/ns[:,1]):.2f} ({np.median(ns[:,0]):.0f} of {np.median(ns[:,1]):.0f})")
res['liftable_share_median'] = float(np.median(ns[:, 0] / ns[:, 1]))
with open(os.path.join(odom_dir, 'run', 'stereo_coverage.json'), 'w') as fh:
    json.dump(res, fh, indent=1)
