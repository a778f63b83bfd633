#!/usr/bin/env python3
"""Read every message of a rosbag2 bag with PyPI `rosbags` and deserialize it from CDR (the
Python peer of `imd bag check`, for scripts/bench/bench_bag.sh). Prints JSON: messages, image_bytes,
seconds (the read loop only, after imports and opening), image_mb_per_s.

Usage: .venv/bin/python scripts/bench/bench_rosbags_read.py BAG_DIR
"""

import json
import sys
import time
from pathlib import Path

from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore


def main(path):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    messages = image_bytes = 0
    with Reader(Path(path)) as reader:
        start = time.perf_counter()
        for conn, _t, raw in reader.messages():
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            messages += 1
            if conn.msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"):
                image_bytes += len(msg.data)
        seconds = time.perf_counter() - start
    json.dump({"messages": messages, "image_bytes": image_bytes, "seconds": seconds,
               "image_mb_per_s": image_bytes / 1e6 / seconds}, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
