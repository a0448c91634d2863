"""Export the embedded model's architecture with RANDOM weights (torch default init, seeded), as a diffusers
folder next to the trained one — the baseline of issue 6's quality bar ("trained weights beat the same
architecture with random weights").

    /usr/bin/python3 tools/export_random_ldm.py --out /tmp/tiny-ldm-random [--seed 1]
    deno task ablate configs/table2.yaml --set backbone.weights=/tmp/tiny-ldm-random --cache /tmp/rc
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from tiny_ldm_export import export_model  # noqa: E402
from unet2d import UNet2DConditionModel  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, "data/models/tiny-ldm"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with open(os.path.join(args.model, "unet", "config.json")) as f:
        config = json.load(f)
    torch.manual_seed(args.seed)
    unet = UNet2DConditionModel(config)
    state = {k: v.detach().numpy() for k, v in unet.state_dict().items()}
    emb = np.random.default_rng(args.seed).standard_normal((77, config["cross_attention_dim"])).astype(np.float32)
    export_model(args.out, config, state, emb, {"what": "random init (baseline)", "seed": args.seed})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
