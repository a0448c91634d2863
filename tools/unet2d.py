"""diffusers `UNet2DConditionModel` (SD 1.x / 2.x family) in torch, written from scratch with
exactly diffusers' module names and math, built from a diffusers `unet/config.json`.

Supported: down blocks CrossAttnDownBlock2D / DownBlock2D, mid UNetMidBlock2DCrossAttn, up blocks
UpBlock2D / CrossAttnUpBlock2D, positional time embedding, `attention_head_dim` = number of heads per
level (SD 2.x semantics; down_blocks[i] use entry i, up_blocks the reversed list, the mid block the
last entry). Any other config value that would change the math is refused with a one-line error.
"""
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402
from unet_blocks import (Downsample2D, ResnetBlock2D, TimestepEmbedding, Transformer2DModel,  # noqa: E402
                         Upsample2D, timestep_embedding)

# config keys whose non-default value this implementation does not support
_REQUIRED = {
    "act_fn": "silu", "center_input_sample": False, "class_embed_type": None, "addition_embed_type": None,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "dual_cross_attention": False, "encoder_hid_dim": None,
    "num_class_embeds": None, "only_cross_attention": False, "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False, "resnet_time_scale_shift": "default", "time_cond_proj_dim": None,
    "time_embedding_act_fn": None, "time_embedding_dim": None, "time_embedding_type": "positional",
    "timestep_post_act": None, "transformer_layers_per_block": 1, "upcast_attention": False,
    "use_linear_projection": True, "mid_block_type": "UNetMidBlock2DCrossAttn", "attention_type": "default",
    "num_attention_heads": None, "cross_attention_norm": None,
}


def _per_level(value, n):
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


class CrossAttnDownBlock2D(nn.Module):
    """(resnet, transformer) x layers, then optional strided-conv downsampler."""

    def __init__(self, cin, cout, temb, layers, heads, groups, eps, xdim, add_downsample, pad):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers)])
        self.attentions = nn.ModuleList([Transformer2DModel(heads, cout // heads, cout, groups, xdim) for _ in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(cout, pad)]) if add_downsample else None

    def forward(self, h, temb, context):
        states = ()
        for resnet, attn in zip(self.resnets, self.attentions):
            h = attn(resnet(h, temb), context)
            states += (h,)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            states += (h,)
        return h, states


class DownBlock2D(nn.Module):
    """resnet x layers, then optional downsampler."""

    def __init__(self, cin, cout, temb, layers, groups, eps, add_downsample, pad):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers)])
        self.downsamplers = nn.ModuleList([Downsample2D(cout, pad)]) if add_downsample else None

    def forward(self, h, temb, context=None):
        states = ()
        for resnet in self.resnets:
            h = resnet(h, temb)
            states += (h,)
        if self.downsamplers is not None:
            h = self.downsamplers[0](h)
            states += (h,)
        return h, states


class UNetMidBlock2DCrossAttn(nn.Module):
    """resnet, then (transformer, resnet) once."""

    def __init__(self, c, temb, heads, groups, eps, xdim, scale):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, temb, groups, eps, scale) for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2DModel(heads, c // heads, c, groups, xdim)])

    def forward(self, h, temb, context):
        h = self.resnets[0](h, temb)
        return self.resnets[1](self.attentions[0](h, context), temb)


def _up_resnets(cin, cprev, cout, temb, layers, groups, eps):
    # resnet i takes cat(hidden, skip): hidden = prev level's output for i == 0, skip of the last
    # resnet comes from the lower-resolution level's input channel count
    return nn.ModuleList([
        ResnetBlock2D((cprev if i == 0 else cout) + (cin if i == layers - 1 else cout), cout, temb, groups, eps)
        for i in range(layers)])


class CrossAttnUpBlock2D(nn.Module):
    """(cat skip, resnet, transformer) x layers, then optional nearest-x2 + conv upsampler."""

    def __init__(self, cin, cprev, cout, temb, layers, heads, groups, eps, xdim, add_upsample):
        super().__init__()
        self.resnets = _up_resnets(cin, cprev, cout, temb, layers, groups, eps)
        self.attentions = nn.ModuleList([Transformer2DModel(heads, cout // heads, cout, groups, xdim) for _ in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if add_upsample else None

    def forward(self, h, skips, temb, context, upsample_size=None):
        for resnet, attn in zip(self.resnets, self.attentions):
            h, skips = torch.cat([h, skips[-1]], dim=1), skips[:-1]
            h = attn(resnet(h, temb), context)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h, upsample_size)
        return h


class UpBlock2D(nn.Module):
    """(cat skip, resnet) x layers, then optional upsampler."""

    def __init__(self, cin, cprev, cout, temb, layers, groups, eps, add_upsample):
        super().__init__()
        self.resnets = _up_resnets(cin, cprev, cout, temb, layers, groups, eps)
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if add_upsample else None

    def forward(self, h, skips, temb, context=None, upsample_size=None):
        for resnet in self.resnets:
            h, skips = torch.cat([h, skips[-1]], dim=1), skips[:-1]
            h = resnet(h, temb)
        if self.upsamplers is not None:
            h = self.upsamplers[0](h, upsample_size)
        return h


class UNet2DConditionModel(nn.Module):
    """forward(sample [B,4,H,W], timestep scalar or [B], encoder_hidden_states [B,77,D]) -> eps [B,4,H,W]."""

    def __init__(self, config):
        super().__init__()
        for key, want in _REQUIRED.items():
            if key in config and config[key] != want and not (key == "transformer_layers_per_block" and config[key] in ([1] * 4, (1,) * 4)):
                raise ValueError(f"unet config: key {key!r} = {config[key]!r} is not supported (expected {want!r})")
        self.config = dict(config)
        boc = list(config["block_out_channels"])
        n = len(boc)
        heads = _per_level(config["attention_head_dim"], n)
        groups, eps, xdim = config["norm_num_groups"], config["norm_eps"], config["cross_attention_dim"]
        layers = config["layers_per_block"]
        temb = boc[0] * 4
        self.flip_sin_to_cos = config["flip_sin_to_cos"]
        self.freq_shift = config["freq_shift"]

        self.conv_in = nn.Conv2d(config["in_channels"], boc[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(boc[0], temb)

        self.down_blocks = nn.ModuleList()
        cout = boc[0]
        for i, kind in enumerate(config["down_block_types"]):
            cin, cout, last = cout, boc[i], i == n - 1
            if kind == "CrossAttnDownBlock2D":
                blk = CrossAttnDownBlock2D(cin, cout, temb, layers, heads[i], groups, eps, xdim, not last, config["downsample_padding"])
            elif kind == "DownBlock2D":
                blk = DownBlock2D(cin, cout, temb, layers, groups, eps, not last, config["downsample_padding"])
            else:
                raise ValueError(f"unet config: down_block_types[{i}] = {kind!r} is not supported")
            self.down_blocks.append(blk)

        self.mid_block = UNetMidBlock2DCrossAttn(boc[-1], temb, heads[-1], groups, eps, xdim, config["mid_block_scale_factor"])

        self.up_blocks = nn.ModuleList()
        rboc, rheads = boc[::-1], heads[::-1]
        cout = rboc[0]
        self.num_upsamplers = 0
        for i, kind in enumerate(config["up_block_types"]):
            last = i == n - 1
            cprev, cout, cin = cout, rboc[i], rboc[min(i + 1, n - 1)]
            self.num_upsamplers += 0 if last else 1
            if kind == "CrossAttnUpBlock2D":
                blk = CrossAttnUpBlock2D(cin, cprev, cout, temb, layers + 1, rheads[i], groups, eps, xdim, not last)
            elif kind == "UpBlock2D":
                blk = UpBlock2D(cin, cprev, cout, temb, layers + 1, groups, eps, not last)
            else:
                raise ValueError(f"unet config: up_block_types[{i}] = {kind!r} is not supported")
            self.up_blocks.append(blk)

        self.conv_norm_out = nn.GroupNorm(groups, boc[0], eps=eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(boc[0], config["out_channels"], 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        factor = 2 ** self.num_upsamplers
        forward_upsample_size = any(s % factor != 0 for s in sample.shape[-2:])
        t = torch.as_tensor(timestep, device=sample.device)
        if t.ndim == 0:
            t = t[None]
        t = t.expand(sample.shape[0])
        t_emb = timestep_embedding(t, self.conv_in.out_channels, self.flip_sin_to_cos, self.freq_shift).to(sample.dtype)
        emb = self.time_embedding(t_emb)

        h = self.conv_in(sample)
        skips = (h,)
        for blk in self.down_blocks:
            h, states = blk(h, emb, encoder_hidden_states)
            skips += states
        h = self.mid_block(h, emb, encoder_hidden_states)
        for i, blk in enumerate(self.up_blocks):
            k = len(blk.resnets)
            res, skips = skips[-k:], skips[:-k]
            size = skips[-1].shape[2:] if (i < len(self.up_blocks) - 1 and forward_upsample_size) else None
            h = blk(h, res, emb, encoder_hidden_states, size)
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


def load_unet(config_path, weights_path):
    """Build from a diffusers config.json and load a safetensors state dict (strict key/shape match)."""
    with open(config_path) as f:
        config = json.load(f)
    model = UNet2DConditionModel(config)
    tensors, _ = read_safetensors(weights_path)
    model.load_state_dict({k: torch.from_numpy(v).float() for k, v in tensors.items()}, strict=True)
    return model.eval()
