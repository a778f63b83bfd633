"""Write the oversized-input fixtures of issue 25 (`tests/it/io/hostile.rs`) into DIR (the tests
call it with `target/test-fixtures/hostile`; nothing is committed), with independent writers:
PyPI `mcap` + `mcap-ros2-support` (via `make_bag_fixtures.BagWriter`) and Python's `sqlite3`
with rosbag2's Humble schema (`make_rosbag2_fixtures.HUMBLE_SCHEMA`).

  huge_image.mcap   /cam0/camera_info and one 16384x16384 mono8 /cam0/image_raw (268 MB of
                    pixels, zstd-chunked to a few hundred KB), then one normal 160x120 frame.
  big_row.db3       a rosbag2 sqlite3 bag: /cam0/camera_info with one normal row, one row whose
                    BLOB is 24 MiB of zeros (more than any CameraInfo), and one normal row.
  bad_index.db3     24 /cam0/camera_info rows whose `timestamp_idx` page (one leaf, found from
                    sqlite_master's rootpage) is overwritten with 0xEE bytes: the table is
                    intact, the index is not.
  wal/wal.db3       the same 24 rows in a WAL-mode database (checkpointed), with a stray
                    `wal.db3-wal` holding one more committed row that was never checkpointed.

Run: .venv/bin/python scripts/make_hostile_fixtures.py DIR
"""

import os
import sqlite3
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_bag_fixtures import (  # noqa: E402
    PERIOD, T0, W, BagWriter, CompressionType, camera_info_msg, image_msg)
from make_rosbag2_fixtures import HUMBLE_SCHEMA  # noqa: E402

SIDE = 16384
BIG_ROW = 24 << 20


def huge_image(path):
    bag = BagWriter(path, compression=CompressionType.ZSTD, chunk_size=1 << 20)
    bag.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", T0,
              camera_info_msg(T0, "cam0_optical", 140.0))
    big = image_msg(T0, "cam0_optical", "mono8", SIDE, np.zeros(SIDE * SIDE, np.uint8).tobytes())
    big["height"], big["width"] = SIDE, SIDE
    bag.write("/cam0/image_raw", "sensor_msgs/msg/Image", T0, big)
    t = T0 + PERIOD
    bag.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", t,
              camera_info_msg(t, "cam0_optical", 140.0))
    bag.write("/cam0/image_raw", "sensor_msgs/msg/Image", t,
              image_msg(t, "cam0_optical", "mono8", W, bytes(W * 120)))
    bag.close()


def big_row(path, payload):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(HUMBLE_SCHEMA)
    db.execute("INSERT INTO topics(id, name, type, serialization_format, offered_qos_profiles) "
               "VALUES (1, '/cam0/camera_info', 'sensor_msgs/msg/CameraInfo', 'cdr', '')")
    rows = [(1, 1, T0, payload), (2, 1, T0 + PERIOD, bytes(BIG_ROW)),
            (3, 1, T0 + 2 * PERIOD, payload)]
    db.executemany("INSERT INTO messages(id, topic_id, timestamp, data) VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def rows24(path, payload, wal=False):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.executescript(HUMBLE_SCHEMA)
    db.execute("INSERT INTO topics(id, name, type, serialization_format, offered_qos_profiles) "
               "VALUES (1, '/cam0/camera_info', 'sensor_msgs/msg/CameraInfo', 'cdr', '')")
    db.executemany("INSERT INTO messages(id, topic_id, timestamp, data) VALUES (?, 1, ?, ?)",
                   [(i + 1, T0 + i * PERIOD, payload) for i in range(24)])
    db.commit()
    return db


def bad_index(path, payload):
    db = rows24(path, payload)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'timestamp_idx'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xee" * page_size)


def wal_bag(path, payload):
    db = rows24(path, payload, wal=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("INSERT INTO messages(id, topic_id, timestamp, data) VALUES (25, 1, ?, ?)",
               (T0 + 24 * PERIOD, payload))
    db.commit()
    # A copy of the database and its -wal while the writer is still open: what a killed
    # recorder leaves (the -shm is not copied).
    out = os.path.join(os.path.dirname(path), "..", "wal")
    os.makedirs(out, exist_ok=True)
    for suffix in ("", "-wal"):
        with open(path + suffix, "rb") as src, open(os.path.join(out, "wal.db3" + suffix), "wb") as dst:
            dst.write(src.read())
    db.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    huge_image(os.path.join(out, "huge_image.mcap"))
    writer = BagWriter(os.path.join(out, ".info.mcap"))
    _, payload = writer.write("/cam0/camera_info", "sensor_msgs/msg/CameraInfo", T0,
                              camera_info_msg(T0, "cam0_optical", 140.0))
    writer.close()
    os.remove(os.path.join(out, ".info.mcap"))
    big_row(os.path.join(out, "big_row.db3"), bytes(payload))
    bad_index(os.path.join(out, "bad_index.db3"), bytes(payload))
    os.makedirs(os.path.join(out, ".wal"), exist_ok=True)
    wal_bag(os.path.join(out, ".wal", "wal.db3"), bytes(payload))
    os.rmdir(os.path.join(out, ".wal"))
    for base, _, names in os.walk(out):
        for name in sorted(names):
            print(f"wrote {os.path.join(base, name)} ({os.path.getsize(os.path.join(base, name))} bytes)")


if __name__ == "__main__":
    main()
