"""Write `tests/fixtures/bags/chunks.mcap`, the base of the damaged-bag tests and the fuzz
corpus (`tests/it/io/damage.rs`, `tests/it/fuzz.rs`), with the same independent writer as
`make_bag_fixtures.py` (PyPI's `mcap` + `mcap-ros2-support`).

  chunks.mcap   one camera, 20 frames at 10 Hz: /cam0/camera_info then /cam0/image_raw (mono8
                160x120, a gradient shifted per frame) per frame; zstd chunks of exactly 4
                frames (8 messages), so 5 chunks; summary with chunk index, message indexes
                and statistics, as rosbag2 writes it.

The damaged variants (a corrupt chunk, a lying length field, a damaged footer, a cut-off
recording) are made from it in the tests by deterministic byte edits, so the damage sits at
known places.

Run: .venv/bin/python scripts/make_damage_fixtures.py
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bag_fixtures import (  # noqa: E402
    OUT, PERIOD, T0, W, H, BagWriter, CompressionType, camera_info_msg, image_msg)

FRAMES = 20
PER_CHUNK = 4


def main():
    path = os.path.join(OUT, "chunks.mcap")
    # The writer starts a new chunk once the open one exceeds chunk_size: info + image of 4
    # frames are ~79 KB; 3 frames and the 4th info ~61 KB (with the schemas).
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=66_000)
    x = np.arange(W, dtype=np.int32)[None, :]
    y = np.arange(H, dtype=np.int32)[:, None]
    for i in range(FRAMES):
        t = T0 + i * PERIOD
        grey = ((x * 2 + y + 3 * i) % 256).astype(np.uint8)
        bag.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", t,
                  camera_info_msg(t, "cam0_optical", 140.0))
        bag.write("/cam0/image_raw", "sensor_msgs/msg/Image", t,
                  image_msg(t, "cam0_optical", "mono8", W, grey.tobytes()))
    bag.close()
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
