#!/usr/bin/env python3
"""Parity fixtures for imd's backbone (VAE encoder, UNet features, CLIP vision).

Builds small random-weight models with the block structure of Stable Diffusion 2.1 (3
cross-attention down blocks + 1 plain, cross-attention mid block, 1 plain + 3 cross-attention
up blocks, linear projections, upcast attention, per-block head counts) and a small CLIP
vision tower, saves them in imd's weights-folder layout (diffusers / Hugging Face files, no
conversion), runs the reference implementations (diffusers, transformers, torch) on fixed
inputs and stores inputs and outputs next to them. `tests/it/parity.rs` compares imd with them.

    .venv/bin/python scripts/make_parity_fixtures.py            # tests/fixtures/parity/
    .venv/bin/python scripts/make_parity_fixtures.py --full DIR # SD2.1-size check (opt-in)

Layout written under tests/fixtures/parity/:
  small/    unet/ (fp16 variant file: covers fp16 → f32 conversion and the `.fp16` name),
            vae/ (fp32, current attention names), image_encoder/ (CLIPVisionModelWithProjection),
            empty_prompt.safetensors, cat_72x104.png, reference.safetensors
  legacy/   vae/ (fp16 values, old `query/key/value/proj_attn` names), image_encoder/ (a whole
            CLIPModel with a CLIPConfig: text tower present, projection at the top level),
            reference.safetensors
  clip_bare/ image_encoder/ (transformers >= 5 CLIPVisionModel: bare names, no projection,
            quick_gelu), reference.safetensors

References are captured from the real forward passes: the UNet features with a forward hook
on `up_blocks[k]` during diffusers' own `UNet2DConditionModel.forward`, the latents from
`AutoencoderKL.encode(x).latent_dist.mean * scaling_factor`, CLIP from transformers.

`--full DIR` writes the same kind of folder with the real SD2.1 UNet / VAE configs and the
CLIP ViT-H/14 vision config (random weights, several GB) for the `#[ignore]`d test
`parity::full_size_sd21_config` (see its doc for the command).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "parity"
SKIMAGE_DATA = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "skimage" / "data"

# SD2.1's UNet structure with small widths: block_out_channels [16, 32, 32, 32], 2/4/4/4 heads
# (head size 8), 4 groups. The real values are in `sd21_unet_config()`.
SMALL_UNET = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[16, 32, 32, 32],
    layers_per_block=2,
    attention_head_dim=[2, 4, 4, 4],
    cross_attention_dim=24,
    norm_num_groups=4,
    use_linear_projection=True,
    upcast_attention=True,
    flip_sin_to_cos=True,
    freq_shift=0,
)
SMALL_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 32, 32, 32],
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
)
SMALL_CLIP = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=56,
    patch_size=14,
    hidden_act="gelu",
    projection_dim=20,
)
PROMPT_LEN = 77


def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Random offsets on every parameter, so that default inits (norm weights 1, biases 0,
    zero-initialised layers) cannot hide a swapped or missing parameter."""
    with torch.no_grad():
        for p in model.parameters():
            scale = p.std().item() if p.numel() > 1 else 0.0
            if not np.isfinite(scale) or scale == 0.0:
                scale = 0.1
            p.add_(torch.randn(p.shape, generator=gen) * 0.5 * scale)


def photo(name: str, h: int, w: int) -> np.ndarray:
    """A bundled scikit-image photo, resized to h×w, uint8 RGB."""
    img = Image.open(SKIMAGE_DATA / name).convert("RGB").resize((w, h), Image.BICUBIC)
    return np.asarray(img)


def to_unit_range(rgb: np.ndarray) -> torch.Tensor:
    """uint8 HWC → [1, 3, H, W] in [-1, 1] (x / 127.5 − 1, as `imd features`)."""
    x = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]
    return x / 127.5 - 1.0


def unet_features(unet, latents, t, prompts, k):
    """Output of `up_blocks[k]` inside diffusers' own forward (hooked, not re-implemented)."""
    captured = {}
    handle = unet.up_blocks[k].register_forward_hook(lambda m, i, o: captured.__setitem__("f", o))
    try:
        unet(latents, t, encoder_hidden_states=prompts)
    finally:
        handle.remove()
    return captured["f"]


def vae_latents(vae, images):
    return vae.encode(images).latent_dist.mean * vae.config.scaling_factor


def clip_preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """HF's `shortest_edge` resize (bicubic, antialias, as the torchvision backend), centre
    crop, CLIP mean/std, on [0, 1] float tensors."""
    _, _, h, w = images.shape
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(size * long / short)
    nh, nw = (size, new_long) if h <= w else (new_long, size)
    x = F.interpolate(images, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
    top, left = int((nh - size) / 2.0), int((nw - size) / 2.0)
    x = x[:, :, top : top + size, left : left + size]
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    return (x - mean) / std


def rename_legacy_vae(state: dict) -> dict:
    """diffusers' current VAE attention names → the older `query/key/value/proj_attn`."""
    out = {}
    for name, t in state.items():
        if ".attentions." in name:
            for new, old in ((".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")):
                name = name.replace(new, old)
        out[name] = t
    return out


def save_reference(path: Path, tensors: dict) -> None:
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, str(path))


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@torch.no_grad()
def make_small(gen: torch.Generator) -> None:
    out = fresh(OUT / "small")

    # UNet stored in fp16 under diffusers' variant name; the reference runs the fp16-rounded
    # weights in fp32, which is exactly what imd loads.
    unet = UNet2DConditionModel(**SMALL_UNET)
    perturb(unet, gen)
    unet.to(torch.float16).save_pretrained(out / "unet", variant="fp16")
    unet = unet.to(torch.float32).eval()

    vae = AutoencoderKL(**SMALL_VAE)
    perturb(vae, gen)
    vae.eval().save_pretrained(out / "vae")

    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**SMALL_CLIP))
    perturb(clip, gen)
    clip.eval().save_pretrained(out / "image_encoder")

    empty_prompt = torch.randn(1, PROMPT_LEN, SMALL_UNET["cross_attention_dim"], generator=gen)
    save_file({"prompt": empty_prompt.contiguous()}, str(out / "empty_prompt.safetensors"))

    ref = {}
    # Two 64×64 photos (8×8 latents) and a 72×104 one (9×13 latents: not divisible by 8).
    images_64 = torch.cat([to_unit_range(photo("astronaut.png", 64, 64)), to_unit_range(photo("coffee.png", 64, 64))])
    cat = photo("chelsea.png", 72, 104)
    Image.fromarray(cat).save(out / "cat_72x104.png")
    images_72 = to_unit_range(cat)
    ref["images_64"] = images_64
    ref["images_72x104"] = images_72
    ref["latents_64"] = vae_latents(vae, images_64)
    ref["latents_72x104"] = vae_latents(vae, images_72)

    prompts = torch.randn(2, PROMPT_LEN, SMALL_UNET["cross_attention_dim"], generator=gen)
    ref["prompts"] = prompts
    lat64, lat72 = ref["latents_64"], ref["latents_72x104"]
    ref["features_64_k2_t0"] = unet_features(unet, lat64, 0, prompts, 2)
    ref["features_72x104_k2_t0"] = unet_features(unet, lat72, 0, prompts[:1], 2)
    ref["features_72x104_k1_t0"] = unet_features(unet, lat72, 0, prompts[:1], 1)
    # t ≠ 0 exercises the sinusoidal frequencies (at t = 0 they are all sin 0 / cos 0).
    ref["features_64_k3_t261"] = unet_features(unet, lat64, 261, prompts, 3)

    # `imd features` end to end: PNG → [-1, 1] → VAE → UNet (k = 2, t = 0, empty prompt).
    png = to_unit_range(np.asarray(Image.open(out / "cat_72x104.png").convert("RGB")))
    ref["cli_features"] = unet_features(unet, vae_latents(vae, png), 0, empty_prompt, 2)

    # Gradient of a fixed linear functional of the features w.r.t. the prompts.
    weights = torch.randn(ref["features_64_k2_t0"].shape, generator=gen)
    with torch.enable_grad():
        p = prompts.clone().requires_grad_(True)
        (unet_features(unet, lat64, 0, p, 2) * weights).sum().backward()
    ref["grad_weights_64"] = weights
    ref["prompt_grad_64"] = p.grad

    pixels = torch.randn(2, 3, SMALL_CLIP["image_size"], SMALL_CLIP["image_size"], generator=gen)
    out_clip = clip(pixel_values=pixels)
    ref["clip_pixels"] = pixels
    ref["clip_tokens"] = out_clip.last_hidden_state
    ref["clip_pooled"] = clip.vision_model(pixel_values=pixels).pooler_output
    ref["clip_embedding"] = out_clip.image_embeds

    landscape = torch.rand(1, 3, 60, 90, generator=gen)
    portrait = torch.rand(2, 3, 90, 61, generator=gen)
    ref["pre_landscape_in"] = landscape
    ref["pre_landscape_out"] = clip_preprocess(landscape, SMALL_CLIP["image_size"])
    ref["pre_portrait_in"] = portrait
    ref["pre_portrait_out"] = clip_preprocess(portrait, SMALL_CLIP["image_size"])
    save_reference(out / "reference.safetensors", ref)


@torch.no_grad()
def make_legacy(gen: torch.Generator) -> None:
    out = fresh(OUT / "legacy")

    vae = AutoencoderKL(**SMALL_VAE)
    perturb(vae, gen)
    vae = vae.to(torch.float16)
    (out / "vae").mkdir()
    vae.save_config(out / "vae")
    state = rename_legacy_vae({k: v.contiguous() for k, v in vae.state_dict().items()})
    save_file(state, str(out / "vae" / "diffusion_pytorch_model.safetensors"))
    vae = vae.to(torch.float32).eval()

    text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64, max_position_embeddings=16)
    vision = dict(SMALL_CLIP)
    projection_dim = vision.pop("projection_dim")
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    clip = CLIPModel(config)
    perturb(clip, gen)
    clip.eval().save_pretrained(out / "image_encoder")

    images = to_unit_range(photo("rocket.jpg", 64, 96))
    pixels = torch.randn(1, 3, SMALL_CLIP["image_size"], SMALL_CLIP["image_size"], generator=gen)
    vision_out = clip.vision_model(pixel_values=pixels)
    save_reference(
        out / "reference.safetensors",
        {
            "images": images,
            "latents": vae_latents(vae, images),
            "clip_pixels": pixels,
            "clip_tokens": vision_out.last_hidden_state,
            "clip_pooled": vision_out.pooler_output,
            "clip_embedding": clip.visual_projection(vision_out.pooler_output),
        },
    )


@torch.no_grad()
def make_clip_bare(gen: torch.Generator) -> None:
    out = fresh(OUT / "clip_bare")
    cfg = dict(SMALL_CLIP, hidden_act="quick_gelu")
    clip = CLIPVisionModel(CLIPVisionConfig(**cfg))
    perturb(clip, gen)
    clip.eval().save_pretrained(out / "image_encoder")
    pixels = torch.randn(1, 3, cfg["image_size"], cfg["image_size"], generator=gen)
    o = clip(pixel_values=pixels)
    save_reference(
        out / "reference.safetensors",
        {"clip_pixels": pixels, "clip_tokens": o.last_hidden_state, "clip_pooled": o.pooler_output},
    )


def sd21_unet_config() -> dict:
    """stabilityai/stable-diffusion-2-1/unet/config.json."""
    return dict(
        sample_size=96,
        in_channels=4,
        out_channels=4,
        down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        block_out_channels=[320, 640, 1280, 1280],
        layers_per_block=2,
        attention_head_dim=[5, 10, 20, 20],
        cross_attention_dim=1024,
        norm_num_groups=32,
        norm_eps=1e-5,
        use_linear_projection=True,
        upcast_attention=True,
        flip_sin_to_cos=True,
        freq_shift=0,
    )


def sd21_vae_config() -> dict:
    """stabilityai/stable-diffusion-2-1/vae/config.json (no scaling_factor: 0.18215)."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[128, 256, 512, 512],
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=768,
    )


def vit_h14_config() -> dict:
    """laion/CLIP-ViT-H-14-laion2B-s32B-b79K vision tower."""
    return dict(
        hidden_size=1280,
        intermediate_size=5120,
        num_hidden_layers=32,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        hidden_act="gelu",
        projection_dim=1024,
        layer_norm_eps=1e-5,
    )


@torch.no_grad()
def make_full(out: Path, gen: torch.Generator) -> None:
    """SD2.1-size configs with random weights, stored in fp16 to halve the disk use."""
    out = fresh(out)
    torch.manual_seed(1)
    unet = UNet2DConditionModel(**sd21_unet_config())
    unet.to(torch.float16).save_pretrained(out / "unet", variant="fp16")
    unet = unet.to(torch.float32).eval()
    vae = AutoencoderKL(**sd21_vae_config())
    vae.to(torch.float16).save_pretrained(out / "vae", variant="fp16")
    vae = vae.to(torch.float32).eval()
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**vit_h14_config()))
    clip.to(torch.float16).save_pretrained(out / "image_encoder", variant="fp16")
    clip = clip.to(torch.float32).eval()
    # The real SD2.1 VAE config has no `scaling_factor` (0.18215 applies): write it that way.
    cfg_path = out / "vae" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("scaling_factor", None)
    cfg_path.write_text(json.dumps(cfg, indent=2))

    images = to_unit_range(photo("chelsea.png", 72, 104))
    latents = vae.encode(images).latent_dist.mean * 0.18215
    prompts = torch.randn(1, PROMPT_LEN, 1024, generator=gen)
    pixels = torch.randn(1, 3, 224, 224, generator=gen)
    o = clip(pixel_values=pixels)
    save_reference(
        out / "reference.safetensors",
        {
            "images": images,
            "latents": latents,
            "prompts": prompts,
            "features_k2_t0": unet_features(unet, latents, 0, prompts, 2),
            "clip_pixels": pixels,
            "clip_tokens": o.last_hidden_state,
            "clip_embedding": o.image_embeds,
        },
    )
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", type=Path, help="write the SD2.1-size random-weight check to this folder instead")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    gen = torch.Generator().manual_seed(20250710)
    torch.manual_seed(0)
    if args.full:
        make_full(args.full, gen)
        return
    make_small(gen)
    make_legacy(gen)
    make_clip_bare(gen)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
