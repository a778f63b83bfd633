#!/usr/bin/env python3
"""Open a rosbag2 bag directory with PyPI's `rosbags` and print what it finds as JSON.

The independent oracle for `imd replay --out DIR` (tests/it/replay/dirs.rs): `rosbags` reads
metadata.yaml and the storage files (sqlite3 or MCAP, compressed or not) the way rosbag2 does,
and every message is deserialized from CDR with the Humble type store, so a message that only
imd could read would fail here.

Output: {"storage", "duration_ns", "start_ns", "message_count", "files",
"topics": {name: {"type", "metadata_count", "read", "decoded"}}}

Usage: .venv/bin/python scripts/oracles/check_rosbag2.py BAG_DIR
"""

import json
import sys
from pathlib import Path

from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore


def main(path):
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    topics = {}
    with Reader(Path(path)) as reader:
        for c in reader.connections:
            topics[c.topic] = {"type": c.msgtype, "metadata_count": c.msgcount, "read": 0,
                               "decoded": 0}
        for conn, _t, raw in reader.messages():
            t = topics[conn.topic]
            t["read"] += 1
            typestore.deserialize_cdr(raw, conn.msgtype)
            t["decoded"] += 1
        storage = reader.storage
        out = {
            "storage": type(storage.storages[0]).__name__ if storage.storages else "",
            "duration_ns": reader.duration,
            "start_ns": reader.start_time,
            "message_count": reader.message_count,
            "files": [f["path"] for f in storage.files],
            "topics": topics,
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
