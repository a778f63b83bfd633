#!/usr/bin/env python3
"""Read an MCAP file with PyPI's `mcap` + `mcap-ros2-support` and print it as JSON.

The independent oracle for imd's MCAP writer (`tests/it/io/bag.rs`): if this reader decodes
every message with the schemas we stored, `ros2 bag play` and Foxglove (which parse the same
`ros2msg` definitions and CDR) can too.

Output: {"profile", "library", "channels": [{"topic", "schema_name", "schema_encoding",
"message_encoding", "message_count"}], "messages": [{"topic", "log_time", "publish_time",
"sequence", "message": <decoded fields>}]} with bytes as lists of ints.

Usage: .venv/bin/python scripts/oracles/check_mcap.py FILE.mcap
"""

import json
import sys

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory


def plain(value):
    """Decoded ROS 2 message objects -> JSON-able values."""
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__slots__"):
        return {k: plain(getattr(value, k)) for k in value.__slots__}
    return value


def main(path):
    with open(path, "rb") as f:
        reader = make_reader(f, validate_crcs=True, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        summary = reader.get_summary()
        counts = summary.statistics.channel_message_counts if summary.statistics else {}
        channels = []
        for cid, ch in sorted(summary.channels.items()):
            schema = summary.schemas.get(ch.schema_id)
            channels.append({
                "topic": ch.topic,
                "schema_name": schema.name if schema else "",
                "schema_encoding": schema.encoding if schema else "",
                "message_encoding": ch.message_encoding,
                "metadata": dict(ch.metadata),
                "message_count": counts.get(cid, 0),
            })
        messages = []
        for _schema, channel, message, decoded in reader.iter_decoded_messages():
            messages.append({
                "topic": channel.topic,
                "log_time": message.log_time,
                "publish_time": message.publish_time,
                "sequence": message.sequence,
                "message": plain(decoded),
            })
    json.dump({"profile": header.profile, "library": header.library, "channels": channels,
               "messages": messages}, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
