"""Train the embedded tiny latent diffusion model (SD 2.1 block structure) on street frames, resumably.

DDPM eps-prediction with SD's scaled-linear betas, in TAESD latent space (UNet-scaled latents),
conditioned on a learned "empty prompt" embedding E [77, D] with condition dropout to the all-zeros
context (so CFG cond=E / uncond=zeros is meaningful). Half of each batch draws t < 300 (the method
only uses t = 39..119). AdamW, EMA of the weights; the EMA weights are exported.

Runs for many hours across separate working periods: a checkpoint (weights, EMA, optimizer, RNG states,
step, loss smoothing) is written every --ckpt-minutes and when --time-limit is reached, and --resume
continues from it exactly (same weights as an uninterrupted run). Every checkpoint also exports the EMA
model in diffusers layout to <run>/model, and --probe-cmd (e.g. `deno task probe`) can score it.

    /usr/bin/python3 tools/train_tiny_ldm.py --run tools/.cache/run --time-limit 60
    /usr/bin/python3 tools/train_tiny_ldm.py --run tools/.cache/run --resume --time-limit 60   # continue
"""
import argparse
import calendar
import copy
import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from latent_cache import DEFAULT_DATA, DEFAULT_EXCLUDE, DEFAULT_VIEWS, build_cache  # noqa: E402
from tiny_ldm_export import PROMPT_TOKENS, export_model, unet_config  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402
from unet2d import UNet2DConditionModel  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG_FIELDS = ["step", "seconds", "samples", "loss", "ema_loss", "probe_miou", "probe_stability"]


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
    """Random w x h latent crops from the cached views (view and frame chosen uniformly per sample)."""

    def __init__(self, arrays):
        self.arrays = [torch.from_numpy(a.astype(np.float32)) for a in arrays]

    def __call__(self, gen, batch, w, h):
        out = torch.empty(batch, 4, h, w)
        for i in range(batch):
            arr = self.arrays[int(torch.randint(0, len(self.arrays), (1,), generator=gen))]
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
    """Linear warmup, then constant (SD-style); the exported EMA does the averaging."""
    return base * min(1.0, (step + 1) / warmup)


@torch.no_grad()
def ema_update(ema, model, decay):
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)


def model_config(args):
    """UNet config from the architecture flags: widths, heads per level, which levels have attention."""
    config = unet_config(args.channels, args.heads, args.groups)
    n = len(args.channels)
    attn = [bool(a) for a in args.attention] + [False]  # the last (lowest-resolution) level never has attention
    if len(args.channels) != 4 or len(args.heads) != 4 or len(args.attention) != 3:
        raise SystemExit("error: --channels and --heads take 4 values, --attention 3 (levels 0..2)")
    config["down_block_types"] = ["CrossAttnDownBlock2D" if attn[i] else "DownBlock2D" for i in range(n)]
    config["up_block_types"] = ["CrossAttnUpBlock2D" if attn[n - 1 - j] else "UpBlock2D" for j in range(n)]
    return config


def load_init(model_dir):
    """(config, unet state dict, prompt embedding [77, D]) of an exported diffusers folder (to fine-tune it)."""
    with open(os.path.join(model_dir, "unet", "config.json")) as f:
        config = json.load(f)
    tensors, _meta = read_safetensors(os.path.join(model_dir, "unet", "diffusion_pytorch_model.safetensors"))
    prompt, _meta = read_safetensors(os.path.join(model_dir, "prompt_embedding.safetensors"))
    state = {k: torch.from_numpy(v.astype("float32")) for k, v in tensors.items()}
    return config, state, torch.from_numpy(prompt["empty_prompt"].astype("float32")).reshape(PROMPT_TOKENS, -1)


def training_step(model, ema, opt, sampler, gen, alphas_cumprod, args, step):
    """One optimizer step; returns the batch loss. All randomness comes from gen."""
    x0 = sampler(gen, args.batch, *args.crop)
    t = sample_timesteps(gen, args.batch)
    noise = torch.randn(x0.shape, generator=gen)
    keep = torch.rand(args.batch, generator=gen) >= args.cond_drop
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
    return loss.item()


def save_checkpoint(path, model, ema, opt, gen, state):
    """Everything a resumed run needs to continue bit for bit; written atomically."""
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "state": state}, tmp)
    os.replace(tmp, path)


def export(args, ema, config, state):
    weights = {k: v.detach().numpy().copy() for k, v in ema.unet.state_dict().items()}
    meta = {"training_steps": state["step"], "training_seconds": round(state["seconds"]),
            "training_samples": state["samples"], "seed": args.seed, "ema_decay": args.ema,
            "final_smoothed_loss": round(state["smooth"] or 0.0, 5),
            "data": ", ".join(os.path.relpath(d, ROOT) for d in args.data) + " (TAESD latents, views "
                    + " ".join(args.views) + f", jitter {args.jitter})"}
    out = os.path.join(args.run, "model")
    export_model(out, config, weights, ema.prompt.detach().numpy(), meta, fp16=args.fp16)
    return out


def run_probe(cmd, model_dir):
    """Score an exported model with the probe command (`deno task probe`): (mIoU, stability) or None."""
    try:
        res = subprocess.run(shlex.split(cmd) + ["--weights", model_dir], cwd=ROOT, capture_output=True, text=True,
                             timeout=3600)
        m = re.search(r"probe: mIoU ([\d.]+) stability ([\d.]+)", res.stdout)
        if m:
            return float(m.group(1)), float(m.group(2))
        print(f"probe gave no score (exit {res.returncode}): {res.stderr.strip()[-300:]}", flush=True)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"probe failed: {e}", flush=True)
    return None


def wall_clock_deadline(hhmm, now):
    """Epoch seconds of the next HH:MM UTC after the process started (so a slow cache build eats into the session)."""
    try:
        hh, mm = (int(v) for v in hhmm.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
    except ValueError:
        raise SystemExit(f"error: --stop-at {hhmm!r}: expected HH:MM (UTC)")
    day = time.gmtime(now)
    at = calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, hh, mm, 0, 0, 0, 0))
    return at if at > now else at + 86400


def truncate_log(path, step):
    """Drop log rows written after the checkpoint (a killed session logs steps the resumed run repeats)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(keep)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default=os.path.join(ROOT, "tools/.cache/run"),
                    help="run folder: checkpoint.pt, training_log.csv, config.json, model/ (exported EMA)")
    ap.add_argument("--resume", action="store_true", help="continue from <run>/checkpoint.pt")
    ap.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="folders of training frames")
    ap.add_argument("--exclude", nargs="*", default=DEFAULT_EXCLUDE, help="evaluation clips: never trained on")
    ap.add_argument("--views", nargs="+", default=DEFAULT_VIEWS, help="cached views WxH[f] (f = flipped)")
    ap.add_argument("--jitter", type=float, default=0.1, help="colour jitter amount per view")
    ap.add_argument("--cache", default=os.path.join(ROOT, "tools/.cache"))
    ap.add_argument("--init", default=None, help="start from this exported model folder (fine-tuning; "
                    "its architecture replaces --channels/--heads/--attention)")
    ap.add_argument("--channels", type=int, nargs=4, default=[32, 64, 64, 128])
    ap.add_argument("--heads", type=int, nargs=4, default=[1, 2, 2, 4])
    ap.add_argument("--attention", type=int, nargs=3, default=[0, 1, 1], help="attention at levels 0, 1, 2")
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--crop", type=int, nargs=2, default=[40, 32], metavar=("W", "H"), help="latent crop")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10 ** 9, help="stop after this many steps in total")
    ap.add_argument("--time-limit", type=float, default=60.0, help="minutes of this session; then save and stop")
    ap.add_argument("--stop-at", default=None, metavar="HH:MM",
                    help="also stop at this UTC wall-clock time (the next one after the start)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cond-drop", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--ckpt-every", type=int, default=0, help="also checkpoint every N steps (0 = off)")
    ap.add_argument("--probe-cmd", default="", help="e.g. 'deno task probe'; run on each checkpoint's export")
    ap.add_argument("--fp16", action="store_true", help="store exported UNet weights as F16")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    log_path = os.path.join(args.run, "training_log.csv")
    cfg_path = os.path.join(args.run, "config.json")

    stop_at = wall_clock_deadline(args.stop_at, time.time()) if args.stop_at else None
    caches = build_cache(args.data, args.views, args.exclude, args.seed, args.jitter, threads=args.threads,
                         cache_dir=args.cache)
    sampler = LatentSampler([np.load(p) for p in caches])
    alphas_cumprod = ddpm_alphas_cumprod()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    init = None
    if args.resume:
        with open(cfg_path) as f:
            config = json.load(f)
    elif args.init:
        config, *init = load_init(args.init)
    else:
        config = model_config(args)
    model = Denoiser(config)
    if init:
        model.unet.load_state_dict(init[0])
        with torch.no_grad():
            model.prompt.copy_(init[1])
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), weight_decay=0.01)
    state = {"step": 0, "seconds": 0.0, "samples": 0, "smooth": None, "window": []}
    if args.resume:
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        state = ck["state"]
        truncate_log(log_path, state["step"])
        print(f"resumed at step {state['step']} ({state['seconds']:.0f}s trained)", flush=True)
    else:
        with open(cfg_path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(LOG_FIELDS)
    n_params = sum(p.numel() for p in model.unet.parameters())
    print(f"unet params {n_params:,}; views {len(caches)}; frames {sampler.arrays[0].shape[0]}", flush=True)

    def checkpoint(probe):
        save_checkpoint(ckpt_path, model, ema, opt, gen, state)
        out = export(args, ema, config, state)
        score = run_probe(args.probe_cmd, out) if probe and args.probe_cmd else None
        if score is not None:
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([state["step"], round(state["seconds"], 1), state["samples"], "", "", *score])
            print(f"probe at step {state['step']}: {score}", flush=True)

    t0, base_seconds = time.time(), state["seconds"]
    last_ckpt = t0
    deadline = min(t0 + args.time_limit * 60, stop_at) if stop_at else t0 + args.time_limit * 60
    while state["step"] < args.steps and time.time() < deadline:
        value = training_step(model, ema, opt, sampler, gen, alphas_cumprod, args, state["step"])
        state["step"] += 1
        state["samples"] += args.batch
        state["seconds"] = base_seconds + time.time() - t0
        state["window"].append(value)
        state["smooth"] = value if state["smooth"] is None else 0.99 * state["smooth"] + 0.01 * value
        if state["step"] % args.log_every == 0:
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([state["step"], round(state["seconds"], 1), state["samples"],
                                        round(float(np.mean(state["window"])), 5), round(state["smooth"], 5), "", ""])
            print(f"step {state['step']} {state['seconds']:.0f}s loss {np.mean(state['window']):.4f} "
                  f"smooth {state['smooth']:.4f}", flush=True)
            state["window"] = []
        if (args.ckpt_every and state["step"] % args.ckpt_every == 0) or \
                time.time() - last_ckpt > args.ckpt_minutes * 60:
            checkpoint(probe=True)
            last_ckpt = time.time()
    checkpoint(probe=False)
    print(f"stopped at step {state['step']} ({state['seconds']:.0f}s trained in total); "
          f"checkpoint {ckpt_path}, model {os.path.join(args.run, 'model')}", flush=True)


if __name__ == "__main__":
    main()
