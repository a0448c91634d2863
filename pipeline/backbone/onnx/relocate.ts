/**
 * Re-point the external-data initializers of an encoded ONNX model into a {@link WeightStore}: each tensor's
 * bytes are read from the file the model names, put into the store (found there when identical bytes are already
 * stored) and the TensorProto's external_data entries are rewritten to the store's location and offset. Used for
 * the optimized graphs onnxruntime writes, so that their weights join the model's one store instead of a private
 * side file per variant.
 *
 * A minimal protobuf reader: only the fields on the path ModelProto.graph → GraphProto.initializer →
 * TensorProto.external_data are decoded; everything else is copied byte for byte.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { WeightStore } from "./weight_store.ts";

/** One protobuf field of an encoded message. */
export interface Field {
  no: number;
  wire: number;
  /** Whole field (tag included). */
  start: number;
  end: number;
  /** Payload of a length-delimited field. */
  body?: [number, number];
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0, mul = 1;
  for (;;) {
    const x = b[pos++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, pos];
    mul *= 128;
  }
}

/** The fields of the message in `b[from, to)`, in order. */
export function fields(b: Uint8Array, from = 0, to = b.length): Field[] {
  const out: Field[] = [];
  let pos = from;
  while (pos < to) {
    const start = pos;
    const [tag, p1] = readVarint(b, pos);
    pos = p1;
    const no = Math.floor(tag / 8), wire = tag & 7;
    let body: [number, number] | undefined;
    if (wire === 0) pos = readVarint(b, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(b, pos);
      body = [p2, p2 + len];
      pos = p2 + len;
    } else throw new Error(`onnx relocate: unsupported wire type ${wire}`);
    out.push({ no, wire, start, end: pos, body });
  }
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

function lenField(no: number, payload: Uint8Array[]): Uint8Array[] {
  const len = payload.reduce((a, p) => a + p.length, 0);
  return [Uint8Array.from([...varint(no * 8 + 2), ...varint(len)]), ...payload];
}

const dec = new TextDecoder(), enc = new TextEncoder();

function entry(key: string, value: string): Uint8Array[] {
  return lenField(13, [...lenField(1, [enc.encode(key)]), ...lenField(2, [enc.encode(value)])]);
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

/** Rewrite one TensorProto; returns null when it holds its data inline. */
function relocateTensor(
  b: Uint8Array,
  f: Field,
  dir: string,
  store: WeightStore,
  files: Map<string, number>,
) {
  const [s, e] = f.body!;
  const tf = fields(b, s, e);
  const ext: Record<string, string> = {};
  for (const x of tf.filter((x) => x.no === 13)) {
    const kv = fields(b, x.body![0], x.body![1]);
    const k = kv.find((y) => y.no === 1), v = kv.find((y) => y.no === 2);
    if (k && v) ext[dec.decode(b.subarray(...k.body!))] = dec.decode(b.subarray(...v.body!));
  }
  if (!ext.location) return null;
  const file = path.join(dir, ext.location);
  let fd = files.get(file);
  if (fd === undefined) files.set(file, fd = fs.openSync(file, "r"));
  const move = (offset: number, length: number) => {
    const data = new Uint8Array(length);
    let r = 0;
    while (r < length) r += fs.readSync(fd!, data, r, length - r, offset + r);
    return store.put(data);
  };
  const ref = move(Number(ext.offset ?? 0), Number(ext.length ?? fs.fstatSync(fd).size));
  const entries: Uint8Array[] = [
    ...entry("location", ref.location),
    ...entry("offset", String(ref.offset)),
    ...entry("length", String(ref.length)),
  ];
  for (const [k, v] of Object.entries(ext)) {
    if (["location", "offset", "length"].includes(k)) continue;
    // Weights onnxruntime pre-packed for its kernels: "<kernel>+<hash>|offset;length;<flag>" in the same file.
    const m = /^prepacked_\d+$/.test(k) ? /^([^|]*)\|(\d+);(\d+);(.*)$/.exec(v) : null;
    if (!m) throw new Error(`onnx relocate: unsupported external_data entry ${k}=${v}`);
    const p = move(Number(m[2]), Number(m[3]));
    entries.push(...entry(k, `${m[1]}|${p.offset};${p.length};${m[4]}`));
  }
  const kept = tf.filter((x) => x.no !== 13 && x.no !== 14).map((x) => b.subarray(x.start, x.end));
  return lenField(5, [...kept, ...entries, Uint8Array.from([14 * 8, 1])]); // data_location = EXTERNAL
}

/**
 * Move the external data of `model` (encoded bytes; locations relative to `dir`) into `store`; returns the
 * re-encoded model. The store must live in `dir` (locations are recorded relative to it).
 */
export function relocateExternalData(model: Uint8Array, dir: string, store: WeightStore): Uint8Array {
  const files = new Map<string, number>();
  try {
    const out: Uint8Array[] = [];
    for (const mf of fields(model)) {
      if (mf.no !== 7 || !mf.body) {
        out.push(model.subarray(mf.start, mf.end));
        continue;
      }
      const graph: Uint8Array[] = [];
      for (const gf of fields(model, mf.body[0], mf.body[1])) {
        const moved = gf.no === 5 && gf.body ? relocateTensor(model, gf, dir, store, files) : null;
        if (moved) graph.push(...moved);
        else graph.push(model.subarray(gf.start, gf.end));
      }
      out.push(...lenField(7, graph));
    }
    return join(out);
  } finally {
    for (const fd of files.values()) fs.closeSync(fd);
  }
}
