#!/usr/bin/env python3
"""Write metric odometry sequences: a robot drives a loop on the floor of a closed textured room.

Scene and renderer are the replay / integrity fixtures' (scripts/make_replay_fixtures.py,
scripts/make_integrity_fixtures.py: imported, not copied): ray-cast planes textured with
scikit-image photos, the walls the camera sees most carrying the held-out photos (coffee on the
back wall, rocket, the motorcycle pair), 320x240 pinhole f = 250 px, JPEG CompressedImage +
CameraInfo at 10 Hz. The room here is 8 m x 8 m x 4 m (walls 2.5-5.5 m from the camera while it
drives), closed by a front wall and a ceiling so that turning never looks into the void.

Robot and frames (REP 103 / 105):
  room     the renderer's frame: x right, y down, z forward (floor at y = 1.5).
  odom     base_link at frame 0: x forward, y left, z up, on the floor.
  base_link  the robot: drives a stadium loop (two 3 m straights joined by two left half-turns
           of radius 1.3 m, 14.17 m, 0.05 m a frame = 0.5 m/s, 284 frames) and comes back exactly to its start.
  camera_link  base_link -> camera_link: x 0.2, z 0.5, pitched down 10 deg (about +y).
  cam0_optical camera_link -> optical: the REP 103 optical rotation (x right, y down, z forward),
           quaternion (x, y, z, w) = (-0.5, 0.5, -0.5, 0.5).
  cam0_right_optical  cam0_optical -> right: x + 0.12 m (a rectified pair).

Outputs (under OUT_DIR, written with PyPI's `mcap` + `mcap-ros2-support`, independently of imd):
  rgbd.mcap    /tf_static (tf2_msgs/TFMessage, once at the first stamp, channel offered QoS
               transient-local like `ros2 bag record` stores it: base_link -> camera_link ->
               cam0_optical), /cam0/camera_info, /cam0/image_raw/compressed (jpeg),
               /cam0/depth/image_raw (Image 16UC1 millimetres registered to the colour image,
               exact ray-cast depth at the pixel centres, as scripts/make_metric_bag.py).
  stereo.mcap  /tf_static (the same plus cam0_optical -> cam0_right_optical), the left camera
               as above, /cam0/right/camera_info (P[3] = -f B, frame cam0_right_optical),
               /cam0/right/image_raw/compressed.
  odom.json    ground truth: the schema of tests/fixtures/replay/sequence.json (cameras cam0 and
               cam0/right, planes, per frame room->camera poses r_cw / t_cw) plus
               "base_link": per frame index, stamp, base_link pose in odom (position, quaternion
               x y z w, 4x4 matrix), "mount" (base_link -> cam0_optical 4x4, and the TF chain),
               "intrinsics", "baseline_m", "path_length_m", topics.

Deterministic. Run: .venv/bin/python scripts/make_odom_fixtures.py OUT_DIR [--frames N]
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
import make_bag_fixtures as bagfix  # noqa: E402
import make_integrity_fixtures as integrity  # noqa: E402  (closed-room textures)
import make_metric_bag as metric  # noqa: E402  (depth images, right camera_info)
import make_replay_fixtures as room  # noqa: E402  (renderer, camera and message layout)

T0, PERIOD = room.T0, room.PERIOD
LEFT, RIGHT_NAME = "cam0", metric.RIGHT_NAME
OPTICAL, RIGHT_OPTICAL = room.CAMERAS[LEFT]["frame_id"], metric.RIGHT_FRAME
BASE, CAMERA_LINK = "base_link", "camera_link"
BASELINE = metric.BASELINE
TOPIC = dict(metric.TOPIC, tf_static="/tf_static")

# Room: x in [-4, 4], y in [-2.5, 1.5] (ceiling, floor), z in [-2, 6] (front, back).
X0, X1, Y0, Y1, Z0, Z1 = -4.0, 4.0, -2.5, 1.5, -2.0, 6.0
PLANES = [
    {"name": "back", "origin": [X0, Y0, Z1], "u": [1.0, 0.0, 0.0], "v": [0.0, 1.0, 0.0],
     "size": [X1 - X0, Y1 - Y0]},
    {"name": "floor", "origin": [X0, Y1, Z0], "u": [1.0, 0.0, 0.0], "v": [0.0, 0.0, 1.0],
     "size": [X1 - X0, Z1 - Z0]},
    {"name": "left", "origin": [X0, Y0, Z0], "u": [0.0, 0.0, 1.0], "v": [0.0, 1.0, 0.0],
     "size": [Z1 - Z0, Y1 - Y0]},
    {"name": "right", "origin": [X1, Y0, Z1], "u": [0.0, 0.0, -1.0], "v": [0.0, 1.0, 0.0],
     "size": [Z1 - Z0, Y1 - Y0]},
    {"name": "front", "origin": [X1, Y0, Z0], "u": [-1.0, 0.0, 0.0], "v": [0.0, 1.0, 0.0],
     "size": [X1 - X0, Y1 - Y0]},
    {"name": "ceiling", "origin": [X0, Y0, Z1], "u": [1.0, 0.0, 0.0], "v": [0.0, 0.0, -1.0],
     "size": [X1 - X0, Z1 - Z0]},
]

# The ground frame G (x forward = room +z, y left = room -x, z up = room -y) on the floor:
# columns are G's axes in room coordinates.
R_ROOM_G = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
O_ROOM_G = np.array([0.0, Y1, 0.0])

# Stadium loop in G: straights along x from SX0 to SX1 at y = -R (out) and y = +R (back), left
# half-turns of radius R centred (SX1, 0) and (SX0, 0).
SX0, SX1, R = 0.5, 3.5, 1.3
STRAIGHT = SX1 - SX0
LOOP = 2 * STRAIGHT + 2 * math.pi * R
LOOP_STEPS = round(LOOP / 0.05)
STEP = LOOP / LOOP_STEPS  # metres a frame (about 0.05), so the loop closes on a frame

MOUNT_T = np.array([0.2, 0.0, 0.5])
MOUNT_PITCH_DEG = 10.0
Q_LINK_OPTICAL = (-0.5, 0.5, -0.5, 0.5)  # x, y, z, w


def rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def se3(r, t):
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return m


def quat_to_matrix(q):
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(m):
    """Rotation matrix -> (x, y, z, w), w >= 0."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2 * math.sqrt(tr + 1)
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2]]))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * math.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0] * 4
        q[i] = s / 4
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
        q[3] = (m[k, j] - m[j, k]) / s
    q = np.array(q)
    return tuple(float(x) for x in (q if q[3] >= 0 else -q))


T_BASE_LINK = se3(rot_y(math.radians(MOUNT_PITCH_DEG)), MOUNT_T)
T_LINK_OPTICAL = se3(quat_to_matrix(Q_LINK_OPTICAL), np.zeros(3))
T_BASE_OPTICAL = T_BASE_LINK @ T_LINK_OPTICAL
T_OPTICAL_RIGHT = se3(np.eye(3), np.array([BASELINE, 0.0, 0.0]))
T_ROOM_G = se3(R_ROOM_G, O_ROOM_G)


def base_in_ground(s):
    """base_link in G after `s` metres along the loop: 4x4."""
    s = s % LOOP
    if s < STRAIGHT:
        return se3(rot_z(0.0), [SX0 + s, -R, 0.0])
    s -= STRAIGHT
    if s < math.pi * R:
        a = s / R
        return se3(rot_z(a), [SX1 + R * math.sin(a), -R * math.cos(a), 0.0])
    s -= math.pi * R
    if s < STRAIGHT:
        return se3(rot_z(math.pi), [SX1 - s, R, 0.0])
    s -= STRAIGHT
    a = s / R
    return se3(rot_z(math.pi + a), [SX0 - R * math.sin(a), R * math.cos(a), 0.0])


def n_frames_default():
    return LOOP_STEPS + 1  # the last frame is back at the first one's pose


def poses(n):
    """Per frame: (base_link in odom 4x4, room->optical (r_cw, t_cw))."""
    g0_inv = np.linalg.inv(base_in_ground(0.0))
    out = []
    for k in range(n):
        t_g_b = base_in_ground(k * STEP)
        t_room_opt = T_ROOM_G @ t_g_b @ T_BASE_OPTICAL
        r_wc, c = t_room_opt[:3, :3], t_room_opt[:3, 3]
        r_cw = r_wc.T
        out.append((g0_inv @ t_g_b, (r_cw, -r_cw @ c)))
    return out


def transform_msg(t_ns, parent, child, m):
    q = matrix_to_quat(m[:3, :3])
    return {"header": {"stamp": room.stamp(t_ns), "frame_id": parent}, "child_frame_id": child,
            "transform": {"translation": dict(zip("xyz", (float(v) for v in m[:3, 3]))),
                          "rotation": dict(zip("xyzw", q))}}


def tf_static_msg(t_ns, stereo):
    tfs = [transform_msg(t_ns, BASE, CAMERA_LINK, T_BASE_LINK),
           transform_msg(t_ns, CAMERA_LINK, OPTICAL, T_LINK_OPTICAL)]
    if stereo:
        tfs.append(transform_msg(t_ns, OPTICAL, RIGHT_OPTICAL, T_OPTICAL_RIGHT))
    return {"transforms": tfs}


SEP = "=" * 80
bagfix.DEFS["tf2_msgs/msg/TFMessage"] = (
    "geometry_msgs/TransformStamped[] transforms\n"
    f"{SEP}\nMSG: geometry_msgs/TransformStamped\n"
    "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform\n"
    f"{SEP}\nMSG: std_msgs/Header\n{bagfix.HEADER}{SEP}\nMSG: builtin_interfaces/Time\n"
    f"{bagfix.TIME}{SEP}\nMSG: geometry_msgs/Transform\n"
    "geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation\n"
    f"{SEP}\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n"
    f"{SEP}\nMSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w\n")

# rosbag2's MCAP storage keeps each topic's offered QoS as YAML in the channel metadata; a
# recorded /tf_static is transient-local (durability 1), keep-last (history 1) depth 1.
_FOREVER = "\n    sec: 2147483647\n    nsec: 4294967295"
TF_STATIC_QOS = (
    "- history: 1\n  depth: 1\n  reliability: 1\n  durability: 1\n"
    f"  deadline:{_FOREVER}\n  lifespan:{_FOREVER}\n  liveliness: 1\n"
    f"  liveliness_lease_duration:{_FOREVER}\n  avoid_ros_namespace_conventions: false\n")


class Writer(bagfix.BagWriter):
    """BagWriter whose /tf_static channel carries rosbag2's transient-local QoS metadata."""

    def channel(self, topic, type_name):
        if topic == TOPIC["tf_static"] and topic not in self.channels:
            if type_name not in self.schemas:
                self.schemas[type_name] = self.w.register_schema(
                    type_name, "ros2msg", bagfix.DEFS[type_name].encode())
            self.channels[topic] = (self.w.register_channel(
                topic, "cdr", self.schemas[type_name],
                metadata={"offered_qos_profiles": TF_STATIC_QOS}), type_name)
        return super().channel(topic, type_name)


def pose_json(m):
    return {"position": [float(v) for v in m[:3, 3]], "orientation_xyzw": list(matrix_to_quat(
        m[:3, :3])), "matrix": [float(v) for v in m.reshape(-1)]}


def write(out_dir, n):
    tex = integrity.textures()
    cam = room.CAMERAS[LEFT]
    saved = room.PLANES
    room.PLANES = PLANES  # the renderer iterates the module's plane list
    try:
        sample_rays, pixel_rays = room.rays(cam), metric.centre_rays(cam)
        bags = {
            "rgbd": Writer(os.path.join(out_dir, "rgbd.mcap"), compression=CompressionType.ZSTD,
                           chunk_size=1024 * 1024),
            "stereo": Writer(os.path.join(out_dir, "stereo.mcap"),
                             compression=CompressionType.ZSTD, chunk_size=1024 * 1024),
        }
        for name, bag in bags.items():
            bag.write(TOPIC["tf_static"], "tf2_msgs/msg/TFMessage", T0,
                      tf_static_msg(T0, name == "stereo"))
        frames, base = [], []
        for k, (t_odom_base, (r_cw, t_cw)) in enumerate(poses(n)):
            t = T0 + k * PERIOD
            t_cw_right = t_cw - np.array([BASELINE, 0.0, 0.0])
            info = ("sensor_msgs/msg/CameraInfo", room.camera_info_msg(t, LEFT))
            image = ("sensor_msgs/msg/CompressedImage", room.compressed_msg(
                t, LEFT, "jpeg", room.render(sample_rays, r_cw, t_cw, tex)))
            mm, _ = metric.depth_images(room.ray_depth(pixel_rays, r_cw, t_cw), False)
            right = room.compressed_msg(t, LEFT, "jpeg",
                                        room.render(sample_rays, r_cw, t_cw_right, tex))
            right["header"]["frame_id"] = RIGHT_OPTICAL
            for key, (ty, msg) in [("info", info), ("image", image),
                                   ("depth", ("sensor_msgs/msg/Image",
                                              metric.depth_msg(t, "16UC1", mm)))]:
                bags["rgbd"].write(TOPIC[key], ty, t, msg)
            for key, (ty, msg) in [("info", info), ("image", image),
                                   ("right_info", ("sensor_msgs/msg/CameraInfo",
                                                   metric.right_info_msg(t))),
                                   ("right_image", ("sensor_msgs/msg/CompressedImage", right))]:
                bags["stereo"].write(TOPIC[key], ty, t, msg)
            frames.append(metric.pose_gt(LEFT, k, t, r_cw, t_cw))
            frames.append(metric.pose_gt(RIGHT_NAME, k, t, r_cw, t_cw_right))
            base.append(dict(index=k, stamp=room.stamp(t), **pose_json(t_odom_base)))
            if k % 50 == 0:
                print(f"frame {k}/{n}", file=sys.stderr)
        for bag in bags.values():
            bag.close()
    finally:
        room.PLANES = saved
    steps = [np.linalg.norm(np.array(b["position"]) - np.array(a["position"]))
             for a, b in zip(base, base[1:])]
    kmat = room.k_matrix(cam["f"])
    gt = {
        "generator": "scripts/make_odom_fixtures.py",
        "cameras": [room.camera_gt(LEFT), metric.right_camera_gt()],
        "planes": PLANES,
        "frames": frames,
        "odom_frame": "odom",
        "base_frame": BASE,
        "base_link": base,
        "path_length_m": float(sum(steps)),
        "mount": {
            "base_link_to_optical": pose_json(T_BASE_OPTICAL),
            "tf_static": tf_static_msg(T0, True)["transforms"],
            "description": "base_link -> camera_link: x 0.2, z 0.5, pitched down 10 deg; "
                           "camera_link -> cam0_optical: REP 103 optical rotation",
        },
        "intrinsics": {"width": room.W, "height": room.H, "fx": kmat[0, 0], "fy": kmat[1, 1],
                       "cx": kmat[0, 2], "cy": kmat[1, 2]},
        "baseline_m": BASELINE,
        "topics": TOPIC,
        "bags": {name: {"path": f"{name}.mcap", "counts": dict(sorted(b.counts.items()))}
                 for name, b in bags.items()},
    }
    path = os.path.join(out_dir, "odom.json")
    with open(path, "w") as f:
        json.dump(gt, f, indent=1)
        f.write("\n")
    return [os.path.join(out_dir, f"{name}.mcap") for name in bags] + [path]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="output directory (created if missing)")
    parser.add_argument("--frames", type=int, default=n_frames_default(),
                        help=f"frames (default {n_frames_default()}: one loop back to the start)")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    start = time.monotonic()
    for p in write(args.out_dir, args.frames):
        print(f"{p}: {os.path.getsize(p)} bytes", file=sys.stderr)
    print(f"{time.monotonic() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
