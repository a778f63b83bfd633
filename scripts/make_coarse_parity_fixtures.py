#!/usr/bin/env python3
"""Parity fixture for the coarse transformer's aggregated attention (`coarse.attention:
aggregated`, `src/model/coarse/aggregated.rs`).

A PyTorch reference written from Efficient LoFTR's description of its aggregated attention
layer (EL, CVPR 2024, Sec. 3.2 and its released `AG_RoPE_EncoderLayer`, without RoPE) plus the
two conventions imd documents for it:
  - queries: the [B, d, h, w] map (padded cells zeroed), zero-padded bottom/right to a multiple
    of a, a depthwise a×a convolution with stride a and no bias, then norm1;
  - keys/values: the source map (padded cells −inf), −inf-padded to a multiple of a, max-pooled
    by a, pooled cells without any valid cell masked out (and set to 0), then norm1;
  - multi-head softmax attention (written out here, not SDPA), merge, bilinear upsampling by a
    (align_corners=False), crop to h×w;
  - out = x + norm2(mlp([x, m])), mlp = Linear(2d, 2d) · LeakyReLU(0.01) · Linear(2d, d).
The transformer runs [self, cross] layers; a cross layer updates both images from the layer's
input features (imd's symmetric form).

Random float32 weights and inputs (seed 0); the reference runs in float64. Written to
tests/fixtures/parity/coarse_aggregated/reference.safetensors: the weights under imd's names
(`layers.{i}.aggregate.weight`, `layers.{i}.q_proj.weight`, …), and per case `{case}.f0`,
`{case}.f1` ([B, L, d] float32), `{case}.grid` (int64 [h0, w0, h1, w1]), optional
`{case}.mask0` / `{case}.mask1` (uint8 [B, L]), and `{case}.out0` / `{case}.out1` (float64).

    .venv/bin/python scripts/make_coarse_parity_fixtures.py
"""

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "parity" / "coarse_aggregated"

D_MODEL, NHEAD, AGG = 16, 4, 4
LAYERS = ["self", "cross"]


class AggregatedLayer(nn.Module):
    def __init__(self, d, nhead, a):
        super().__init__()
        self.d, self.nhead, self.a = d, nhead, a
        self.aggregate = nn.Conv2d(d, d, a, stride=a, groups=d, bias=False)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.merge = nn.Linear(d, d, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * d, 2 * d, bias=False),
            nn.LeakyReLU(0.01),
            nn.Linear(2 * d, d, bias=False),
        )
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x, gx, xmask, src, gs, smask):
        b, _, d = x.shape
        a = self.a
        (hx, wx), (hs, ws) = gx, gs
        # Queries.
        qm = x.transpose(1, 2).reshape(b, d, hx, wx)
        if xmask is not None:
            qm = qm * xmask.view(b, 1, hx, wx).to(qm.dtype)
        qm = F.pad(qm, (0, (-wx) % a, 0, (-hx) % a))
        qm = self.aggregate(qm)
        hq, wq = qm.shape[-2:]
        query = self.norm1(qm.flatten(2).transpose(1, 2))
        # Keys / values.
        sm = src.transpose(1, 2).reshape(b, d, hs, ws)
        valid = None
        if smask is not None:
            sm = sm.masked_fill(~smask.view(b, 1, hs, ws), float("-inf"))
        sm = F.pad(sm, (0, (-ws) % a, 0, (-hs) % a), value=float("-inf"))
        kv = F.max_pool2d(sm, a, a)
        if smask is not None:
            vm = F.pad(smask.view(b, 1, hs, ws).to(sm.dtype), (0, (-ws) % a, 0, (-hs) % a))
            valid = F.max_pool2d(vm, a, a) > 0.5
            kv = kv.masked_fill(~valid, 0.0)
            valid = valid.flatten(1)
        kv = self.norm1(kv.flatten(2).transpose(1, 2))
        # Attention.
        lq, s, dh = query.shape[1], kv.shape[1], d // self.nhead
        q = self.q_proj(query).view(b, lq, self.nhead, dh).transpose(1, 2)
        k = self.k_proj(kv).view(b, s, self.nhead, dh).transpose(1, 2)
        v = self.v_proj(kv).view(b, s, self.nhead, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        if valid is not None:
            scores = scores.masked_fill(~valid.view(b, 1, 1, s), float("-inf"))
        m = torch.softmax(scores, -1) @ v
        m = self.merge(m.transpose(1, 2).reshape(b, lq, d))
        m = m.transpose(1, 2).reshape(b, d, hq, wq)
        m = F.interpolate(m, scale_factor=a, mode="bilinear", align_corners=False)
        m = m[:, :, :hx, :wx].flatten(2).transpose(1, 2)
        return x + self.norm2(self.mlp(torch.cat([x, m], 2)))


def transformer(layers, f0, f1, g0, g1, m0, m1):
    for name, layer in zip(LAYERS, layers):
        if name == "self":
            f0, f1 = layer(f0, g0, m0, f0, g0, m0), layer(f1, g1, m1, f1, g1, m1)
        else:
            f0, f1 = layer(f0, g0, m0, f1, g1, m1), layer(f1, g1, m1, f0, g0, m0)
    return f0, f1


def padding_mask(b, grid, valid):
    (h, w), (vh, vw) = grid, valid
    m = torch.zeros(b, h, w, dtype=torch.bool)
    m[:, :vh, :vw] = True
    return m.view(b, h * w)


def main():
    torch.manual_seed(0)
    layers = [AggregatedLayer(D_MODEL, NHEAD, AGG) for _ in LAYERS]
    tensors = {}
    for i, layer in enumerate(layers):
        with torch.no_grad():
            for p in layer.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
            # Non-trivial norms and a lively depthwise kernel.
            for norm in (layer.norm1, layer.norm2):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.2, 0.2)
            layer.aggregate.weight.normal_(0.0, 0.3)
        for name, p in layer.state_dict().items():
            tensors[f"layers.{i}.{name}"] = p.detach().float().contiguous()

    cases = {
        # Both images 10×13 (not multiples of 4), batch 2, no padding: the batched path.
        "odd": (2, (10, 13), (10, 13), None, None),
        # One pair padded to 12×16 with valid 9×14 and 12×11 cells.
        "masked": (1, (12, 16), (12, 16), (9, 14), (12, 11)),
        # Different grids (8×12 and 6×10): the per-image path.
        "unequal": (1, (8, 12), (6, 10), None, None),
    }
    for case, (b, g0, g1, v0, v1) in cases.items():
        f0 = torch.randn(b, g0[0] * g0[1], D_MODEL)
        f1 = torch.randn(b, g1[0] * g1[1], D_MODEL)
        m0 = padding_mask(b, g0, v0) if v0 else None
        m1 = padding_mask(b, g1, v1) if v1 else None
        ref = [l.double() for l in layers]
        with torch.no_grad():
            o0, o1 = transformer(ref, f0.double(), f1.double(), g0, g1, m0, m1)
        tensors[f"{case}.f0"] = f0
        tensors[f"{case}.f1"] = f1
        tensors[f"{case}.grid"] = torch.tensor([*g0, *g1], dtype=torch.int64)
        if m0 is not None:
            tensors[f"{case}.mask0"] = m0.to(torch.uint8)
            tensors[f"{case}.mask1"] = m1.to(torch.uint8)
        tensors[f"{case}.out0"] = o0.contiguous()
        tensors[f"{case}.out1"] = o1.contiguous()
        for layer in layers:
            layer.float()
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "reference.safetensors"))
    print(f"wrote {OUT / 'reference.safetensors'} ({len(tensors)} tensors)")


if __name__ == "__main__":
    main()
