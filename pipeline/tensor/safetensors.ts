/**
 * safetensors reader/writer (the format of model weights and of every tensor artifact, so numpy/torch
 * users can open our cache). Validates the header against the file size and refuses anything that is
 * not safetensors (e.g. pickled .bin/.ckpt) without ever unpickling it.
 * @module
 */
import * as fs from "node:fs";
import { UserError } from "../errors.ts";
import { type DType, numel, type Tensor, type TypedArrayOf } from "./tensor.ts";

/** Error with a message meant for the user: names the file and what was expected. */
export class SafetensorsError extends UserError {
  override name = "SafetensorsError";
}

const BYTES: Record<DType, number> = { F32: 4, F16: 2, I32: 4, U8: 1, I64: 8 };
/** Header dtype names we accept (BF16 is widened to F32 on read). */
const ACCEPTED = new Set(["F32", "F16", "BF16", "I32", "U8", "I64"]);

/** One entry of a safetensors header. */
export interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** A parsed safetensors file: header plus raw bytes, tensors decoded lazily. */
export interface SafetensorsFile {
  path: string;
  metadata: Record<string, string>;
  infos: Map<string, TensorInfo>;
  /** Decode one tensor (BF16 widened to F32). Throws naming the file and key if absent. */
  get(name: string): Tensor;
  /** Decode one tensor as F32 (F16/BF16/ints widened). */
  getF32(name: string): Tensor<"F32">;
  keys(): string[];
}

function looksPickled(bytes: Uint8Array): boolean {
  // zip (torch >= 1.6 .bin/.pt/.ckpt) or a raw pickle protocol marker.
  return (bytes[0] === 0x50 && bytes[1] === 0x4b) || (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5);
}

/**
 * Validate a safetensors header. `head` holds at least the file's first 8 bytes (and the whole header when it
 * is valid); `fileSize` is the size of the whole file; `path` is used in error messages only.
 */
export function parseSafetensorsHeader(
  head: Uint8Array,
  fileSize: number,
  path: string,
): { infos: Map<string, TensorInfo>; metadata: Record<string, string>; dataStart: number } {
  if (head.length >= 2 && looksPickled(head)) {
    throw new SafetensorsError(
      `${path}: this is a pickled PyTorch file (.bin/.ckpt/.pt), not safetensors; refusing to unpickle it — convert it to .safetensors first`,
    );
  }
  if (fileSize < 8) throw new SafetensorsError(`${path}: truncated safetensors file (${fileSize} bytes, need an 8-byte header length)`);
  const hlen = headerLength(head);
  if (hlen <= 0 || 8 + hlen > fileSize || hlen > 100_000_000 || 8 + hlen > head.length) {
    throw new SafetensorsError(`${path}: not a valid safetensors file (header length ${hlen} vs file size ${fileSize})`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + hlen)));
  } catch {
    throw new SafetensorsError(`${path}: not a valid safetensors file (header is not JSON)`);
  }
  const dataStart = 8 + hlen;
  const dataLen = fileSize - dataStart;
  const infos = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const info = v as TensorInfo;
    if (!info || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets) || !ACCEPTED.has(info.dtype)) {
      throw new SafetensorsError(`${path}: tensor "${k}" has an unsupported entry (dtype ${JSON.stringify(info?.dtype)}; expected one of ${[...ACCEPTED].join(", ")})`);
    }
    const [a, b] = info.data_offsets;
    const elt = info.dtype === "BF16" ? 2 : BYTES[info.dtype as DType];
    if (b > dataLen) {
      throw new SafetensorsError(`${path}: truncated — tensor "${k}" ends at byte ${b} of the data section but the file has only ${dataLen}`);
    }
    if (a < 0 || b < a || (b - a) !== numel(info.shape) * elt) {
      throw new SafetensorsError(`${path}: tensor "${k}" has offsets [${a},${b}] inconsistent with shape [${info.shape}] ${info.dtype}`);
    }
    infos.set(k, info);
  }
  return { infos, metadata, dataStart };
}

/** The header length field (first 8 bytes, little-endian u64); 0 when fewer than 8 bytes are given. */
export function headerLength(head: Uint8Array): number {
  if (head.length < 8) return 0;
  return Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
}

/** Bytes per element of a stored dtype. */
export function bytesPerElement(dtype: DType): number {
  return BYTES[dtype];
}

/** A typed tensor over freshly copied raw bytes of a stored dtype (BF16 widened to F32). */
export function tensorFromBytes(dtype: string, shape: number[], raw: Uint8Array, where: string): Tensor {
  // Always a fresh, aligned buffer (a Node Buffer's slice() is a view of the whole file).
  const own = new Uint8Array(raw.length);
  own.set(raw);
  const buf = own.buffer;
  switch (dtype) {
    case "F32":
      return { dtype: "F32", shape, data: new Float32Array(buf) };
    case "F16":
      return { dtype: "F16", shape, data: new Uint16Array(buf) };
    case "BF16": {
      const src = new Uint16Array(buf);
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return { dtype: "F32", shape, data: new Float32Array(out.buffer) };
    }
    case "I32":
      return { dtype: "I32", shape, data: new Int32Array(buf) };
    case "U8":
      return { dtype: "U8", shape, data: new Uint8Array(buf) };
    case "I64":
      return { dtype: "I64", shape, data: new BigInt64Array(buf) };
  }
  throw new SafetensorsError(`${where}: unsupported dtype ${dtype}`);
}

/** Parse a safetensors buffer; `path` is used in error messages only. */
export function parseSafetensors(bytes: Uint8Array, path: string): SafetensorsFile {
  const { infos, metadata, dataStart } = parseSafetensorsHeader(bytes, bytes.length, path);
  const get = (name: string): Tensor => {
    const info = infos.get(name);
    if (!info) throw new SafetensorsError(`${path}: missing tensor "${name}"`);
    const [a, b] = info.data_offsets;
    return tensorFromBytes(info.dtype, info.shape, bytes.subarray(dataStart + a, dataStart + b), `${path}: tensor "${name}"`);
  };
  const getF32 = (name: string): Tensor<"F32"> => {
    const t = get(name);
    if (t.dtype === "F32") return t as Tensor<"F32">;
    const out = new Float32Array(t.data.length);
    if (t.dtype === "F16") {
      const f16 = new Float16ArrayShim(t.data as Uint16Array);
      f16.into(out);
    } else if (t.dtype === "I64") {
      const d = t.data as BigInt64Array;
      for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
    } else out.set(t.data as ArrayLike<number>);
    return { dtype: "F32", shape: t.shape, data: out };
  };
  return { path, metadata, infos, get, getF32, keys: () => [...infos.keys()] };
}

/** Fast F16 → F32 decode through a lookup table (65536 entries, built once). */
class Float16ArrayShim {
  static table: Float32Array | null = null;
  constructor(private bits: Uint16Array) {}
  into(out: Float32Array): void {
    if (!Float16ArrayShim.table) {
      const t = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) {
        const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
        t[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
      }
      Float16ArrayShim.table = t;
    }
    const t = Float16ArrayShim.table;
    for (let i = 0; i < this.bits.length; i++) out[i] = t[this.bits[i]];
  }
}

/** Read and validate a safetensors file from disk. Errors name the file. */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  return parseSafetensors(bytes, path);
}

/** Serialize named tensors to safetensors bytes (keys sorted, header padded to 8 bytes). */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const n of names) {
    const t = tensors[n];
    const len = numel(t.shape) * BYTES[t.dtype];
    if (t.data.byteLength !== len) throw new Error(`safetensors: "${n}" shape [${t.shape}] does not match its data`);
    header[n] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + len] };
    off += len;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const n of names) {
    const d = tensors[n].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    p += d.byteLength;
  }
  return out;
}

/** Typed view helper for callers that know the dtype. */
export function asType<D extends DType>(t: Tensor, dtype: D, where: string): Tensor<D> {
  if (t.dtype !== dtype) throw new SafetensorsError(`${where}: expected ${dtype}, found ${t.dtype}`);
  return t as Tensor<D>;
}
export type { TypedArrayOf };
