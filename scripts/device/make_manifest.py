#!/usr/bin/env python3
"""Write the weight manifests of the device check: every tensor name / shape / dtype and the
config files of a weights folder, plus the FLOP count of each stage for one pair, so the GPU
machine can write the folder itself (scripts/device/make_weights.py) and nothing large is
carried.

    .venv/bin/python scripts/device/make_manifest.py        # scripts/device/manifest/{paper,small}.json

`paper`: the paper's sizes — SD2.1 UNet + VAE (stabilityai/stable-diffusion-2-1 configs), CLIP
ViT-H/14 vision tower, heads at imd.yaml's defaults (Efficient LoFTR sizes: d_model 256, 8
heads, 4 full-attention layers, fine dims [64, 128]); backbone stored in float16 (as SD2.1's fp16
variant), heads in float32. Its FLOPs are counted for a 640×480 pair.
`small`: the random test model's sizes (scripts/fixtures/make_random_model.py) for the CPU mode of
scripts/device/run.sh, FLOPs for a 128×96 pair.

Layouts and configs come from the same code that writes the test fixtures
(make_parity_fixtures.py for the SD2.1 / ViT-H configs, make_random_model.py for the heads'
tensor names), so they follow imd's loaders. FLOPs (1 multiply-add = 2 FLOPs): VAE encoder,
CLIP and UNet (cut after up_blocks[unet_block], as imd runs it) are counted by
torch.utils.flop_counter on meta tensors; CIPM, coarse transformer + matching, fine encoder
and fine fusion are counted analytically from their layer shapes (convolutions, linear
layers, attention products; norms, activations and softmax not counted). The fine stage's
per-match refinement is not counted (a few MFLOP for a thousand matches).
"""

import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "fixtures"), str(HERE.parent / "bench")]
import make_parity_fixtures as parity  # noqa: E402
import make_random_model as rnd  # noqa: E402

PAPER_YAML = {
    "description": "RANDOM WEIGHTS at the paper's sizes (scripts/device/make_weights.py) for timing; matches are meaningless.",
    "demo": True,
    "backbone": {"unet_block": 2, "timestep": 0.0},
    "cipm": {"clip_tokens": 257, "dim": 256, "prompt_length": 77, "scale": 0.2, "mlp_hidden": 1024},
    "coarse": {"d_model": 256, "nhead": 8, "layers": ["self", "cross", "self", "cross"], "temperature": 0.1},
    "fine": {"dims": [64, 128], "window": 8, "subpixel_channels": 8, "subpixel_temperature": 10.0},
}


def configs(kind):
    if kind == "paper":
        unet = parity.sd21_unet_config()
        vae = parity.sd21_vae_config()
        clip = parity.vit_h14_config()
        return unet, vae, clip, PAPER_YAML, (640, 480), "F16"
    unet = dict(
        sample_size=32, in_channels=4, out_channels=4,
        down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        block_out_channels=list(rnd.UNET_CHANNELS), layers_per_block=2,
        attention_head_dim=list(rnd.UNET_HEADS), cross_attention_dim=rnd.CROSS_DIM,
        use_linear_projection=True, upcast_attention=True, norm_num_groups=rnd.NORM_GROUPS,
        flip_sin_to_cos=True, freq_shift=0,
    )
    vae = dict(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=list(rnd.VAE_CHANNELS),
        layers_per_block=2, latent_channels=4, norm_num_groups=rnd.NORM_GROUPS, sample_size=64,
    )
    return unet, vae, dict(rnd.CLIP), rnd.IMD_YAML, (128, 96), "F32"


def build(kind):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    unet_cfg, vae_cfg, clip_cfg, yaml_cfg, size, backbone_dtype = configs(kind)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**unet_cfg).eval()
        vae = AutoencoderKL(**vae_cfg).eval()
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_cfg)).eval()
    return unet, vae, clip, yaml_cfg, size, backbone_dtype


def diffusers_config(cfg, class_name):
    """What diffusers' save_pretrained writes as config.json."""
    cfg = {k: v for k, v in cfg.items() if k != "_use_default_values"}
    return json.loads(json.dumps(dict(cfg, _class_name=class_name), default=list))


def tensors(model, dtype):
    return {name: {"shape": list(t.shape), "dtype": dtype} for name, t in model.state_dict().items()}


def counted(fn):
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            fn()
    return int(fc.get_total_flops())


def flops(unet, vae, clip, cfg, size):
    w, h = size
    gh, gw = h // 8, w // 8
    n = gh * gw  # coarse cells per image
    p = h * w
    meta = dict(device="meta")
    c = cfg["cipm"]
    context = unet.config.cross_attention_dim
    clip_hidden = clip.config.hidden_size
    k = cfg["backbone"]["unet_block"]
    feature_channels = list(reversed(unet.config.block_out_channels))[k]
    import bench_model  # the truncated diffusers UNet forward (DIFT's cut), same as imd's

    out = {}
    out["vae"] = counted(lambda: vae.encode(torch.zeros(2, 3, h, w, **meta)))
    side = clip.config.image_size
    out["clip"] = counted(lambda: clip(pixel_values=torch.zeros(2, 3, side, side, **meta)))
    out["unet"] = counted(lambda: bench_model.diffusers_features(
        unet, torch.zeros(2, 4, gh, gw, **meta), 0, torch.zeros(2, c["prompt_length"], context, **meta), k))
    # CIPM (both images): 4 projections of the CLIP tokens, attention between the images' tokens,
    # token mix N → L, MLP to the context width.
    t, d, L, hid = c["clip_tokens"], c["dim"], c["prompt_length"], c["mlp_hidden"]
    out["cipm"] = 2 * (2 * 4 * t * clip_hidden * d + 2 * 2 * t * t * d + 2 * L * t * d
                       + 2 * L * (d * hid + hid * context))
    # Coarse: 1×1 projection, per layer and image q/k/v/merge + attention (N × N) + MLP 2d→2d→d,
    # then the N0 × N1 similarity of the dual softmax.
    dm = cfg["coarse"]["d_model"]
    layers = len(cfg["coarse"]["layers"])
    per_layer = 2 * (2 * 4 * n * dm * dm + 2 * 2 * n * n * dm + 2 * n * (2 * dm * 2 * dm + 2 * dm * dm))
    out["coarse"] = 2 * 2 * n * feature_channels * dm + layers * per_layer + 2 * n * n * dm
    c1, c2 = cfg["fine"]["dims"]
    half, quarter = p // 4, p // 16
    enc = (2 * half * 49 * 3 * c1 + 4 * 2 * half * 9 * c1 * c1
           + 2 * quarter * 9 * c1 * c2 + 2 * quarter * 9 * c2 * c2 + 2 * quarter * c1 * c2
           + 2 * 2 * quarter * 9 * c2 * c2)
    out["fine_encoder"] = 2 * enc
    fusion = (2 * n * dm * dm + 2 * quarter * c2 * dm + 2 * quarter * 9 * dm * dm
              + 2 * quarter * 9 * dm * c2 + 2 * half * c1 * c2 + 2 * half * 9 * c2 * c2
              + 2 * half * 9 * c2 * c1)
    out["fine"] = 2 * fusion
    return out


def manifest(kind):
    unet, vae, clip, cfg, size, backbone_dtype = build(kind)
    k = cfg["backbone"]["unet_block"]
    feature_channels = list(reversed(unet.config.block_out_channels))[k]
    heads = rnd.head_shapes(feature_channels, unet.config.cross_attention_dim, clip.config.hidden_size, cfg)
    vae_config = dict(vae.config)
    if kind == "paper":
        vae_config.pop("scaling_factor", None)  # as SD2.1's file (0.18215 applies)
    prompt_tokens = 77
    return {
        "name": kind,
        "generator": "scripts/device/make_manifest.py",
        "image_size": list(size),
        "files": {
            "unet/diffusion_pytorch_model.safetensors": tensors(unet, backbone_dtype),
            "vae/diffusion_pytorch_model.safetensors": tensors(vae, backbone_dtype),
            "image_encoder/model.safetensors": tensors(clip, backbone_dtype),
            "heads.safetensors": {n: {"shape": s, "dtype": "F32"} for n, s in heads.items()},
            "empty_prompt.safetensors": {
                "prompt": {"shape": [1, prompt_tokens, unet.config.cross_attention_dim], "dtype": "F32"}},
        },
        "configs": {
            "unet/config.json": diffusers_config(dict(unet.config), "UNet2DConditionModel"),
            "vae/config.json": diffusers_config(vae_config, "AutoencoderKL"),
            "image_encoder/config.json": dict(clip.config.to_diff_dict(),
                                              architectures=["CLIPVisionModelWithProjection"]),
            "imd.yaml": cfg,
        },
        "flops_per_pair": flops(unet, vae, clip, cfg, size),
        "parameters": {f: sum(_numel(t["shape"]) for t in ts.values()) for f, ts in
                       [("unet", tensors(unet, "")), ("vae", tensors(vae, "")), ("clip", tensors(clip, "")),
                        ("heads", {n: {"shape": s} for n, s in heads.items()})]},
    }


def _numel(shape):
    out = 1
    for s in shape:
        out *= s
    return out


def main():
    out_dir = HERE / "manifest"
    out_dir.mkdir(exist_ok=True)
    for kind in ("paper", "small"):
        m = manifest(kind)
        path = out_dir / f"{kind}.json"
        path.write_text(json.dumps(m, indent=None, separators=(",", ":"), sort_keys=False) + "\n")
        gflops = {k: round(v / 1e9, 2) for k, v in m["flops_per_pair"].items()}
        print(f"{path}: {path.stat().st_size} bytes, params {m['parameters']}, GFLOP per pair {gflops}")


if __name__ == "__main__":
    main()
