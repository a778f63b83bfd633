#!/usr/bin/env python3
"""Print the field layout rosbags' ROS 2 Jazzy type store gives for message types, as JSON.

The independent oracle for imd's message table (src/io/msgs.rs, tests/it/io/schema.rs): for
each type name, {"consts": [[name, type, value]], "fields": [[name, type]]} with types written
as in a .msg file, fully qualified: `float64`, `std_msgs/msg/Header`, `float64[9]`,
`geometry_msgs/msg/PoseStamped[]`.

Usage: .venv/bin/python scripts/oracles/msg_fields.py TYPE [TYPE ...]
"""

import json
import sys

from rosbags.typesys import Stores, get_typestore


def type_text(node):
    kind, detail = node
    name = kind.name
    if name == "BASE":
        return detail[0]
    if name == "NAME":
        return detail
    inner, size = detail
    if name == "ARRAY":
        return f"{type_text(inner)}[{size}]"
    if name == "SEQUENCE":
        return f"{type_text(inner)}[]"
    raise ValueError(f"unexpected node {node}")


def main(types):
    store = get_typestore(Stores.ROS2_JAZZY)
    out = {}
    for t in types:
        consts, fields = store.fielddefs[t]
        out[t] = {
            "consts": [[n, ty, v] for n, ty, v in consts],
            "fields": [[n, type_text(node)] for n, node in fields],
        }
    json.dump(out, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
