#!/usr/bin/env python3
"""Write the rosbag2 MCAP test fixtures of `tests/it/io/bag.rs` with an independent writer.

Uses PyPI's `mcap` + `mcap-ros2-support` (CDR from the message definitions below, not from
imd's code) and real photos bundled with scikit-image, downscaled to 160x120.

Outputs (all under tests/fixtures/bags/):
  cameras.mcap      two cameras, indexed + zstd chunks; cam0 is written entirely before cam1,
                    so file order differs from log-time order:
                      /cam0/image_raw             Image x6: rgb8 (padded rows), bgr8, mono8
                                                  (padded), mono16 big-endian (padded),
                                                  yuv422 (UYVY), bayer_rggb8
                      /cam0/camera_info           CameraInfo x6 (plumb_bob)
                      /cam1/image_raw             Image x6: yuv422_yuy2, bayer_bggr8, a
                                                  TRUNCATED CDR payload (#2), bayer_gbrg8
                                                  (padded), an Image whose data is shorter
                                                  than step*height (#4), 16UC1 little-endian
                      /cam1/camera_info           CameraInfo x6
                      /cam1/image_raw/compressed  CompressedImage x3 (jpeg "rgb8; jpeg
                                                  compressed bgr8", jpeg "jpeg", png "png")
  unindexed.mcap    no chunks, no summary indexes: /cam0/image_raw mono8 x2, camera_info x2
  expected/*.png    what each decodable Image must decode to (16-bit PNG for mono16)
  manifest.json     per message: topic, per-topic index, log time, stamp, fields, expected
                    image and how to compare (exact, or +-1 for YUV), corruption

Expected decodes are computed here with numpy, independently of imd:
  - YUV 4:2:2: BT.601 limited range in float, Y' = max(Y-16, 0), rounded half up. OpenCV's
    COLOR_YUV2RGB_UYVY is compared against it and must agree within 1.
  - Bayer: bilinear (own colour kept; missing colours = rounded-half-up mean of the 4 edge /
    4 diagonal / 2 row / 2 column neighbours), borders mirrored (numpy pad mode "reflect").

Run: .venv/bin/python scripts/make_bag_fixtures.py
"""

import json
import os
import sys

import cv2
import numpy as np
from mcap.writer import CompressionType, IndexType, Writer
from mcap_ros2._dynamic import serialize_dynamic
from PIL import Image as PILImage
from skimage import data as skdata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "bags")
W, H = 160, 120
T0 = 1_700_000_000 * 10**9  # log/stamp base, ns
PERIOD = 100_000_000  # 10 Hz

SEP = "=" * 80
HEADER = "builtin_interfaces/Time stamp\nstring frame_id\n"
TIME = "int32 sec\nuint32 nanosec\n"
DEFS = {
    "sensor_msgs/msg/Image": (
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n"
        "uint8 is_bigendian\nuint32 step\nuint8[] data\n"
        f"{SEP}\nMSG: std_msgs/Header\n{HEADER}{SEP}\nMSG: builtin_interfaces/Time\n{TIME}"
    ),
    "sensor_msgs/msg/CompressedImage": (
        "std_msgs/Header header\nstring format\nuint8[] data\n"
        f"{SEP}\nMSG: std_msgs/Header\n{HEADER}{SEP}\nMSG: builtin_interfaces/Time\n{TIME}"
    ),
    "sensor_msgs/msg/CameraInfo": (
        "std_msgs/Header header\nuint32 height\nuint32 width\nstring distortion_model\n"
        "float64[] d\nfloat64[9] k\nfloat64[9] r\nfloat64[12] p\nuint32 binning_x\n"
        "uint32 binning_y\nRegionOfInterest roi\n"
        f"{SEP}\nMSG: std_msgs/Header\n{HEADER}{SEP}\nMSG: builtin_interfaces/Time\n{TIME}"
        f"{SEP}\nMSG: sensor_msgs/RegionOfInterest\n"
        "uint32 x_offset\nuint32 y_offset\nuint32 height\nuint32 width\nbool do_rectify\n"
    ),
    "tf2_msgs/msg/TFMessage": (
        "geometry_msgs/TransformStamped[] transforms\n"
        f"{SEP}\nMSG: geometry_msgs/TransformStamped\n"
        "std_msgs/Header header\nstring child_frame_id\nTransform transform\n"
        f"{SEP}\nMSG: std_msgs/Header\n{HEADER}{SEP}\nMSG: builtin_interfaces/Time\n{TIME}"
        f"{SEP}\nMSG: geometry_msgs/Transform\nVector3 translation\nQuaternion rotation\n"
        f"{SEP}\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n"
        f"{SEP}\nMSG: geometry_msgs/Quaternion\n"
        "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"
    ),
}


def frames(photo, n, crop_w, crop_h, dx, dy):
    """n crops sliding over `photo` (simulated camera motion), each resized to W x H."""
    out = []
    for k in range(n):
        x, y = k * dx, k * dy
        crop = photo[y : y + crop_h, x : x + crop_w]
        out.append(cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA))
    return out


def stamp(t_ns):
    return {"sec": t_ns // 10**9, "nanosec": t_ns % 10**9}


def pad_rows(rows, step):
    """rows: H x row_bytes uint8 -> bytes with each row padded to `step` with 0xEE."""
    h, n = rows.shape
    out = np.full((h, step), 0xEE, dtype=np.uint8)
    out[:, :n] = rows
    return out.tobytes()


def rgb_to_yuv422(rgb):
    """BT.601 limited-range Y per pixel, U/V averaged over horizontal pixel pairs."""
    f = rgb.astype(np.float64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    y = np.clip(np.round(y), 0, 255).astype(np.uint8)
    u = np.clip(np.round((u[:, 0::2] + u[:, 1::2]) / 2), 0, 255).astype(np.uint8)
    v = np.clip(np.round((v[:, 0::2] + v[:, 1::2]) / 2), 0, 255).astype(np.uint8)
    return y, u, v


def yuv_expected(y, u, v):
    """BT.601 limited range -> RGB, float, rounded half up (the documented formula)."""
    yy = np.maximum(y.astype(np.float64) - 16, 0)
    d = np.repeat(u.astype(np.float64) - 128, 2, axis=1)
    e = np.repeat(v.astype(np.float64) - 128, 2, axis=1)
    rnd = lambda x: np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)
    return np.stack(
        [
            rnd(1.164383 * yy + 1.596027 * e),
            rnd(1.164383 * yy - 0.391762 * d - 0.812968 * e),
            rnd(1.164383 * yy + 2.017232 * d),
        ],
        axis=-1,
    )


RED_SITE = {"rggb": (0, 0), "bggr": (1, 1), "gbrg": (0, 1), "grbg": (1, 0)}


def mosaic(rgb, pattern):
    """Sample an RGB image through a Bayer colour filter."""
    rx, ry = RED_SITE[pattern]
    yy, xx = np.mgrid[0:H, 0:W]
    px, py = xx & 1, yy & 1
    is_r = (px == rx) & (py == ry)
    is_b = (px == rx ^ 1) & (py == ry ^ 1)
    return np.where(is_r, rgb[..., 0], np.where(is_b, rgb[..., 2], rgb[..., 1])).astype(np.uint8)


def demosaic(m, pattern):
    rx, ry = RED_SITE[pattern]
    p = np.pad(m.astype(np.int32), 1, mode="reflect")
    c = p[1:-1, 1:-1]
    up, down, left, right = p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]
    diag = (p[:-2, :-2] + p[:-2, 2:] + p[2:, :-2] + p[2:, 2:] + 2) // 4
    cross = (up + down + left + right + 2) // 4
    horiz = (left + right + 1) // 2
    vert = (up + down + 1) // 2
    yy, xx = np.mgrid[0 : m.shape[0], 0 : m.shape[1]]
    px, py = xx & 1, yy & 1
    is_r = (px == rx) & (py == ry)
    is_b = (px == rx ^ 1) & (py == ry ^ 1)
    g_in_r_row = ~is_r & ~is_b & (py == ry)
    conds = [is_r, is_b, g_in_r_row]
    r = np.select(conds, [c, diag, horiz], vert)
    g = np.select(conds, [cross, cross, c], c)
    b = np.select(conds, [diag, c, vert], horiz)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def image_msg(t_ns, frame_id, encoding, step, payload, is_bigendian=0):
    return {
        "header": {"stamp": stamp(t_ns), "frame_id": frame_id},
        "height": H,
        "width": W,
        "encoding": encoding,
        "is_bigendian": is_bigendian,
        "step": step,
        "data": payload,
    }


def camera_info_msg(t_ns, frame_id, fx):
    cx, cy = W / 2 - 0.5, H / 2 - 0.5
    return {
        "header": {"stamp": stamp(t_ns), "frame_id": frame_id},
        "height": H,
        "width": W,
        "distortion_model": "plumb_bob",
        "d": [-0.12, 0.03, 0.001, -0.0005, 0.0],
        "k": [fx, 0.0, cx, 0.0, fx, cy, 0.0, 0.0, 1.0],
        "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "p": [fx, 0.0, cx, 0.0, 0.0, fx, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        "binning_x": 0,
        "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }


def save_expected(name, arr):
    path = os.path.join(OUT, "expected", name)
    # uint16 2-D -> 16-bit grey PNG, uint8 2-D -> 8-bit grey, uint8 H x W x 3 -> RGB.
    PILImage.fromarray(np.ascontiguousarray(arr)).save(path)
    return "expected/" + name


def encode_image(kind, rgb, name):
    """(encoding, step, payload bytes, is_bigendian, expected image file, compare mode)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if kind == "rgb8":
        step = W * 3 + 4
        return "rgb8", step, pad_rows(rgb.reshape(H, -1), step), 0, save_expected(name, rgb), "exact"
    if kind == "bgr8":
        return "bgr8", W * 3, rgb[..., ::-1].tobytes(), 0, save_expected(name, rgb), "exact"
    if kind == "mono8":
        step = W + 8
        return "mono8", step, pad_rows(grey, step), 0, save_expected(name, grey), "exact"
    if kind in ("mono16_be", "16UC1_le"):
        # 12-bit values in 16-bit words, as many machine-vision cameras send them.
        v = (grey.astype(np.uint16) << 4) | (grey.astype(np.uint16) >> 4)
        big = kind == "mono16_be"
        raw = v.astype(">u2" if big else "<u2").view(np.uint8).reshape(H, W * 2)
        step = W * 2 + (6 if big else 0)
        enc = "mono16" if big else "16UC1"
        return enc, step, pad_rows(raw, step), int(big), save_expected(name, v), "exact"
    if kind in ("yuv422", "yuv422_yuy2"):
        y, u, v = rgb_to_yuv422(rgb)
        packed = np.empty((H, W * 2), dtype=np.uint8)
        if kind == "yuv422":  # UYVY
            packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = (
                u, y[:, 0::2], v, y[:, 1::2])
            code = cv2.COLOR_YUV2RGB_UYVY
        else:  # YUYV
            packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = (
                y[:, 0::2], u, y[:, 1::2], v)
            code = cv2.COLOR_YUV2RGB_YUYV
        want = yuv_expected(y, u, v)
        ocv = cv2.cvtColor(packed.reshape(H, W, 2), code)
        diff = int(np.abs(ocv.astype(int) - want.astype(int)).max())
        assert diff <= 1, f"OpenCV disagrees with the BT.601 formula by {diff}"
        return kind, W * 2, packed.tobytes(), 0, save_expected(name, want), "within1"
    if kind.startswith("bayer_"):
        pattern = kind.split("_")[1]
        m = mosaic(rgb, pattern)
        step = W + (6 if pattern == "gbrg" else 0)
        return (f"bayer_{pattern}8", step, pad_rows(m, step), 0,
                save_expected(name, demosaic(m, pattern)), "exact")
    raise ValueError(kind)


class BagWriter:
    """Minimal rosbag2-style writer on top of `mcap` + `mcap_ros2` CDR encoding."""

    def __init__(self, path, **kw):
        self.f = open(path, "wb")
        self.w = Writer(self.f, **kw)
        self.w.start(profile="ros2", library="imd make_bag_fixtures.py (mcap-ros2-support)")
        self.schemas, self.channels, self.encoders, self.counts = {}, {}, {}, {}

    def channel(self, topic, type_name):
        if topic not in self.channels:
            if type_name not in self.schemas:
                self.schemas[type_name] = self.w.register_schema(
                    type_name, "ros2msg", DEFS[type_name].encode())
            self.channels[topic] = (self.w.register_channel(
                topic, "cdr", self.schemas[type_name]), type_name)
        return self.channels[topic]

    def encode(self, type_name, msg):
        if type_name not in self.encoders:
            self.encoders[type_name] = serialize_dynamic(type_name, DEFS[type_name])[type_name]
        return self.encoders[type_name](msg)

    def write(self, topic, type_name, t_ns, msg=None, raw=None):
        cid, _ = self.channel(topic, type_name)
        payload = raw if raw is not None else self.encode(type_name, msg)
        index = self.counts.get(topic, 0)
        self.counts[topic] = index + 1
        self.w.add_message(cid, log_time=t_ns, publish_time=t_ns, sequence=index, data=payload)
        return index, payload

    def close(self):
        self.w.finish()
        self.f.close()


def main():
    os.makedirs(os.path.join(OUT, "expected"), exist_ok=True)
    astronaut = skdata.astronaut()  # 512x512 RGB
    coffee = skdata.coffee()  # 400x600 RGB
    cam = {
        "cam0": frames(astronaut, 6, 400, 300, 16, 10),
        "cam1": frames(coffee, 6, 480, 360, 20, 6),
    }
    plan = {
        "cam0": ["rgb8", "bgr8", "mono8", "mono16_be", "yuv422", "bayer_rggb"],
        "cam1": ["yuv422_yuy2", "bayer_bggr", "CORRUPT_CDR", "bayer_gbrg", "CORRUPT_SHORT",
                 "16UC1_le"],
    }
    fx = {"cam0": 140.0, "cam1": 155.0}
    manifest = {"generator": "scripts/make_bag_fixtures.py", "width": W, "height": H,
                "bags": {}}

    # cameras.mcap: cam0 entirely first, then cam1 (log times interleave: cam1 is 30 ms later).
    path = os.path.join(OUT, "cameras.mcap")
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=256 * 1024)
    entries = []
    for name in ["cam0", "cam1"]:
        offset = 0 if name == "cam0" else 30_000_000
        frame_id = f"{name}_optical"
        for k, kind in enumerate(plan[name]):
            t = T0 + k * PERIOD + offset
            topic = f"/{name}/image_raw"
            rgb = cam[name][k]
            entry = {"topic": topic, "type": "sensor_msgs/msg/Image", "log_time_ns": t,
                     "stamp": stamp(t), "frame_id": frame_id}
            if kind == "CORRUPT_CDR":
                good = bag.encode("sensor_msgs/msg/Image",
                                  image_msg(t, frame_id, "rgb8", W * 3, rgb.tobytes()))
                # Cut inside `data`: the CDR sequence promises more bytes than follow.
                index, _ = bag.write(topic, entry["type"], t, raw=bytes(good[: len(good) // 2]))
                entry.update(index=index, corrupt="cdr_truncated")
            elif kind == "CORRUPT_SHORT":
                payload = rgb.tobytes()[: W * 3 * (H - 1)]  # one row missing
                msg = image_msg(t, frame_id, "rgb8", W * 3, payload)
                index, _ = bag.write(topic, entry["type"], t, msg)
                entry.update(index=index, corrupt="data_short", encoding="rgb8", step=W * 3,
                             data_len=len(payload))
            else:
                enc, step, payload, big, expected, compare = encode_image(
                    kind, rgb, f"{name}_{k}_{kind}.png")
                index, _ = bag.write(topic, entry["type"], t,
                                     image_msg(t, frame_id, enc, step, payload, big))
                entry.update(index=index, encoding=enc, step=step, is_bigendian=big,
                             expected=expected, compare=compare)
            entries.append(entry)
            info_topic = f"/{name}/camera_info"
            index, _ = bag.write(info_topic, "sensor_msgs/msg/CameraInfo", t,
                                 camera_info_msg(t, frame_id, fx[name]))
            entries.append({"topic": info_topic, "type": "sensor_msgs/msg/CameraInfo",
                            "index": index, "log_time_ns": t, "stamp": stamp(t),
                            "frame_id": frame_id, "fx": fx[name]})
    # Compressed stream of cam1: jpeg (two format spellings) and png.
    for k, (fmt, ext) in enumerate([("rgb8; jpeg compressed bgr8", ".jpg"), ("jpeg", ".jpg"),
                                    ("png", ".png")]):
        t = T0 + k * PERIOD + 30_000_000 + 1_000_000
        rgb = cam["cam1"][k]
        ok, buf = cv2.imencode(ext, rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90] if ext == ".jpg" else [])
        assert ok
        # What a standard decoder returns: the reference for the Rust decoder (jpeg decoders
        # may differ by a few levels in their IDCT / upsampling, so compare with a tolerance).
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        name = f"cam1_compressed_{k}.png"
        topic = "/cam1/image_raw/compressed"
        msg = {"header": {"stamp": stamp(t), "frame_id": "cam1_optical"}, "format": fmt,
               "data": buf.tobytes()}
        index, _ = bag.write(topic, "sensor_msgs/msg/CompressedImage", t, msg)
        entries.append({"topic": topic, "type": "sensor_msgs/msg/CompressedImage", "index": index,
                        "log_time_ns": t, "stamp": stamp(t), "frame_id": "cam1_optical",
                        "format": fmt, "expected": save_expected(name, decoded),
                        "compare": "exact" if ext == ".png" else "jpeg"})
    bag.close()
    entries.sort(key=lambda e: e["log_time_ns"])
    manifest["bags"]["cameras.mcap"] = {"messages": entries,
                                        "counts": dict(sorted(bag.counts.items()))}

    # unindexed.mcap: no chunks, no indexes, in log-time order.
    path = os.path.join(OUT, "unindexed.mcap")
    bag = BagWriter(path, use_chunking=False, index_types=IndexType.NONE, use_summary_offsets=False,
                    repeat_channels=False, repeat_schemas=False, use_statistics=False)
    entries = []
    for k in range(2):
        t = T0 + k * PERIOD
        grey = cv2.cvtColor(cam["cam0"][k], cv2.COLOR_RGB2GRAY)
        index, _ = bag.write("/cam0/image_raw", "sensor_msgs/msg/Image", t,
                             image_msg(t, "cam0_optical", "mono8", W, grey.tobytes()))
        entries.append({"topic": "/cam0/image_raw", "type": "sensor_msgs/msg/Image",
                        "index": index, "log_time_ns": t, "stamp": stamp(t),
                        "frame_id": "cam0_optical", "encoding": "mono8", "step": W,
                        "expected": save_expected(f"unindexed_{k}.png", grey), "compare": "exact"})
        index, _ = bag.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", t,
                             camera_info_msg(t, "cam0_optical", fx["cam0"]))
        entries.append({"topic": "/cam0/camera_info", "type": "sensor_msgs/msg/CameraInfo",
                        "index": index, "log_time_ns": t, "stamp": stamp(t),
                        "frame_id": "cam0_optical", "fx": fx["cam0"]})
    bag.close()
    manifest["bags"]["unindexed.mcap"] = {"messages": entries,
                                          "counts": dict(sorted(bag.counts.items()))}

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for name in sorted(os.listdir(OUT)):
        p = os.path.join(OUT, name)
        if os.path.isfile(p):
            print(f"{name}: {os.path.getsize(p)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
