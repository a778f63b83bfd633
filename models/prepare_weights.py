#!/usr/bin/env python3
"""Download the public weights imd runs on into its weights folder (needs internet).

    python models/prepare_weights.py models/sd21            # fp32 files
    python models/prepare_weights.py models/sd21 --fp16     # half the disk: fp16 variants

Writes (diffusers / Hugging Face layout; imd reads these files as they are):

    DIR/unet/config.json, diffusion_pytorch_model[.fp16].safetensors      stabilityai/stable-diffusion-2-1
    DIR/vae/config.json, diffusion_pytorch_model[.fp16].safetensors       stabilityai/stable-diffusion-2-1
    DIR/image_encoder/config.json, model[.fp16].safetensors                laion/CLIP-ViT-H-14-laion2B-s32B-b79K
                                     (vision tower + visual_projection only, CLIPVisionModelWithProjection)
    DIR/empty_prompt.safetensors   tensor `prompt` [1, 77, 1024]: SD2.1's text encoder on ""

Only these files are downloaded (the SD2.1 text encoder and tokenizer go to the Hugging Face
cache, used once for the empty prompt; decoders and the CLIP text tower are never fetched or
kept). Needs: torch, safetensors, huggingface_hub, transformers (scripts/requirements.txt).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file, save_file

SD_REPO = "stabilityai/stable-diffusion-2-1"
CLIP_REPO = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


def fetch(repo: str, filename: str, revision: str | None, token: str | None) -> Path:
    return Path(hf_hub_download(repo, filename, revision=revision, token=token))


def copy_component(out: Path, repo: str, sub: str, fp16: bool, revision: str | None, token: str | None) -> None:
    """`sub/config.json` and the diffusers weights file, copied from the Hub cache."""
    weights = "diffusion_pytorch_model.fp16.safetensors" if fp16 else "diffusion_pytorch_model.safetensors"
    (out / sub).mkdir(parents=True, exist_ok=True)
    for name in ("config.json", weights):
        src = fetch(repo, f"{sub}/{name}", revision, token)
        shutil.copyfile(src, out / sub / name)
        print(f"  {sub}/{name}")


@torch.no_grad()
def empty_prompt(out: Path, repo: str, revision: str | None, token: str | None) -> None:
    """The prompt embedding of "" exactly as the SD2.1 pipeline computes it: tokens padded to
    77, the text encoder's last hidden state (after its final layer norm), no attention mask."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(repo, subfolder="tokenizer", revision=revision, token=token)
    encoder = CLIPTextModel.from_pretrained(
        repo, subfolder="text_encoder", revision=revision, token=token, use_safetensors=True, torch_dtype=torch.float32
    ).eval()
    ids = tokenizer(
        [""], padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
    ).input_ids
    prompt = encoder(ids)[0].float().contiguous()
    if tuple(prompt.shape) != (1, 77, 1024):
        sys.exit(f"unexpected empty-prompt shape {tuple(prompt.shape)} (want [1, 77, 1024])")
    save_file({"prompt": prompt}, str(out / "empty_prompt.safetensors"))
    print("  empty_prompt.safetensors", tuple(prompt.shape))


@torch.no_grad()
def clip_image_encoder(out: Path, repo: str, fp16: bool, revision: str | None, token: str | None) -> None:
    """The vision tower and `visual_projection` of the laion CLIPModel checkpoint, saved as a
    `CLIPVisionModelWithProjection` (the layout of SD2.1-unCLIP / IP-Adapter image encoders)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    full = json.loads(fetch(repo, "config.json", revision, token).read_text())
    vision = dict(full["vision_config"])
    # The projection width lives at the top level of a CLIPConfig (1024 for ViT-H/14).
    vision["projection_dim"] = full.get("projection_dim", vision.get("projection_dim", 1024))
    for key in ("model_type", "architectures", "transformers_version"):
        vision.pop(key, None)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig.from_dict(vision)).eval()

    state = load_file(str(fetch(repo, "model.safetensors", revision, token)))
    wanted = {k: v for k, v in state.items() if k.startswith("vision_model.") or k == "visual_projection.weight"}
    wanted = {k: v for k, v in wanted.items() if not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(wanted, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        sys.exit(f"CLIP checkpoint does not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if fp16:
        model = model.half()
        model.save_pretrained(out / "image_encoder", variant="fp16")
    else:
        model.save_pretrained(out / "image_encoder")
    print(f"  image_encoder/ (hidden {vision['hidden_size']}, projection {vision['projection_dim']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="weights folder to create")
    ap.add_argument("--fp16", action="store_true", help="store fp16 files (diffusers' `.fp16` variants)")
    ap.add_argument("--sd-repo", default=SD_REPO)
    ap.add_argument("--clip-repo", default=CLIP_REPO)
    ap.add_argument("--revision", default=None, help="revision of the SD repo")
    ap.add_argument("--token", default=None, help="Hugging Face token, if the repos need one")
    ap.add_argument("--no-clip", action="store_true", help="skip the CLIP image encoder (zero-shot / `imd features` only)")
    args = ap.parse_args()

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"writing {out}")
    copy_component(out, args.sd_repo, "unet", args.fp16, args.revision, args.token)
    copy_component(out, args.sd_repo, "vae", args.fp16, args.revision, args.token)
    empty_prompt(out, args.sd_repo, args.revision, args.token)
    if not args.no_clip:
        clip_image_encoder(out, args.clip_repo, args.fp16, None, args.token)
    print("done; check with: imd features --model", out, "--image some_640x480.png --out f.safetensors")


if __name__ == "__main__":
    main()
