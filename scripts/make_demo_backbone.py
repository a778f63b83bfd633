#!/usr/bin/env python3
"""Write the freshly initialised tiny SD2.1-structured backbone the demo model trains from.

No pretrained tiny Stable Diffusion exists, so the demo model (`models/imd-tiny-synth/`,
`scripts/train_demo.sh`) trains its backbone too (`train.backbone: true`, demo only). This
script writes the starting point with the upstream libraries' own initialisation
(diffusers `UNet2DConditionModel` / `AutoencoderKL`, transformers
`CLIPVisionModelWithProjection`), in the layout `imd train` / `imd match` read:

    OUT/unet/{config.json, diffusion_pytorch_model.safetensors}
    OUT/vae/{config.json, diffusion_pytorch_model.safetensors}   (encoder side used)
    OUT/image_encoder/{config.json, model.safetensors}

The block structure is SD2.1's (3 cross-attention down blocks + 1 plain, cross-attention mid
block, plain + cross-attention up blocks, linear projections, upcast attention); channel
counts are small for CPU training, the VAE latent is wider than SD's 4 channels (a tiny
encoder trained only through the matcher benefits from a wider bottleneck) and the VAE runs
one resnet per block.

Usage (as scripts/train_demo.sh runs it):
    .venv/bin/python scripts/make_demo_backbone.py out/demo-init --seed 0
"""

import argparse
import json
import os
import pathlib
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sd_backbone  # noqa: E402

# Sizes of the demo backbone (also recorded in models/imd-tiny-synth/README.md).
UNET_CHANNELS = [32, 64, 64, 64]
UNET_HEADS = [1, 2, 2, 2]  # diffusers' attention_head_dim = number of heads in SD2.x
UNET_LAYERS = 1
VAE_CHANNELS = [16, 32, 64, 64]
VAE_LAYERS = 1
LATENT_CHANNELS = 8
NORM_GROUPS = 8
CROSS_DIM = 64
CLIP = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            image_size=64, patch_size=16, projection_dim=32, hidden_act="gelu")


def build_unet():
    return sd_backbone.build_unet(
        UNET_CHANNELS, UNET_HEADS, UNET_LAYERS, LATENT_CHANNELS, NORM_GROUPS, CROSS_DIM
    )


def build_vae():
    return sd_backbone.build_vae(
        VAE_CHANNELS, VAE_LAYERS, LATENT_CHANNELS, NORM_GROUPS,
        # A from-scratch encoder has no SD latent statistics to normalise: keep its scale.
        scaling_factor=1.0,
    )


def build_clip():
    return sd_backbone.build_clip(CLIP)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    build_unet().eval().save_pretrained(out / "unet", safe_serialization=True)
    build_vae().eval().save_pretrained(out / "vae", safe_serialization=True)
    build_clip().eval().save_pretrained(out / "image_encoder", safe_serialization=True)
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    tokens = 1 + (CLIP["image_size"] // CLIP["patch_size"]) ** 2
    print(json.dumps({"out": str(out), "feature_channels": UNET_CHANNELS[1], "clip_tokens": tokens,
                      "cross_attention_dim": CROSS_DIM, "bytes": sizes}, indent=1))


if __name__ == "__main__":
    main()
