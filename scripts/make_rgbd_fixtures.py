#!/usr/bin/env python3
"""Metric visual-odometry fixtures for `tests/it/metric.rs`, written to `tests/fixtures/metric/`.

RGB-D sequence (`rgbd/`): a ray-cast room (floor, walls, ceiling, three boxes) textured with
scikit-image's bundled photos, seen by a 256x192 pinhole camera (f = 200 px, principal point at
the image centre, pixel centres at integer coordinates) along a known trajectory: four keyframe
segments of four frames (keyframe + three), the camera moving 0.2 m per frame with a few degrees
of rotation. Depth is exact (ray-cast z along the optical axis), then stored like a sensor would:

* keyframes 0 and 2: `sensor_msgs/Image` 16UC1, millimetres (`kf<k>_depth_mm.png`, 16-bit PNG);
* keyframes 1 and 3: 32FC1, metres (`kf<k>_depth_m.f32`, raw little-endian float32, row-major);
* every keyframe gets sensor artefacts: two holes (0 in mm, NaN or 0 in metres), a patch of
  inf (32FC1 only) and a window whose depth lies beyond the valid range (12 m).

`rgbd/frames/<i>.jpg` are the colour frames (for running the demo model on the sequence).
`rgbd/sequence.json` holds the intrinsics, every frame's world-to-camera pose and, for each
keyframe-frame pair, oracle correspondences: keyframe pixels on a jittered grid, their exact
3-D point (from the exact depth), its projection into the frame, kept when visible there (an
exact ray cast at the projected sub-pixel position hits the same point). Columns:
`x0, y0, x1, y1, z0` (pixels, pixels, metres). The test adds the oracle's sub-pixel noise.

Middlebury stereo (`middlebury.json`): `skimage.data.stereo_motorcycle()` is the Middlebury 2014
Motorcycle pair (Scharstein et al., GCPR 2014) downsampled 4x with `downscale_local_mean`. Its
calibration (calib.txt of Motorcycle-perfect, full size): cam0 = [3979.911 0 1244.772; 0
3979.911 1019.507; 0 0 1], cam1 = [3979.911 0 1369.115; ...], doffs = 124.343, baseline =
193.001 mm. Downsampling by 4 with pixel centres at integer coordinates maps x to (x + 0.5)/4 -
0.5: f = 994.978, cx0 = 310.818, cx1 = 341.904, cy = 254.502, doffs = 31.086 px. The script
checks the disparity against the images (the right image sampled at x - d matches the left one
best at zero extra shift) and writes GT correspondences: left pixel, right pixel x - d, and the
dataset's depth Z = f B / (d + doffs).

Run from the repository root: `.venv/bin/python scripts/make_rgbd_fixtures.py`. Deterministic.
"""

import json
import os

import cv2
import numpy as np
import skimage.data

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metric")
W, H, F = 256, 192, 200.0
CX, CY = (W - 1) / 2, (H - 1) / 2


def rodrigues(v):
    theta = np.linalg.norm(v)
    if theta < 1e-15:
        return np.eye(3)
    k = v / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(theta) * kx + (1 - np.cos(theta)) * kx @ kx


def gray_texture(img):
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:
        img = img[..., :3]
    else:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.max() > 1.5:
        img = img / 255.0
    return img


TEXTURES = [gray_texture(t) for t in (
    skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket(),
    skimage.data.brick(), skimage.data.grass(), skimage.data.gravel(), skimage.data.camera(),
    skimage.data.hubble_deep_field(), skimage.data.immunohistochemistry())]


class Rect:
    """A textured rectangle: origin o, edge vectors a, b (metres); texture `tex` at `ppm` texture
    pixels per metre."""

    def __init__(self, o, a, b, tex, ppm):
        self.o, self.a, self.b = np.array(o, float), np.array(a, float), np.array(b, float)
        self.n = np.cross(self.a, self.b)
        self.tex, self.ppm = TEXTURES[tex], ppm

    def intersect(self, c, d):
        """Ray parameters (inf on a miss) and texture coordinates for rays c + s d."""
        denom = d @ self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            s = ((self.o - c) @ self.n) / denom
        p = c + d * s[:, None]
        rel = p - self.o
        u = rel @ self.a / (self.a @ self.a)
        v = rel @ self.b / (self.b @ self.b)
        ok = (s > 1e-9) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1) & np.isfinite(s)
        return np.where(ok, s, np.inf), u, v

    def colour(self, u, v):
        th, tw = self.tex.shape[:2]
        tu = (u * np.linalg.norm(self.a) * self.ppm).astype(int) % tw
        tv = (v * np.linalg.norm(self.b) * self.ppm).astype(int) % th
        return self.tex[tv, tu]


def box(lo, hi, tex, ppm):
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    return [
        Rect((x0, y0, z0), (dx, 0, 0), (0, dy, 0), tex, ppm),      # front (z = z0)
        Rect((x0, y0, z1), (dx, 0, 0), (0, dy, 0), tex, ppm),      # back
        Rect((x0, y0, z0), (0, 0, dz), (0, dy, 0), tex + 1, ppm),  # left
        Rect((x1, y0, z0), (0, 0, dz), (0, dy, 0), tex + 1, ppm),  # right
        Rect((x0, y0, z0), (dx, 0, 0), (0, 0, dz), tex + 2, ppm),  # top (y down: y0 is up)
    ]


# World frame = a camera-style frame: x right, y down, z forward. Floor at y = 1.2.
SCENE = [
    Rect((-3, 1.2, -2), (6, 0, 0), (0, 0, 10), 6, 120),       # floor
    Rect((-3, -1.5, -2), (6, 0, 0), (0, 0, 10), 8, 60),       # ceiling
    Rect((-3, -1.5, 8), (6, 0, 0), (0, 2.7, 0), 0, 100),      # back wall
    Rect((-3, -1.5, -2), (0, 0, 10), (0, 2.7, 0), 4, 150),    # left wall
    Rect((3, -1.5, -2), (0, 0, 10), (0, 2.7, 0), 1, 110),     # right wall
    *box((-1.2, 0.2, 3.5), (-0.2, 1.2, 4.3), 2, 250),
    *box((0.6, -0.3, 4.8), (1.6, 1.2, 5.6), 3, 200),
    *box((-0.5, 0.7, 6.0), (0.7, 1.2, 6.8), 7, 300),
]


def cast(R, t, px, py):
    """Exact hit of the rays through pixels (px, py) of camera (R, t) (world-to-camera):
    camera-frame depth z, and colour."""
    c = -R.T @ t
    rays_cam = np.column_stack([(px - CX) / F, (py - CY) / F, np.ones_like(px)])
    d = rays_cam @ R  # world directions (R^T applied to each row)
    best = np.full(len(px), np.inf)
    col = np.zeros((len(px), 3))
    for rect in SCENE:
        s, u, v = rect.intersect(c, d)
        closer = s < best
        if closer.any():
            best[closer] = s[closer]
            col[closer] = rect.colour(u[closer], v[closer])
    # Rays have unit z in the camera frame, so the ray parameter is the depth z.
    return best, col


def trajectory():
    """Four segments of four frames: world-to-camera (R, t) per frame."""
    poses = []
    starts = [((0.0, 0.0, -1.0), 0.0), ((-0.8, -0.1, 0.0), 10.0), ((0.9, 0.1, 0.4), -12.0), ((0.2, -0.2, 1.0), 4.0)]
    steps = [np.array([0.05, 0.0, 0.19]), np.array([0.19, 0.02, 0.05]), np.array([-0.12, 0.0, 0.16]), np.array([0.0, 0.1, 0.17])]
    turn = [np.array([0.5, 2.0, 0.3]), np.array([-0.4, -2.5, 0.5]), np.array([0.8, 1.5, -0.6]), np.array([-1.0, 1.0, 1.0])]
    for (c0, yaw), step, dturn in zip(starts, steps, turn):
        step = step / np.linalg.norm(step) * 0.2
        for k in range(4):
            ang = np.deg2rad(np.array([0.0, yaw, 0.0]) + k * dturn)
            Rcw = rodrigues(ang)  # camera-to-world rotation
            c = np.array(c0) + k * step
            R = Rcw.T
            poses.append((R, -R @ c))
    return poses


def render(R, t):
    py, px = np.mgrid[0:H, 0:W]
    z, col = cast(R, t, px.ravel().astype(float), py.ravel().astype(float))
    return z.reshape(H, W), col.reshape(H, W, 3)


def add_artefacts(depth_m, rng, metres):
    d = depth_m.copy().astype(np.float32)
    for _ in range(2):
        r, c = rng.integers(20, H - 20), rng.integers(20, W - 20)
        d[r - 4:r + 4, c - 6:c + 6] = np.nan if metres else 0.0
    if metres:
        r, c = rng.integers(20, H - 20), rng.integers(20, W - 20)
        d[r - 3:r + 3, c - 3:c + 3] = np.inf
    r, c = rng.integers(10, H // 2), rng.integers(20, W - 30)
    d[r:r + 10, c:c + 16] = 12.0  # a window onto something beyond max range
    return d


def correspondences(kf, frame, z_kf, rng, count=500):
    """Oracle matches from keyframe pose kf to frame: visible, inside the image."""
    (R0, t0), (R1, t1) = kf, frame
    gy, gx = np.mgrid[2:H - 2:3, 2:W - 2:3]
    gx, gy = gx.ravel().astype(float), gy.ravel().astype(float)
    z0 = z_kf[gy.astype(int), gx.astype(int)]
    X0 = np.column_stack([(gx - CX) / F * z0, (gy - CY) / F * z0, z0])
    Xw = (X0 - t0) @ R0  # R0^T (X0 - t0)
    X1 = Xw @ R1.T + t1
    ok = np.isfinite(z0) & (X1[:, 2] > 0.1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x1 = X1[:, 0] / X1[:, 2] * F + CX
        y1 = X1[:, 1] / X1[:, 2] * F + CY
    ok &= (x1 >= 0) & (x1 <= W - 1) & (y1 >= 0) & (y1 <= H - 1)
    idx = np.nonzero(ok)[0]
    hit, _ = cast(R1, t1, x1[idx], y1[idx])
    visible = np.abs(hit - X1[idx, 2]) < 1e-6 * X1[idx, 2]
    idx = idx[visible]
    idx = rng.choice(idx, size=min(count, len(idx)), replace=False)
    idx.sort()
    return [[round(float(gx[i]), 1), round(float(gy[i]), 1), round(float(x1[i]), 5), round(float(y1[i]), 5),
             round(float(z0[i]), 6)] for i in idx]


def make_rgbd():
    out = os.path.join(OUT, "rgbd")
    os.makedirs(os.path.join(out, "frames"), exist_ok=True)
    rng = np.random.default_rng(14)
    poses = trajectory()
    depths, segments = [], []
    for i, (R, t) in enumerate(poses):
        z, col = render(R, t)
        depths.append(z)
        bgr = (np.clip(col, 0, 1) * 255).astype(np.uint8)[..., ::-1]
        cv2.imwrite(os.path.join(out, "frames", f"{i:02d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    for s in range(4):
        k = 4 * s
        sensor = add_artefacts(depths[k], rng, metres=(s % 2 == 1))
        if s % 2 == 0:
            mm = np.where(np.isfinite(sensor) & (sensor > 0), np.round(sensor * 1000), 0)
            cv2.imwrite(os.path.join(out, f"kf{s}_depth_mm.png"), np.clip(mm, 0, 65535).astype(np.uint16))
            depth_file, encoding = f"kf{s}_depth_mm.png", "16UC1"
        else:
            sensor.astype("<f4").tofile(os.path.join(out, f"kf{s}_depth_m.f32"))
            depth_file, encoding = f"kf{s}_depth_m.f32", "32FC1"
        pairs = []
        for j in range(1, 4):
            pairs.append({"frame": k + j, "matches": correspondences(poses[k], poses[k + j], depths[k], rng)})
        segments.append({"keyframe": k, "depth": depth_file, "encoding": encoding, "pairs": pairs})
    seq = {
        "source": "scripts/make_rgbd_fixtures.py",
        "width": W, "height": H, "intrinsics": [F, F, CX, CY],
        "poses_world_to_camera": [{"R": R.round(12).tolist(), "t": t.round(12).tolist()} for R, t in poses],
        "segments": segments,
    }
    with open(os.path.join(out, "sequence.json"), "w") as f:
        json.dump(seq, f, separators=(",", ":"))


def make_middlebury():
    left, right, disp = skimage.data.stereo_motorcycle()
    f_full, cx0_full, cx1_full, cy_full, baseline_mm = 3979.911, 1244.772, 1369.115, 1019.507, 193.001
    assert abs((cx1_full - cx0_full) - 124.343) < 1e-9
    scale = 4.0
    f = f_full / scale
    cx0 = (cx0_full + 0.5) / scale - 0.5
    cx1 = (cx1_full + 0.5) / scale - 0.5
    cy = (cy_full + 0.5) / scale - 0.5
    doffs = cx1 - cx0
    h, w = disp.shape
    # Consistency of the disparity with the images: the photometric error of left(x) vs
    # right(x - d - s) over valid pixels must be smallest at s = 0 (within a quarter pixel).
    gl = left.mean(axis=2)
    gr = right.mean(axis=2)
    yy, xx = np.mgrid[0:h, 0:w]
    valid = np.isfinite(disp)
    errors = {}
    for s in np.arange(-1.0, 1.01, 0.25):
        xr = xx - np.where(valid, disp, 0) - s
        ok = valid & (xr >= 0) & (xr <= w - 2)
        x0 = np.floor(xr[ok]).astype(int)
        a = xr[ok] - x0
        sampled = gl[ok] * 0 + (1 - a) * gr[yy[ok], x0] + a * gr[yy[ok], x0 + 1]
        errors[float(s)] = float(np.mean(np.abs(sampled - gl[ok])))
    best = min(errors, key=errors.get)
    assert abs(best) <= 0.25, f"disparity inconsistent with the images: {errors}"
    rng = np.random.default_rng(193)
    ys, xs = np.nonzero(valid)
    pick = rng.choice(len(xs), size=1500, replace=False)
    rows = []
    for i in np.sort(pick):
        x, y = float(xs[i]), float(ys[i])
        d = float(disp[ys[i], xs[i]])
        z_mm = f * baseline_mm / (d + doffs)
        rows.append([x, y, round(x - d, 5), y, round(z_mm, 4)])
    data = {
        "source": "skimage.data.stereo_motorcycle() = Middlebury 2014 Motorcycle (perfect), downsampled 4x; "
                  "calib.txt: f 3979.911, cx0 1244.772, cx1 1369.115, cy 1019.507, doffs 124.343, baseline 193.001 mm",
        "width": w, "height": h,
        "focal_px": f, "cx_left": cx0, "cx_right": cx1, "cy": cy, "doffs_px": doffs, "baseline_mm": baseline_mm,
        "photometric_error_by_shift": errors,
        "columns": ["x_left", "y_left", "x_right", "y_right", "z_mm"],
        "matches": rows,
    }
    with open(os.path.join(OUT, "middlebury.json"), "w") as fh:
        json.dump(data, fh, separators=(",", ":"))
    print("middlebury: photometric error by extra shift", {k: round(v, 2) for k, v in errors.items()})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_rgbd()
    make_middlebury()
    for root, _, files in os.walk(OUT):
        for name in sorted(files):
            p = os.path.join(root, name)
            print(f"{os.path.relpath(p, OUT):28s} {os.path.getsize(p) / 1024:8.1f} kB")
