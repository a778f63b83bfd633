#!/usr/bin/env python3
"""Write the same large camera bag in several rosbag2 storages for scripts/bench/bench_bag.sh.

Content: the 70 camera images of tests/fixtures/replay/sequence.mcap decoded and upscaled to
640x480 rgb8 (`sensor_msgs/msg/Image`, 921,600 bytes of pixels each, real photo content so
zstd compresses it as it would a camera's), repeated with advancing stamps until about MB
megabytes of image data, each with its CameraInfo. All bags are written by PyPI `rosbags`:

  OUT/mcap/        MCAP storage, uncompressed chunks
  OUT/sqlite3/     sqlite3 storage
  OUT/mcap_zstd/   MCAP storage, zstd chunks (rosbag2 storage compression)
  OUT/msg_zstd/    MCAP storage, rosbag2 MESSAGE compression (zstd per payload)

Run: .venv/bin/python scripts/bench/make_rosbag2_bench.py OUT [MB]
"""

import os
import shutil
import sys

import cv2
import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from imd_scripts import ROOT  # noqa: E402
SOURCE = os.path.join(ROOT, "tests", "fixtures", "replay", "sequence.mcap")
W, H = 640, 480


def frames():
    """(rgb8 640x480 pixels, camera_info fields) of every cam0/cam1 image in the source."""
    out = []
    infos = {}
    with open(SOURCE, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _s, ch, _m, msg in reader.iter_decoded_messages(log_time_order=True):
            if ch.topic.endswith("camera_info"):
                infos[ch.topic.split("/")[1]] = msg
            else:
                bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
                rgb = cv2.cvtColor(cv2.resize(bgr, (W, H)), cv2.COLOR_BGR2RGB)
                out.append((ch.topic.split("/")[1], rgb))
    return out, infos


def main(out, mb):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    Image = ts.types["sensor_msgs/msg/Image"]
    CameraInfo = ts.types["sensor_msgs/msg/CameraInfo"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    RoI = ts.types["sensor_msgs/msg/RegionOfInterest"]
    images, infos = frames()
    n = max(1, int(mb * 1e6 / (W * H * 3)))
    messages = []
    t0 = 1_700_000_000 * 10**9
    for i in range(n):
        cam, rgb = images[i % len(images)]
        t = t0 + i * 50_000_000
        stamp = Time(sec=t // 10**9, nanosec=t % 10**9)
        header = Header(stamp=stamp, frame_id=f"{cam}_optical")
        img = Image(header=header, height=H, width=W, encoding="rgb8", is_bigendian=0,
                    step=W * 3, data=rgb.reshape(-1))
        src = infos[cam]
        scale = W / src.width
        k = np.array(src.k, dtype=np.float64) * np.array([scale, 1, scale, 1, scale, scale, 0, 0, 1])
        info = CameraInfo(header=header, height=H, width=W, distortion_model=src.distortion_model,
                          d=np.array(src.d, dtype=np.float64), k=k,
                          r=np.array(src.r, dtype=np.float64),
                          p=np.array(src.p, dtype=np.float64) * scale,
                          binning_x=0, binning_y=0,
                          roi=RoI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        messages.append((f"/{cam}/image_raw", "sensor_msgs/msg/Image", t,
                         ts.serialize_cdr(img, "sensor_msgs/msg/Image")))
        messages.append((f"/{cam}/camera_info", "sensor_msgs/msg/CameraInfo", t,
                         ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo")))
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for name, storage, mode in [
        ("mcap", StoragePlugin.MCAP, None),
        ("sqlite3", StoragePlugin.SQLITE3, None),
        ("mcap_zstd", StoragePlugin.MCAP, CompressionMode.STORAGE),
        ("msg_zstd", StoragePlugin.MCAP, CompressionMode.MESSAGE),
    ]:
        w = Writer(os.path.join(out, name), version=9, storage_plugin=storage)
        if mode is not None:
            w.set_compression(mode, CompressionFormat.ZSTD)
        w.open()
        conns = {}
        for topic, ty, t, data in messages:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, ty, typestore=ts)
            w.write(conns[topic], t, data)
        w.close()
    print(f"{n} images of {W}x{H} rgb8 ({n * W * H * 3 / 1e6:.0f} MB of image data) in {out}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) == 3 else 200.0)
