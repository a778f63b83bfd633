#!/usr/bin/env python3
"""Write RGB-D and stereo bags of make_replay_fixtures.py's textured room for saved-map tests:
camera A builds a map, camera B (other intrinsics, path, start and mount) localizes in it.

Scene, renderer and messages come from make_replay_fixtures.py and make_metric_bag.py (imported,
not copied); photos are scikit-image's. Depth is exact (one ray per pixel centre), 16UC1
millimetres registered to the colour image.

Outputs (under OUT_DIR, written with PyPI's `mcap` + `mcap-ros2-support`, independently of imd):

  map_a.mcap   cam0 (320x240, f = 250): N_A frames at 10 Hz sweeping the back wall from left to
               right, /cam0/camera_info, /cam0/image_raw/compressed (jpeg),
               /cam0/depth/image_raw; /tf_static: make_metric_bag.py's mount (base_link ->
               cam0_link -> cam0_optical, pitched 10 deg down).
  map_b.mcap   camB (320x240, f = 200): N_B frames starting 30 s later on another path (from the
               right, closer to the wall, turning the other way, rolled), /camB/camera_info,
               /camB/image_raw/compressed, /camB/depth/image_raw; /tf_static: base_link ->
               camB_link (x 0.1, y 0.15, z 0.8; yawed 90 deg left and pitched 15 deg down: a
               camera looking sideways) -> camB_optical.
  map_a_stereo.mcap, map_b_stereo.mcap
               the same frames as a rectified stereo pair instead of depth: a right camera of
               the same intrinsics BASELINE = 0.12 m along the left camera's +x axis,
               /<cam>/right/camera_info (P[3] = -f B, frame <cam>_right_optical) and
               /<cam>/right/image_raw/compressed; no depth topic.
  map.json     ground truth in the schema of sequence.json (cameras cam0, camB, cam0/right and
               camB/right, planes, per frame camera / index / stamp / world->camera pose) plus
               "mounts" per camera (the optical frame's pose in base_link, t and q_xyzw).

Deterministic. Run: .venv/bin/python scripts/make_map_bags.py OUT_DIR
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
from mcap.writer import CompressionType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bag_fixtures import BagWriter  # noqa: E402
from make_metric_bag import (  # noqa: E402
    OPTICAL_Q, centre_rays, depth_images, mount, pose_gt, quat_mul)
from make_replay_fixtures import (  # noqa: E402
    CAMERAS, H, PERIOD, PLANES, T0, W, camera_gt, camera_info_msg, compressed_msg, pose,
    ray_depth, rays, render, stamp, textures)

N_A, N_B = 48, 36
T0_B = T0 + 30 * 10**9
CAMERAS["camB"] = {"f": 200.0, "d": [0.0, 0.0, 0.0, 0.0, 0.0], "frame_id": "camB_optical"}
B_LINK_T = (0.1, 0.15, 0.8)
B_YAW_DEG, B_PITCH_DEG = 90.0, 15.0
BASELINE = 0.12  # metres, the stereo bags' right camera along the left camera's +x axis


def pose_a(k):
    s = k / (N_A - 1)
    return pose([-2.6 + 4.6 * s, -0.3 - 0.2 * math.sin(3 * s), 0.4 + 0.8 * s],
                -25.0 + 50.0 * s, 8.0 + 3.0 * math.sin(5 * s), 2.0 * math.sin(4 * s))


def pose_b(k):
    s = k / (N_B - 1)
    return pose([1.6 - 3.4 * s, -0.6 + 0.3 * s, 1.5 + 0.5 * math.sin(2 * s)],
                18.0 - 36.0 * s, 4.0 + 4.0 * s, -4.0 + 2.0 * math.sin(3 * s))


def axis_q(axis, deg):
    half = math.radians(deg) / 2
    v = [0.0, 0.0, 0.0]
    v[axis] = math.sin(half)
    return (v[0], v[1], v[2], math.cos(half))


def mount_b():
    # Yaw about base z (left), then pitch down about the link's y.
    link_q = quat_mul(axis_q(2, B_YAW_DEG), axis_q(1, B_PITCH_DEG))
    optical_q = quat_mul(link_q, OPTICAL_Q)
    return link_q, {"t": list(B_LINK_T), "q_xyzw": [float(v) for v in optical_q],
                    "base_frame": "base_link", "optical_frame": "camB_optical"}


def tf_static(t_ns, name, link_t, link_q):
    def stamped(parent, child, t, q):
        return {"header": {"stamp": stamp(t_ns), "frame_id": parent}, "child_frame_id": child,
                "transform": {"translation": {"x": t[0], "y": t[1], "z": t[2]},
                              "rotation": {"x": q[0], "y": q[1], "z": q[2], "w": q[3]}}}
    return {"transforms": [
        stamped("base_link", f"{name}_link", link_t, link_q),
        stamped(f"{name}_link", CAMERAS[name]["frame_id"], (0.0, 0.0, 0.0), OPTICAL_Q)]}


def depth_msg(t_ns, name, mm):
    return {"header": {"stamp": stamp(t_ns), "frame_id": CAMERAS[name]["frame_id"]},
            "height": H, "width": W, "encoding": "16UC1", "is_bigendian": 0,
            "step": W * 2, "data": mm.astype("<u2").tobytes()}


def right_info_msg(t_ns, name):
    msg = camera_info_msg(t_ns, name)
    msg["header"]["frame_id"] = f"{name}_right_optical"
    msg["p"] = list(msg["p"])
    msg["p"][3] = -msg["p"][0] * BASELINE
    return msg


def right_camera_gt(name):
    gt = camera_gt(name)
    gt.update(name=f"{name}/right", frame_id=f"{name}_right_optical",
              image_topic=f"/{name}/right/image_raw/compressed",
              camera_info_topic=f"/{name}/right/camera_info")
    return gt


def write_bag(path, name, n, t0, pose_of, link_t, link_q, tex, frames, stereo=False):
    """Depth bag (left frames into `frames`) or stereo bag (right frames into `frames`)."""
    cam = CAMERAS[name]
    sample_rays, pixel_rays = rays(cam), centre_rays(cam)
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=1024 * 1024)
    bag.write("/tf_static", "tf2_msgs/msg/TFMessage", t0 - 1_000_000,
              tf_static(t0, name, link_t, link_q))
    for k in range(n):
        t = t0 + k * PERIOD
        r_cw, t_cw = pose_of(k)
        bag.write(f"/{name}/camera_info", "sensor_msgs/msg/CameraInfo", t,
                  camera_info_msg(t, name))
        bag.write(f"/{name}/image_raw/compressed", "sensor_msgs/msg/CompressedImage", t,
                  compressed_msg(t, name, "jpeg", render(sample_rays, r_cw, t_cw, tex)))
        if stereo:
            t_cw_right = t_cw - np.array([BASELINE, 0.0, 0.0])
            right = compressed_msg(t, name, "jpeg", render(sample_rays, r_cw, t_cw_right, tex))
            right["header"]["frame_id"] = f"{name}_right_optical"
            bag.write(f"/{name}/right/camera_info", "sensor_msgs/msg/CameraInfo", t,
                      right_info_msg(t, name))
            bag.write(f"/{name}/right/image_raw/compressed", "sensor_msgs/msg/CompressedImage",
                      t, right)
            frames.append(pose_gt(f"{name}/right", k, t, r_cw, t_cw_right))
        else:
            mm, _ = depth_images(ray_depth(pixel_rays, r_cw, t_cw), False)
            bag.write(f"/{name}/depth/image_raw", "sensor_msgs/msg/Image", t,
                      depth_msg(t, name, mm))
            frames.append(pose_gt(name, k, t, r_cw, t_cw))
    bag.close()


def write(out_dir):
    tex = textures()
    frames = []
    link_a, mount_a = mount()
    link_b, mount_gt_b = mount_b()
    from make_metric_bag import MOUNT_LINK_T
    a = os.path.join(out_dir, "map_a.mcap")
    b = os.path.join(out_dir, "map_b.mcap")
    a_stereo = os.path.join(out_dir, "map_a_stereo.mcap")
    b_stereo = os.path.join(out_dir, "map_b_stereo.mcap")
    write_bag(a, "cam0", N_A, T0, pose_a, MOUNT_LINK_T, link_a, tex, frames)
    write_bag(b, "camB", N_B, T0_B, pose_b, B_LINK_T, link_b, tex, frames)
    write_bag(a_stereo, "cam0", N_A, T0, pose_a, MOUNT_LINK_T, link_a, tex, frames, stereo=True)
    write_bag(b_stereo, "camB", N_B, T0_B, pose_b, B_LINK_T, link_b, tex, frames, stereo=True)
    gt = {
        "generator": "scripts/make_map_bags.py",
        "baseline_m": BASELINE,
        "cameras": [camera_gt("cam0"), camera_gt("camB"), right_camera_gt("cam0"),
                    right_camera_gt("camB")],
        "planes": PLANES,
        "frames": frames,
        "mounts": {"cam0": mount_a, "camB": mount_gt_b},
    }
    for cam in gt["cameras"][:2]:
        cam["depth_topic"] = f"/{cam['name']}/depth/image_raw"
    gt_path = os.path.join(out_dir, "map.json")
    with open(gt_path, "w") as f:
        json.dump(gt, f, indent=1)
        f.write("\n")
    return [a, b, a_stereo, b_stereo, gt_path]


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
