"""Sanity check of the trained tiny LDM (data/models/tiny-ldm) against a randomly initialised UNet.

1. Reconstruction: a held-out frame (camvid val clip, 320x256) -> TAESD latent z0 -> noised to DDPM
   t=119 in VE form (x = z0 + sigma_119 * eps, sigma_119 ~ 0.3866) -> the method's last three Euler
   steps t = 119, 79, 39 -> sigma 0 with CFG 5 (cond = learned empty-prompt embedding, uncond =
   zeros; eps-model input x / sqrt(sigma^2 + 1); x += (sigma_next - sigma) * eps; docs/method.md §3.2)
   -> TAESD decode -> PSNR against the input frame.
2. Eps-MSE of trained vs random UNet on held-out frames (all three evaluation clips) at t=39,119,319.

Run: /usr/bin/python3 tools/check_tiny_ldm.py [--model data/models/tiny-ldm]
Exit code 1 if denoising does not help or the trained model is not better than the random one.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latent_cache import load_image  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402
from taesd import TAESD  # noqa: E402
from unet2d import UNet2DConditionModel, load_unet  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAME = os.path.join(ROOT, "data/camvid/val_0016E5_07959/images/0016E5_07959.png")
EVAL_CLIPS = os.path.join(ROOT, "data/camvid/*/images/*.png")
W, H = 320, 256


def sgm_sigmas():
    """sigma[t] = sqrt((1 - abar) / abar), betas in float64 as sgm's LegacyDDPMDiscretization."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    abar = np.cumprod(1.0 - betas)
    return np.sqrt((1 - abar) / abar)


def psnr(a, b):
    mse = float(((a.clamp(0, 1) - b) ** 2).mean())
    return 10 * np.log10(1.0 / mse)


@torch.no_grad()
def denoise(unet, x, cond, steps, sigmas, guidance):
    """Euler (DDIM eta=0) in VE coordinates with CFG over the given DDPM timesteps, ending at sigma 0."""
    uncond = torch.zeros_like(cond)
    for i, t in enumerate(steps):
        s = float(sigmas[t])
        s_next = float(sigmas[steps[i + 1]]) if i + 1 < len(steps) else 0.0
        inp = x / (s * s + 1) ** 0.5
        eps = unet(torch.cat([inp, inp]), torch.tensor([float(t)] * 2 * len(x)),
                   torch.cat([uncond.expand(len(x), -1, -1), cond.expand(len(x), -1, -1)]))
        eps_u, eps_c = eps.chunk(2)
        x = x + (s_next - s) * (eps_u + guidance * (eps_c - eps_u))
    return x


@torch.no_grad()
def eps_mse(unet, z0, cond, t, sigmas, gen):
    """Mean eps-prediction MSE at DDPM step t (VP input = VE x / sqrt(sigma^2+1))."""
    eps = torch.randn(z0.shape, generator=gen)
    s = float(sigmas[t])
    x = (z0 + s * eps) / (s * s + 1) ** 0.5
    pred = unet(x, torch.full((len(z0),), float(t)), cond.expand(len(z0), -1, -1))
    return float(((pred - eps) ** 2).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "data/models/tiny-ldm"))
    ap.add_argument("--eval-frames", type=int, default=12, help="frames spread over the eval clips")
    args = ap.parse_args()
    torch.set_num_threads(2)
    vae = TAESD()
    trained = load_unet(os.path.join(args.model, "unet/config.json"),
                        os.path.join(args.model, "unet/diffusion_pytorch_model.safetensors"))
    with open(os.path.join(args.model, "unet/config.json")) as f:
        config = json.load(f)
    torch.manual_seed(0)
    random = UNet2DConditionModel(config).eval()
    emb, _ = read_safetensors(os.path.join(args.model, "prompt_embedding.safetensors"))
    cond = torch.from_numpy(emb["empty_prompt"])
    sigmas = sgm_sigmas()
    print(f"sigma[119] = {sigmas[119]:.5f}, sigma[79] = {sigmas[79]:.5f}, sigma[39] = {sigmas[39]:.5f}")

    img = load_image(FRAME, W, H)[None]
    z0 = vae.encode(img)
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(z0.shape, generator=gen)
    x119 = z0 + float(sigmas[119]) * noise
    results = {"taesd_roundtrip": psnr(vae.decode(z0), img), "noisy_t119_no_denoise": psnr(vae.decode(x119), img)}
    for name, unet, guidance in (("trained", trained, 5.0), ("random", random, 5.0), ("trained", trained, 1.0)):
        z = denoise(unet, x119, cond, [119, 79, 39], sigmas, guidance)
        results[f"{name}_cfg{guidance:g}"] = psnr(vae.decode(z), img)
    print(f"PSNR vs input frame {os.path.basename(FRAME)} (320x256), dB:")
    for k, v in results.items():
        print(f"  {k:24s} {v:6.2f}")

    files = sorted(glob.glob(EVAL_CLIPS))
    pick = [files[i] for i in np.linspace(0, len(files) - 1, args.eval_frames).round().astype(int)]
    zs = vae.encode(torch.stack([load_image(f, W, H) for f in pick]))
    print(f"eps-MSE on {len(pick)} held-out frames of the evaluation clips (cond context; predicting 0 gives 1.0):")
    losses = {}
    for t in (39, 119, 319):
        row = []
        for name, unet in (("trained", trained), ("random", random)):
            losses[(name, t)] = eps_mse(unet, zs, cond, t, sigmas, torch.Generator().manual_seed(100 + t))
            row.append(f"{name} {losses[(name, t)]:.4f}")
        print(f"  t={t:3d}: " + "  ".join(row))
    # pass = denoising helps (beats the un-denoised noisy latent and the random UNet) and the trained
    # eps prediction beats both predicting zero (MSE 1) and the random UNet at every checked t
    ok = (results["trained_cfg5"] > results["noisy_t119_no_denoise"]
          and results["trained_cfg5"] > results["random_cfg5"] + 3.0
          and all(losses[("trained", t)] < min(1.0, losses[("random", t)]) for t in (39, 119, 319)))
    print(f"tiny-ldm sanity check: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
