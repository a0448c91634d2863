"""Count multiply-accumulates of one UNet forward pass (batch 1) and parameters.

Counted: Conv2d and Linear (weights x outputs) and the two attention matmuls (q k^T, probs v);
norms, activations, softmax and additions are not counted (they are O(activations)).

Run: /usr/bin/python3 tools/count_macs.py [unet/config.json] [--latent W H]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet2d import UNet2DConditionModel  # noqa: E402
from unet_blocks import Attention  # noqa: E402


def count_macs(model, latent_w, latent_h, context_len=77):
    """Returns (total MACs, dict category -> MACs) for one sample at latent W x H."""
    parts = {"conv": 0, "linear": 0, "attention_matmul": 0}

    def conv_hook(m, _inp, out):
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        parts["conv"] += out.numel() * k

    def linear_hook(m, _inp, out):
        parts["linear"] += out.numel() * m.in_features

    def attn_hook(m, inp, _out):
        hs = inp[0]
        ctx = inp[1] if len(inp) > 1 and inp[1] is not None else hs
        inner = m.to_q.out_features
        parts["attention_matmul"] += 2 * hs.shape[0] * hs.shape[1] * ctx.shape[1] * inner

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, Attention):
            handles.append(mod.register_forward_hook(attn_hook))
    xdim = model.config["cross_attention_dim"]
    with torch.no_grad():
        model(torch.zeros(1, model.config["in_channels"], latent_h, latent_w), torch.tensor([100.0]),
              torch.zeros(1, context_len, xdim))
    for h in handles:
        h.remove()
    return sum(parts.values()), parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "data/models/tiny-ldm/unet/config.json"))
    ap.add_argument("--latent", nargs=2, type=int, default=[40, 32], metavar=("W", "H"))
    args = ap.parse_args()
    with open(args.config) as f:
        model = UNet2DConditionModel(json.load(f))
    total, parts = count_macs(model, *args.latent)
    params = sum(p.numel() for p in model.parameters())
    print(f"params {params:,} ({params * 4 / 1e6:.2f} MB fp32)")
    print(f"MACs at latent {args.latent[0]}x{args.latent[1]}: {total / 1e9:.4f} G  " +
          "  ".join(f"{k} {v / 1e9:.4f}G" for k, v in parts.items()))


if __name__ == "__main__":
    main()
