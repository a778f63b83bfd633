#!/usr/bin/env python3
"""Cut a whole .db3 at 30/50/80/95 % of its length and compare how many messages three readers
recover: the file's page layout (rows whose pages all lie before the cut, in id order), Python's
sqlite3 on the same salvaged copy imd makes, and `imd bag check` on the cut file.

Run (after `cargo build --features ros --bin imd` and a test run that made the fixtures):
  .venv/bin/python scripts/bench/measure_db3_salvage.py \
      target/test-fixtures/rosbag2/sqlite_split/sqlite_split_1.db3 target/debug/imd
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from make_rosbag2_fixtures import page_size, row_pages, salvage_rows  # noqa: E402


def main(src, imd):
    with open(src, "rb") as f:
        blob = f.read()
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as c:
        (root,) = c.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()
        ids = [r for (r,) in c.execute("SELECT id FROM messages ORDER BY id")]
    layout, ps = row_pages(blob, root), page_size(blob)
    with tempfile.TemporaryDirectory() as tmp:
        for frac in (0.3, 0.5, 0.8, 0.95):
            cut = int(len(blob) * frac)
            cut_file = os.path.join(tmp, f"cut_{int(frac * 100)}.db3")
            with open(cut_file, "wb") as f:
                f.write(blob[:cut])
            by_layout = 0
            for i in ids:
                if max(layout[i][0] + layout[i][1]) > cut // ps:
                    break
                by_layout += 1
            by_python = len(salvage_rows(cut_file, cut_file + ".salvage", ids))
            out = subprocess.run([imd, "bag", "check", "--json", cut_file], capture_output=True,
                                 text=True, env=dict(os.environ, RUST_LOG="off"))
            by_imd = sum(json.loads(out.stdout)["messages"].values())
            print(f"cut at {frac:.0%} (byte {cut} of {len(blob)}): page layout {by_layout}, "
                  f"python salvage {by_python}, imd {by_imd} of {len(ids)} (exit {out.returncode})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
