/**
 * Seeded Gaussian noise and the "add noise" start of sampling (docs/method.md §3.1).
 *
 * The generator is xoshiro128** (seeded through splitmix32) feeding Box–Muller on 53-bit uniforms: a single
 * sequential stream, so the same seed gives the same ε on any machine and with any thread count. The reference
 * re-seeds at the start of every batch, so each full batch gets the same ε; callers do the same by calling
 * {@link gaussianNoise} (or {@link GaussianRng.reseed}) per batch. (torch's own N(0,1) stream is not reproduced.)
 * @module
 */
import { f32, numel, type Tensor } from "../../tensor/tensor.ts";

const TWO_PI = 2 * Math.PI;

/** Deterministic N(0, 1) generator (xoshiro128** + Box–Muller). */
export class GaussianRng {
  #s = new Uint32Array(4);
  #spare = 0;
  #hasSpare = false;

  /** `seed`: any safe integer (both 32-bit halves are used). */
  constructor(seed: number) {
    this.reseed(seed);
  }

  /** Restart the stream as if newly constructed with `seed`. */
  reseed(seed: number): void {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`GaussianRng: seed must be a safe integer, got ${seed}`);
    }
    const lo = seed >>> 0, hi = Math.floor(seed / 4294967296) >>> 0;
    // splitmix32 over the low word, the high word folded into the starting state.
    let a = (lo ^ Math.imul(hi, 0x85ebca6b)) | 0;
    for (let k = 0; k < 4; k++) {
      a = (a + 0x9e3779b9) | 0;
      let t = a ^ (a >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      this.#s[k] = t ^ (t >>> 15);
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1; // all-zero state is absorbing
    this.#hasSpare = false;
  }

  /** Next raw 32-bit output (xoshiro128**). */
  nextUint32(): number {
    const s = this.#s;
    const m = Math.imul(s[1], 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextUniform(): number {
    const a = this.nextUint32() >>> 5, b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Next N(0, 1) sample. */
  nextGaussian(): number {
    if (this.#hasSpare) {
      this.#hasSpare = false;
      return this.#spare;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.nextUniform())); // 1 − u ∈ (0, 1]: no log(0)
    const th = TWO_PI * this.nextUniform();
    this.#spare = r * Math.sin(th);
    this.#hasSpare = true;
    return r * Math.cos(th);
  }

  /** Fill `out` with the next `out.length` samples of the stream; returns `out`. */
  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.nextGaussian();
    return out;
  }
}

/** A fresh ε ~ N(0, I) tensor of `shape` from a generator seeded with `seed`. */
export function gaussianNoise(seed: number, shape: readonly number[]): Tensor<"F32"> {
  return f32(shape, new GaussianRng(seed).fill(new Float32Array(numel(shape))));
}

/** Noising in VE form: x = z0 + σ·ε (the reference's `add_noise` start, x_{t_m} with σ = σ[t_m]). */
export function addNoise(z0: Tensor<"F32">, sigma: number, eps: Tensor<"F32">): Tensor<"F32"> {
  if (z0.shape.join() !== eps.shape.join()) {
    throw new Error(`addNoise: eps shape [${eps.shape}] vs latent [${z0.shape}]`);
  }
  const out = new Float32Array(z0.data.length);
  for (let i = 0; i < out.length; i++) out[i] = z0.data[i] + sigma * eps.data[i];
  return f32(z0.shape, out);
}
