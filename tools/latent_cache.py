"""Pre-encode the CamVid training frames with TAESD once (cached under tools/.cache, git-ignored).

Each frame is resized (PIL bicubic, aspect not kept, like the pipeline's 320x256 input) to every
scale in SCALES, encoded as is and horizontally flipped (TAESD is not flip-equivariant, so flips
are encoded, not applied to latents). Stored as float16 arrays per scale: [2*N, 4, H/8, W/8]
(first N = original, next N = flipped).

Run: /usr/bin/python3 tools/latent_cache.py 'CAMVID_TRAIN/images/*.jpg'   (idempotent; prints timing)

The training frames are not part of the repo (data/camvid holds only the evaluation clips, which
training must not see); pass a glob of the CamVid train images.
"""
import glob
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taesd import TAESD  # noqa: E402

CACHE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache")
SCALES = [(320, 256), (384, 288)]  # (W, H) in pixels; latent crops are 40x32


def cache_path(w, h):
    """Path of the cached latents for one scale."""
    return os.path.join(CACHE_DIR, f"camvid_train_taesd_{w}x{h}.npy")


def load_image(path, w, h):
    """RGB float tensor [3,h,w] in [0,1], resized with PIL bicubic."""
    img = Image.open(path).convert("RGB").resize((w, h), Image.BICUBIC)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255.0


def build_cache(train_glob, batch=8, threads=2):
    """Encode all scales that are not cached yet. Returns list of (W, H, path)."""
    torch.set_num_threads(threads)
    files = sorted(glob.glob(train_glob))
    if len(files) == 0:
        raise SystemExit(f"error: no training frames found at {train_glob}")
    os.makedirs(CACHE_DIR, exist_ok=True)
    out = []
    vae = None
    for w, h in SCALES:
        path = cache_path(w, h)
        if not os.path.exists(path):
            vae = vae or TAESD()
            t0 = time.time()
            lat = np.zeros((2 * len(files), 4, h // 8, w // 8), np.float16)
            for i in range(0, len(files), batch):
                x = torch.stack([load_image(f, w, h) for f in files[i:i + batch]])
                lat[i:i + len(x)] = vae.encode(x).numpy()
                lat[len(files) + i:len(files) + i + len(x)] = vae.encode(x.flip(-1)).numpy()
            np.save(path + ".tmp.npy", lat)
            os.replace(path + ".tmp.npy", path)
            print(f"encoded {len(files)} frames x2 flips at {w}x{h} in {time.time() - t0:.0f}s -> {path}", flush=True)
        out.append((w, h, path))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: latent_cache.py 'CAMVID_TRAIN/images/*.jpg'")
    build_cache(sys.argv[1])
