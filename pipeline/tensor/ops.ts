/**
 * The few tensor operations the segmentation needs, each replicating the library call the reference code makes
 * (docs/method.md Appendix A): PIL NEAREST / BICUBIC / LANCZOS resizes (fixed-point, horizontal pass first),
 * OpenCV INTER_LINEAR (fixed-point, half-pixel), OpenCV GaussianBlur 5×5 (reflect-101), per-pixel L∞
 * normalisation, mean, argmax over a leading axis and row gather. Images are [H, W] or [H, W, C] row-major.
 * @module
 */
import { f32, i32, type Tensor } from "./tensor.ts";

/** [H, W, C] of an image tensor ([H, W] → C = 1). */
export function imageDims(t: Tensor): [number, number, number] {
  if (t.shape.length === 2) return [t.shape[0], t.shape[1], 1];
  if (t.shape.length === 3) return [t.shape[0], t.shape[1], t.shape[2]];
  throw new Error(`image: expected [H, W] or [H, W, C], got [${t.shape}]`);
}

function sameLayout<D extends "U8" | "I32">(t: Tensor<D>, H: number, W: number): Tensor<D> {
  const shape = t.shape.length === 2 ? [H, W] : [H, W, t.shape[2]];
  const n = shape.reduce((a, b) => a * b, 1);
  const data = t.dtype === "U8" ? new Uint8Array(n) : new Int32Array(n);
  return { dtype: t.dtype, shape, data } as unknown as Tensor<D>;
}

/**
 * Per-pixel L∞ normalisation of features [..., C]: v ← v / max_c |v_c| (`match_gt_mask`). An all-zero vector
 * stays zero (the reference would produce NaN). Idempotent.
 */
export function normalizeLinf(t: Tensor<"F32">): Tensor<"F32"> {
  const C = t.shape[t.shape.length - 1];
  const src = t.data, out = new Float32Array(src.length);
  for (let o = 0; o < src.length; o += C) {
    let m = 0;
    for (let c = 0; c < C; c++) {
      const a = Math.abs(src[o + c]);
      if (a > m) m = a;
    }
    if (m === 0) continue;
    for (let c = 0; c < C; c++) out[o + c] = src[o + c] / m;
  }
  return f32(t.shape, out);
}

/** Elementwise mean of same-shaped float tensors (block aggregation, docs/method.md §4). */
export function meanOf(ts: readonly Tensor<"F32">[]): Tensor<"F32"> {
  if (ts.length === 0) throw new Error("meanOf: no tensors");
  const shape = ts[0].shape, out = new Float64Array(ts[0].data.length);
  for (const t of ts) {
    if (t.shape.join() !== shape.join()) throw new Error(`meanOf: shape [${t.shape}] vs [${shape}]`);
    for (let i = 0; i < out.length; i++) out[i] += t.data[i];
  }
  const res = new Float32Array(out.length);
  for (let i = 0; i < out.length; i++) res[i] = out[i] / ts.length;
  return f32(shape, res);
}

/**
 * PIL `Image.resize(NEAREST)` (ImagingScaleAffine): source index = int(x₀ + k·scale) with x₀ = scale/2 and the
 * position accumulated by repeated addition exactly as Pillow does, i.e. ⌊(dst + 0.5)·scale⌋ up to the
 * accumulation's rounding (which matters when (dst + 0.5)·scale is an integer, e.g. 360 → 22 rows).
 */
export function resizeNearest<D extends "U8" | "I32">(t: Tensor<D>, outH: number, outW: number): Tensor<D> {
  const [H, W, C] = imageDims(t);
  const out = sameLayout(t, outH, outW);
  const xs = nearestIndex(W, outW), ys = nearestIndex(H, outH);
  const src = t.data as Uint8Array | Int32Array, dst = out.data as Uint8Array | Int32Array;
  for (let y = 0; y < outH; y++) {
    const srow = ys[y] * W;
    for (let x = 0; x < outW; x++) {
      const s = (srow + xs[x]) * C, d = (y * outW + x) * C;
      for (let c = 0; c < C; c++) dst[d + c] = src[s + c];
    }
  }
  return out;
}

function nearestIndex(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize; // Pillow: (double)(box[2] - box[0]) / xsize with float box
  const idx = new Int32Array(outSize);
  let pos = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    idx[i] = Math.min(inSize - 1, Math.max(0, Math.trunc(pos)));
    pos += scale;
  }
  return idx;
}

/** Pillow's separable filters (Resample.c). */
const PIL_FILTERS = {
  bicubic: {
    support: 2,
    f(x: number): number {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    f(x: number): number {
      if (-3 <= x && x < 3) return sinc(x) * sinc(x / 3);
      return 0;
    },
  },
};

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const PRECISION_BITS = 22;

/** Pillow `precompute_coeffs` + `normalize_coeffs_8bpc`: bounds (xmin, count) and fixed-point weights. */
function pilCoeffs(inSize: number, outSize: number, filter: { support: number; f(x: number): number }) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0
        ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS))
        : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v: number): number {
  if (v >= 1 << (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

/** Pillow's two-pass 8-bit resample (horizontal first, 8-bit intermediate, a pass skipped if its size is kept). */
function pilResample(
  t: Tensor<"U8">,
  outH: number,
  outW: number,
  filter: typeof PIL_FILTERS.bicubic,
): Tensor<"U8"> {
  const [H, W, C] = imageDims(t);
  let cur = t.data, curW = W;
  if (outW !== W) {
    const { bounds, kk, ksize } = pilCoeffs(W, outW, filter);
    const tmp = new Uint8Array(H * outW * C);
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], n = bounds[xx * 2 + 1], k0 = xx * ksize;
        for (let c = 0; c < C; c++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < n; x++) ss += cur[(y * W + xmin + x) * C + c] * kk[k0 + x];
          tmp[(y * outW + xx) * C + c] = clip8(ss);
        }
      }
    }
    cur = tmp;
    curW = outW;
  }
  if (outH !== H) {
    const { bounds, kk, ksize } = pilCoeffs(H, outH, filter);
    const tmp = new Uint8Array(outH * curW * C);
    const rowLen = curW * C;
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2], n = bounds[yy * 2 + 1], k0 = yy * ksize;
      for (let i = 0; i < rowLen; i++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < n; y++) ss += cur[(ymin + y) * rowLen + i] * kk[k0 + y];
        tmp[yy * rowLen + i] = clip8(ss);
      }
    }
    cur = tmp;
  }
  const shape = t.shape.length === 2 ? [outH, outW] : [outH, outW, C];
  return { dtype: "U8", shape, data: cur === t.data ? cur.slice() : cur };
}

/** PIL `resize(BICUBIC)` of an 8-bit image (frame → processing size, docs/method.md §0). */
export function resizeBicubicPil(t: Tensor<"U8">, outH: number, outW: number): Tensor<"U8"> {
  return pilResample(t, outH, outW, PIL_FILTERS.bicubic);
}

/** PIL `resize(LANCZOS)` of an 8-bit image (coarse 0/255 mask → frame size for filtering, §8.6). */
export function resizeLanczosPil(t: Tensor<"U8">, outH: number, outW: number): Tensor<"U8"> {
  return pilResample(t, outH, outW, PIL_FILTERS.lanczos);
}

/** Round half to even (cvRound under the default FP rounding mode). */
function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const COEF_BITS = 11, COEF_SCALE = 1 << COEF_BITS;

/** OpenCV's horizontal linear taps: clamped source columns and their 11-bit weights. */
function cvHorizontalTaps(
  inSize: number,
  outSize: number,
): { i0: Int32Array; i1: Int32Array; a0: Int32Array; a1: Int32Array } {
  const scale = 1 / (outSize / inSize);
  const i0 = new Int32Array(outSize),
    i1 = new Int32Array(outSize),
    a0 = new Int32Array(outSize),
    a1 = new Int32Array(outSize);
  const f = new Float32Array(2);
  for (let d = 0; d < outSize; d++) {
    f[0] = (d + 0.5) * scale - 0.5; // float, as `(float)((dx+0.5)*scale_x - 0.5)`
    let s = Math.floor(f[0]);
    f[0] = f[0] - s;
    let fx = f[0];
    if (s < 0) (fx = 0), (s = 0);
    if (s >= inSize - 1) (fx = 0), (s = inSize - 1);
    f[1] = 1 - fx; // 1.f - fx in float
    a0[d] = roundEven(f[1] * COEF_SCALE);
    a1[d] = roundEven(fx * COEF_SCALE);
    i0[d] = s;
    i1[d] = Math.min(s + 1, inSize - 1);
  }
  return { i0, i1, a0, a1 };
}

/**
 * OpenCV `cv2.resize(INTER_LINEAR)` of an 8-bit image (decoded image → original size, §8.5): half-pixel
 * centres, 11-bit weights, horizontal pass into ints, vertical pass with rounding by 2²¹ and a 22-bit shift (the
 * generic C++ path; OpenCV's SIMD path rounds its partial products differently and can differ by 1).
 * An exact 2× downscale is INTER_AREA in OpenCV (a rounded 2×2 mean), replicated here.
 */
export function resizeBilinearCv(t: Tensor<"U8">, outH: number, outW: number): Tensor<"U8"> {
  const [H, W, C] = imageDims(t);
  const shape = t.shape.length === 2 ? [outH, outW] : [outH, outW, C];
  const src = t.data, out = new Uint8Array(outH * outW * C);
  if (outH === H && outW === W) return { dtype: "U8", shape, data: src.slice() };
  if (W === 2 * outW && H === 2 * outH) {
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        for (let c = 0; c < C; c++) {
          const p = ((2 * y) * W + 2 * x) * C + c;
          out[(y * outW + x) * C + c] = (src[p] + src[p + C] + src[p + W * C] + src[p + W * C + C] + 2) >> 2;
        }
      }
    }
    return { dtype: "U8", shape, data: out };
  }
  // Columns: OpenCV clamps the tap (and zeroes its fraction) at the borders; rows: it keeps the unclamped
  // fraction for the weights and clamps only the rows it fetches.
  const xs = cvHorizontalTaps(W, outW), yw = cvVerticalTaps(H, outH);
  const hrow = (r: number, buf: Int32Array) => {
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < C; c++) {
        buf[x * C + c] = src[(r * W + xs.i0[x]) * C + c] * xs.a0[x] +
          src[(r * W + xs.i1[x]) * C + c] * xs.a1[x];
      }
    }
  };
  const b0 = new Int32Array(outW * C), b1 = new Int32Array(outW * C);
  for (let y = 0; y < outH; y++) {
    hrow(yw.r0[y], b0);
    hrow(yw.r1[y], b1);
    const w0 = yw.b0[y], w1 = yw.b1[y];
    for (let i = 0; i < outW * C; i++) {
      const v = Math.floor((b0[i] * w0 + b1[i] * w1 + (1 << 21)) / (1 << 22));
      out[y * outW * C + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { dtype: "U8", shape, data: out };
}

/** OpenCV vertical linear taps: beta from the unclamped fractional row, fetched rows clamped to the image. */
function cvVerticalTaps(inSize: number, outSize: number) {
  const scale = 1 / (outSize / inSize);
  const r0 = new Int32Array(outSize),
    r1 = new Int32Array(outSize),
    b0 = new Int32Array(outSize),
    b1 = new Int32Array(outSize);
  const f = new Float32Array(2);
  for (let d = 0; d < outSize; d++) {
    f[0] = (d + 0.5) * scale - 0.5;
    const s = Math.floor(f[0]);
    f[0] = f[0] - s;
    f[1] = 1 - f[0];
    b0[d] = roundEven(f[1] * COEF_SCALE);
    b1[d] = roundEven(f[0] * COEF_SCALE);
    r0[d] = Math.min(Math.max(s, 0), inSize - 1);
    r1[d] = Math.min(Math.max(s + 1, 0), inSize - 1);
  }
  return { r0, r1, b0, b1 };
}

/** OpenCV `getGaussianKernel(n, sigma, CV_64F)`. */
export function gaussianKernel(n: number, sigma: number): Float64Array {
  const k = new Float64Array(n);
  const s2 = -0.5 / (sigma * sigma);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = i - (n - 1) * 0.5;
    k[i] = Math.exp(s2 * x * x);
    sum += k[i];
  }
  for (let i = 0; i < n; i++) k[i] *= 1 / sum;
  return k;
}

/** OpenCV BORDER_REFLECT_101 index (…, 2, 1 | 0, 1, 2, …, n−1 | n−2, …). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/**
 * `cv2.GaussianBlur(D, (5, 5), sigma)` of a float64 single-channel map [H, W] (§8.5): separable, row filter
 * first (taps summed left to right), then the symmetric column filter (centre, then ±1, then ±2 pairs),
 * border reflect-101, double arithmetic.
 */
export function gaussianBlur5(src: Float64Array, H: number, W: number, sigma = 3): Float64Array {
  const k = gaussianKernel(5, sigma);
  const tmp = new Float64Array(H * W), out = new Float64Array(H * W);
  const xi = new Int32Array((W + 4) * 1);
  for (let x = -2; x < W + 2; x++) xi[x + 2] = reflect101(x, W);
  for (let y = 0; y < H; y++) {
    const o = y * W;
    for (let x = 0; x < W; x++) {
      let s = 0;
      for (let t = 0; t < 5; t++) s += k[t] * src[o + xi[x + t]];
      tmp[o + x] = s;
    }
  }
  for (let y = 0; y < H; y++) {
    const m2 = reflect101(y - 2, H) * W,
      m1 = reflect101(y - 1, H) * W,
      p1 = reflect101(y + 1, H) * W,
      p2 = reflect101(y + 2, H) * W;
    const o = y * W;
    for (let x = 0; x < W; x++) {
      let s = k[2] * tmp[o + x];
      s += k[3] * (tmp[p1 + x] + tmp[m1 + x]);
      s += k[4] * (tmp[p2 + x] + tmp[m2 + x]);
      out[o + x] = s;
    }
  }
  return out;
}

/** Argmax over the leading axis of [L, ...rest] → I32 [...rest]; ties → the lowest index. */
export function argmax0(t: Tensor<"F32">): Tensor<"I32"> {
  const L = t.shape[0], P = t.data.length / L;
  const best = new Float32Array(P).fill(-Infinity), idx = new Int32Array(P);
  for (let l = 0; l < L; l++) {
    const o = l * P;
    for (let p = 0; p < P; p++) {
      const v = t.data[o + p];
      if (v > best[p]) (best[p] = v), (idx[p] = l);
    }
  }
  return i32(t.shape.slice(1), idx);
}

/** Rows of [N, ...] at `indices` → [indices.length, ...] (copy). */
export function gather<D extends "F32" | "I32" | "U8">(t: Tensor<D>, indices: ArrayLike<number>): Tensor<D> {
  const N = t.shape[0], inner = N === 0 ? 0 : t.data.length / N;
  const Ctor = (t.data as any).constructor;
  const out = new Ctor(indices.length * inner);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (r < 0 || r >= N || !Number.isInteger(r)) {
      throw new Error(`gather: index ${r} out of range 0..${N - 1}`);
    }
    out.set((t.data as any).subarray(r * inner, (r + 1) * inner), i * inner);
  }
  return { dtype: t.dtype, shape: [indices.length, ...t.shape.slice(1)], data: out } as Tensor<D>;
}
