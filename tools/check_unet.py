"""Check tools/unet2d.py against diffusers' own outputs in a conformance set (default tests/fixtures/conformance).

Loads conformance/unet/{config.json, unet.safetensors}, runs the inputs of unet_io.safetensors and
compares every stored tensor of unet_io and unet_attention (captured with forward hooks at the
same module positions diffusers' generator hooked) with the rule
max|diff| <= 1e-4 * max(1, max|ref|).

Run: /usr/bin/python3 tools/check_unet.py [CONFORMANCE_DIR]   (exit code 1 on failure)
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402
from unet2d import load_unet  # noqa: E402
from unet_blocks import timestep_embedding  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONF = os.path.join(ROOT, "tests", "fixtures", "conformance")


def capture(model):
    """Register hooks; return (dict name -> tensor, list of handles)."""
    got, handles = {}, []

    def keep(name, fn=lambda out: out):
        def hook(_m, _inp, out):
            got[name] = fn(out).detach().clone()
        return hook

    reg = lambda m, name, fn=lambda o: o: handles.append(m.register_forward_hook(keep(name, fn)))  # noqa: E731
    reg(model.conv_in, "debug.conv_in")
    reg(model.time_embedding, "debug.time_embedding")
    for i, blk in enumerate(model.down_blocks):
        reg(blk, f"debug.down_block{i}.out", lambda o: o[0])
    reg(model.mid_block, "debug.mid_block.out")
    for j, blk in enumerate(model.up_blocks):
        if blk.upsamplers is not None:
            reg(blk.upsamplers[0], f"up.block{j}.upsampler")
        for k in range(len(blk.resnets)):
            pos = 3 * j + k
            reg(blk.resnets[k], f"up.pos{pos:02d}.resnet")
            if hasattr(blk, "attentions"):
                reg(blk.attentions[k], f"up.pos{pos:02d}.out")
                tb = blk.attentions[k].transformer_blocks[0]
                reg(tb.attn1.to_q, f"up.pos{pos:02d}.attn1_q")
                reg(tb.attn1.to_k, f"up.pos{pos:02d}.attn1_k")
                reg(tb.attn2.to_q, f"up.pos{pos:02d}.attn2_q")
                reg(tb.attn2.to_k, f"up.pos{pos:02d}.attn2_k")
                reg(tb.attn2, f"up.pos{pos:02d}.attn2_out")
            else:
                reg(blk.resnets[k], f"up.pos{pos:02d}.out")
    return got, handles


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("conformance", nargs="?", default=DEFAULT_CONF, help="folder of an SD conformance set")
    conf = ap.parse_args().conformance
    torch.set_num_threads(2)
    model = load_unet(f"{conf}/unet/config.json", f"{conf}/unet/unet.safetensors")
    io, _ = read_safetensors(f"{conf}/unet_io.safetensors")
    att, _ = read_safetensors(f"{conf}/unet_attention.safetensors")
    ref = {k: torch.from_numpy(v) for k, v in {**att, **io}.items()}
    got, _ = capture(model)
    with torch.no_grad():
        out = model(ref["input.sample"], ref["input.timestep"], ref["input.encoder_hidden_states"])
        got["output.noise_pred"] = out
        got["debug.time_proj"] = timestep_embedding(ref["input.timestep"], model.conv_in.out_channels, True, 0)
    fails, checked = [], 0
    for name in sorted(ref):
        if name.startswith("input."):
            continue
        if name not in got:
            fails.append(f"{name}: not captured")
            continue
        r, g = ref[name], got[name]
        if tuple(r.shape) != tuple(g.shape):
            fails.append(f"{name}: shape {tuple(g.shape)} != ref {tuple(r.shape)}")
            continue
        diff = (g - r).abs().max().item()
        tol = 1e-4 * max(1.0, r.abs().max().item())
        checked += 1
        if diff > tol:
            fails.append(f"{name}: max|diff| {diff:.3e} > tol {tol:.3e}")
        if name == "output.noise_pred":
            print(f"output.noise_pred max|diff| {diff:.3e} (tol {tol:.3e}, max|ref| {r.abs().max().item():.3f})")
    for f in fails:
        print("FAIL", f)
    print(f"UNet conformance: {'PASS' if not fails else 'FAIL'} ({checked - len([f for f in fails if 'max|diff|' in f])}/{checked} tensors within tolerance)")
    sys.exit(0 if not fails else 1)


if __name__ == "__main__":
    main()
