#!/usr/bin/env python3
"""Write the replay / tracker test bags: a textured room rendered from known camera poses.

Scene: the inside of a box-shaped room (x right, y down, z forward, metres) whose back wall,
floor and side walls carry real photos bundled with scikit-image. The room is convex and every
camera stays inside it, so a surface point is visible from a camera exactly when it lies in
front of it and projects inside its image (no occlusion). Images are rendered by ray casting
each pixel (4 samples per pixel, averaged) against the planes and sampling the photo
bilinearly; cam1 has plumb_bob distortion, so its rays come from `cv2.undistortPoints`.
Together with the GT this lets the Rust tests build an oracle matcher that projects known 3D
points, and compute the true overlap of any two frames.

Outputs (under tests/fixtures/replay/, all written with PyPI's `mcap` + `mcap-ros2-support`,
independently of imd):

  sequence.mcap   two cameras at 10 Hz (cam1 20 ms after cam0), 320x240 jpeg CompressedImage
                  + CameraInfo: /cam0/image_raw/compressed + /cam0/camera_info (40 frames,
                  pinhole f = 250), /cam1/image_raw/compressed + /cam1/camera_info (30 frames,
                  f = 225, plumb_bob). cam0 pans right while translating; cam1 looks at the right side
                  for 15 frames, then jumps to where cam0 started (no overlap with anything cam1
                  saw before: tracking is lost and must relocalize against cam0's keyframes).
  sequence.json   ground truth: cameras (K, D, size, topics, optical frame), room planes, and per
                  frame camera, stamp and world->camera pose (X_cam = R_cw X_world + t_cw).
  encodings.mcap  the first frames of the same cameras at 160x120 in odd encodings for `imd replay` with a
                  real (random-weight) model: /cam0/image_raw (Image): rgb8 with padded rows,
                  bgr8, mono8 padded, rgb8 with data one row short (decodes to an error),
                  yuv422 (UYVY), bayer_rggb8, mono16 big-endian padded; /cam1/image_raw/compressed
                  (CompressedImage): jpeg, png, a TRUNCATED CDR payload (a malformed message),
                  "rgb8; jpeg compressed bgr8", png, jpeg; camera_info for every stamp.
  manifest.json   per bag: message counts per topic, the malformed / undecodable messages, and
                  the outputs `imd replay` must write per topic (rules in docs/ros.md: odometry
                  and diagnostics for every processed frame, correspondences and debug image for
                  every processed frame except each camera's first, a diagnostics array for
                  every frame that failed to process).

With --long-bag PATH --frames N it instead writes one long single-camera bag (cam0 sweeping
back and forth, raw rgb8) for the replay throughput / memory benchmark (scripts/bench_replay.sh).

Run: .venv/bin/python scripts/make_replay_fixtures.py
"""

import argparse
import json
import math
import os
import sys

import cv2
import numpy as np
from mcap.writer import CompressionType
from skimage import data as skdata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bag_fixtures import BagWriter  # noqa: E402  (same rosbag2 writer as the io fixtures)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "replay")
W, H = 320, 240  # sequence.mcap; encodings.mcap and the long bag use half this size
T0 = 1_700_000_000 * 10**9
PERIOD = 100_000_000  # 10 Hz
CAM1_OFFSET = 20_000_000
SMALL = (W // 2, H // 2)  # encodings.mcap and the long benchmark bag

# Focal lengths for W x H; a camera rendered at another size scales them with the width.
CAMERAS = {
    "cam0": {"f": 250.0, "d": [0.0, 0.0, 0.0, 0.0, 0.0], "frame_id": "cam0_optical"},
    "cam1": {"f": 225.0, "d": [-0.08, 0.01, 0.0005, -0.0003, 0.0], "frame_id": "cam1_optical"},
}


def k_matrix(f, w=W, h=H):
    f = f * w / W
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], dtype=np.float64)


def textures():
    astro = skdata.astronaut()
    coffee = cv2.resize(skdata.coffee(), (512, 342), interpolation=cv2.INTER_AREA)
    back = np.concatenate(
        [astro[85:427], coffee, astro[85:427, ::-1]], axis=1)  # 342 x 1536
    moto = skdata.stereo_motorcycle()[0]
    return {
        "back": back,
        "floor": moto,
        "left": skdata.chelsea(),
        "right": skdata.rocket(),
    }


# Planes: origin O, unit axes u, v, extents (su, sv): points O + a u + b v, a in [0, su],
# b in [0, sv]; the photo spans the plane (pixel column a / su * width, row b / sv * height).
PLANES = [
    {"name": "back", "origin": [-5.0, -4.0, 7.0], "u": [1.0, 0.0, 0.0], "v": [0.0, 1.0, 0.0],
     "size": [10.0, 5.5]},
    {"name": "floor", "origin": [-5.0, 1.5, -3.0], "u": [1.0, 0.0, 0.0], "v": [0.0, 0.0, 1.0],
     "size": [10.0, 10.0]},
    {"name": "left", "origin": [-5.0, -4.0, -3.0], "u": [0.0, 0.0, 1.0], "v": [0.0, 1.0, 0.0],
     "size": [10.0, 5.5]},
    {"name": "right", "origin": [5.0, -4.0, 7.0], "u": [0.0, 0.0, -1.0], "v": [0.0, 1.0, 0.0],
     "size": [10.0, 5.5]},
]


def rot_y(deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_x(deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def pose(center, yaw, pitch_down, roll):
    """World->camera (R_cw, t_cw) of a camera at `center` turned `yaw` degrees to the right
    (about the vertical y axis), tilted `pitch_down` degrees down, rolled `roll` degrees."""
    r_wc = rot_y(yaw) @ rot_x(-pitch_down) @ rot_z(roll)
    r_cw = r_wc.T
    return r_cw, -r_cw @ np.asarray(center, dtype=np.float64)


def cam0_pose(k):
    return pose([-2.5 + 0.06 * k, -0.3 - 0.01 * k, 0.5 + 0.03 * k],
                -10.0 + 1.5 * k, 8.0 + 2.0 * math.sin(k / 5), 2.0 * math.sin(k / 7))


def cam1_pose(k):
    if k < 15:
        return pose([3.0 - 0.04 * k, -0.5, 1.0 + 0.05 * k], 35.0 - 0.6 * k, 6.0, -1.0)
    j = k - 15
    return pose([-2.4 + 0.04 * j, -0.25, 0.6 + 0.02 * j], -12.0 + 0.6 * j, 7.0, 1.0)


def long_pose(k):
    """A slow back-and-forth sweep (period 200 frames) for the long benchmark bag."""
    s = math.sin(2 * math.pi * k / 200)
    return pose([-1.0 + 1.5 * s, -0.3, 0.5], 10.0 * s, 8.0, 0.0)


def rays(cam, w=W, h=H):
    """Unit-free ray directions (x, y, 1) of 4 sub-pixel samples per pixel: (4, h, w, 3)."""
    k = k_matrix(cam["f"], w, h)
    d = np.asarray(cam["d"], dtype=np.float64)
    out = []
    for dy in (-0.25, 0.25):
        for dx in (-0.25, 0.25):
            xs, ys = np.meshgrid(np.arange(w) + dx, np.arange(h) + dy)
            pts = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
            if np.any(d != 0):
                und = cv2.undistortPoints(pts, k, d, criteria=(
                    cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)).reshape(h, w, 2)
            else:
                und = np.stack([(xs - k[0, 2]) / k[0, 0], (ys - k[1, 2]) / k[1, 1]], axis=-1)
            out.append(np.concatenate([und, np.ones((h, w, 1))], axis=-1))
    return np.stack(out)


def plane_hits(cam_rays, r_cw, t_cw):
    """Intersect camera rays (x, y, 1) (any leading shape) with each of PLANES in turn; yields
    (plane, t, a, b, inside): ray parameter t (hit = centre + t * R_wc ray, so t is the hit's
    optical-axis depth z), plane coordinates (a, b) of the hit, and whether it is in front of
    the camera and within the plane's extent. The nearest hit is the caller's business.
    Planes no ray hits are skipped."""
    r_wc = r_cw.T
    center = -r_wc @ t_cw
    shape = cam_rays.shape[:-1]
    basis = []
    for plane in PLANES:
        o, u, v = (np.asarray(plane[k], dtype=np.float64) for k in ("origin", "u", "v"))
        basis.append((o, u, v, np.cross(u, v)))
    # Every plane's n, u, v against every ray in one product (the rays' world directions
    # R_wc ray dotted with n is the ray dotted with R_cw n).
    axes = np.stack([r_cw @ w for _, u, v, n in basis for w in (n, u, v)], axis=1)
    dots = (axes.T @ cam_rays.reshape(-1, 3).T).reshape((len(PLANES), 3) + shape)
    for (plane, (o, u, v, n)), (denom, du, dv) in zip(zip(PLANES, basis), dots):
        su, sv = plane["size"]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((o - center) @ n) / denom
        in_front = t > 1e-6
        if not in_front.any():
            continue
        # (hit - o) . u with hit = centre + t d, by linearity.
        a = (center - o) @ u + t * du
        b = (center - o) @ v + t * dv
        inside = in_front & (a >= 0) & (a <= su) & (b >= 0) & (b <= sv)
        if inside.any():
            yield plane, t, a, b, inside


def ray_depth(cam_rays_1, r_cw, t_cw):
    """Exact depth z (metres along the optical axis) of the nearest plane hit per ray (x, y, 1),
    e.g. one ray per pixel (H, W, 3) -> (H, W); inf where a ray hits nothing."""
    best_t = np.full(cam_rays_1.shape[:-1], np.inf)
    for _, t, _, _, inside in plane_hits(cam_rays_1, r_cw, t_cw):
        np.copyto(best_t, t, where=inside & (t < best_t))
    return best_t


_FLOAT_TEXTURES = {}


def _float_texture(img):
    """The float32 copy cv2.remap samples (made once per texture)."""
    key = id(img)
    if key not in _FLOAT_TEXTURES:
        _FLOAT_TEXTURES[key] = (img, img.astype(np.float32))
    return _FLOAT_TEXTURES[key][1]


def render(cam_rays, r_cw, t_cw, tex):
    """Ray-cast the room: nearest plane hit per sample, bilinear photo lookup, 4 samples
    averaged per pixel. Samples that hit nothing are black."""
    best_t = np.full(cam_rays.shape[:-1], np.inf)
    colour = np.zeros(cam_rays.shape[:-1] + (3,))
    for plane, t, a, b, inside in plane_hits(cam_rays, r_cw, t_cw):
        su, sv = plane["size"]
        ok = inside & (t < best_t)
        if not ok.any():
            continue
        img = _float_texture(tex[plane["name"]])
        th, tw = img.shape[:2]
        mx = (a / su * tw - 0.5).astype(np.float32)
        my = (b / sv * th - 0.5).astype(np.float32)
        mx[~ok], my[~ok] = -10, -10
        for s in range(len(mx)):
            if ok[s].any():
                sampled = cv2.remap(img, mx[s], my[s], cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
                np.copyto(colour[s], sampled, where=ok[s][..., None])
        np.copyto(best_t, t, where=ok)
    return np.clip(np.round(colour.mean(axis=0)), 0, 255).astype(np.uint8)


def stamp(t_ns):
    return {"sec": t_ns // 10**9, "nanosec": t_ns % 10**9}


def camera_info_msg(t_ns, name, w=W, h=H):
    cam = CAMERAS[name]
    k = k_matrix(cam["f"], w, h)
    return {
        "header": {"stamp": stamp(t_ns), "frame_id": cam["frame_id"]},
        "height": h, "width": w,
        "distortion_model": "plumb_bob",
        "d": list(cam["d"]),
        "k": [float(x) for x in k.reshape(-1)],
        "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "p": [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0],
        "binning_x": 0, "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }


def image_msg(t_ns, name, encoding, step, payload, is_bigendian=0):
    h, w = SMALL[1], SMALL[0]
    return {"header": {"stamp": stamp(t_ns), "frame_id": CAMERAS[name]["frame_id"]},
            "height": h, "width": w, "encoding": encoding, "is_bigendian": is_bigendian,
            "step": step, "data": payload}


def compressed_msg(t_ns, name, fmt, rgb):
    ext = ".png" if fmt.endswith("png") else ".jpg"
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, rgb[..., ::-1], params)
    assert ok
    return {"header": {"stamp": stamp(t_ns), "frame_id": CAMERAS[name]["frame_id"]},
            "format": fmt, "data": buf.tobytes()}


def pad_rows(rows, step):
    h, n = rows.shape
    out = np.full((h, step), 0xEE, dtype=np.uint8)
    out[:, :n] = rows
    return out.tobytes()


def raw_image(kind, rgb):
    """(encoding, step, payload, is_bigendian) for the odd encodings of encodings.mcap."""
    W, H = SMALL  # noqa: N806 (raw images are written at the small size)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if kind == "rgb8_padded":
        return "rgb8", W * 3 + 4, pad_rows(rgb.reshape(H, -1), W * 3 + 4), 0
    if kind == "bgr8":
        return "bgr8", W * 3, rgb[..., ::-1].tobytes(), 0
    if kind == "mono8_padded":
        return "mono8", W + 8, pad_rows(grey, W + 8), 0
    if kind == "rgb8_short":
        return "rgb8", W * 3, rgb.tobytes()[: W * 3 * (H - 1)], 0
    if kind == "yuv422":  # UYVY, BT.601 limited range
        f = rgb.astype(np.float64)
        r, g, b = f[..., 0], f[..., 1], f[..., 2]
        y = np.clip(np.round(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255), 0, 255)
        u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
        v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
        u = np.clip(np.round((u[:, 0::2] + u[:, 1::2]) / 2), 0, 255)
        v = np.clip(np.round((v[:, 0::2] + v[:, 1::2]) / 2), 0, 255)
        packed = np.empty((H, W * 2), dtype=np.uint8)
        packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = (
            u, y[:, 0::2], v, y[:, 1::2])
        return "yuv422", W * 2, packed.tobytes(), 0
    if kind == "bayer_rggb8":
        yy, xx = np.mgrid[0:H, 0:W]
        is_r = (xx % 2 == 0) & (yy % 2 == 0)
        is_b = (xx % 2 == 1) & (yy % 2 == 1)
        m = np.where(is_r, rgb[..., 0], np.where(is_b, rgb[..., 2], rgb[..., 1]))
        return "bayer_rggb8", W, m.astype(np.uint8).tobytes(), 0
    if kind == "mono16_be_padded":
        v = (grey.astype(np.uint16) << 4) | (grey.astype(np.uint16) >> 4)
        raw = v.astype(">u2").view(np.uint8).reshape(H, W * 2)
        return "mono16", W * 2 + 6, pad_rows(raw, W * 2 + 6), 1
    raise ValueError(kind)


def camera_gt(name):
    cam = CAMERAS[name]
    return {"name": name, "width": W, "height": H, "k": [float(x) for x in
            k_matrix(cam["f"]).reshape(-1)], "distortion_model": "plumb_bob", "d": cam["d"],
            "frame_id": cam["frame_id"], "image_topic": f"/{name}/image_raw/compressed",
            "camera_info_topic": f"/{name}/camera_info"}


def write_sequence(tex, counts_out):
    path = os.path.join(OUT, "sequence.mcap")
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=512 * 1024)
    frames = []
    plan = [("cam0", k, T0 + k * PERIOD, cam0_pose(k)) for k in range(40)]
    plan += [("cam1", k, T0 + k * PERIOD + CAM1_OFFSET, cam1_pose(k)) for k in range(30)]
    plan.sort(key=lambda p: p[2])
    ray_cache = {name: rays(CAMERAS[name]) for name in CAMERAS}
    for name, k, t, (r_cw, t_cw) in plan:
        rgb = render(ray_cache[name], r_cw, t_cw, tex)
        bag.write(f"/{name}/camera_info", "sensor_msgs/msg/CameraInfo", t,
                  camera_info_msg(t, name))
        bag.write(f"/{name}/image_raw/compressed", "sensor_msgs/msg/CompressedImage", t,
                  compressed_msg(t, name, "jpeg", rgb))
        frames.append({"camera": name, "index": k, "stamp": stamp(t),
                       "r_cw": [float(x) for x in r_cw.reshape(-1)],
                       "t_cw": [float(x) for x in t_cw]})
    bag.close()
    gt = {"generator": "scripts/make_replay_fixtures.py", "cameras": [camera_gt(n) for n in
          CAMERAS], "planes": PLANES, "frames": frames}
    with open(os.path.join(OUT, "sequence.json"), "w") as f:
        json.dump(gt, f, indent=1)
        f.write("\n")
    per_camera = {n: sum(1 for fr in frames if fr["camera"] == n) for n in CAMERAS}
    counts_out["sequence.mcap"] = {
        "counts": dict(sorted(bag.counts.items())),
        "malformed": [],
        "undecodable": [],
        "frames_per_camera": per_camera,
        "expected_outputs": expected_outputs(per_camera, failed=0),
    }


def expected_outputs(processed_per_camera, failed):
    processed = sum(processed_per_camera.values())
    with_reference = sum(max(n - 1, 0) for n in processed_per_camera.values())
    return {
        "/imd_matcher/odometry": processed,
        "/tf": processed,
        "/imd_matcher/correspondences": with_reference,
        "/imd_matcher/debug_image": with_reference,
        "/diagnostics": processed + failed,
    }


def write_encodings(tex, counts_out):
    path = os.path.join(OUT, "encodings.mcap")
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=256 * 1024)
    cam0_plan = ["rgb8_padded", "bgr8", "mono8_padded", "rgb8_short", "yuv422", "bayer_rggb8",
                 "mono16_be_padded"]
    cam1_plan = ["jpeg", "png", "CORRUPT_CDR", "rgb8; jpeg compressed bgr8", "png", "jpeg"]
    ray_cache = {name: rays(CAMERAS[name], *SMALL) for name in CAMERAS}
    events = []
    for k, kind in enumerate(cam0_plan):
        events.append(("cam0", k, T0 + k * PERIOD, kind, cam0_pose(k)))
    for k, kind in enumerate(cam1_plan):
        events.append(("cam1", k, T0 + k * PERIOD + CAM1_OFFSET, kind, cam1_pose(k)))
    events.sort(key=lambda e: e[2])
    malformed, undecodable = [], []
    processed = {"cam0": 0, "cam1": 0}
    for name, k, t, kind, (r_cw, t_cw) in events:
        rgb = render(ray_cache[name], r_cw, t_cw, tex)
        bag.write(f"/{name}/camera_info", "sensor_msgs/msg/CameraInfo", t,
                  camera_info_msg(t, name, *SMALL))
        if name == "cam0":
            topic = "/cam0/image_raw"
            enc, step, payload, big = raw_image(kind, rgb)
            index, _ = bag.write(topic, "sensor_msgs/msg/Image", t,
                                 image_msg(t, name, enc, step, payload, big))
            if kind == "rgb8_short":
                undecodable.append({"topic": topic, "index": index, "stamp": stamp(t),
                                    "reason": "data shorter than step x height"})
            else:
                processed[name] += 1
        else:
            topic = "/cam1/image_raw/compressed"
            if kind == "CORRUPT_CDR":
                good = bag.encode("sensor_msgs/msg/CompressedImage",
                                  compressed_msg(t, name, "jpeg", rgb))
                index, _ = bag.write(topic, "sensor_msgs/msg/CompressedImage", t,
                                     raw=bytes(good[: len(good) // 2]))
                malformed.append({"topic": topic, "index": index, "stamp": stamp(t),
                                  "reason": "CDR payload truncated inside `data`"})
            else:
                bag.write(topic, "sensor_msgs/msg/CompressedImage", t,
                          compressed_msg(t, name, kind, rgb))
                processed[name] += 1
    bag.close()
    counts_out["encodings.mcap"] = {
        "counts": dict(sorted(bag.counts.items())),
        "malformed": malformed,
        "undecodable": undecodable,
        "frames_per_camera": processed,
        "expected_outputs": expected_outputs(processed, failed=len(undecodable)),
    }


def write_long(path, n):
    tex = textures()
    cam_rays = rays(CAMERAS["cam0"], *SMALL)
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=4 * 1024 * 1024)
    # The sweep repeats every 200 frames: render one period, replay it with fresh stamps.
    period = [render(cam_rays, *long_pose(k), tex) for k in range(min(n, 200))]
    for k in range(n):
        t = T0 + k * PERIOD
        bag.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", t,
                  camera_info_msg(t, "cam0", *SMALL))
        rgb = period[k % len(period)]
        bag.write("/cam0/image_raw", "sensor_msgs/msg/Image", t,
                  image_msg(t, "cam0", "rgb8", SMALL[0] * 3, rgb.tobytes()))
    bag.close()
    print(f"{path}: {n} frames, {os.path.getsize(path)} bytes", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--long-bag", help="write only a long benchmark bag to this path")
    parser.add_argument("--frames", type=int, default=5000, help="frames of the long bag")
    args = parser.parse_args()
    if args.long_bag:
        write_long(args.long_bag, args.frames)
        return
    os.makedirs(OUT, exist_ok=True)
    tex = textures()
    manifest = {"generator": "scripts/make_replay_fixtures.py", "bags": {}}
    write_sequence(tex, manifest["bags"])
    write_encodings(tex, manifest["bags"])
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name)
        if os.path.isfile(p):
            print(f"{name}: {os.path.getsize(p)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
