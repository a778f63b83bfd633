#!/usr/bin/env python3
"""Write a metric replay bag (RGB-D + rectified stereo) of make_replay_fixtures.py's textured room.

Scene, renderer and camera come from make_replay_fixtures.py (imported, not copied): cam0
(320x240 pinhole, f = 250, no distortion) along cam0_pose(k) for k = 0..23 at 10 Hz, i.e. exactly
the first 24 cam0 frames of tests/fixtures/replay/sequence.json. Depth is exact: one ray per
pixel through its integer pixel coordinate (the pixel centre; the colour image averages 4
sub-samples), nearest plane hit, z along the optical axis. A right camera with the same
intrinsics sits B = 0.12 m along the left camera's +x axis (R_cw equal, t_cw_right = t_cw_left -
(B, 0, 0)), so the pair is rectified and a left pixel (u, v) at depth z is seen at (u - f B / z, v).

Outputs (under OUT_DIR, written with PyPI's `mcap` + `mcap-ros2-support`, independently of imd):

  metric.mcap  24 frames, every message stamped (and logged) at t = T0 + k * PERIOD:
                 /cam0/camera_info, /cam0/image_raw/compressed   like sequence.mcap (jpeg)
                 /cam0/depth/image_raw     Image 16UC1 little-endian, millimetres, 0 = no hit
                 /cam0/depth_m/image_raw   Image 32FC1 little-endian, metres, NaN = no hit
                 /cam0/right/camera_info   frame cam0_right_optical, P[3] = -f B
                 /cam0/right/image_raw/compressed
               Both depth images are registered to the colour image (same size, K, frame_id
               cam0_optical). The millimetres are round(1000 z) of the stored float32 metres, so
               the two topics agree exactly. Frames with k % 6 == 3 carry sensor artefacts: a
               NaN hole at rows 40..49, cols 60..73 (0 in 16UC1) and a +inf patch at rows
               150..155, cols 200..205 (32FC1 only).
               Within a frame the write order alternates: even k writes camera_info, image,
               depth, depth_m, right camera_info, right image; odd k writes depth, depth_m, right
               image, right camera_info, camera_info, image. Log times are equal within a
               frame, so a reader that pairs colour, depth and right image by stamp must not
               rely on file order (both orders occur).
               /tf_static                one TFMessage at T0 - 1 ms (before every frame): a
                                         robot's mount, base_link -> cam0_link (x 0.2 m, z 0.5 m,
                                         pitched 10 deg down) -> cam0_optical (REP 103 optical
                                         axes), as robot_state_publisher latches it
  metric.json  ground truth in the schema of sequence.json (cameras "cam0" and "cam0/right",
               planes, per frame camera / index / stamp / world->camera pose) plus baseline_m,
               depth_topic, depth_m_topic, depth_artifacts, per-topic message counts and
               "mount": the optical frame's pose in base_link (t, q_xyzw; X_base = R X_opt + t).

Deterministic (same bytes every run).
Run: .venv/bin/python scripts/make_metric_bag.py OUT_DIR
"""

import argparse
import json
import os
import sys
import time

import numpy as np
from mcap.writer import CompressionType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bag_fixtures import BagWriter  # noqa: E402
from make_replay_fixtures import (  # noqa: E402
    CAMERAS, H, PERIOD, PLANES, T0, W, cam0_pose, camera_gt, camera_info_msg, compressed_msg,
    k_matrix, ray_depth, rays, render, stamp, textures)

N_FRAMES = 24
BASELINE = 0.12  # metres, along the left camera's +x axis
ARTIFACT_EVERY, ARTIFACT_PHASE = 6, 3  # frames with k % 6 == 3 get a hole and an inf patch
HOLE = (slice(40, 50), slice(60, 74))  # rows, cols: NaN in 32FC1, 0 in 16UC1
INF_PATCH = (slice(150, 156), slice(200, 206))  # +inf in 32FC1 only

LEFT = "cam0"
RIGHT_NAME = "cam0/right"
RIGHT_FRAME = "cam0_right_optical"
TOPIC = {
    "info": "/cam0/camera_info",
    "image": "/cam0/image_raw/compressed",
    "depth": "/cam0/depth/image_raw",
    "depth_m": "/cam0/depth_m/image_raw",
    "right_info": "/cam0/right/camera_info",
    "right_image": "/cam0/right/image_raw/compressed",
}
# The robot's mount (REP 103: base_link x forward, y left, z up): the camera body 0.2 m ahead
# and 0.5 m above base_link, pitched 10 degrees down (a positive rotation about +y), its
# optical frame rotated from the body by the standard x right, y down, z forward.
MOUNT_LINK_T = (0.2, 0.0, 0.5)
MOUNT_PITCH_DEG = 10.0
OPTICAL_Q = (-0.5, 0.5, -0.5, 0.5)  # x, y, z, w
ORDER_EVEN = ["info", "image", "depth", "depth_m", "right_info", "right_image"]
ORDER_ODD = ["depth", "depth_m", "right_image", "right_info", "info", "image"]


def centre_rays(cam):
    """One ray (x, y, 1) per pixel through its integer pixel coordinate: (H, W, 3)."""
    assert not any(cam["d"]), "pixel-centre rays assume an undistorted camera"
    k = k_matrix(cam["f"])
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    return np.stack([(xs - k[0, 2]) / k[0, 0], (ys - k[1, 2]) / k[1, 1], np.ones((H, W))], axis=-1)


def depth_images(z, artifacts):
    """Exact depth (inf = no hit) -> (16UC1 mm uint16, 32FC1 m float32), both (H, W)."""
    metres = np.where(np.isfinite(z), z, np.nan).astype(np.float32)
    if artifacts:
        metres[HOLE] = np.nan
    finite = np.isfinite(metres)
    mm = np.zeros((H, W), dtype=np.float64)
    mm[finite] = np.round(1000.0 * metres[finite].astype(np.float64))
    assert mm.max() <= 65535
    mm = mm.astype(np.uint16)
    if artifacts:
        metres[INF_PATCH] = np.inf  # the 16UC1 image keeps the true depth there
    return mm, metres


def depth_msg(t_ns, encoding, arr):
    data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"header": {"stamp": stamp(t_ns), "frame_id": CAMERAS[LEFT]["frame_id"]},
            "height": H, "width": W, "encoding": encoding, "is_bigendian": 0,
            "step": W * arr.dtype.itemsize, "data": data}


def right_info_msg(t_ns):
    msg = camera_info_msg(t_ns, LEFT)
    msg["header"]["frame_id"] = RIGHT_FRAME
    msg["p"] = list(msg["p"])
    msg["p"][3] = -msg["p"][0] * BASELINE
    return msg


def right_camera_gt():
    gt = camera_gt(LEFT)
    gt.update(name=RIGHT_NAME, frame_id=RIGHT_FRAME, image_topic=TOPIC["right_image"],
              camera_info_topic=TOPIC["right_info"])
    return gt


def pose_gt(name, k, t, r_cw, t_cw):
    return {"camera": name, "index": k, "stamp": stamp(t),
            "r_cw": [float(x) for x in r_cw.reshape(-1)], "t_cw": [float(x) for x in t_cw]}


def quat_mul(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def quat_matrix(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def mount():
    """The two transforms of /tf_static and their product (optical frame in base_link)."""
    half = np.radians(MOUNT_PITCH_DEG) / 2
    link_q = (0.0, float(np.sin(half)), 0.0, float(np.cos(half)))
    optical_q = quat_mul(link_q, OPTICAL_Q)
    return link_q, {"t": list(MOUNT_LINK_T), "q_xyzw": [float(v) for v in optical_q],
                    "base_frame": "base_link", "optical_frame": CAMERAS[LEFT]["frame_id"]}


def tf_static_msg(t_ns, link_q):
    def stamped(parent, child, t, q):
        return {"header": {"stamp": stamp(t_ns), "frame_id": parent}, "child_frame_id": child,
                "transform": {"translation": {"x": t[0], "y": t[1], "z": t[2]},
                              "rotation": {"x": q[0], "y": q[1], "z": q[2], "w": q[3]}}}
    return {"transforms": [
        stamped("base_link", "cam0_link", MOUNT_LINK_T, link_q),
        stamped("cam0_link", CAMERAS[LEFT]["frame_id"], (0.0, 0.0, 0.0), OPTICAL_Q)]}


def write(out_dir):
    tex = textures()
    cam = CAMERAS[LEFT]
    sample_rays, pixel_rays = rays(cam), centre_rays(cam)
    path = os.path.join(out_dir, "metric.mcap")
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=1024 * 1024)
    link_q, mount_gt = mount()
    assert np.allclose(quat_matrix(mount_gt["q_xyzw"]) @ [0, 0, 1],
                       [np.cos(np.radians(MOUNT_PITCH_DEG)), 0, -np.sin(np.radians(MOUNT_PITCH_DEG))])
    bag.write("/tf_static", "tf2_msgs/msg/TFMessage", T0 - 1_000_000, tf_static_msg(T0, link_q))
    frames = []
    for k in range(N_FRAMES):
        t = T0 + k * PERIOD
        r_cw, t_cw = cam0_pose(k)
        t_cw_right = t_cw - np.array([BASELINE, 0.0, 0.0])
        mm, metres = depth_images(ray_depth(pixel_rays, r_cw, t_cw),
                                  k % ARTIFACT_EVERY == ARTIFACT_PHASE)
        msgs = {
            "info": ("sensor_msgs/msg/CameraInfo", camera_info_msg(t, LEFT)),
            "image": ("sensor_msgs/msg/CompressedImage",
                      compressed_msg(t, LEFT, "jpeg", render(sample_rays, r_cw, t_cw, tex))),
            "depth": ("sensor_msgs/msg/Image", depth_msg(t, "16UC1", mm)),
            "depth_m": ("sensor_msgs/msg/Image", depth_msg(t, "32FC1", metres)),
            "right_info": ("sensor_msgs/msg/CameraInfo", right_info_msg(t)),
            "right_image": ("sensor_msgs/msg/CompressedImage", compressed_msg(
                t, LEFT, "jpeg", render(sample_rays, r_cw, t_cw_right, tex))),
        }
        msgs["right_image"][1]["header"]["frame_id"] = RIGHT_FRAME
        for key in ORDER_EVEN if k % 2 == 0 else ORDER_ODD:
            type_name, msg = msgs[key]
            bag.write(TOPIC[key], type_name, t, msg)
        frames.append(pose_gt(LEFT, k, t, r_cw, t_cw))
        frames.append(pose_gt(RIGHT_NAME, k, t, r_cw, t_cw_right))
    bag.close()
    gt = {
        "generator": "scripts/make_metric_bag.py",
        "cameras": [camera_gt(LEFT), right_camera_gt()],
        "planes": PLANES,
        "frames": frames,
        "baseline_m": BASELINE,
        "depth_topic": TOPIC["depth"],
        "depth_m_topic": TOPIC["depth_m"],
        "depth_artifacts": {
            "frames": [k for k in range(N_FRAMES) if k % ARTIFACT_EVERY == ARTIFACT_PHASE],
            "nan_hole": {"rows": [HOLE[0].start, HOLE[0].stop],
                         "cols": [HOLE[1].start, HOLE[1].stop], "depth_mm": 0},
            "inf_patch_32fc1": {"rows": [INF_PATCH[0].start, INF_PATCH[0].stop],
                                "cols": [INF_PATCH[1].start, INF_PATCH[1].stop]},
            "ranges": "half-open [start, stop)",
        },
        "counts": dict(sorted(bag.counts.items())),
        "mount": mount_gt,
    }
    with open(os.path.join(out_dir, "metric.json"), "w") as f:
        json.dump(gt, f, indent=1)
        f.write("\n")
    return [path, os.path.join(out_dir, "metric.json")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="output directory (created if missing)")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    start = time.monotonic()
    for p in write(args.out_dir):
        print(f"{p}: {os.path.getsize(p)} bytes", file=sys.stderr)
    print(f"{time.monotonic() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
