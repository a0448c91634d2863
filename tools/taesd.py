"""TAESD (Tiny AutoEncoder for Stable Diffusion, madebyollin/taesd) in torch, loading the
F32 safetensors shipped in data/models/tiny-ldm/vae.

Conventions (see that folder's README): images are RGB NCHW in [0, 1]; latents are already in the
SD UNet's scaled latent space (no 0.18215 factor). Module indices equal the state-dict prefixes of
the upstream `taesd.py` Sequential, so the weight files load with strict key matching.
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAESD_DIR = os.path.join(ROOT, "data", "models", "tiny-ldm", "vae")


def conv(n_in, n_out, **kwargs):
    """3x3 conv, zero padding 1."""
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of latents to (-3, 3)."""

    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x); identity skip since n_in == n_out == 64."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def Encoder(latent_channels=4):
    """Image [B,3,H,W] in [0,1] -> latent [B,4,H/8,W/8]."""
    return nn.Sequential(
        conv(3, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, latent_channels),
    )


def Decoder(latent_channels=4):
    """Latent [B,4,h,w] -> raw image [B,3,8h,8w] (approximately [0,1]; clamp before display)."""
    return nn.Sequential(
        Clamp(), conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), conv(64, 3),
    )


def _load(module, path):
    tensors, _ = read_safetensors(path)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    module.load_state_dict(state, strict=True)
    return module.eval()


class TAESD(nn.Module):
    """Encoder + decoder pair with the shipped weights."""

    def __init__(self, encoder_path=None, decoder_path=None):
        super().__init__()
        self.encoder = _load(Encoder(), encoder_path or os.path.join(TAESD_DIR, "encoder.safetensors"))
        self.decoder = _load(Decoder(), decoder_path or os.path.join(TAESD_DIR, "decoder.safetensors"))
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def encode(self, img01):
        """[B,3,H,W] in [0,1] -> UNet-space latent [B,4,H/8,W/8]."""
        return self.encoder(img01)

    @torch.no_grad()
    def decode(self, latent):
        """UNet-space latent -> raw image (not clamped)."""
        return self.decoder(latent)
