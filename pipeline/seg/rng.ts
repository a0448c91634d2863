/**
 * The one seeded PRNG of the segmentation code (K-Means init, synthetic data). The reference uses numpy's global
 * MT19937 seeded with 1, which cannot be matched bit-for-bit through torch's and numpy's interleaved draws; what
 * matters is determinism given the seed. xoshiro128** (Blackman & Vigna) seeded through splitmix32: 32-bit state
 * words, pure integer arithmetic, so every platform yields the same stream.
 * @module
 */

/** A deterministic random stream. */
export interface Rng {
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  uniform(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Standard normal (Box–Muller, both values used). */
  normal(): number;
}

/** splitmix32 step: spreads a small seed over the 128-bit state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A xoshiro128** stream for `seed` (any integer; seeds differing in any bit give unrelated streams). */
export function createRng(seed: number): Rng {
  const sm = { s: seed | 0 };
  let a = splitmix32(sm), b = splitmix32(sm), c = splitmix32(sm), d = splitmix32(sm);
  if ((a | b | c | d) === 0) a = 1; // the all-zero state is a fixed point
  let spare: number | null = null;
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const uniform = () => next() / 4294967296;
  return {
    uniform,
    int: (n: number) => Math.floor(uniform() * n),
    normal() {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = uniform();
      while (u === 0) u = uniform();
      const v = uniform();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
