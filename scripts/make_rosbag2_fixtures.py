#!/usr/bin/env python3
"""Write rosbag2 bag directories as users record them, with writers independent of imd.

Source: every message of tests/fixtures/replay/sequence.mcap (two cameras, CompressedImage +
CameraInfo), read with PyPI's `mcap`, payload bytes kept as they are. The bags are written with
PyPI's `rosbags` (storage files and metadata.yaml; sqlite3 and MCAP storages, rosbag2 FILE and
MESSAGE zstd compression, MCAP chunk zstd) and with `mcap` (MCAP chunk lz4). `rosbags` does not
split bags, so a split bag is two `rosbags` bags (first half, second half of the messages) whose
storage files are moved into one directory, with one metadata.yaml that lists both files and
sums the two metadata files `rosbags` wrote, as rosbag2 does for a split recording.

Outputs under OUT (a directory given on the command line; the tests write it to a temporary
directory, nothing here is committed):

  mcap_split/        Jazzy-style: metadata version 9, MCAP storage, split in two files
  sqlite_split/      Humble-style: metadata version 5 (QoS as a YAML string), sqlite3 storage
                     with Humble's schema (schema_version 3: topics without
                     type_description_hash, no message_definitions table), split in two files
  sqlite_iron/       sqlite3 as `rosbags` writes it (schema 4, Iron and later), one file
  mcap_chunk_zstd/   MCAP with zstd chunks (`rosbags`, rosbag2's storage compression)
  mcap_chunk_lz4.mcap  one MCAP file with lz4 chunks (`mcap`)
  file_zstd/         rosbag2 FILE compression (the .db3 compressed whole: NAME.db3.zstd)
  message_zstd/      rosbag2 MESSAGE compression (every payload a zstd frame), MCAP storage
  damaged/no_metadata/        mcap_split without metadata.yaml
  damaged/bad_metadata/       mcap_split with a metadata.yaml that is not YAML
  damaged/missing_file/       mcap_split with its second file deleted
  damaged/truncated/          mcap_split with its second file cut in the middle of a message
  damaged/truncated_sqlite/   sqlite_split with its second file cut in half
  damaged/unknown_storage/    mcap_split whose metadata names storage `rosbag_v2`
  damaged/not_a_bag.db3       an SQLite database without rosbag2's tables
  tiny_humble.db3    the first 6 messages in a Humble-schema .db3 (a small fuzzing seed)
  manifest.json      per bag: messages per topic (for the truncated bags: the messages a reader
                     can still return, from the cut offset / from Python's sqlite3)

Run: .venv/bin/python scripts/make_rosbag2_fixtures.py OUT
"""

import json
import os
import shutil
import sqlite3
import sys

import yaml
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer as McapWriter
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "tests", "fixtures", "replay", "sequence.mcap")
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
# What a camera driver offers: sensor-data QoS (best effort, keep last 5).
SENSOR_QOS = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
                 QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)

# Humble's rosbag2_storage_sqlite3 schema (schema_version 3).
HUMBLE_SCHEMA = """
CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL,
                      metadata TEXT NOT NULL);
CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                    serialization_format TEXT NOT NULL, offered_qos_profiles TEXT NOT NULL);
CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,
                      timestamp INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX timestamp_idx ON messages (timestamp ASC);
INSERT INTO schema(schema_version, ros_distro) VALUES (3, 'humble');
"""


def source_messages():
    """(topic, type, log_time, payload) of sequence.mcap in log-time order."""
    out = []
    with open(SOURCE, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(log_time_order=True):
            out.append((channel.topic, schema.name, message.log_time, bytes(message.data)))
    return out


def counts(messages):
    c = {}
    for topic, _, _, _ in messages:
        c[topic] = c.get(topic, 0) + 1
    return c


def write_rosbags(path, messages, storage, version=9, compression=None):
    """One bag directory written by `rosbags`; returns its metadata dict."""
    w = Writer(path, version=version, storage_plugin=storage)
    if compression is not None:
        w.set_compression(compression, CompressionFormat.ZSTD)
    w.open()
    conns = {}
    for topic, ty, t, data in messages:
        if topic not in conns:
            conns[topic] = w.add_connection(topic, ty, typestore=TYPESTORE,
                                            offered_qos_profiles=[SENSOR_QOS])
        w.write(conns[topic], t, data)
    w.close()
    with open(os.path.join(path, "metadata.yaml")) as f:
        return yaml.safe_load(f)["rosbag2_bagfile_information"]


def humble_db3(src, dst):
    """Copy a `rosbags` .db3 (schema 4) into Humble's schema 3."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        b.executescript(HUMBLE_SCHEMA)
        for row in a.execute("SELECT id, name, type, serialization_format, offered_qos_profiles "
                             "FROM topics ORDER BY id"):
            b.execute("INSERT INTO topics VALUES (?, ?, ?, ?, ?)", row)
        for row in a.execute("SELECT id, topic_id, timestamp, data FROM messages ORDER BY id"):
            b.execute("INSERT INTO messages VALUES (?, ?, ?, ?)", row)
        b.commit()


def split_bag(out, name, messages, storage, humble=False):
    """A bag directory `out/name` split in two files, as rosbag2 leaves a split recording."""
    half = len(messages) // 2
    parts = [messages[:half], messages[half:]]
    tmp = os.path.join(out, f".{name}_parts")
    dst = os.path.join(out, name)
    os.makedirs(dst)
    ext = "mcap" if storage == StoragePlugin.MCAP else "db3"
    metas, files = [], []
    for i, part in enumerate(parts):
        part_dir = os.path.join(tmp, str(i))
        meta = write_rosbags(part_dir, part, storage)
        (written,) = meta["relative_file_paths"]
        fname = f"{name}_{i}.{ext}"
        if humble:
            humble_db3(os.path.join(part_dir, written), os.path.join(dst, fname))
        else:
            shutil.move(os.path.join(part_dir, written), os.path.join(dst, fname))
        metas.append(meta)
        files.append({"path": fname, "starting_time": meta["starting_time"],
                      "duration": meta["duration"], "message_count": meta["message_count"]})
    shutil.rmtree(tmp)
    topics = {}
    for meta in metas:
        for t in meta["topics_with_message_count"]:
            name_ = t["topic_metadata"]["name"]
            if name_ in topics:
                topics[name_]["message_count"] += t["message_count"]
            else:
                topics[name_] = json.loads(json.dumps(t))
    start = min(m["starting_time"]["nanoseconds_since_epoch"] for m in metas)
    end = max(m["starting_time"]["nanoseconds_since_epoch"] + m["duration"]["nanoseconds"]
              for m in metas)
    info = {
        "version": 9,
        "storage_identifier": metas[0]["storage_identifier"],
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(m["message_count"] for m in metas),
        "topics_with_message_count": list(topics.values()),
        "compression_format": "",
        "compression_mode": "",
        "relative_file_paths": [f["path"] for f in files],
        "files": files,
        "custom_data": None,
        "ros_distro": "jazzy",
    }
    if humble:
        # Humble writes version 5: QoS as a YAML string, no hashes, no distro.
        info["version"] = 5
        del info["custom_data"], info["ros_distro"]
        for t in info["topics_with_message_count"]:
            tm = t["topic_metadata"]
            tm.pop("type_description_hash", None)
            if not isinstance(tm.get("offered_qos_profiles"), str):
                tm["offered_qos_profiles"] = yaml.safe_dump(tm["offered_qos_profiles"])
    with open(os.path.join(dst, "metadata.yaml"), "w") as f:
        yaml.safe_dump({"rosbag2_bagfile_information": info}, f, sort_keys=False)
    return dst, [len(p) for p in parts]


def lz4_mcap(path, messages):
    with open(path, "wb") as f:
        w = McapWriter(f, compression=CompressionType.LZ4, chunk_size=256 << 10)
        w.start(profile="ros2", library="make_rosbag2_fixtures.py (mcap)")
        src = open(SOURCE, "rb")
        summary = make_reader(src).get_summary()
        schemas, channels = {}, {}
        for sid, s in summary.schemas.items():
            schemas[s.name] = w.register_schema(s.name, s.encoding, s.data)
        for cid, c in summary.channels.items():
            channels[c.topic] = w.register_channel(
                c.topic, c.message_encoding, schemas[summary.schemas[c.schema_id].name])
        src.close()
        seq = {}
        for topic, _, t, data in messages:
            seq[topic] = seq.get(topic, -1) + 1
            w.add_message(channels[topic], log_time=t, publish_time=t, sequence=seq[topic],
                          data=data)
        w.finish()


def main(out):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    messages = source_messages()
    manifest = {"source": "tests/fixtures/replay/sequence.mcap", "bags": {}}
    full = counts(messages)

    mcap_dir, mcap_parts = split_bag(out, "mcap_split", messages, StoragePlugin.MCAP)
    manifest["bags"]["mcap_split"] = {"counts": full, "files": mcap_parts}
    sql_dir, sql_parts = split_bag(out, "sqlite_split", messages, StoragePlugin.SQLITE3,
                                   humble=True)
    manifest["bags"]["sqlite_split"] = {"counts": full, "files": sql_parts}
    write_rosbags(os.path.join(out, "sqlite_iron"), messages, StoragePlugin.SQLITE3)
    manifest["bags"]["sqlite_iron"] = {"counts": full}
    write_rosbags(os.path.join(out, "mcap_chunk_zstd"), messages, StoragePlugin.MCAP,
                  compression=CompressionMode.STORAGE)
    manifest["bags"]["mcap_chunk_zstd"] = {"counts": full}
    lz4_mcap(os.path.join(out, "mcap_chunk_lz4.mcap"), messages)
    manifest["bags"]["mcap_chunk_lz4.mcap"] = {"counts": full}
    write_rosbags(os.path.join(out, "file_zstd"), messages, StoragePlugin.SQLITE3,
                  compression=CompressionMode.FILE)
    manifest["bags"]["file_zstd"] = {"counts": full}
    write_rosbags(os.path.join(out, "message_zstd"), messages, StoragePlugin.MCAP,
                  compression=CompressionMode.MESSAGE)
    manifest["bags"]["message_zstd"] = {"counts": full}

    damaged = os.path.join(out, "damaged")
    os.makedirs(damaged)

    def copy(name, src=mcap_dir):
        d = os.path.join(damaged, name)
        shutil.copytree(src, d)
        return d

    d = copy("no_metadata")
    os.remove(os.path.join(d, "metadata.yaml"))
    manifest["bags"]["damaged/no_metadata"] = {"counts": full}
    d = copy("bad_metadata")
    with open(os.path.join(d, "metadata.yaml"), "w") as f:
        f.write("rosbag2_bagfile_information: {version: 9, storage_identifier: [unclosed\n")
    manifest["bags"]["damaged/bad_metadata"] = {"counts": full}
    d = copy("missing_file")
    os.remove(os.path.join(d, "mcap_split_1.mcap"))
    manifest["bags"]["damaged/missing_file"] = {
        "counts": counts(messages[:mcap_parts[0]]), "lost": mcap_parts[1]}
    d = copy("unknown_storage")
    meta_path = os.path.join(d, "metadata.yaml")
    with open(meta_path) as f:
        text = f.read()
    with open(meta_path, "w") as f:
        f.write(text.replace("storage_identifier: mcap", "storage_identifier: rosbag_v2"))

    # Cut the second MCAP file in the middle of the payload of its k-th message: a recording
    # killed mid-write. Payloads are unique (distinct stamps), so their offsets are found.
    d = copy("truncated")
    second = os.path.join(d, "mcap_split_1.mcap")
    with open(second, "rb") as f:
        blob = f.read()
    part2 = messages[mcap_parts[0]:]
    k = len(part2) // 2
    at = blob.find(part2[k][3])
    assert at > 0, "payload not found in the MCAP file (compressed chunks?)"
    cut = at + len(part2[k][3]) // 2
    with open(second, "wb") as f:
        f.write(blob[:cut])
    manifest["bags"]["damaged/truncated"] = {
        "counts": counts(messages[:mcap_parts[0]] + part2[:k]), "cut_at": cut,
        "complete_in_last_file": k}

    # Cut the second .db3 in half; what SQLite still returns (walking the table in id order
    # until its first error) is what any SQLite-based reader can recover.
    d = copy("truncated_sqlite", sql_dir)
    second = os.path.join(d, "sqlite_split_1.db3")
    size = os.path.getsize(second)
    with open(second, "r+b") as f:
        f.truncate(size // 2)
    readable = []
    try:
        with sqlite3.connect(f"file:{second}?mode=ro", uri=True) as c:
            names = dict(c.execute("SELECT id, name FROM topics"))
            for topic_id, in c.execute("SELECT topic_id FROM messages ORDER BY id"):
                readable.append(names[topic_id])
    except sqlite3.DatabaseError as e:
        print(f"truncated_sqlite: SQLite stops after {len(readable)} rows: {e}")
    part1 = counts(messages[:sql_parts[0]])
    for t in readable:
        part1[t] = part1.get(t, 0) + 1
    manifest["bags"]["damaged/truncated_sqlite"] = {
        "counts": part1, "rows_readable_in_last_file": len(readable),
        "rows_in_last_file": sql_parts[1]}

    not_a_bag = os.path.join(damaged, "not_a_bag.db3")
    with sqlite3.connect(not_a_bag) as c:
        c.execute("CREATE TABLE readings(id INTEGER PRIMARY KEY, value REAL)")
        c.execute("INSERT INTO readings(value) VALUES (1.5)")

    tiny = os.path.join(out, ".tiny")
    (written,) = write_rosbags(tiny, messages[:6], StoragePlugin.SQLITE3)["relative_file_paths"]
    humble_db3(os.path.join(tiny, written), os.path.join(out, "tiny_humble.db3"))
    shutil.rmtree(tiny)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
