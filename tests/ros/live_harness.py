#!/usr/bin/env python3
"""Live ROS 2 harness for `imd_matcher` (rclpy, real DDS): publishes camera input, calls the
node's parameter and control services, subscribes to every output, and writes what it saw as
JSON. It asserts nothing: tests/ros_live.rs checks the numbers.

    live_harness.py SCENARIO --out RESULT.json [--node-pid PID] [options]

Scenarios:
  sequence   the ground-truth replay bag (tests/fixtures/replay/sequence.mcap) published as
             recorded (sensor_data QoS, the bag's 10 Hz pace, never ahead of the node: each
             frame waits until the previous frame of its camera was answered) — so nothing is
             dropped and the outputs can be compared with `imd replay` of the same bag.
  overload   synthetic raw rgb8 frames published faster than the node can process them;
             records publish/receive times, /diagnostics and the node's resident memory.
  pace       one synthetic frame at a time, the next after the previous one's odometry (no
             queueing): end-to-end latency per frame, for the node-overhead benchmark.
  params     get/set parameters: a valid change (node.publish_debug_image), invalid ones
             (a value out of range, a wrong type, an unknown name), frames before and after.
  services   two cameras of the sequence bag; calls ~/cam0/reset, ~/reset, ~/cam1/relocalize,
             ~/relocalize between frames.
  bad_input  malformed images and camera_info on the wire, good frames in between; a second
             camera that never gets camera_info.
  qos        best-effort image publisher against a node subscribing reliably.
  metric     the metric bag of scripts/fixtures/make_metric_bag.py (--bag): per frame, the
             messages of --topics (image, camera_info and the depth or right-camera topics) in
             their recorded order, the next frame after the previous one's odometry; --frames of
             them; then the --trigger services (e.g. save_map), in order.

Every ROS process of the tests keeps discovery on this machine (FASTDDS_BUILTIN_TRANSPORTS=SHM,
set by the caller) and runs in its own ROS_DOMAIN_ID. The harness bounds its own run time
(faulthandler exits the process) and skips rclpy teardown (os._exit) because a Fast DDS
participant teardown has been seen to block.
"""

import argparse
import faulthandler
import json
import os
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    QoSHistoryPolicy,
    qos_profile_sensor_data,
)
from rclpy.serialization import deserialize_message
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = "/imd_matcher"
W, H = 640, 480


def stamp_of(msg_stamp):
    return [int(msg_stamp.sec), int(msg_stamp.nanosec)]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def alive(pid):
    """Whether process `pid` runs (0: unknown, taken as alive; an exited, unreaped child is a
    zombie, state Z)."""
    if not pid:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pose_record(m):
    """A geometry_msgs/PoseWithCovarianceStamped as the harness records it."""
    p, q = m.pose.pose.position, m.pose.pose.orientation
    return {
        "stamp": stamp_of(m.header.stamp),
        "frame_id": m.header.frame_id,
        "position": [p.x, p.y, p.z],
        "orientation": [q.x, q.y, q.z, q.w],
        "covariance": list(m.pose.covariance),
    }


class Harness(Node):
    def __init__(self, args):
        super().__init__("imd_live_harness")
        self.args = args
        self.t0 = time.monotonic()
        self.odometry = []
        self.odom = []
        self.correspondences = []
        self.debug_images = []
        self.tf = []
        self.diagnostics = []
        self.rss = []
        out_qos = QoSProfile(
            depth=100,
            reliability=QoSReliabilityPolicy.RELIABLE,
            history=QoSHistoryPolicy.KEEP_LAST,
        )
        # A reliable-only subscriber of the node's outputs (the node publishes reliably), and
        # a best-effort one on the same topic, which must receive as well.
        self.create_subscription(Odometry, f"{NODE}/odometry", self.on_odometry, out_qos)
        self.create_subscription(Odometry, f"{NODE}/odom", self.on_odom, out_qos)
        # Pose topics, recorded alike: name -> records.
        self.poses = {"map_pose": [], "odom_pose": []}
        for name, records in self.poses.items():
            self.create_subscription(
                PoseWithCovarianceStamped,
                f"{NODE}/{name}",
                lambda m, records=records: records.append(pose_record(m)),
                out_qos,
            )
        self.odometry_best_effort = 0
        self.create_subscription(
            Odometry,
            f"{NODE}/odometry",
            self.on_odometry_best_effort,
            qos_profile_sensor_data,
        )
        self.create_subscription(
            PointCloud2, f"{NODE}/correspondences", self.on_correspondences, out_qos
        )
        self.create_subscription(Image, f"{NODE}/debug_image", self.on_debug, out_qos)
        self.create_subscription(TFMessage, "/tf", self.on_tf, out_qos)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diag, out_qos)
        self.publishers_ = {}

    def now(self):
        return time.monotonic() - self.t0

    # --- outputs -------------------------------------------------------------------------
    def on_odometry(self, m):
        p, q = m.pose.pose.position, m.pose.pose.orientation
        self.odometry.append(
            {
                "t": self.now(),
                "stamp": stamp_of(m.header.stamp),
                "frame_id": m.header.frame_id,
                "child_frame_id": m.child_frame_id,
                "position": [p.x, p.y, p.z],
                "orientation": [q.x, q.y, q.z, q.w],
                "covariance": list(m.pose.covariance),
            }
        )

    def on_odom(self, m):
        p, q = m.pose.pose.position, m.pose.pose.orientation
        self.odom.append(
            {
                "stamp": stamp_of(m.header.stamp),
                "frame_id": m.header.frame_id,
                "child_frame_id": m.child_frame_id,
                "position": [p.x, p.y, p.z],
                "orientation": [q.x, q.y, q.z, q.w],
                "covariance": list(m.pose.covariance),
            }
        )

    def on_odometry_best_effort(self, _m):
        self.odometry_best_effort += 1

    def on_correspondences(self, m):
        fields = [(f.name, f.offset, f.datatype) for f in m.fields]
        self.correspondences.append(
            {
                "t": self.now(),
                "stamp": stamp_of(m.header.stamp),
                "frame_id": m.header.frame_id,
                "width": m.width,
                "point_step": m.point_step,
                "fields": fields,
                "inliers": int(
                    np.frombuffer(bytes(m.data), dtype=np.uint8)[20 :: m.point_step].sum()
                )
                if m.point_step
                else 0,
            }
        )

    def on_debug(self, m):
        self.debug_images.append(
            {"t": self.now(), "stamp": stamp_of(m.header.stamp), "encoding": m.encoding}
        )

    def on_tf(self, m):
        for t in m.transforms:
            tr, q = t.transform.translation, t.transform.rotation
            self.tf.append(
                {
                    "stamp": stamp_of(t.header.stamp),
                    "parent": t.header.frame_id,
                    "child": t.child_frame_id,
                    "translation": [tr.x, tr.y, tr.z],
                    "rotation": [q.x, q.y, q.z, q.w],
                }
            )

    def on_diag(self, m):
        self.diagnostics.append(
            {
                "t": self.now(),
                "status": [
                    {
                        "name": s.name,
                        "level": int.from_bytes(s.level, "little")
                        if isinstance(s.level, bytes)
                        else int(s.level),
                        "message": s.message,
                        "values": {kv.key: kv.value for kv in s.values},
                    }
                    for s in m.status
                ],
            }
        )

    # --- helpers -------------------------------------------------------------------------
    def spin_for(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=min(0.01, max(0.0, end - time.monotonic())))
            self.sample_rss()

    def spin_until(self, predicate, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            rclpy.spin_once(self, timeout_sec=0.01)
            self.sample_rss()
        return predicate()

    def sample_rss(self):
        pid = self.args.node_pid
        if not pid:
            return
        if self.rss and self.now() - self.rss[-1][0] < 0.25:
            return
        kib = rss_kib(pid)
        if kib is not None:
            self.rss.append((self.now(), kib))

    def publisher(self, kind, topic, qos):
        key = (topic, kind.__name__)
        if key not in self.publishers_:
            self.publishers_[key] = self.create_publisher(kind, topic, qos)
        return self.publishers_[key]

    def wait_matched(self, publishers, timeout=20.0):
        ok = self.spin_until(
            lambda: all(p.get_subscription_count() > 0 for p in publishers), timeout
        )
        if not ok:
            raise SystemExit("the node's subscriptions were not discovered in time")
        # Let the node's side finish matching too (its publishers with our subscriptions).
        self.spin_for(1.0)

    def answered(self, stamp):
        return any(o["stamp"] == stamp for o in self.odometry)

    def call(self, kind, name, request, timeout=30.0):
        client = self.create_client(kind, name)
        if not client.wait_for_service(timeout_sec=timeout):
            return {"error": f"service {name} not available"}
        future = client.call_async(request)
        self.spin_until(future.done, timeout)
        if not future.done():
            return {"error": f"service {name} did not answer in {timeout} s"}
        return future.result()

    def get_params(self, names):
        r = self.call(GetParameters, f"{NODE}/get_parameters", GetParameters.Request(names=names))
        if isinstance(r, dict):
            return r
        return {n: value_json(v) for n, v in zip(names, r.values)}

    def set_param(self, name, value):
        p = Parameter(name=name, value=to_value(value))
        r = self.call(SetParameters, f"{NODE}/set_parameters", SetParameters.Request(parameters=[p]))
        if isinstance(r, dict):
            return r
        res = r.results[0]
        return {"successful": bool(res.successful), "reason": res.reason}

    def trigger(self, name):
        t = self.now()
        r = self.call(Trigger, f"{NODE}/{name}", Trigger.Request())
        if isinstance(r, dict):
            return {"name": name, **r}
        return {"name": name, "t": t, "success": bool(r.success), "message": r.message}

    def result(self, extra):
        return {
            "odometry": self.odometry,
            "odom": self.odom,
            **self.poses,
            "odometry_best_effort": self.odometry_best_effort,
            "correspondences": self.correspondences,
            "debug_images": self.debug_images,
            "tf": self.tf,
            "diagnostics": self.diagnostics,
            "rss_kib": self.rss,
            **extra,
        }


def to_value(v):
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(v))


def value_json(v):
    t = v.type
    if t == ParameterType.PARAMETER_BOOL:
        return v.bool_value
    if t == ParameterType.PARAMETER_INTEGER:
        return v.integer_value
    if t == ParameterType.PARAMETER_DOUBLE:
        return v.double_value
    if t == ParameterType.PARAMETER_STRING:
        return v.string_value
    if t == ParameterType.PARAMETER_STRING_ARRAY:
        return list(v.string_array_value)
    if t == ParameterType.PARAMETER_DOUBLE_ARRAY:
        return list(v.double_array_value)
    if t == ParameterType.PARAMETER_INTEGER_ARRAY:
        return list(v.integer_array_value)
    return None


# --- inputs ------------------------------------------------------------------------------
def bag_frames(path):
    """(camera_info, image) per recorded image, in log-time order, from the fixture bag."""
    from mcap.reader import make_reader

    infos, frames = {}, []
    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(log_time_order=True):
            if schema.name == "sensor_msgs/msg/CameraInfo":
                m = deserialize_message(message.data, CameraInfo)
                infos[(channel.topic, tuple(stamp_of(m.header.stamp)))] = (channel.topic, m)
            elif schema.name in ("sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/Image"):
                kind = CompressedImage if schema.name.endswith("CompressedImage") else Image
                frames.append((channel.topic, kind, message.data))
    out = []
    for topic, kind, data in frames:
        m = deserialize_message(data, kind)
        camera = topic.split("/")[1]
        key = (f"/{camera}/camera_info", tuple(stamp_of(m.header.stamp)))
        out.append((camera, topic, kind, m, infos.get(key)))
    return out


def texture(seed=7):
    """A smooth random grey texture (box-filtered noise), larger than a frame."""
    rng = np.random.default_rng(seed)
    t = rng.random((H + 200, W + 400)).astype(np.float32)
    for _ in range(3):
        t = (t + np.roll(t, 1, 0) + np.roll(t, -1, 0) + np.roll(t, 1, 1) + np.roll(t, -1, 1)) / 5
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).astype(np.uint8)


def synthetic_frame(tex, i, stamp_ns, frame_id="cam0_optical", encoding="rgb8", step=None):
    shift = (2 * i) % 300
    g = tex[100 : 100 + H, shift : shift + W]
    rgb = np.stack([g, np.roll(g, 3, 1), 255 - g], axis=-1)
    img = Image()
    img.header.stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    img.header.frame_id = frame_id
    img.height, img.width, img.encoding = H, W, encoding
    img.step = W * 3 if step is None else step
    img.data = rgb.tobytes()
    return img


def synthetic_info(stamp_ns, frame_id="cam0_optical", k=None):
    info = CameraInfo()
    info.header.stamp = Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
    info.header.frame_id = frame_id
    info.height, info.width = H, W
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = k if k is not None else [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
    info.r = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    info.p = [info.k[0], 0, info.k[2], 0, 0, info.k[4], info.k[5], 0, 0, 0, 1.0, 0]
    return info


T0 = 1_800_000_000 * 10**9


def publish_sequence(
    h, frames, cameras, pace_s=0.1, timeout=60.0, between=None, published=None, after=None
):
    """Publish frames lossless at the bag's pace; appends a record per frame to `published`
    (returned). `between(n, camera)` runs before frame n, `after(n, camera, stamp)` after it."""
    pubs = {}
    for camera, topic, kind, _m, _info in frames:
        if camera in cameras and topic not in pubs:
            pubs[topic] = h.publisher(kind, topic, qos_profile_sensor_data)
            pubs[f"/{camera}/camera_info"] = h.publisher(
                CameraInfo, f"/{camera}/camera_info", qos_profile_sensor_data
            )
    h.wait_matched(list(pubs.values()))
    last = {}
    published = [] if published is None else published
    start = time.monotonic()
    prev_stamp_ns = None
    for n, (camera, topic, _kind, m, info) in enumerate(frames):
        if camera not in cameras:
            continue
        if between is not None:
            between(n, camera)
        stamp_ns = m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
        if prev_stamp_ns is not None:
            start += min(max((stamp_ns - prev_stamp_ns) / 1e9, 0.0), 1.0) * (pace_s / 0.1)
        prev_stamp_ns = stamp_ns
        waited = False
        if camera in last and not h.answered(last[camera]):
            waited = True
            if not h.spin_until(lambda: h.answered(last[camera]), timeout):
                raise SystemExit(f"no odometry for {camera} {last[camera]} in {timeout} s")
        delay = start - time.monotonic()
        if delay > 0:
            h.spin_for(delay)
        if info is not None:
            pubs[info[0]].publish(info[1])
        pubs[topic].publish(m)
        stamp = stamp_of(m.header.stamp)
        published.append({"camera": camera, "stamp": stamp, "t": h.now(), "waited": waited})
        last[camera] = stamp
        if after is not None:
            after(n, camera, stamp)
    for camera, stamp in last.items():
        h.spin_until(lambda: h.answered(stamp), timeout)
    return published


def scenario_sequence(h, a):
    frames = bag_frames(os.path.join(ROOT, "tests/fixtures/replay/sequence.mcap"))
    published = publish_sequence(h, frames, {"cam0", "cam1"})
    h.spin_for(1.5)  # one more /diagnostics
    return {"published": published}


def scenario_services(h, a):
    frames = bag_frames(os.path.join(ROOT, "tests/fixtures/replay/sequence.mcap"))
    # The first 8 frames of each camera, with service calls between them.
    kept, per = [], {}
    for f in frames:
        per[f[0]] = per.get(f[0], 0) + 1
        if per[f[0]] <= 8:
            kept.append(f)
    calls = []
    plan = {6: "cam0/reset", 10: "cam1/relocalize", 12: "reset", 14: "relocalize"}
    published = []

    def between(n, _camera):
        if n in plan:
            # Every frame published so far answered first: the call falls exactly between
            # two known frames.
            h.spin_until(lambda: all(h.answered(p["stamp"]) for p in published), 60)
            calls.append({"before_frame": n, **h.trigger(plan[n])})

    watch = set()  # cameras whose next frame follows a call

    def between_calls(n, camera):
        between(n, camera)
        if n in plan:
            watch.update({"cam0", "cam1"})

    def after(n, camera, stamp):
        # /diagnostics (1 Hz) carries only each camera's latest frame: wait for this one's.
        if camera in watch:
            watch.discard(camera)
            key = f"{stamp[0]}.{stamp[1]:09d}"
            h.spin_until(lambda: h.answered(stamp), 60)
            h.spin_until(lambda: tracker_status_of(h, key) is not None, 3.0)

    publish_sequence(
        h, kept, {"cam0", "cam1"}, between=between_calls, published=published, after=after
    )
    unknown = h.trigger("cam9/reset")
    h.spin_for(1.2)
    return {"published": published, "calls": calls, "unknown_service": unknown}


def synthetic_publishers(h, qos=qos_profile_sensor_data, camera="camera"):
    img = h.publisher(Image, f"/{camera}/image_raw", qos)
    info = h.publisher(CameraInfo, f"/{camera}/camera_info", qos)
    return img, info


def scenario_overload(h, a):
    tex = texture()
    img_pub, info_pub = synthetic_publishers(h)
    h.wait_matched([img_pub, info_pub])
    published = []
    period = 1.0 / a.rate
    start = time.monotonic()
    # --frames at --rate; then, until the node answered --min-answers frames (a slow machine),
    # more at 2 Hz (still faster than the node; slow enough to leave the CPU to it), so there
    # are enough processed frames to compare memory over.
    i = -1
    while True:
        i += 1
        if i >= a.frames and (len(h.odometry) >= a.min_answers or i >= 4 * a.frames):
            break
        target = start + min(i, a.frames) * period + max(0, i - a.frames) * 0.5
        delay = target - time.monotonic()
        if delay > 0:
            h.spin_for(delay)
        stamp_ns = T0 + int(i * period * 1e9)
        info_pub.publish(synthetic_info(stamp_ns))
        img_pub.publish(synthetic_frame(tex, i, stamp_ns))
        published.append({"stamp": [stamp_ns // 10**9, stamp_ns % 10**9], "t": h.now()})
    h.spin_for(a.drain)
    return {"published": published, "rate_hz": a.rate}


def scenario_pace(h, a):
    tex = texture()
    img_pub, info_pub = synthetic_publishers(h)
    h.wait_matched([img_pub, info_pub])
    published = []
    for i in range(a.frames):
        stamp_ns = T0 + i * 100_000_000
        stamp = [stamp_ns // 10**9, stamp_ns % 10**9]
        info_pub.publish(synthetic_info(stamp_ns))
        h.spin_for(0.02)  # camera_info first, so the image pairs on arrival
        msg = synthetic_frame(tex, i, stamp_ns)
        t = h.now()
        img_pub.publish(msg)
        # After publish returns: rclpy's own Python → C conversion is the harness's cost.
        published.append({"stamp": stamp, "t": t, "t_sent": h.now()})
        if not h.spin_until(lambda: h.answered(stamp), 60):
            raise SystemExit(f"no odometry for frame {i}")
        if a.with_diagnostics:
            # The node's own processing time of this frame comes with the next /diagnostics.
            key = f"{stamp[0]}.{stamp[1]:09d}"
            h.spin_until(lambda: tracker_status_of(h, key) is not None, 3.0)
            status = tracker_status_of(h, key)
            published[-1]["latency_ms"] = float(status["latency_ms"]) if status else None
        h.spin_for(0.05)
    return {"published": published}


def tracker_status_of(h, frame_stamp):
    for d in reversed(h.diagnostics):
        for st in d["status"]:
            if ": tracker " in st["name"] and st["values"].get("frame_stamp") == frame_stamp:
                return st["values"]
    return None


def scenario_params(h, a):
    names = [
        "node.publish_debug_image",
        "pose.threshold_px",
        "tracker.min_inliers",
        "cameras.names",
        "model.resize_long_side",
        "pose.max_iterations",
    ]
    before = h.get_params(names)
    tex = texture()
    img_pub, info_pub = synthetic_publishers(h)
    h.wait_matched([img_pub, info_pub])
    stamps = []

    def frame(i):
        stamp_ns = T0 + i * 100_000_000
        stamp = [stamp_ns // 10**9, stamp_ns % 10**9]
        info_pub.publish(synthetic_info(stamp_ns))
        h.spin_for(0.02)
        img_pub.publish(synthetic_frame(tex, i, stamp_ns))
        stamps.append(stamp)
        h.spin_until(lambda: h.answered(stamp), 60)
        h.spin_for(0.3)  # the debug image, if any, follows the odometry

    for i in range(3):
        frame(i)
    sets = {
        "valid": h.set_param("node.publish_debug_image", False),
        "out_of_range": h.set_param("pose.threshold_px", -1.0),
        "wrong_type": h.set_param("tracker.min_inliers", "many"),
        "unknown": h.set_param("tracker.no_such_parameter", 3),
        # Issue 25: a value that would wedge the worker for good (2^62 RANSAC samples).
        "wedge": h.set_param("pose.max_iterations", 4611686018427387904),
    }
    h.spin_for(0.5)
    for i in range(3, 6):
        frame(i)
    after = h.get_params(names)
    return {"before": before, "after": after, "sets": sets, "frames": stamps}


def scenario_bad_input(h, a):
    tex = texture()
    img_pub, info_pub = synthetic_publishers(h, camera="cam0")
    img1, _info1 = synthetic_publishers(h, camera="cam1")  # cam1 never gets camera_info
    h.wait_matched([img_pub, info_pub, img1])
    good = []
    sent = []

    def send(i, kind):
        stamp_ns = T0 + i * 100_000_000
        stamp = [stamp_ns // 10**9, stamp_ns % 10**9]
        k = None
        img = synthetic_frame(tex, i, stamp_ns)
        if kind == "wrong_step":
            img.step = W * 3 - 7
        elif kind == "unknown_encoding":
            img.encoding = "rgb9"
        elif kind == "nan_k":
            k = [float("nan"), 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
        elif kind == "zero_k":
            k = [0.0] * 9
        info_pub.publish(synthetic_info(stamp_ns, k=k))
        h.spin_for(0.02)
        img_pub.publish(img)
        img1.publish(synthetic_frame(tex, i, stamp_ns, frame_id="cam1_optical"))
        sent.append({"kind": kind, "stamp": stamp})
        if kind == "good":
            good.append(stamp)
            if not h.spin_until(lambda: h.answered(stamp), 60):
                raise SystemExit(f"good frame {stamp} not answered in 60 s")
        else:
            h.spin_for(0.3)

    i = 0
    for kind in ["good", "wrong_step", "unknown_encoding", "nan_k", "zero_k"] * 3 + ["good"]:
        send(i, kind)
        i += 1
    h.spin_for(1.5)
    return {"sent": sent, "good": good}


def scenario_qos(h, a):
    tex = texture()
    img_pub, info_pub = synthetic_publishers(h)  # best effort: incompatible with a reliable reader
    h.spin_for(2.0)
    matched = img_pub.get_subscription_count()
    for i in range(5):
        stamp_ns = T0 + i * 100_000_000
        info_pub.publish(synthetic_info(stamp_ns))
        img_pub.publish(synthetic_frame(tex, i, stamp_ns))
        h.spin_for(0.2)
    h.spin_for(2.5)
    return {"image_subscriptions_matched": matched, "frames_published": 5}


def stamped_groups(path, topics):
    """The bag's messages on `topics`, grouped by header stamp in log order:
    [(stamp, [(topic, kind, message)])]."""
    from mcap.reader import make_reader

    kinds = {
        "sensor_msgs/msg/CameraInfo": CameraInfo,
        "sensor_msgs/msg/CompressedImage": CompressedImage,
        "sensor_msgs/msg/Image": Image,
    }
    groups, order = {}, []
    with open(path, "rb") as f:
        for schema, channel, message in make_reader(f).iter_messages(log_time_order=True):
            if channel.topic not in topics:
                continue
            kind = kinds[schema.name]
            m = deserialize_message(message.data, kind)
            key = tuple(stamp_of(m.header.stamp))
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append((channel.topic, kind, m))
    return [(k, groups[k]) for k in order]


def tf_static_of(path):
    """The bag's /tf_static messages (a robot's mounts), in log order."""
    from mcap.reader import make_reader

    out = []
    with open(path, "rb") as f:
        for _schema, channel, message in make_reader(f).iter_messages(log_time_order=True):
            if channel.topic == "/tf_static":
                out.append(deserialize_message(message.data, TFMessage))
    return out


def scenario_metric(h, a):
    topics = a.topics.split(",")
    groups = stamped_groups(a.bag, topics)[: a.frames]
    pubs = {}
    if a.tf_static:
        # Latched, as robot_state_publisher does: the node gets it whenever it subscribes.
        latched = QoSProfile(
            depth=1,
            reliability=QoSReliabilityPolicy.RELIABLE,
            history=QoSHistoryPolicy.KEEP_LAST,
            durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
        )
        static = h.create_publisher(TFMessage, "/tf_static", latched)
        for m in tf_static_of(a.bag):
            static.publish(m)
    for _stamp, msgs in groups:
        for topic, kind, _m in msgs:
            if topic not in pubs:
                pubs[topic] = h.publisher(kind, topic, qos_profile_sensor_data)
    h.wait_matched(list(pubs.values()))
    published, last = [], None
    for stamp, msgs in groups:
        if last is not None and not h.spin_until(lambda: h.answered(last), 120):
            raise SystemExit(f"no odometry for {last} in 120 s")
        if last is not None and a.settle > 0:
            # The node's /diagnostics carries the latest status once a second: keep each
            # frame's status the latest for longer than that, so every frame's is seen.
            h.spin_for(a.settle)
        for topic, _kind, m in msgs:
            pubs[topic].publish(m)
        published.append({"camera": "cam0", "stamp": list(stamp), "t": h.now()})
        last = list(stamp)
    h.spin_until(lambda: h.answered(last), 120)
    h.spin_for(1.5)  # the last frame's /diagnostics
    triggers = [h.trigger(name) for name in a.trigger]
    return {"published": published, "triggers": triggers}


def scenario_soak(h, a):
    """Two cameras at --rate while parameters (valid and invalid, alternating) and the control
    services are called as fast as they answer, for --duration seconds; RSS sampled."""
    tex = texture()
    pubs = [synthetic_publishers(h, camera=c) for c in ("cam0", "cam1")]
    h.wait_matched([p for pair in pubs for p in pair])
    params = [
        ("tracker.min_inliers", 20), ("tracker.min_inliers", -5),
        ("pose.max_iterations", 1000), ("pose.max_iterations", 2**62),
        ("node.publish_debug_image", False), ("node.path_length", 50),
        ("integrity.min_inlier_ratio_for_translation", 0.5), ("model.coarse_threshold", 5.0),
    ]
    services = ["relocalize", "reset", "cam0/relocalize", "cam1/reset"]
    counts = {"frames": 0, "param_calls": 0, "param_accepted": 0, "service_calls": 0,
              "service_errors": 0}
    period = 1.0 / a.rate
    start = time.monotonic()
    next_frame, i = start, 0
    while time.monotonic() - start < a.duration:
        now = time.monotonic()
        if now >= next_frame:
            stamp_ns = 1_700_000_000 * 10**9 + int((now - start) * 1e9)
            for cam, (img_pub, info_pub) in zip(("cam0", "cam1"), pubs):
                info_pub.publish(synthetic_info(stamp_ns, frame_id=f"{cam}_optical"))
                img_pub.publish(synthetic_frame(tex, i, stamp_ns, frame_id=f"{cam}_optical"))
            counts["frames"] += 1
            i += 1
            next_frame += period
        name, value = params[counts["param_calls"] % len(params)]
        r = h.set_param(name, value)
        counts["param_calls"] += 1
        counts["param_accepted"] += bool(r.get("successful"))
        t = h.trigger(services[counts["service_calls"] % len(services)])
        counts["service_calls"] += 1
        counts["service_errors"] += "error" in t
        h.spin_for(0.0)
    h.spin_for(1.0)
    return {"soak": counts, "odometry_received": len(h.odometry)}


SCENARIOS = {
    "sequence": scenario_sequence,
    "metric": scenario_metric,
    "services": scenario_services,
    "overload": scenario_overload,
    "pace": scenario_pace,
    "params": scenario_params,
    "bad_input": scenario_bad_input,
    "qos": scenario_qos,
    "soak": scenario_soak,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--node-pid", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=240.0)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--drain", type=float, default=3.0)
    ap.add_argument("--min-answers", type=int, default=0,
                    help="overload: publish past --frames until this many frames were answered")
    ap.add_argument("--duration", type=float, default=300.0, help="soak: seconds")
    ap.add_argument("--with-diagnostics", action="store_true")
    ap.add_argument("--bag", help="metric: the bag to publish")
    ap.add_argument("--topics", default="", help="metric: comma-separated topics to publish")
    ap.add_argument("--tf-static", action="store_true", help="metric: publish the bag's /tf_static")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="metric: seconds to wait after each answer before the next frame")
    ap.add_argument("--trigger", action="append", default=[],
                    help="metric: a Trigger service of the node to call after the frames")
    a = ap.parse_args()
    faulthandler.dump_traceback_later(a.time_limit, exit=True)
    rclpy.init()
    h = Harness(a)
    # Wait until the node is up (its odometry publisher is discovered).
    # A node that exits at start (a refused parameter) fails the scenario at once.
    if not h.spin_until(lambda: h.count_publishers(f"{NODE}/odometry") > 0
                        or not alive(a.node_pid), 60) or not alive(a.node_pid):
        print("imd_matcher never appeared" if alive(a.node_pid) else
              f"imd_matcher (pid {a.node_pid}) exited before it appeared", file=sys.stderr)
        os._exit(3)
    try:
        extra = SCENARIOS[a.scenario](h, a)
        code = 0
    except SystemExit as e:
        extra = {"error": str(e)}
        code = 4
    with open(a.out, "w") as f:
        json.dump(h.result(extra), f)
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
