/**
 * A minimal hand-written encoder for the ONNX protobuf messages we emit (ModelProto, GraphProto, NodeProto,
 * TensorProto, ValueInfoProto, AttributeProto). Field numbers follow `onnx/onnx.proto` (IR version 8).
 *
 * Messages are built as {@link Chunks}: a list of byte parts plus their total length, so nesting a large
 * message (raw tensor data) never copies it; only {@link flatten} or a streaming file write touches the bytes.
 * @module
 */

/** Encoded protobuf bytes kept as a list of parts (no copy on nesting). */
export interface Chunks {
  parts: Uint8Array[];
  length: number;
}

/** ONNX TensorProto.DataType values we use. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;

/** ONNX AttributeProto.AttributeType values. */
const ATTR_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

const enc = new TextEncoder();

/** Little protobuf writer: fields appended in order, nested messages added as parts. */
class Writer {
  parts: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length) {
      const b = Uint8Array.from(this.scratch);
      this.parts.push(b);
      this.length += b.length;
      this.scratch = [];
    }
  }

  varint(v: number | bigint): void {
    // Negative int64 values are encoded as 10-byte two's complement, as protobuf requires.
    let x = BigInt.asUintN(64, BigInt(v));
    if (x < 0x80n) {
      this.scratch.push(Number(x));
      return;
    }
    while (x >= 0x80n) {
      this.scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.scratch.push(Number(x));
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): void {
    this.tag(field, 0);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.scratch.push(x);
  }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    this.flushScratch();
    this.parts.push(data);
    this.length += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, enc.encode(s));
  }

  message(field: number, m: Chunks): void {
    this.tag(field, 2);
    this.varint(m.length);
    this.flushScratch();
    for (const p of m.parts) this.parts.push(p);
    this.length += m.length;
  }

  packedInts(field: number, vs: readonly (number | bigint)[]): void {
    const inner = new Writer();
    for (const v of vs) inner.varint(v);
    this.message(field, inner.done());
  }

  packedFloats(field: number, vs: readonly number[]): void {
    const b = new Uint8Array(4 * vs.length);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(4 * i, v, true));
    this.bytes(field, b);
  }

  done(): Chunks {
    this.flushScratch();
    return { parts: this.parts, length: this.length };
  }
}

/** Concatenate chunks into one buffer (only for models small enough to hold twice in memory). */
export function flatten(c: Chunks): Uint8Array {
  const out = new Uint8Array(c.length);
  let o = 0;
  for (const p of c.parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A dimension: fixed size or a symbolic name (dynamic axis). */
export type Dim = number | string;

/** TensorProto: raw little-endian data inline, or a reference to an external data file. */
export interface TensorSpec {
  name: string;
  dataType: number;
  dims: readonly number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

/** Encode a TensorProto. */
export function tensorProto(t: TensorSpec): Chunks {
  const w = new Writer();
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, t.dataType);
  w.string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => {
      const e = new Writer();
      e.string(1, k);
      e.string(2, v);
      return e.done();
    };
    w.message(13, entry("location", t.external.location));
    w.message(13, entry("offset", String(t.external.offset)));
    w.message(13, entry("length", String(t.external.length)));
    w.int(14, 1); // data_location = EXTERNAL
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w.done();
}

/** Encode a ValueInfoProto for a tensor with element type and (possibly symbolic) shape. */
export function valueInfo(name: string, elemType: number, shape: readonly Dim[] | null): Chunks {
  const tt = new Writer();
  tt.int(1, elemType);
  if (shape) {
    const sh = new Writer();
    for (const d of shape) {
      const dim = new Writer();
      if (typeof d === "number") dim.int(1, d);
      else dim.string(2, d);
      sh.message(1, dim.done());
    }
    tt.message(2, sh.done());
  }
  const type = new Writer();
  type.message(1, tt.done());
  const w = new Writer();
  w.string(1, name);
  w.message(2, type.done());
  return w.done();
}

/** Attribute values: number → INT if integral and `intAttr`, else FLOAT; arrays likewise. */
export type AttrValue =
  | { kind: "int"; v: number }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string }
  | { kind: "ints"; v: readonly number[] }
  | { kind: "floats"; v: readonly number[] }
  | { kind: "strings"; v: readonly string[] }
  | { kind: "tensor"; v: TensorSpec };

/** Encode an AttributeProto. */
export function attribute(name: string, a: AttrValue): Chunks {
  const w = new Writer();
  w.string(1, name);
  switch (a.kind) {
    case "float":
      w.float(2, a.v);
      w.int(20, ATTR_TYPE.FLOAT);
      break;
    case "int":
      w.int(3, a.v);
      w.int(20, ATTR_TYPE.INT);
      break;
    case "string":
      w.string(4, a.v);
      w.int(20, ATTR_TYPE.STRING);
      break;
    case "tensor":
      w.message(5, tensorProto(a.v));
      w.int(20, ATTR_TYPE.TENSOR);
      break;
    case "floats":
      w.packedFloats(7, a.v);
      w.int(20, ATTR_TYPE.FLOATS);
      break;
    case "ints":
      w.packedInts(8, a.v);
      w.int(20, ATTR_TYPE.INTS);
      break;
    case "strings":
      for (const s of a.v) w.string(9, s);
      w.int(20, ATTR_TYPE.STRINGS);
      break;
  }
  return w.done();
}

/** One graph node. */
export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  domain?: string;
  attrs: Record<string, AttrValue>;
}

/** Encode a NodeProto. */
export function nodeProto(n: NodeSpec): Chunks {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attrs)) w.message(5, attribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w.done();
}

/** Everything a GraphProto + ModelProto needs. */
export interface ModelSpec {
  graphName: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorSpec[];
  inputs: readonly Chunks[];
  outputs: readonly Chunks[];
  opsets: readonly { domain: string; version: number }[];
  irVersion: number;
  producer: string;
  docString?: string;
}

/** Encode a ModelProto (graph included). */
export function modelProto(m: ModelSpec): Chunks {
  const g = new Writer();
  for (const n of m.nodes) g.message(1, nodeProto(n));
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, tensorProto(t));
  if (m.docString) g.string(10, m.docString);
  for (const i of m.inputs) g.message(11, i);
  for (const o of m.outputs) g.message(12, o);
  const w = new Writer();
  w.int(1, m.irVersion);
  w.string(2, m.producer);
  w.string(3, "1");
  w.message(7, g.done());
  for (const o of m.opsets) {
    const op = new Writer();
    if (o.domain) op.string(1, o.domain);
    op.int(2, o.version);
    w.message(8, op.done());
  }
  return w.done();
}
