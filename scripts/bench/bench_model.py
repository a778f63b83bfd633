#!/usr/bin/env python3
"""Side-by-side benchmark: imd (Rust, tch) vs PyTorch eager (diffusers), same machine, same
thread count, same weights and inputs, in one run; prints the timings and the ratio.

    .venv/bin/python scripts/bench/bench_model.py                # reduced SD2.1 config, 1 thread
    .venv/bin/python scripts/bench/bench_model.py --threads 2 --size 320x256 --iters 8
    .venv/bin/python scripts/bench/bench_model.py --config sd21  # the real SD2.1 widths

What is timed: the UNet feature pass (conv_in → down → mid → up_blocks[0..=2], t = 0, no
noise, the per-pair cost of IMD), on latents of an image of --size. diffusers runs its own
modules (`conv_in`, `down_blocks`, `mid_block`, `up_blocks[:3]`, exactly the calls of
`UNet2DConditionModel.forward`, stopped after `up_blocks[2]` as DIFT does); imd runs
`imd features --bench-iters` (hidden flag) on a weights folder written from the same model.
Rounds alternate between the two so background load on a shared machine hits both alike.

Acceptance (issue 4): median imd / median PyTorch ≤ 1.05 on CPU.

Hook for the full matcher (heads): add a function to BENCHES below that times
`imd match` against the Python reference once the heads land.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from diffusers import AutoencoderKL, UNet2DConditionModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from imd_scripts import ROOT, skimage_data  # noqa: E402
SKIMAGE_DATA = skimage_data()

SD21_UNET = dict(
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[320, 640, 1280, 1280],
    layers_per_block=2,
    attention_head_dim=[5, 10, 20, 20],
    cross_attention_dim=1024,
    norm_num_groups=32,
    use_linear_projection=True,
    upcast_attention=True,
    sample_size=96,
)
CONFIGS = {
    "sd21": SD21_UNET,
    # SD2.1's structure and head counts at half the width (head size 32): 1/4 of the weights.
    "reduced": dict(SD21_UNET, block_out_channels=[160, 320, 640, 640]),
}
# The VAE only produces the latents here (not timed): keep it small.
TINY_VAE = dict(
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[32, 32, 32, 32],
    layers_per_block=1,
    norm_num_groups=8,
    latent_channels=4,
)
UP_TO = 2


@torch.no_grad()
def diffusers_features(unet: UNet2DConditionModel, latents, t, prompts, k=UP_TO):
    """`UNet2DConditionModel.forward` stopped after `up_blocks[k]` (DIFT's truncation)."""
    up_factor = 2**unet.num_upsamplers
    forward_size = any(s % up_factor != 0 for s in latents.shape[-2:])
    emb = unet.time_embedding(unet.get_time_embed(sample=latents, timestep=t), None)
    h = unet.conv_in(latents)
    skips = (h,)
    for block in unet.down_blocks:
        if getattr(block, "has_cross_attention", False):
            h, res = block(hidden_states=h, temb=emb, encoder_hidden_states=prompts)
        else:
            h, res = block(hidden_states=h, temb=emb)
        skips += res
    h = unet.mid_block(h, emb, encoder_hidden_states=prompts)
    for i, block in enumerate(unet.up_blocks[: k + 1]):
        res = skips[-len(block.resnets) :]
        skips = skips[: -len(block.resnets)]
        size = skips[-1].shape[2:] if forward_size and i + 1 < len(unet.up_blocks) else None
        if getattr(block, "has_cross_attention", False):
            h = block(hidden_states=h, temb=emb, res_hidden_states_tuple=res, encoder_hidden_states=prompts, upsample_size=size)
        else:
            h = block(hidden_states=h, temb=emb, res_hidden_states_tuple=res, upsample_size=size)
    return h


def time_python(unet, latents, prompts, iters):
    """Wall and calling-thread CPU milliseconds per pass (with one thread all work runs on
    the calling thread, so CPU time is the work done even when other jobs share the CPUs)."""
    diffusers_features(unet, latents, 0, prompts)  # warm-up
    wall, cpu = [], []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.thread_time_ns()
        diffusers_features(unet, latents, 0, prompts)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
    return wall, cpu


def time_imd(imd, folder, image, iters, threads):
    cmd = [
        str(imd), "features", "--model", str(folder), "--image", str(image),
        "--out", str(folder / "features.safetensors"),
        "--bench-iters", str(iters), "--threads", str(threads),
    ]
    env = dict(os.environ, RUST_LOG="warn")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["unet_ms"], result["unet_thread_cpu_ms"]


def build_imd() -> Path:
    env = dict(os.environ)
    env.setdefault("LIBTORCH", str(ROOT / ".libtorch"))
    subprocess.run(["cargo", "build", "--release", "--bin", "imd"], cwd=ROOT, check=True, env=env)
    return ROOT / "target" / "release" / "imd"


def bench_unet(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    w, h = (int(v) for v in args.size.split("x"))
    if w % 8 or h % 8:
        sys.exit("--size must be multiples of 8")
    imd = args.imd_bin or build_imd()

    work = Path(tempfile.mkdtemp(prefix="imd_bench_"))
    try:
        unet = UNet2DConditionModel(**CONFIGS[args.config]).eval()
        vae = AutoencoderKL(**TINY_VAE).eval()
        unet.save_pretrained(work / "unet")
        vae.save_pretrained(work / "vae")
        prompt = torch.randn(1, 77, unet.config.cross_attention_dim)
        save_file({"prompt": prompt}, str(work / "empty_prompt.safetensors"))
        rgb = np.asarray(Image.open(SKIMAGE_DATA / "astronaut.png").convert("RGB").resize((w, h), Image.BICUBIC))
        Image.fromarray(rgb).save(work / "image.png")
        x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.mean * vae.config.scaling_factor
        n_params = sum(p.numel() for p in unet.parameters()) / 1e6
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        print(f"UNet '{args.config}' ({n_params:.0f}M params), image {w}x{h} → latents {tuple(latents.shape)}, "
              f"up_blocks[{UP_TO}], {args.threads} thread(s), {args.rounds} rounds × {args.iters} iters")

        py_ms, rs_ms, py_cpu, rs_cpu = [], [], [], []
        for r in range(args.rounds):
            wall, cpu = time_python(unet, latents, prompt, args.iters)
            py_ms += wall
            py_cpu += cpu
            wall, cpu = time_imd(imd, work, work / "image.png", args.iters, args.threads)
            rs_ms += wall
            rs_cpu += cpu
            print(f"  round {r + 1}: pytorch median {statistics.median(py_ms):.1f} ms, imd median {statistics.median(rs_ms):.1f} ms")

        # The two must compute the same thing for the timing to mean anything.
        ref = diffusers_features(unet, latents, 0, prompt)
        from safetensors.torch import load_file
        got = load_file(str(work / "features.safetensors"))["features"]
        err = (got - ref).abs().max().item()

        py, rs = statistics.median(py_ms), statistics.median(rs_ms)
        ratio = rs / py
        print(f"PyTorch eager (diffusers): median {py:.1f} ms  (min {min(py_ms):.1f})")
        print(f"imd (tch):                 median {rs:.1f} ms  (min {min(rs_ms):.1f})")
        best = min(rs_ms) / min(py_ms)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(f"ratio imd / PyTorch, wall time: median {ratio:.3f}, min {best:.3f}; features max abs diff {err:.2e}; "
              f"acceptance ≤ 1.05: {'PASS' if ratio <= 1.05 else 'FAIL'}")
        if args.threads == 1 and py_cpu and rs_cpu:
            pc, rc = statistics.median(py_cpu), statistics.median(rs_cpu)
            print(f"thread CPU time (steadier on a shared machine): PyTorch median {pc:.1f} ms, imd median {rc:.1f} ms, "
                  f"ratio {rc / pc:.3f}: {'PASS' if rc / pc <= 1.05 else 'FAIL'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_matcher(args) -> None:
    # Hook: time the full matcher (`imd match`, backbone + CIPM + coarse + fine) against the
    # Python reference once the heads land, with the same protocol as bench_unet.
    sys.exit("the full-matcher benchmark comes with the heads (CIPM, coarse, fine)")


BENCHES = {"unet": bench_unet, "matcher": bench_matcher}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", nargs="?", default="unet", choices=sorted(BENCHES))
    ap.add_argument("--config", default="reduced", choices=sorted(CONFIGS))
    ap.add_argument("--size", default="256x256", help="image WxH in pixels (multiples of 8)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--imd-bin", type=Path, help="prebuilt imd binary (default: cargo build --release)")
    args = ap.parse_args()
    BENCHES[args.what](args)


if __name__ == "__main__":
    main()
