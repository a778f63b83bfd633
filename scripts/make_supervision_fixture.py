#!/usr/bin/env python3
"""Reference coarse / fine ground truth for ``tests/it/train.rs`` (parity test), computed point
by point in float64 numpy, straight from the rules in the technical notes §2 (Efficient LoFTR's
``warp_kpts``, ``spvs_coarse``, ``spvs_fine``), independently of the batched Rust code.

Scene: a slanted world plane seen by two cameras with different intrinsics, a rotation and a
translation; image 0 is 120x90 and image 1 100x80 original pixels, both resized to 64x48 and
padded to 64x64 (scales differ per axis); depth 0 has a hole of zeros, depth 1 a closer
occluding box. Writes ``tests/fixtures/supervision/plane_pair.safetensors``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "supervision" / "plane_pair.safetensors"
STRIDE, W = 8, 8


def rot(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def plane_depth(K: np.ndarray, n: np.ndarray, d: float, h: int, w: int) -> np.ndarray:
    """Depth of the plane n·X = d (camera frame) at every pixel centre."""
    ys, xs = np.mgrid[0:h, 0:w]
    rays = np.linalg.inv(K) @ np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)])
    return (d / (n @ rays)).reshape(h, w)


def lookup(depth: np.ndarray, x: int, y: int) -> float:
    h, w = depth.shape
    return float(depth[y, x]) if 0 <= x < w and 0 <= y < h else 0.0


def warp(p, depth0, depth1, T, K0, K1):
    """One point: (warped xy, valid) as EL's warp_kpts."""
    x, y = p
    d0 = lookup(depth0, int(np.round(x)), int(np.round(y)))
    X0 = np.linalg.inv(K0) @ np.array([x * d0, y * d0, d0])
    X1 = T[:3, :3] @ X0 + T[:3, 3]
    z = X1[2]
    q = K1 @ X1
    wx, wy = q[0] / (q[2] + 1e-4), q[1] / (q[2] + 1e-4)
    h1, w1 = depth1.shape
    covisible = 0 < wx < w1 - 1 and 0 < wy < h1 - 1
    valid = False
    if d0 != 0 and covisible:
        d1 = lookup(depth1, int(wx), int(wy))
        valid = d1 != 0 and abs(d1 - z) / d1 < 0.2
    return (wx, wy), valid


def nearest(pt, hc, wc):
    rx, ry = np.round(pt[0]), np.round(pt[1])
    if not (np.isfinite(rx) and np.isfinite(ry)) or rx < 0 or rx >= wc or ry < 0 or ry >= hc:
        return 0
    return int(ry) * wc + int(rx)


def main() -> int:
    K0 = np.array([[110.0, 0, 59.5], [0, 112.0, 44.5], [0, 0, 1]])
    K1 = np.array([[95.0, 0, 49.0], [0, 96.0, 40.0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = rot(0.03, -0.12, 0.05)
    T[:3, 3] = [0.35, -0.05, 0.1]
    n0 = np.array([0.1, -0.2, 1.0])
    n0 /= np.linalg.norm(n0)
    d0 = 4.0
    # The same plane in camera 1: n1 = R n0, d1 = d0 + n1·t.
    n1 = T[:3, :3] @ n0
    d1 = d0 + n1 @ T[:3, 3]
    depth0 = plane_depth(K0, n0, d0, 90, 120).astype(np.float32)
    depth1 = plane_depth(K1, n1, d1, 80, 100).astype(np.float32)
    depth0[30:42, 50:70] = 0.0  # unknown depth
    depth1[20:40, 10:35] *= 0.6  # an occluder in front of the plane
    d0f, d1f = depth0.astype(np.float64), depth1.astype(np.float64)
    T10 = np.linalg.inv(T)

    hc, wc = 8, 8  # 64x64 network input
    content = (64, 48)
    scale0 = np.array([120 / content[0], 90 / content[1]])
    scale1 = np.array([100 / content[0], 80 / content[1]])
    mask = np.zeros((hc, wc), bool)
    mask[: content[1] // STRIDE, : content[0] // STRIDE] = True

    def grid_points(scale):
        pts = []
        for i in range(hc * wc):
            yc, xc = divmod(i, wc)
            pts.append((0.0, 0.0) if not mask[yc, xc] else (STRIDE * xc * scale[0], STRIDE * yc * scale[1]))
        return pts

    pt0, pt1 = grid_points(scale0), grid_points(scale1)
    w0 = [warp(p, d0f, d1f, T, K0, K1)[0] for p in pt0]
    w1 = [warp(p, d1f, d0f, T10, K1, K0)[0] for p in pt1]
    w0c = [(x / (STRIDE * scale1[0]), y / (STRIDE * scale1[1])) for x, y in w0]
    w1c = [(x / (STRIDE * scale0[0]), y / (STRIDE * scale0[1])) for x, y in w1]
    near1 = [nearest(p, hc, wc) for p in w0c]
    near0 = [nearest(p, hc, wc) for p in w1c]
    coarse = []
    for i in range(1, hc * wc):
        if near0[near1[i]] == i:
            wx, wy = w0c[i]
            weight = (1 - 2 * abs(wx - np.round(wx))) * (1 - 2 * abs(wy - np.round(wy)))
            coarse.append((0, i, near1[i], weight))
    print(f"{len(coarse)} coarse GT matches", file=sys.stderr)

    # Fine GT for all coarse GT matches plus a few arbitrary (i, j) "predictions".
    rng = np.random.default_rng(3)
    matches = [(i, j) for _, i, j, _ in coarse] + [(int(rng.integers(0, 48)), int(rng.integers(0, 48))) for _ in range(6)]
    fine = []
    for m, (i, j) in enumerate(matches):
        yi, xi = divmod(i, wc)
        yj, xj = divmod(j, wc)
        p1 = (STRIDE * xj * scale1[0], STRIDE * yj * scale1[1]) if mask[yj, xj] else (0.0, 0.0)
        for k in range(W * W):
            ky, kx = divmod(k, W)
            p = ((STRIDE * xi + kx - 3.5) * scale0[0], (STRIDE * yi + ky - 3.5) * scale0[1])
            (wx, wy), valid = warp(p, d0f, d1f, T, K0, K1)
            dx = (wx - p1[0]) / scale1[0] + 3.5
            dy = (wy - p1[1]) / scale1[1] + 3.5
            rx, ry = np.round(dx), np.round(dy)
            if valid and 0 <= rx < W and 0 <= ry < W:
                weight = (1 - 2 * abs(dx - rx)) * (1 - 2 * abs(dy - ry))
                fine.append((m, k, int(ry) * W + int(rx), weight, dx - rx, dy - ry))
    print(f"{len(fine)} fine GT entries for {len(matches)} matches", file=sys.stderr)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    c = np.array(coarse, dtype=np.float64).reshape(-1, 4)
    f = np.array(fine, dtype=np.float64).reshape(-1, 6)
    tensors = {
        "depth0": depth0[None],
        "depth1": depth1[None],
        "K0": K0[None],
        "K1": K1[None],
        "T_0to1": T[None],
        "scale0": scale0[None],
        "scale1": scale1[None],
        "mask": mask[None].astype(np.uint8),
        "coarse_ids": c[:, :3].astype(np.int64),
        "coarse_weight": c[:, 3],
        "match_i": np.array([m[0] for m in matches], dtype=np.int64),
        "match_j": np.array([m[1] for m in matches], dtype=np.int64),
        "fine_ids": f[:, :3].astype(np.int64),
        "fine_weight": f[:, 3],
        "fine_subpixel": f[:, 4:6],
    }
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
