"""Test of tools/train_tiny_ldm.py: a run interrupted after 3 steps and resumed from its checkpoint ends with
exactly the same weights, EMA, optimizer state and loss log as an uninterrupted 6-step run; evaluation frames
are refused as training data. Small model, 4 frames of data/camvid-train at 64x48, so it runs in seconds.

Run: /usr/bin/python3 tools/test_train_tiny_ldm.py   (exit 0 = pass; needs python3-torch and ffmpeg)
"""
import csv
import glob
import json
import os
import shutil
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_tiny_ldm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--views", "64x48", "64x48f", "--crop", "6", "4", "--channels", "16", "16", "16", "32",
         "--heads", "1", "1", "1", "2", "--attention", "0", "1", "1", "--groups", "8", "--batch", "2",
         "--log-every", "2", "--ckpt-minutes", "1000", "--time-limit", "30", "--threads", "1",
         # periodic checkpoints every 2 steps, each scored by a stand-in for `deno task probe`
         "--ckpt-every", "2", "--probe-cmd", "echo probe: mIoU 12.5 stability 80.0"]


def same_tree(a, b, where=""):
    """Exact equality of nested checkpoint contents (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            same_tree(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def log_rows(run):
    with open(os.path.join(run, "training_log.csv")) as f:
        return [r[:1] + ["-"] + r[2:] for r in csv.reader(f)][1:]  # wall-clock column blanked


def main():
    tmp = tempfile.mkdtemp(prefix="train_tiny_ldm_test_")
    try:
        frames = os.path.join(tmp, "frames")
        os.makedirs(frames)
        for p in sorted(glob.glob(os.path.join(ROOT, "data/camvid-train/images/*.jpg")))[:4]:
            shutil.copy(p, frames)
        common = SMALL + ["--data", frames, "--cache", os.path.join(tmp, "cache")]
        whole, parts = os.path.join(tmp, "whole"), os.path.join(tmp, "parts")
        train_tiny_ldm.main(common + ["--run", whole, "--steps", "6"])
        train_tiny_ldm.main(common + ["--run", parts, "--steps", "3"])
        train_tiny_ldm.main(common + ["--run", parts, "--steps", "6", "--resume"])
        a = torch.load(os.path.join(whole, "checkpoint.pt"))
        b = torch.load(os.path.join(parts, "checkpoint.pt"))
        assert a["state"]["step"] == b["state"]["step"] == 6, (a["state"]["step"], b["state"]["step"])
        for key in ("model", "ema", "opt", "gen"):
            same_tree(a[key], b[key], key)
        assert a["state"]["smooth"] == b["state"]["smooth"] and a["state"]["window"] == b["state"]["window"]
        assert log_rows(whole) == log_rows(parts), (log_rows(whole), log_rows(parts))
        rows = log_rows(whole)
        losses = [r for r in rows if r[3]]
        probes = [r for r in rows if r[5]]
        assert [r[0] for r in losses] == ["2", "4", "6"] and float(losses[0][3]) > 0.5, rows
        assert [(r[0], r[5], r[6]) for r in probes] == [(s, "12.5", "80.0") for s in ("2", "4", "6")], rows
        # the weights moved (the comparison above is not between two untouched inits)
        with open(os.path.join(whole, "config.json")) as f:
            torch.manual_seed(1234)
            init = train_tiny_ldm.Denoiser(json.load(f))
        assert any(not torch.equal(init.state_dict()[k], a["model"][k]) for k in a["model"]), "training changed nothing"
        for name in ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "prompt_embedding.safetensors"):
            assert os.path.exists(os.path.join(parts, "model", name)), name
        # a frame of an evaluation clip is refused as training data
        leak = os.path.join(tmp, "leak")
        os.makedirs(leak)
        shutil.copy(sorted(glob.glob(os.path.join(ROOT, "data/camvid/*/images/*.png")))[0], leak)
        try:
            train_tiny_ldm.main(common[:-4] + ["--data", leak, "--cache", os.path.join(tmp, "cache"),
                                              "--run", os.path.join(tmp, "leakrun"), "--steps", "1"])
            raise AssertionError("an evaluation frame was accepted")
        except SystemExit as e:
            assert "evaluation clip" in str(e), e
        print("ok: resumed run == uninterrupted run (6 steps: weights, EMA, optimizer, RNG, log); evaluation frames refused")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
