/**
 * The one tensor type of the project: a shape plus a flat typed array (row-major).
 * Conversions to/from onnxruntime tensors live in `pipeline/backbone/runtime.ts`; to/from
 * safetensors files in `./safetensors.ts`.
 * @module
 */

/** Element types a Tensor can hold, named as in safetensors. */
export type DType = "F32" | "F16" | "I32" | "U8" | "I64";

/** Typed-array storage per dtype (F16 is stored as raw Uint16 bits). */
export type TypedArrayOf<D extends DType> = D extends "F32" ? Float32Array
  : D extends "F16" ? Uint16Array
  : D extends "I32" ? Int32Array
  : D extends "U8" ? Uint8Array
  : D extends "I64" ? BigInt64Array
  : never;

/** A dense row-major tensor. */
export interface Tensor<D extends DType = DType> {
  /** Element type. */
  readonly dtype: D;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** The elements, row-major. */
  readonly data: TypedArrayOf<D>;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

function check(shape: readonly number[], length: number): void {
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`tensor: bad dimension ${s} in shape [${shape}]`);
  }
  if (numel(shape) !== length) {
    throw new Error(`tensor: shape [${shape}] needs ${numel(shape)} elements, data has ${length}`);
  }
}

/** A float32 tensor over `data` (zeros of the shape when omitted). */
export function f32(shape: readonly number[], data?: Float32Array): Tensor<"F32"> {
  const d = data ?? new Float32Array(numel(shape));
  check(shape, d.length);
  return { dtype: "F32", shape: [...shape], data: d };
}

/** An int32 tensor (labels, indices). */
export function i32(shape: readonly number[], data?: Int32Array): Tensor<"I32"> {
  const d = data ?? new Int32Array(numel(shape));
  check(shape, d.length);
  return { dtype: "I32", shape: [...shape], data: d };
}

/** A uint8 tensor (images, label maps, masks). */
export function u8(shape: readonly number[], data?: Uint8Array): Tensor<"U8"> {
  const d = data ?? new Uint8Array(numel(shape));
  check(shape, d.length);
  return { dtype: "U8", shape: [...shape], data: d };
}

/** Same data, new shape (one dimension may be -1). No copy. */
export function reshape<D extends DType>(t: Tensor<D>, shape: readonly number[]): Tensor<D> {
  const n = t.data.length;
  const known = shape.filter((s) => s !== -1);
  const rest = n / numel(known);
  const s = shape.map((x) => (x === -1 ? rest : x));
  check(s, n);
  return { dtype: t.dtype, shape: s, data: t.data };
}

/** View of row `i` along the first axis, shape without that axis (no copy). */
export function row<D extends DType>(t: Tensor<D>, i: number): Tensor<D> {
  const r = rows(t, i, i + 1);
  return { dtype: r.dtype, shape: r.shape.slice(1), data: r.data };
}

/** View of rows i..j-1 along the first axis (no copy: a subarray of the same buffer). */
export function rows<D extends DType>(t: Tensor<D>, i: number, j: number): Tensor<D> {
  const n = t.shape[0];
  if (i < 0 || j > n || i > j) throw new Error(`tensor: rows [${i},${j}) out of range 0..${n}`);
  const inner = numel(t.shape.slice(1));
  const data = (t.data as any).subarray(i * inner, j * inner) as TypedArrayOf<D>;
  return { dtype: t.dtype, shape: [j - i, ...t.shape.slice(1)], data };
}

/** Concatenate along the first axis (copies). */
export function concat0<D extends DType>(ts: readonly Tensor<D>[]): Tensor<D> {
  if (ts.length === 0) throw new Error("tensor: concat0 of nothing");
  const inner = ts[0].shape.slice(1);
  let rows = 0;
  for (const t of ts) {
    if (t.dtype !== ts[0].dtype || t.shape.slice(1).join() !== inner.join()) {
      throw new Error(`tensor: concat0 shape mismatch [${t.shape}] vs [${ts[0].shape}]`);
    }
    rows += t.shape[0];
  }
  const Ctor = (ts[0].data as any).constructor;
  const out = new Ctor(rows * numel(inner));
  let off = 0;
  for (const t of ts) {
    out.set(t.data, off);
    off += t.data.length;
  }
  return { dtype: ts[0].dtype, shape: [rows, ...inner], data: out };
}

/** Largest |a-b| over two float tensors of identical shape. */
export function maxAbsDiff(a: Tensor<"F32">, b: Tensor<"F32">): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`tensor: shape [${a.shape}] vs [${b.shape}]`);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Largest |x|. */
export function maxAbs(a: Tensor<"F32">): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]));
  return m;
}

/** IEEE half (raw bits) → float32. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
/** float32 → IEEE half bits (round to nearest even). */
export function floatToHalf(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** Widen any float tensor to F32 (F16 bits are decoded). */
export function toF32(t: Tensor): Tensor<"F32"> {
  if (t.dtype === "F32") return t as Tensor<"F32">;
  const out = new Float32Array(t.data.length);
  if (t.dtype === "F16") {
    const d = t.data as Uint16Array;
    for (let i = 0; i < d.length; i++) out[i] = halfToFloat(d[i]);
  } else if (t.dtype === "I64") {
    const d = t.data as BigInt64Array;
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  } else {
    out.set(t.data as ArrayLike<number>);
  }
  return { dtype: "F32", shape: t.shape, data: out };
}
