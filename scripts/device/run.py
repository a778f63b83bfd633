#!/usr/bin/env python3
"""The device check: one command on a lent GPU machine (through run.sh), a JSON report + logs.

    ./run.sh                 # in the carry folder from scripts/device/build.sh, on the GPU machine
    scripts/device/run.sh --cpu --imd target/debug/imd     # CPU dry run (scripts/test.sh)

Writes $OUT/device-report.json (or ./device-report/ without $OUT) and logs/ beside it.
Steps (each recorded as ok / failed / unavailable, the run goes on after a failure):
  info     `imd info --json`: libtorch loaded, CUDA / cuDNN / driver versions, GPU name;
  weights  a seeded random weights folder from manifest/paper.json (small.json with --cpu),
           written with this machine's torch + safetensors (make_weights.py);
  demo     models/imd-tiny-synth on the two images in f32, f16, bf16 on the device, each
           compared with the CPU f32 result of the same binary (count, median / max px);
  paper    the paper-size folder, bf16 and f16, 640×480, coarse threshold 0 (random weights:
           every mutual nearest neighbour is a match, so the fine stage has work): warm pair
           latency (median of --repeats),
           keyframe-cached latency, per-stage times against the manifest's FLOPs (TFLOP/s),
           peak GPU memory of the process and of the whole device (nvidia-smi);
  replay   `imd replay` of the small bag on the device and on the CPU: frames/s, equality of
           the summaries (frames, tracking states, outputs per topic).
Needs Python ≥ 3.8 with torch and safetensors (for the weights) and numpy-free code otherwise.
"""

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CARRY = (HERE / "imd").is_file() and (HERE / "manifest").is_dir()
ROOT = HERE if CARRY else HERE.parent.parent

STAGES = ["vae", "clip", "fine_encoder", "cipm", "unet", "coarse", "fine"]


def default_paths():
    if CARRY:
        return dict(imd=HERE / "imd", model=HERE / "models" / "imd-tiny-synth",
                    images=[HERE / "images" / "a.jpg", HERE / "images" / "b.jpg"],
                    bag=HERE / "bag" / "sequence.mcap", manifests=HERE / "manifest")
    scannet = ROOT / "tests/fixtures/eval/scannet/scans_test/scene0800_00/color"
    return dict(imd=ROOT / "target" / "debug" / "imd", model=ROOT / "models" / "imd-tiny-synth",
                images=[scannet / "0.jpg", scannet / "15.jpg"],
                bag=ROOT / "tests/fixtures/replay/sequence.mcap", manifests=HERE / "manifest")


class Run:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.report = {"mode": "cpu" if args.cpu else "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "steps": {}}

    def cmd(self, name, argv, env=None, timeout=None, poll_gpu=False):
        """Run argv, log stdout+stderr to logs/NAME.log; (rc, seconds, peak GPU MiB or None)."""
        log = self.logs / f"{name}.log"
        start = time.time()
        with open(log, "w") as f:
            f.write("$ " + " ".join(str(a) for a in argv) + "\n")
            f.flush()
            p = subprocess.Popen([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT,
                                 env=dict(os.environ, **(env or {})))
            poller = GpuMemoryPoller(p.pid) if poll_gpu else None
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
                f.write(f"\n[killed after {timeout} s]\n")
            peak = poller.stop() if poller else None
        return rc, time.time() - start, peak

    def step(self, name, fn):
        start = time.time()
        try:
            result = fn()
            status = result.pop("status", "ok") if isinstance(result, dict) else "ok"
        except StepFailed as e:
            result, status = {"error": str(e)}, "failed"
        except Exception as e:  # a bug in this script must not lose the other steps
            result, status = {"error": f"{type(e).__name__}: {e}"}, "failed"
        result = dict(result or {}, status=status, seconds=round(time.time() - start, 1))
        self.report["steps"][name] = result
        print(f"[{time.strftime('%H:%M:%S')}] {name}: {status} ({result['seconds']} s)"
              + (f" — {result.get('error') or result.get('reason')}" if status != "ok" else ""), flush=True)
        self.save()
        return result

    def save(self):
        (self.out / "device-report.json").write_text(json.dumps(self.report, indent=1) + "\n")


class StepFailed(Exception):
    pass


class GpuMemoryPoller:
    """Peak `used_memory` of one process as nvidia-smi reports it (MiB: allocator cache and
    CUDA context included), sampled every 100 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self.ok = pid, None, shutil.which("nvidia-smi") is not None
        # Whole-device memory.used too: in a container nvidia-smi may not list our PID.
        self.device_peak = None
        self.done = threading.Event()
        if self.ok:
            self.thread = threading.Thread(target=self.loop, daemon=True)
            self.thread.start()

    def loop(self):
        while not self.done.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                     timeout=5).stdout
                for line in out.splitlines():
                    parts = [s.strip() for s in line.split(",")]
                    if len(parts) == 2 and parts[0] == str(self.pid) and parts[1].isdigit():
                        self.peak = max(self.peak or 0, int(parts[1]))
                used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                       "--id=0"], capture_output=True, text=True, timeout=5).stdout.strip()
                if used.isdigit():
                    self.device_peak = max(self.device_peak or 0, int(used))
            except Exception:
                pass
            self.done.wait(0.1)

    def stop(self):
        self.done.set()
        if self.ok:
            self.thread.join(timeout=10)
        return {"process_mib": self.peak, "device_used_mib": self.device_peak}


def read_matches(path):
    rows = []
    with open(path) as f:
        next(f, None)
        for line in f:
            v = line.strip().split(",")
            if len(v) >= 5:
                rows.append(tuple(float(x) for x in v[:5]))
    return rows


def compare_matches(test, ref):
    """For each test match the reference match nearest in (x0, y0, x1, y1): pixel distance
    stats, and how many test matches have a reference match within 1 px."""
    if not test or not ref:
        return {"count": len(test), "reference_count": len(ref), "median_px": None, "max_px": None,
                "within_1px": 0}
    # Bucket the reference by rounded image-0 point to avoid an O(N²) scan.
    buckets = {}
    for r in ref:
        buckets.setdefault((round(r[0] / 4), round(r[1] / 4)), []).append(r)
    dists = []
    for t in test:
        kx, ky = round(t[0] / 4), round(t[1] / 4)
        cands = [r for dx in (-1, 0, 1) for dy in (-1, 0, 1) for r in buckets.get((kx + dx, ky + dy), [])]
        if not cands:
            cands = ref
        d = min(max(((t[0] - r[0]) ** 2 + (t[1] - r[1]) ** 2) ** 0.5,
                    ((t[2] - r[2]) ** 2 + (t[3] - r[3]) ** 2) ** 0.5) for r in cands)
        dists.append(d)
    return {"count": len(test), "reference_count": len(ref), "median_px": round(statistics.median(dists), 5),
            "max_px": round(max(dists), 5), "within_1px": sum(d <= 1.0 for d in dists)}


def main():
    paths = default_paths()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", action="store_true", help="dry run on the CPU at small sizes (GPU fields: unavailable)")
    ap.add_argument("--imd", type=Path, default=paths["imd"])
    ap.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else Path("device-report"))
    ap.add_argument("--model", type=Path, default=paths["model"], help="demo weights folder")
    ap.add_argument("--images", type=Path, nargs=2, default=paths["images"])
    ap.add_argument("--bag", type=Path, default=paths["bag"])
    ap.add_argument("--manifest", type=Path, help="default: manifest/paper.json (small.json with --cpu)")
    ap.add_argument("--weights-dir", type=Path, help="where the random weights go (default: a temporary folder)")
    ap.add_argument("--repeats", type=int, help="warm repeats per timing (default 20; 3 with --cpu)")
    ap.add_argument("--demo-resize", type=int, default=320, help="long side for the demo model")
    ap.add_argument("--dtypes", default="bf16,f16", help="dtypes of the paper-size timings")
    ap.add_argument("--replay-resize", type=int, help="long side for the replay (default 320; 160 with --cpu)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per imd command")
    args = ap.parse_args()
    args.manifest = args.manifest or paths["manifests"] / ("small.json" if args.cpu else "paper.json")
    args.repeats = args.repeats or (3 if args.cpu else 20)
    args.replay_resize = args.replay_resize or (160 if args.cpu else 320)
    run = Run(args)
    imd = args.imd.resolve()
    device = "cpu" if args.cpu else "cuda"
    rust_env = {"RUST_LOG": "warn"}
    report = run.report
    report["machine"] = {"host": socket.gethostname(), "python": sys.version.split()[0], "platform": platform.platform(),
                         "imd": str(imd), "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")}
    try:
        import torch
        report["machine"]["python_torch"] = torch.__version__
    except Exception as e:
        report["machine"]["python_torch"] = f"unavailable ({e})"
    build = HERE / "BUILD.json"
    report["build"] = json.loads(build.read_text()) if build.exists() else None
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True)
        report["machine"]["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    else:
        report["machine"]["nvidia_smi"] = "unavailable (no nvidia-smi)"

    # 1. imd info --json
    state = {}

    def info():
        rc, secs, _ = run.cmd("info", [imd, "info", "--json"], env=rust_env, timeout=120)
        text = (run.logs / "info.log").read_text()
        if rc != 0:
            raise StepFailed(f"imd info exited {rc} (logs/info.log)")
        data = json.loads(text[text.index("{"):])
        state["cuda"] = bool(data.get("cuda_available"))
        out = {"info": data}
        if not args.cpu and not state["cuda"]:
            out.update(status="failed", error="CUDA not available to imd (see info.libtorch_loaded, LD_LIBRARY_PATH)")
        return out

    run.step("info", info)

    # 2. paper-size (or small) random weights
    weights = args.weights_dir or Path(tempfile.mkdtemp(prefix="imd-weights-"))
    manifest = json.loads(args.manifest.read_text())

    def make_weights():
        rc, secs, _ = run.cmd("make_weights", [sys.executable, HERE / "make_weights.py", args.manifest, weights],
                              timeout=600)
        if rc != 0:
            raise StepFailed(f"make_weights.py exited {rc} (logs/make_weights.log)")
        last = (run.logs / "make_weights.log").read_text().strip().splitlines()[-1]
        return {"manifest": manifest["name"], "parameters": manifest["parameters"], "written": json.loads(last)}

    run.step("weights", make_weights)

    a, b = args.images

    def match(name, model, dtype, dev, resize, extra=(), poll=False):
        csv = run.out / f"{name}.csv"
        argv = [imd, "match", a, b, "--model", model, "--device", dev, "--dtype", dtype, "--resize", resize,
                "--out", csv, *extra]
        rc, secs, peak = run.cmd(name, argv, env=rust_env, timeout=args.timeout, poll_gpu=poll)
        if rc != 0:
            raise StepFailed(f"{name}: imd match exited {rc} (logs/{name}.log)")
        return read_matches(csv), secs, peak

    # 3. demo model: device vs CPU f32
    def demo():
        ref, ref_s, _ = match("demo_cpu_f32", args.model, "f32", "cpu", args.demo_resize)
        out = {"resize": args.demo_resize, "device": device, "cpu_f32": {"count": len(ref), "seconds": round(ref_s, 2)}}
        failed = []
        for dtype in ("f32", "f16", "bf16"):
            try:
                m, secs, _ = match(f"demo_{device}_{dtype}", args.model, dtype, device, args.demo_resize)
                out[f"{device}_{dtype}"] = dict(compare_matches(m, ref), seconds=round(secs, 2))
            except StepFailed as e:
                out[f"{device}_{dtype}"] = {"error": str(e)}
                failed.append(dtype)
        if failed:
            out.update(status="failed", error=f"demo match failed for {failed}")
        return out

    run.step("demo", demo)

    # 4. paper-size timings
    width, height = manifest["image_size"]
    flops = manifest["flops_per_pair"]

    def paper():
        out = {"manifest": manifest["name"], "size": [width, height], "device": device, "repeats": args.repeats,
               "flops_per_pair": flops}
        failed = []
        for dtype in [d for d in args.dtypes.split(",") if d]:
            tj = run.out / f"paper_{dtype}_timings.json"
            try:
                m, secs, peak = match(f"paper_{device}_{dtype}", weights, dtype, device, max(width, height),
                                      extra=["--repeat", args.repeats, "--timings-json", tj, "--threshold", 0.0],
                                      poll=not args.cpu)
            except StepFailed as e:
                out[dtype] = {"error": str(e)}
                failed.append(dtype)
                continue
            t = json.loads(tj.read_text())
            med = t["pair_median"]
            stages = {}
            for s in STAGES:
                ms = med.get(f"{s}_ms", 0.0)
                fl = flops.get(s)
                stages[s] = {"ms": round(ms, 3), "gflop": float(f"{fl / 1e9:.4g}") if fl is not None else None,
                             "tflop_per_s": float(f"{fl / (ms / 1e3) / 1e12:.4g}") if fl and ms > 0 else None}
            out[dtype] = {
                "matches": t["matches"], "load_ms": round(t["load_ms"], 1), "cold_ms": round(t["cold"]["total_ms"], 1),
                "pair_ms_median": round(med["total_ms"], 3),
                "pair_ms_all": [round(x["total_ms"], 3) for x in t["pair"]],
                "keyframe_cached_ms_median": round(t["keyframe_cached_median"]["total_ms"], 3),
                "stages": stages,
                "peak_gpu_memory_mib": peak["process_mib"] if peak and peak["process_mib"] is not None
                else "unavailable (CPU mode, no nvidia-smi, or PID not listed)",
                "peak_device_memory_used_mib": peak["device_used_mib"] if peak and peak["device_used_mib"] is not None
                else "unavailable (CPU mode or no nvidia-smi)",
                "command_seconds": round(secs, 1),
            }
        if failed:
            out.update(status="failed", error=f"paper-size match failed for {failed}")
        return out

    if report["steps"]["weights"]["status"] == "ok":
        run.step("paper", paper)
    else:
        run.step("paper", lambda: {"status": "failed", "error": "no weights (step weights failed)"})

    # 5. replay of the small bag: device vs CPU
    def replay():
        out = {"bag": args.bag.name, "device": device, "resize": args.replay_resize}
        # A bare YAML mapping (JSON is YAML) with the network size; cameras come from --camera.
        config = run.out / "replay_config.yaml"
        config.write_text(json.dumps({"model": {"resize_long_side": args.replay_resize}}) + "\n")
        summaries = {}
        for dev in dict.fromkeys(["cpu", device, "cpu_again" if device == "cpu" else device]):
            real = "cpu" if dev.startswith("cpu") else dev
            bag_out = run.out / f"replay_{dev}.mcap"
            sj = run.out / f"replay_{dev}_summary.json"
            for p in (bag_out, sj):
                if p.exists():
                    p.unlink()
            argv = [imd, "replay", args.bag, "--model", args.model, "--device", real, "--config", config,
                    "--camera", "/cam0/image_raw/compressed", "--camera", "/cam1/image_raw/compressed",
                    "--out", bag_out, "--summary-json", sj]
            rc, secs, _ = run.cmd(f"replay_{dev}", argv, env=rust_env, timeout=args.timeout)
            if rc != 0:
                out.update(status="failed", error=f"imd replay on {real} exited {rc} (logs/replay_{dev}.log)")
                return out
            s = json.loads(sj.read_text())
            summaries[dev] = s
            out[dev] = {"frames_processed": s["frames_processed"], "seconds": round(secs, 2),
                        "frames_per_s": round(s["frames_processed"] / secs, 2) if secs > 0 else None,
                        "latency_ms_median": s.get("latency_ms", {}).get("median"),
                        "states": s["states"], "outputs": s["outputs"], "keyframes": s["keyframes"]}
        other = device if device != "cpu" else "cpu_again"
        keys = ["frames_read", "frames_processed", "frames_failed", "states", "outputs", "keyframes"]
        diff = {k: [summaries["cpu"].get(k), summaries[other].get(k)] for k in keys
                if summaries["cpu"].get(k) != summaries[other].get(k)}
        out["summaries_equal"] = not diff
        out["differences"] = diff
        return out

    run.step("replay", replay)

    if not args.weights_dir:
        shutil.rmtree(weights, ignore_errors=True)
    steps = report["steps"]
    report["failed_steps"] = [k for k, v in steps.items() if v["status"] == "failed"]
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if args.cpu:
        report["gpu"] = "unavailable (CPU mode): peak GPU memory, CUDA timings and CUDA-vs-CPU comparisons not measured"
    run.save()
    print(f"report: {run.out / 'device-report.json'}; failed steps: {report['failed_steps'] or 'none'}")
    return 1 if report["failed_steps"] else 0


if __name__ == "__main__":
    sys.exit(main())
