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
  damaged/truncated_sqlite/   sqlite_split with its second file cut in the middle of the data
                              of its middle message (in one of that message's overflow pages)
  damaged/unknown_storage/    mcap_split whose metadata names storage `rosbag_v2`
  damaged/not_a_bag.db3       an SQLite database without rosbag2's tables
  tiny_humble.db3    the first 6 messages in a Humble-schema .db3 (a small fuzzing seed)
  tiny_humble_cut.db3  the same cut at two thirds of its length (a fuzzing seed for the salvage)
  manifest.json      per bag: messages per topic (for the truncated bags: the messages a reader
                     can still return: from the cut offset for MCAP; for sqlite3 from the file's
                     page layout, checked against Python's sqlite3 on a salvaged copy)

Run: .venv/bin/python scripts/make_rosbag2_fixtures.py OUT
"""

import json
import os
import shutil
import sqlite3
import struct
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

# Humble's rosbag2 sqlite3 schema (schema_version 3), checked against rosbag2's `humble` branch
# (d256a5b): rosbag2_storage_default_plugins/.../sqlite_storage.cpp `initialize()` creates these
# tables and index, and sqlite_storage.hpp has kDBSchemaVersion_ = 3; Iron's (schema 4, as
# `rosbags` writes) adds topics.type_description_hash and the message_definitions table.
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


def page_size(blob):
    """The database page size (header bytes 16..18; 1 means 65536)."""
    ps = struct.unpack(">H", blob[16:18])[0]
    return 65536 if ps == 1 else ps


def varint(b, i):
    """SQLite's big-endian varint at b[i:]: (value, next offset)."""
    v = 0
    for k in range(8):
        c = b[i + k]
        v = (v << 7) | (c & 0x7F)
        if c < 0x80:
            return v, i + k + 1
    return (v << 8) | b[i + 8], i + 9


def row_pages(blob, rootpage):
    """rowid -> the pages (1-based) SQLite must read to return that row of the table b-tree at
    `rootpage`: (the interior pages above it and its leaf page, its overflow chain) (sections
    1.6 and 2.3 of https://www.sqlite.org/fileformat.html). Independent of SQLite itself."""
    ps = page_size(blob)
    usable = ps - blob[20]
    u16 = lambda at: struct.unpack(">H", blob[at:at + 2])[0]
    u32 = lambda at: struct.unpack(">I", blob[at:at + 4])[0]
    out = {}

    def walk(page, above):
        base = (page - 1) * ps
        hdr = base + (100 if page == 1 else 0)
        kind, n = blob[hdr], u16(hdr + 3)
        ptrs = hdr + (12 if kind == 0x05 else 8)
        cells = [base + u16(ptrs + 2 * j) for j in range(n)]
        path = above + [page]
        if kind == 0x05:  # interior table page: children left to right, then the right-most
            for c in cells:
                walk(u32(c), path)
            walk(u32(hdr + 8), path)
            return
        assert kind == 0x0D, f"page {page}: not a table b-tree page"
        for c in cells:
            size, i = varint(blob, c)
            rowid, i = varint(blob, i)
            chain = []
            most = usable - 35  # the most payload a leaf cell holds locally
            if size > most:
                least = (usable - 12) * 32 // 255 - 23
                local = least + (size - least) % (usable - 4)
                local = local if local <= most else least
                nxt = u32(i + local)
                while nxt:
                    chain.append(nxt)
                    nxt = u32((nxt - 1) * ps)
            out[rowid] = (path, chain)

    walk(rootpage, [])
    return out


def salvage_rows(path, tmp, ids):
    """imd's salvage of a .db3 cut short, with Python's sqlite3: copy its whole pages, make the
    header declare them (page count at 28, version-valid-for at 92 = change counter at 24,
    rollback journal at 18/19), read the messages of `ids` (the original file's, in id order)
    until the first error. Returns the (id, topic_id) pairs read."""
    with open(path, "rb") as f:
        blob = f.read()
    ps = page_size(blob)
    pages = len(blob) // ps
    head = bytearray(blob[:pages * ps])
    head[18:20] = b"\x01\x01"
    head[28:32] = struct.pack(">I", pages)
    head[92:96] = head[24:28]
    with open(tmp, "wb") as f:
        f.write(head)
    # One lookup per id: Python's cursor steps one row ahead while iterating, so a walk would
    # raise the error before handing over the last good row (imd steps only on demand).
    rows = []
    with sqlite3.connect(f"file:{tmp}?mode=ro", uri=True) as c:
        for row_id in ids:
            try:
                row = c.execute("SELECT id, topic_id, data FROM messages WHERE id = ?",
                                (row_id,)).fetchone()
            except sqlite3.DatabaseError as e:
                print(f"salvage of {path}: SQLite stops after {len(rows)} rows: {e}")
                break
            if row is None:
                break
            rows.append(row[:2])
    os.remove(tmp)
    return rows


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

    # Cut the second .db3 in the middle of the data of its middle message, inside one of that
    # message's overflow pages: a recorder killed while writing it. What a reader can recover
    # is every row, in id (record) order, up to the first whose pages do not all lie in the
    # whole pages before the cut, computed from the file's page layout.
    d = copy("truncated_sqlite", sql_dir)
    second = os.path.join(d, "sqlite_split_1.db3")
    with open(second, "rb") as f:
        blob = f.read()
    with sqlite3.connect(f"file:{second}?mode=ro", uri=True) as c:
        (root,) = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()
        names = dict(c.execute("SELECT id, name FROM topics"))
        rows = list(c.execute("SELECT id, topic_id FROM messages ORDER BY id"))
    layout = row_pages(blob, root)
    assert sorted(layout) == [r for r, _ in rows]
    ps = page_size(blob)
    k_id = rows[len(rows) // 2][0]
    chain = layout[k_id][1]
    assert chain, "the middle message has no overflow page (payloads too small?)"
    middle = chain[len(chain) // 2]
    cut = (middle - 1) * ps + ps // 2
    with open(second, "r+b") as f:
        f.truncate(cut)
    kept = cut // ps
    recoverable = []
    for row_id, topic_id in rows:
        if max(layout[row_id][0] + layout[row_id][1]) > kept:
            break
        recoverable.append((row_id, topic_id))
    # The oracle agrees with SQLite reading the salvaged copy, row for row.
    salvaged = salvage_rows(second, second + ".salvage", [r for r, _ in rows])
    assert salvaged == recoverable, f"salvage {len(salvaged)} rows != page layout {len(recoverable)}"
    # Nothing from the cut message on is complete; here every message before it is.
    assert 0 < len(recoverable) < len(rows) and recoverable[-1][0] < k_id
    part1 = counts(messages[:sql_parts[0]])
    for _, topic_id in recoverable:
        part1[names[topic_id]] = part1.get(names[topic_id], 0) + 1
    manifest["bags"]["damaged/truncated_sqlite"] = {
        "counts": part1, "cut_at": cut, "page_size": ps, "kept_pages": kept,
        "rows_recovered_in_last_file": len(recoverable), "cut_message_id": k_id,
        "rows_in_last_file": len(rows)}

    not_a_bag = os.path.join(damaged, "not_a_bag.db3")
    with sqlite3.connect(not_a_bag) as c:
        c.execute("CREATE TABLE readings(id INTEGER PRIMARY KEY, value REAL)")
        c.execute("INSERT INTO readings(value) VALUES (1.5)")

    tiny = os.path.join(out, ".tiny")
    (written,) = write_rosbags(tiny, messages[:6], StoragePlugin.SQLITE3)["relative_file_paths"]
    humble_db3(os.path.join(tiny, written), os.path.join(out, "tiny_humble.db3"))
    with open(os.path.join(out, "tiny_humble.db3"), "rb") as f:
        tiny_blob = f.read()
    with open(os.path.join(out, "tiny_humble_cut.db3"), "wb") as f:
        f.write(tiny_blob[:len(tiny_blob) * 2 // 3])
    shutil.rmtree(tiny)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
