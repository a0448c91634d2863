"""Pre-encode the training frames with TAESD once per augmented view (cache under tools/.cache, git-ignored).

A view is a resize (ffmpeg bicubic, aspect not kept, like the pipeline's input resize), an optional horizontal
flip and a small random colour jitter (brightness, contrast, saturation, each a factor in [1-j, 1+j], drawn per
frame and view from the seed). Flips and jitter are applied to pixels, not latents: TAESD is not
flip-equivariant (rms latent difference 0.64). Training takes random latent crops of every view, so views
larger than the crop give scale and translation augmentation.

Frames whose file name also appears in an evaluation clip folder (--exclude, default data/camvid) are refused,
so no evaluation frame can leak into training.

Run: /usr/bin/python3 tools/latent_cache.py [--data DIR ...] [--views 384x288 320x256f ...]   (idempotent)
"""
import argparse
import glob
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taesd import TAESD  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = [os.path.join(ROOT, "data/camvid-train/images")]
DEFAULT_EXCLUDE = [os.path.join(ROOT, "data/camvid")]
CACHE_DIR = os.path.join(ROOT, "tools/.cache")
DEFAULT_VIEWS = ["384x288", "384x288f", "320x256", "320x256f"]
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def parse_view(spec):
    """'384x288f' -> (384, 288, True): width x height in pixels, trailing f = horizontally flipped."""
    flip = spec.endswith("f")
    w, h = spec.rstrip("f").split("x")
    w, h = int(w), int(h)
    if w % 8 or h % 8:
        raise SystemExit(f"error: view {spec!r}: width and height must be multiples of 8")
    return w, h, flip


def list_frames(data_dirs, exclude_dirs):
    """Sorted image paths under data_dirs; exits if one has the name of a frame in exclude_dirs."""
    files = sorted(p for d in data_dirs for p in glob.glob(os.path.join(d, "**", "*"), recursive=True)
                   if p.lower().endswith(IMAGE_EXT))
    if not files:
        raise SystemExit(f"error: no training frames (*.jpg, *.png) under {', '.join(data_dirs)}")
    held_out = {os.path.splitext(os.path.basename(p))[0]
                for d in exclude_dirs for p in glob.glob(os.path.join(d, "**", "*"), recursive=True)
                if p.lower().endswith(IMAGE_EXT)}
    leaked = [p for p in files if os.path.splitext(os.path.basename(p))[0] in held_out]
    if leaked:
        raise SystemExit(f"error: {leaked[0]} is a frame of an evaluation clip ({len(leaked)} such frames)")
    return files


def jitter(img, rng, amount):
    """Colour jitter of a [3,H,W] tensor in [0,1]: brightness, contrast, saturation factors in [1-a, 1+a]."""
    b, c, s = (1 + amount * (2 * rng.random(3) - 1)).tolist()
    img = img * b
    img = (img - img.mean()) * c + img.mean()
    grey = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
    img = (img - grey) * s + grey
    return img.clamp(0, 1)


def read_rgb(path, w, h):
    """[h,w,3] uint8 of an image file resized (bicubic) by ffmpeg (no Python imaging package needed)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"scale={w}:{h}:flags=bicubic",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3)


def load_view(path, view, rng, amount):
    """RGB float tensor [3,h,w] in [0,1] of one augmented view."""
    w, h, flip = view
    x = torch.from_numpy(read_rgb(path, w, h).copy()).permute(2, 0, 1).float() / 255.0
    if flip:
        x = x.flip(-1)
    return jitter(x, rng, amount) if amount > 0 else x


def cache_path(files, spec, seed, amount, cache_dir):
    """Cache file of one view; the name hashes the frame list, the view, the seed and the jitter."""
    key = hashlib.sha256("\n".join([*files, spec, str(seed), str(amount)]).encode()).hexdigest()[:12]
    return os.path.join(cache_dir, f"latents_{spec}_{key}.npy")


def build_cache(data_dirs=None, views=None, exclude_dirs=None, seed=1234, amount=0.1, batch=8, threads=2,
                cache_dir=CACHE_DIR):
    """Encode every view that is not cached yet. Returns the list of cache paths ([N,4,h/8,w/8] float16)."""
    torch.set_num_threads(threads)
    files = list_frames(data_dirs or DEFAULT_DATA, DEFAULT_EXCLUDE if exclude_dirs is None else exclude_dirs)
    os.makedirs(cache_dir, exist_ok=True)
    out, vae = [], None
    for vi, spec in enumerate(views or DEFAULT_VIEWS):
        view = parse_view(spec)
        path = cache_path(files, spec, seed, amount, cache_dir)
        if not os.path.exists(path):
            vae = vae or TAESD()
            rng = np.random.default_rng([seed, vi])
            t0 = time.time()
            lat = np.zeros((len(files), 4, view[1] // 8, view[0] // 8), np.float16)
            # An interrupted encoding resumes from its last saved chunk (the jitter draws are replayed).
            partial, done = path + ".partial.npy", 0
            if os.path.exists(partial):
                part = np.load(partial)
                done = part.shape[0]
                lat[:done] = part
            with torch.no_grad():
                for i in range(0, len(files), batch):
                    views = [load_view(f, view, rng, amount) for f in files[i:i + batch]]
                    if i + len(views) <= done:
                        continue
                    lat[i:i + len(views)] = vae.encode(torch.stack(views)).numpy()
                    if (i // batch) % 4 == 3:
                        np.save(partial + ".tmp.npy", lat[:i + len(views)])
                        os.replace(partial + ".tmp.npy", partial)
            np.save(path + ".tmp.npy", lat)
            os.replace(path + ".tmp.npy", path)
            if os.path.exists(partial):
                os.remove(partial)
            print(f"encoded {len(files)} frames, view {spec}, in {time.time() - t0:.0f}s -> {path}", flush=True)
        out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="folders of training frames")
    ap.add_argument("--exclude", nargs="*", default=DEFAULT_EXCLUDE, help="evaluation clip folders")
    ap.add_argument("--views", nargs="+", default=DEFAULT_VIEWS)
    ap.add_argument("--jitter", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    build_cache(args.data, args.views, args.exclude, args.seed, args.jitter)


if __name__ == "__main__":
    main()
