"""Check tools/taesd.py against tests/fixtures/taesd/reference.safetensors (atol 1e-4).

Run: /usr/bin/python3 tools/check_taesd.py [--reference FILE] [--weights DIR]   (exit code 1 on failure)
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402
from taesd import ROOT, TAESD, TAESD_DIR  # noqa: E402

ATOL = 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", default=os.path.join(ROOT, "tests", "fixtures", "taesd", "reference.safetensors"))
    ap.add_argument("--weights", default=TAESD_DIR, help="folder with encoder/decoder.safetensors")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ref, _ = read_safetensors(args.reference)
    ref = {k: torch.from_numpy(v) for k, v in ref.items()}
    model = TAESD(os.path.join(args.weights, "encoder.safetensors"), os.path.join(args.weights, "decoder.safetensors"))
    results = []

    def compare(name, got):
        diff = (got - ref[name]).abs().max().item()
        results.append((name, diff, diff <= ATOL))

    with torch.no_grad():
        for prefix, acts in (("synthetic", True), ("photo", False)):
            img = ref[f"{prefix}_image"]
            x = img
            for i, layer in enumerate(model.encoder):
                x = layer(x)
                if acts and f"{prefix}_encoder_act.{i}" in ref:
                    compare(f"{prefix}_encoder_act.{i}", x)
            compare(f"{prefix}_latent", x)
            y = ref[f"{prefix}_latent"]  # decoder input = stored latent
            for i, layer in enumerate(model.decoder):
                y = layer(y)
                if acts and f"{prefix}_decoder_act.{i}" in ref:
                    compare(f"{prefix}_decoder_act.{i}", y)
            compare(f"{prefix}_decoded", y)
    ok = all(r[2] for r in results)
    for name, diff, good in results:
        print(f"{'ok  ' if good else 'FAIL'} {name:32s} max|diff| {diff:.3e}")
    print(f"TAESD check: {'PASS' if ok else 'FAIL'} ({sum(r[2] for r in results)}/{len(results)} within {ATOL})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
