#!/usr/bin/env python3
"""Start `imd_matcher` with the command line `check_launch.py` derived from the launch file and
check it: the executable and parameter file come from the colcon install space, the
launch-argument overrides arrive, and the running node serves frames (live harness, `pace`
scenario, 3 frames) and exits cleanly on SIGINT.

    run_launched.py LAUNCH.json --install INSTALL_SPACE
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    print(f"run_launched: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("launch_json")
    ap.add_argument("--install", required=True)
    a = ap.parse_args()
    launch = json.load(open(a.launch_json))
    if len(launch["nodes"]) != 1:
        fail(f"expected one node, got {len(launch['nodes'])}")
    cmd, env_add = launch["nodes"][0]["cmd"], launch["nodes"][0]["env"]
    install = os.path.abspath(a.install)
    want_exe = os.path.join(install, "lib", "imd", "imd_matcher")
    if cmd[0] != want_exe:
        fail(f"executable {cmd[0]}, expected {want_exe}")
    files = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--params-file"]
    want_cfg = os.path.join(install, "share", "imd", "config", "matcher.yaml")
    if not files or files[0] != want_cfg:
        fail(f"parameter files {files}, expected {want_cfg} first")
    if "__node:=imd_matcher" not in cmd or "--log-level" not in cmd:
        fail(f"node name / log level missing: {cmd}")
    if env_add.get("RUST_LOG") != "info":
        fail(f"additional_env {env_add}")

    env = dict(os.environ, **env_add, ROS_DOMAIN_ID="68", FASTDDS_BUILTIN_TRANSPORTS="SHM")
    tmp = tempfile.mkdtemp()
    log = open(os.path.join(tmp, "node.log"), "w+")
    node = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        out = os.path.join(tmp, "pace.json")
        h = subprocess.run(
            [sys.executable, os.path.join(HERE, "live_harness.py"), "pace", "--frames", "3",
             "--out", out, "--node-pid", str(node.pid), "--time-limit", "120"],
            env=env, timeout=180,
        )
        if h.returncode != 0:
            log.seek(0)
            fail(f"harness exited with {h.returncode}; node log:\n{log.read()}")
        rec = json.load(open(out))
        n = len(rec["odometry"])
        if n != 3:
            fail(f"{n} odometry messages for 3 frames")
        t = time.monotonic()
        node.send_signal(signal.SIGINT)
        code = node.wait(timeout=10)
        took = time.monotonic() - t
        log.seek(0)
        text = log.read()
        if code != 0 or took > 2.0:
            fail(f"exit {code} after {took:.2f} s:\n{text}")
        if "model_dir" not in text and "imd-tiny-synth" not in text:
            fail(f"the model_dir launch argument did not arrive:\n{text}")
        print(
            f"run_launched: the launch file's command line ran the installed node: "
            f"3/3 frames answered, SIGINT exit in {took:.2f} s"
        )
    finally:
        if node.poll() is None:
            node.kill()


if __name__ == "__main__":
    main()
