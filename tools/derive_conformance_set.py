"""Derive a second SD conformance set with other seeds and shapes, to show the conformance tests read
everything set-specific from the files.

Regenerated (with this repo's torch UNet, tools/unet2d.py, which reproduces diffusers 0.30.3 on the
shipped set: tools/check_unet.py): `unet/config.json` + `unet/unet.safetensors` (other widths, head
counts and seed), and `unet_io`, `unet_attention`, `unet_modulation` and `unet_injection` with the same
tensor names and conventions as tests/fixtures/conformance/README.md, on a non-square latent, with another
λ and the modulation at another up-path position. The VAE, text encoder, schedule and trajectory files
have no torch reference in this repo: they are linked from the base set (the UNet keeps the base
cross_attention_dim so the text encoder still feeds it). `conformance-svd/`, `taesd/` and `datasets/`
are linked too, so OUT can stand in for tests/fixtures:

  /usr/bin/python3 tools/derive_conformance_set.py --out /tmp/set2
  VIDSEG_FIXTURES=/tmp/set2 deno test -A tests/backbone/unet_test.ts ...

Run: /usr/bin/python3 tools/derive_conformance_set.py --out DIR [--seed N] [--latent W H]
     [--widths 16,24,24,32] [--heads 1,3,2,2] [--groups 8] [--lam 3.0] [--mod-position 8]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import write_safetensors  # noqa: E402
from unet2d import UNet2DConditionModel  # noqa: E402
from unet_blocks import timestep_embedding  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "tests", "fixtures")
LINKED = ["vae", "text_encoder", "vae_vectors.safetensors", "text_encoder_vectors.safetensors",
          "scheduler.safetensors", "trajectory.safetensors"]


def perturb(model, gen):
    """The base set's recipe: norms 1+0.1·N / 0.1·N, attention q/k weights ×2.5 (non-uniform softmaxes)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.GroupNorm, nn.LayerNorm)):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
        for name, p in model.named_parameters():
            if name.endswith(("to_q.weight", "to_k.weight")):
                p.mul_(2.5)
            p[p == 0] = 1e-3  # no exactly-zero parameter (a dropped tensor must show)


def transformers(model):
    """[(up-path position, transformer block)] of every CrossAttnUpBlock2D layer."""
    out = []
    for j, blk in enumerate(model.up_blocks):
        for k in range(len(blk.resnets)):
            if hasattr(blk, "attentions"):
                out.append((j * len(blk.resnets) + k, blk.attentions[k].transformer_blocks[0]))
    return out


def run(model, sample, timestep, context, hooks):
    """Forward pass with temporary forward hooks [(module, fn(module, inputs, output))], run in list order:
    the modulation hook goes first so the taps see the modulated attn2 output, as in the base set."""
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    try:
        with torch.no_grad():
            return model(sample, timestep, context)
    finally:
        for h in handles:
            h.remove()


def keep(store, name, pick=lambda o: o):
    def hook(_m, _i, out):
        store[name] = pick(out).detach().clone()
    return hook


def io_hooks(model, got, attn2_at):
    """unet_io taps: debug.*, upsamplers, every position's resnet/out, attn2_out at `attn2_at`."""
    hooks = [(model.conv_in, keep(got, "debug.conv_in")), (model.time_embedding, keep(got, "debug.time_embedding")),
             (model.mid_block, keep(got, "debug.mid_block.out"))]
    for i, blk in enumerate(model.down_blocks):
        hooks.append((blk, keep(got, f"debug.down_block{i}.out", lambda o: o[0])))
    for j, blk in enumerate(model.up_blocks):
        if blk.upsamplers is not None:
            hooks.append((blk.upsamplers[0], keep(got, f"up.block{j}.upsampler")))
        for k in range(len(blk.resnets)):
            pos = j * len(blk.resnets) + k
            hooks.append((blk.resnets[k], keep(got, f"up.pos{pos:02d}.resnet")))
            hooks.append((blk.attentions[k] if hasattr(blk, "attentions") else blk.resnets[k],
                          keep(got, f"up.pos{pos:02d}.out")))
    for pos, tb in transformers(model):
        if pos == attn2_at:
            hooks.append((tb.attn2, keep(got, f"up.pos{pos:02d}.attn2_out")))
    return hooks


def out_hooks(model, got, attn2_at):
    """Block outputs of every transformer position and attn2_out at the modulated one (injection files)."""
    hooks = []
    for pos, tb in transformers(model):
        j, k = divmod(pos, len(model.up_blocks[0].resnets))
        hooks.append((model.up_blocks[j].attentions[k], keep(got, f"up.pos{pos:02d}.out")))
        if pos == attn2_at:
            hooks.append((tb.attn2, keep(got, f"up.pos{pos:02d}.attn2_out")))
    return hooks


def modulation_hook(model, pos, lam, mask_tokens):
    """attn2 output + λ·mask (tokens row·w + col), broadcast over batch and channels: before the residual add."""
    tb = dict(transformers(model))[pos]
    return [(tb.attn2, lambda _m, _i, out: out + lam * mask_tokens[None, :, None])]


def injection_hooks(model, taps):
    """Run B's attn1/attn2 q and k Linear outputs replaced by run A's stored ones at every transformer position."""
    hooks = []
    for pos, tb in transformers(model):
        p = f"up.pos{pos:02d}"
        for lin, name in ((tb.attn1.to_q, "attn1_q"), (tb.attn1.to_k, "attn1_k"),
                          (tb.attn2.to_q, "attn2_q"), (tb.attn2.to_k, "attn2_k")):
            hooks.append((lin, lambda _m, _i, _o, t=taps[f"{p}.{name}"]: t))
    return hooks


def prefixed(prefix, d):
    return {f"{prefix}{k}": v for k, v in d.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=BASE, help="fixtures folder whose other files are linked")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--latent", type=int, nargs=2, default=[24, 16], metavar=("W", "H"))
    ap.add_argument("--widths", default="16,24,24,32")
    ap.add_argument("--heads", default="1,3,2,2")
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--lam", type=float, default=3.0)
    ap.add_argument("--mod-position", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    base = os.path.join(a.base, "conformance")
    out = os.path.join(a.out, "conformance")
    os.makedirs(os.path.join(out, "unet"), exist_ok=True)

    with open(os.path.join(base, "unet", "config.json")) as f:
        config = json.load(f)
    config.update(block_out_channels=[int(x) for x in a.widths.split(",")],
                  attention_head_dim=[int(x) for x in a.heads.split(",")],
                  norm_num_groups=a.groups, sample_size=max(a.latent))
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    model = UNet2DConditionModel(config).eval()
    perturb(model, gen)
    meta = {"format": "pt", "set": f"derived seed {a.seed}", "generator": "tools/derive_conformance_set.py (tools/unet2d.py)"}
    with open(os.path.join(out, "unet", "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    write_safetensors(os.path.join(out, "unet", "unet.safetensors"),
                      {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, meta)

    W, H = a.latent
    B, D = 2, config["cross_attention_dim"]
    inputs = {
        "input.sample": torch.randn(B, config["in_channels"], H, W, generator=gen),
        "input.timestep": torch.tensor([float(torch.randint(1, 1000, (1,), generator=gen)) for _ in range(B)]),
        "input.encoder_hidden_states": torch.randn(B, 77, D, generator=gen),
    }
    x, t, ctx = inputs["input.sample"], inputs["input.timestep"], inputs["input.encoder_hidden_states"]
    positions = [p for p, _ in transformers(model)]
    P = a.mod_position
    if P not in positions:
        raise SystemExit(f"error: --mod-position {P} has no transformer (positions {positions})")

    # unet_io and unet_attention: one pass, hooks on the blocks and on the q/k Linears and attn2.
    io, att = {}, {}
    hooks = io_hooks(model, io, P)
    for pos, tb in transformers(model):
        p = f"up.pos{pos:02d}"
        hooks += [(tb.attn1.to_q, keep(att, f"{p}.attn1_q")), (tb.attn1.to_k, keep(att, f"{p}.attn1_k")),
                  (tb.attn2.to_q, keep(att, f"{p}.attn2_q")), (tb.attn2.to_k, keep(att, f"{p}.attn2_k")),
                  (tb.attn2, keep(att, f"{p}.attn2_out"))]
    io["output.noise_pred"] = run(model, x, t, ctx, hooks)
    io["debug.time_proj"] = timestep_embedding(t, model.conv_in.out_channels, config["flip_sin_to_cos"],
                                               config["freq_shift"])

    # unet_modulation: a random blocky mask on position P's token grid.
    grid = io[f"up.pos{P:02d}.out"].shape[2:]
    mask = (torch.rand(grid[0] // 2 + 1, grid[1] // 2 + 1, generator=gen) > 0.5).float()
    mask = mask.repeat_interleave(2, 0).repeat_interleave(2, 1)[:grid[0], :grid[1]].contiguous()
    tokens = mask.reshape(-1)
    lam = torch.tensor([a.lam])
    mod_io, ref_io = {}, {}
    mod_keys = [f"up.pos{P:02d}.attn2_out", f"up.pos{P:02d}.out", f"up.pos{P + 1:02d}.out"]
    mod_out = run(model, x, t, ctx, modulation_hook(model, P, a.lam, tokens) + io_hooks(model, mod_io, P))
    ref_out = run(model, x, t, ctx, io_hooks(model, ref_io, P))
    modv = {**inputs, "mod.lambda": lam, "mod.mask": mask, "mod.mask_tokens": tokens,
            "mod.output.noise_pred": mod_out, "ref.output.noise_pred": ref_out,
            f"ref.up.pos{P:02d}.attn2_out": ref_io[f"up.pos{P:02d}.attn2_out"],
            **{f"mod.{k}": mod_io[k] for k in mod_keys if k in mod_io}}

    # unet_injection: run A = the io inputs (taps in unet_attention), run B = another latent.
    xb = torch.randn(x.shape, generator=gen)
    inj, inj_mod, ref_b = {}, {}, {}
    injv = {"inputA.sample": x, "inputB.sample": xb, "input.timestep": t, "input.encoder_hidden_states": ctx,
            "mod.lambda": lam, "mod.mask": mask, "mod.mask_tokens": tokens}
    injv["inj.output.noise_pred"] = run(model, xb, t, ctx, out_hooks(model, inj, P) + injection_hooks(model, att))
    injv["inj_mod.output.noise_pred"] = run(
        model, xb, t, ctx,
        modulation_hook(model, P, a.lam, tokens) + out_hooks(model, inj_mod, P) + injection_hooks(model, att))
    injv["refB.output.noise_pred"] = run(model, xb, t, ctx, out_hooks(model, ref_b, P))
    injv.update(prefixed("inj.", inj), **prefixed("inj_mod.", inj_mod), **prefixed("refB.", ref_b))
    # Under injection attn2 sees run A's q and k (and the same context), so it equals run A's output.
    diff = (inj[f"up.pos{P:02d}.attn2_out"] - att[f"up.pos{P:02d}.attn2_out"]).abs().max().item()
    assert diff < 1e-5, f"injected attn2 output differs from run A's by {diff}"

    np_ = lambda d: {k: v.detach().float().numpy().copy() for k, v in d.items()}  # noqa: E731
    write_safetensors(os.path.join(out, "unet_io.safetensors"), np_({**inputs, **io}), meta)
    write_safetensors(os.path.join(out, "unet_attention.safetensors"), np_({**inputs, **att}), meta)
    write_safetensors(os.path.join(out, "unet_modulation.safetensors"), np_(modv), meta)
    write_safetensors(os.path.join(out, "unet_injection.safetensors"), np_(injv), meta)

    for name in LINKED:
        dst = os.path.join(out, name)
        if not os.path.lexists(dst):
            os.symlink(os.path.join(base, name), dst)
    for name in sorted(os.listdir(a.base)):
        dst = os.path.join(a.out, name)
        if name != "conformance" and not os.path.lexists(dst):
            os.symlink(os.path.join(a.base, name), dst)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(f"# Derived SD conformance set (seed {a.seed})\n\n"
                f"Written by `tools/derive_conformance_set.py` with `tools/unet2d.py`: UNet widths "
                f"{config['block_out_channels']}, heads {config['attention_head_dim']}, groups {a.groups}, "
                f"latent {W}x{H}, λ {a.lam}, modulation at up-path position {P}. Same names and conventions as "
                f"tests/fixtures/conformance/README.md; {', '.join(LINKED)} are links to {base}.\n")
    print(f"wrote {out}: UNet {sum(p.numel() for p in model.parameters())} params, latent {W}x{H}, "
          f"positions {positions}, modulation at {P} (λ {a.lam}), noise_pred max|x| "
          f"{io['output.noise_pred'].abs().max().item():.3f}, modulation changes it by "
          f"{(mod_out - ref_out).abs().max().item():.3f}")


if __name__ == "__main__":
    main()
