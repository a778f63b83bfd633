#!/usr/bin/env python3
"""Write a random-weight IMD weights folder with SD2.1-structured backbone configs.

The folder has the user-facing layout that `imd match --model DIR` reads:

    unet/{config.json, diffusion_pytorch_model.safetensors}    diffusers UNet2DConditionModel
    vae/{config.json, diffusion_pytorch_model.safetensors}     diffusers AutoencoderKL
    image_encoder/{config.json, model.safetensors}             HF CLIPVisionModelWithProjection
    empty_prompt.safetensors                                   tensor `prompt` [1, 77, D]
    imd.yaml                                                   head sizes (src/model/imd_config.rs)
    heads.safetensors                                          random CIPM / coarse / fine heads

The UNet and VAE keep SD2.1's block structure (3 cross-attention down blocks + 1 plain, mid
block, 1 plain + 3 cross-attention up blocks, linear projections, upcast attention, per-block
head counts) with small channel counts, so the real loaders and forward passes run on it in
seconds. Weights are random: matches made with this folder are meaningless; it exists to test
loading and the end-to-end CLI. `--no-heads` writes a zero-shot folder.

The heads' tensor names and shapes mirror the Rust modules (`src/model/cipm.rs`,
`src/model/coarse/transformer.rs`, `src/model/fine/encoder.rs`); `tests/it/matching.rs` loads
the committed output with unexpected tensors treated as errors, so any drift fails a test.

Usage (committed fixture):
    .venv/bin/python scripts/make_random_model.py tests/fixtures/matching/random_model
"""

import argparse
import json
import math
import os
import pathlib
import shutil
import sys

import torch
import yaml
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_backbone  # noqa: E402

# Small SD2.1-structured sizes. Channels must be divisible by the group-norm groups and by
# the per-block head counts.
UNET_CHANNELS = [8, 16, 16, 16]
UNET_HEADS = [1, 2, 2, 2]
VAE_CHANNELS = [8, 8, 16, 16]
NORM_GROUPS = 4
CROSS_DIM = 16
CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            image_size=56, patch_size=14, projection_dim=16, hidden_act="gelu")
PROMPT_TOKENS = 77

# imd.yaml of the random heads (small versions of the paper sizes).
IMD_YAML = {
    "description": "Random weights for tests (scripts/make_random_model.py); matches are meaningless.",
    "demo": True,
    "backbone": {"unet_block": 2, "timestep": 0.0},
    "cipm": {"clip_tokens": 1 + (CLIP["image_size"] // CLIP["patch_size"]) ** 2, "dim": 16,
             "prompt_length": 8, "scale": 0.2, "mlp_hidden": 32},
    "coarse": {"d_model": 16, "nhead": 4, "layers": ["self", "cross", "self", "cross"],
               "temperature": 0.1},
    "fine": {"dims": [16, 24], "window": 8, "subpixel_channels": 8, "subpixel_temperature": 10.0},
}


def build_unet():
    return sd_backbone.build_unet(UNET_CHANNELS, UNET_HEADS, 2, 4, NORM_GROUPS, CROSS_DIM)


def build_vae():
    return sd_backbone.build_vae(VAE_CHANNELS, 2, 4, NORM_GROUPS)


def build_clip():
    return sd_backbone.build_clip(CLIP)


def head_shapes(feature_channels, context_dim, clip_hidden, cfg):
    """Names and shapes of every tensor in heads.safetensors (mirrors the Rust modules)."""
    c, f = cfg["cipm"], cfg["fine"]
    d, n, l, hid = c["dim"], c["clip_tokens"], c["prompt_length"], c["mlp_hidden"]
    dm = cfg["coarse"]["d_model"]
    c1, c2 = f["dims"]
    shapes = {}

    def linear(name, i, o, bias=True):
        shapes[f"{name}.weight"] = [o, i]
        if bias:
            shapes[f"{name}.bias"] = [o]

    def norm(name, dim, stats=False):
        shapes[f"{name}.weight"] = [dim]
        shapes[f"{name}.bias"] = [dim]
        if stats:
            shapes[f"{name}.running_mean"] = [dim]
            shapes[f"{name}.running_var"] = [dim]

    def conv(name, i, o, k):
        shapes[f"{name}.weight"] = [o, i, k, k]

    # CIPM
    norm("cipm.norm_in", clip_hidden)
    for p in ["self_proj", "q_proj", "k_proj", "v_proj"]:
        linear(f"cipm.{p}", clip_hidden, d)
    linear("cipm.token_mix", n, l)
    linear("cipm.mlp.fc1", d, hid)
    linear("cipm.mlp.fc2", hid, context_dim)
    norm("cipm.norm_out", context_dim)
    # Coarse
    conv("coarse.proj", feature_channels, dm, 1)
    shapes["coarse.proj.bias"] = [dm]
    for i, _ in enumerate(cfg["coarse"]["layers"]):
        p = f"coarse.layers.{i}"
        for q in ["q_proj", "k_proj", "v_proj", "merge"]:
            linear(f"{p}.{q}", dm, dm, bias=False)
        linear(f"{p}.mlp.0", 2 * dm, 2 * dm, bias=False)
        linear(f"{p}.mlp.2", 2 * dm, dm, bias=False)
        norm(f"{p}.norm1", dm)
        norm(f"{p}.norm2", dm)
    # Fine encoder
    e = "fine.encoder"
    conv(f"{e}.stem.conv", 3, c1, 7)
    norm(f"{e}.stem.bn", c1, stats=True)

    def block(p, i, o, downsample):
        conv(f"{p}.conv1", i, o, 3)
        norm(f"{p}.bn1", o, stats=True)
        conv(f"{p}.conv2", o, o, 3)
        norm(f"{p}.bn2", o, stats=True)
        if downsample:
            conv(f"{p}.downsample.0", i, o, 1)
            norm(f"{p}.downsample.1", o, stats=True)

    block(f"{e}.layer1.0", c1, c1, False)
    block(f"{e}.layer1.1", c1, c1, False)
    block(f"{e}.layer2.0", c1, c2, True)
    block(f"{e}.layer2.1", c2, c2, False)
    # Fine fusion (EL inter_fpn)
    u = "fine.fusion"
    conv(f"{u}.layer3_outconv", dm, dm, 1)
    conv(f"{u}.layer2_outconv", c2, dm, 1)
    conv(f"{u}.layer2_outconv2.0", dm, dm, 3)
    norm(f"{u}.layer2_outconv2.1", dm, stats=True)
    conv(f"{u}.layer2_outconv2.3", dm, c2, 3)
    conv(f"{u}.layer1_outconv", c1, c2, 1)
    conv(f"{u}.layer1_outconv2.0", c2, c2, 3)
    norm(f"{u}.layer1_outconv2.1", c2, stats=True)
    conv(f"{u}.layer1_outconv2.3", c2, c1, 3)
    return shapes


def random_heads(shapes, gen):
    """Sane random init: weights ~ N(0, 1/fan_in), biases 0, norms identity, BN stats (0, 1)."""
    out = {}
    for name, shape in shapes.items():
        leaf = name.rsplit(".", 1)[1]
        is_norm = any(k in name for k in ["norm", ".bn", "downsample.1", "outconv2.1"])
        if leaf == "running_var" or (leaf == "weight" and is_norm):
            t = torch.ones(shape)
        elif leaf in ("bias", "running_mean"):
            t = torch.zeros(shape)
        else:
            fan_in = math.prod(shape[1:])
            t = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
        out[name] = t.contiguous()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-heads", action="store_true", help="zero-shot folder (no heads.safetensors)")
    ap.add_argument("--fp32", action="store_true", help="store the UNet in float32 (default float16, smaller)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    unet = build_unet().eval()
    if not args.fp32:
        unet = unet.half()  # also exercises the loaders' dtype conversion
    unet.save_pretrained(out / "unet", safe_serialization=True)
    build_vae().eval().save_pretrained(out / "vae", safe_serialization=True)
    build_clip().eval().save_pretrained(out / "image_encoder", safe_serialization=True)

    gen = torch.Generator().manual_seed(args.seed + 1)
    prompt = torch.randn(1, PROMPT_TOKENS, CROSS_DIM, generator=gen)
    save_file({"prompt": prompt.contiguous()}, str(out / "empty_prompt.safetensors"))

    feature_channels = list(reversed(UNET_CHANNELS))[IMD_YAML["backbone"]["unet_block"]]
    with open(out / "imd.yaml", "w") as f:
        yaml.safe_dump(IMD_YAML, f, sort_keys=False)
    if not args.no_heads:
        shapes = head_shapes(feature_channels, CROSS_DIM, CLIP["hidden_size"], IMD_YAML)
        save_file(random_heads(shapes, gen), str(out / "heads.safetensors"))

    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    print(json.dumps({"out": str(out), "feature_channels": feature_channels, "bytes": sizes}, indent=1))


if __name__ == "__main__":
    main()
