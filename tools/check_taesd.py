"""Check tools/taesd.py against tests/fixtures/taesd/reference.safetensors (atol 1e-4).

Run: /usr/bin/python3 tools/check_taesd.py   (exit code 1 on failure)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402
from taesd import TAESD, TAESD_DIR  # noqa: E402

ATOL = 1e-4


def main():
    torch.set_num_threads(2)
    ref, _ = read_safetensors(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests/fixtures/taesd/reference.safetensors"))
    ref = {k: torch.from_numpy(v) for k, v in ref.items()}
    model = TAESD()
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
