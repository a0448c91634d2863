/**
 * One interface for the two VAEs the pipeline can use (`modulation.decoder: vae|taesd`), both working on
 * images in [0, 1] and on latents in the UNet's scaled space:
 * - `kl` (diffusers AutoencoderKL, SD VAE): encode = (mean(enc(2x − 1)) − shift)·scale (optionally a posterior
 *   sample instead of the mean), decode = (dec(z/scale + shift) + 1)/2;
 * - `tiny` (TAESD / AutoencoderTiny): encode = enc(x), decode = dec(z) (its latents are already UNet-scaled).
 * Decoded images are raw (not clamped); the caller clamps.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";
import { f32, type Tensor } from "../../tensor/tensor.ts";
import type { Provider } from "../runtime.ts";
import { readJsonConfig } from "../model_files.ts";
import { TinyAutoencoder } from "./taesd.ts";
import { AutoencoderKL, posteriorFromMoments } from "./kl.ts";

/** Options of {@link Vae.encode}. */
export interface EncodeOptions {
  /**
   * KL only: ε [B, L, h, w] to sample the posterior, z = mean + std·ε (the reference samples; default: the mean).
   * Ignored by the deterministic tiny encoder.
   */
  posteriorNoise?: Tensor<"F32">;
}

/** A loaded VAE behind the uniform interface. */
export interface Vae {
  /** "kl" = AutoencoderKL (SD, SVD), "tiny" = TAESD. */
  readonly kind: "kl" | "tiny";
  /** images [B, 3, H, W] in [0, 1] → UNet-scaled latents [B, L, H/8, W/8]. */
  encode(images01: Tensor<"F32">, opts?: EncodeOptions): Promise<Tensor<"F32">>;
  /** UNet-scaled latents → images [B, 3, 8h, 8w], nominally in [0, 1], NOT clamped. */
  decode(latents: Tensor<"F32">): Promise<Tensor<"F32">>;
  /** Free the onnxruntime sessions. */
  release(): Promise<void>;
}

/** Options of {@link loadVae}. */
export interface LoadVaeOptions {
  /** onnxruntime execution provider (default cpu). */
  provider?: Provider;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** Frames per session run (default: 1 for kl, 4 for tiny). */
  maxBatch?: number;
}

/** y = a·x + b elementwise (new tensor). */
function affine(x: Tensor<"F32">, a: number, b: number): Tensor<"F32"> {
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a * x.data[i] + b;
  return f32(x.shape, out);
}

class KlVae implements Vae {
  readonly kind = "kl";
  constructor(private readonly m: AutoencoderKL) {}

  async encode(images01: Tensor<"F32">, opts: EncodeOptions = {}): Promise<Tensor<"F32">> {
    const post = posteriorFromMoments(await this.m.encodeMoments(affine(images01, 2, -1)));
    let z = post.mean;
    const eps = opts.posteriorNoise;
    if (eps) {
      if (eps.shape.join() !== z.shape.join()) {
        throw new Error(`vae: posterior noise [${eps.shape}] vs latent [${z.shape}]`);
      }
      z = f32(z.shape, z.data.map((m, i) => m + post.std.data[i] * eps.data[i]));
    }
    const { scalingFactor: s, shiftFactor: sh } = this.m.cfg;
    return affine(z, s, -sh * s);
  }

  async decode(latents: Tensor<"F32">): Promise<Tensor<"F32">> {
    const { scalingFactor: s, shiftFactor: sh } = this.m.cfg;
    return affine(await this.m.decodeRaw(affine(latents, 1 / s, sh)), 0.5, 0.5);
  }

  release(): Promise<void> {
    return this.m.release();
  }
}

class TinyVae implements Vae {
  readonly kind = "tiny";
  constructor(private readonly m: TinyAutoencoder) {}

  async encode(images01: Tensor<"F32">): Promise<Tensor<"F32">> {
    const { scalingFactor: s, shiftFactor: sh } = this.m.cfg;
    const z = await this.m.encodeRaw(images01);
    return s === 1 && sh === 0 ? z : affine(z, s, -sh * s);
  }

  async decode(latents: Tensor<"F32">): Promise<Tensor<"F32">> {
    const { scalingFactor: s, shiftFactor: sh } = this.m.cfg;
    return await this.m.decodeRaw(s === 1 && sh === 0 ? latents : affine(latents, 1 / s, sh));
  }

  release(): Promise<void> {
    return this.m.release();
  }
}

/**
 * Load the VAE of `folder`: a diffusers model folder (uses `vae/`), a VAE component folder (`config.json`), or a
 * taesd.py folder (`encoder.safetensors` + `decoder.safetensors`). The class comes from `_class_name`.
 */
export async function loadVae(folder: string, opts: LoadVaeOptions = {}): Promise<Vae> {
  const sub = path.join(folder, "vae");
  const dir = fs.existsSync(path.join(sub, "config.json")) ? sub : folder;
  const cfgPath = path.join(dir, "config.json");
  if (!fs.existsSync(cfgPath)) {
    if (
      fs.existsSync(path.join(folder, "encoder.safetensors")) ||
      fs.existsSync(path.join(folder, "taesd_encoder.safetensors"))
    ) {
      return new TinyVae(await TinyAutoencoder.load(folder, opts));
    }
    fail(folder, "no vae/config.json, config.json or TAESD encoder/decoder.safetensors found");
  }
  const cls = readJsonConfig(cfgPath).json._class_name;
  if (cls === "AutoencoderKL") return new KlVae(await AutoencoderKL.load(dir, opts));
  if (cls === "AutoencoderTiny") return new TinyVae(await TinyAutoencoder.load(dir, opts));
  fail(cfgPath, `"_class_name" is ${JSON.stringify(cls)}; supported: AutoencoderKL, AutoencoderTiny`);
}
