/**
 * GraphCore: the bookkeeping half of the ONNX graph builder — graph inputs/outputs with symbolic dims,
 * initializers (inline or streamed to an external-data side file), constants, generic `op()` and the
 * elementwise/shape ops every model needs. Neural-network layers live in `./builder.ts` (GraphBuilder).
 * @module
 */
import * as fs from "node:fs";
import { floatToHalf, halfToFloat, numel, type Tensor } from "../../tensor/tensor.ts";
import type { WeightStore } from "./weight_store.ts";
import {
  type AttrValue,
  type Chunks,
  type Dim,
  modelProto,
  type NodeSpec,
  ONNX_DTYPE,
  type TensorSpec,
  valueInfo,
} from "./proto.ts";

/** Element types of graph values. */
export type ElemType = "F32" | "F16" | "I64" | "I32" | "BOOL";

const ELEM_CODE: Record<ElemType, number> = {
  F32: ONNX_DTYPE.FLOAT,
  F16: ONNX_DTYPE.FLOAT16,
  I64: ONNX_DTYPE.INT64,
  I32: ONNX_DTYPE.INT32,
  BOOL: ONNX_DTYPE.BOOL,
};

/** Default opset of the ai.onnx domain (LayerNormalization needs ≥ 17). */
export const OPSET = 17;

/** Where large initializers go instead of the protobuf (needed above the 2 GB protobuf limit). */
export interface ExternalDataOptions {
  /** Absolute path of the side file to write (created/truncated by the builder). */
  path: string;
  /** Name recorded in the model, resolved by ORT relative to the .onnx file's directory. */
  location: string;
  /** Initializers of at least this many bytes go to the side file (default 1024). */
  threshold?: number;
}

/** Options of a graph builder. */
export interface GraphOptions {
  /** Graph name recorded in the model. */
  name?: string;
  /** Float type of weights and internal computation (default F32). Graph IO stays as declared. */
  dtype?: "F32" | "F16";
  /** Stream large initializers to this side file. */
  externalData?: ExternalDataOptions;
  /**
   * Attention kernel: "mha" = onnxruntime's fused com.microsoft MultiHeadAttention (default),
   * "matmul" = plain MatMul/Softmax/MatMul ops (portable to any ONNX runtime).
   */
  attention?: "mha" | "matmul";
  /**
   * Put initializers of at least `threshold` bytes (default 1024) into this shared weights store instead
   * (identical bytes are stored once for all graphs of the store).
   */
  weightStore?: { store: WeightStore; threshold?: number };
}

/** Attribute shorthand accepted by `op()`: numbers are INT when integral unless wrapped with `floatAttr`. */
export type Attr = number | string | readonly number[] | readonly string[] | AttrValue;

/** Force a numeric attribute to be encoded as FLOAT (e.g. `epsilon`, `alpha`). */
export function floatAttr(v: number | readonly number[]): AttrValue {
  return Array.isArray(v) ? { kind: "floats", v: v as number[] } : { kind: "float", v: v as number };
}

function toAttr(a: Attr): AttrValue {
  if (typeof a === "number") return Number.isInteger(a) ? { kind: "int", v: a } : { kind: "float", v: a };
  if (typeof a === "string") return { kind: "string", v: a };
  if (Array.isArray(a)) {
    if (a.length && typeof a[0] === "string") return { kind: "strings", v: a as string[] };
    const nums = a as number[];
    return nums.every(Number.isInteger) ? { kind: "ints", v: nums } : { kind: "floats", v: nums };
  }
  return a as AttrValue;
}

function bytesOf(t: Tensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Bookkeeping part of the builder; see GraphBuilder for the layer helpers. */
export class GraphCore {
  /** Float type of weights and computation. */
  readonly dtype: "F32" | "F16";
  /** Attention kernel used by GraphBuilder.attention. */
  readonly attentionImpl: "mha" | "matmul";
  protected readonly nodes: NodeSpec[] = [];
  protected readonly inits: TensorSpec[] = [];
  protected readonly inputs: { name: string; type: ElemType; shape: Dim[] }[] = [];
  protected readonly outputs: { name: string; type: ElemType; shape: Dim[] | null }[] = [];
  private readonly used = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;
  private prefix: string[] = [];
  private readonly name: string;
  private ext?: ExternalDataOptions & { fd: number; offset: number };
  private readonly store?: { store: WeightStore; threshold?: number };
  /** Bytes of initializer data written so far (inline + external). */
  weightBytes = 0;

  constructor(opts: GraphOptions = {}) {
    this.dtype = opts.dtype ?? "F32";
    this.attentionImpl = opts.attention ?? "mha";
    this.name = opts.name ?? "graph";
    this.store = opts.weightStore;
    if (opts.externalData) {
      const fd = fs.openSync(opts.externalData.path, "w");
      this.ext = { ...opts.externalData, fd, offset: 0 };
    }
  }

  /** A fresh value name under the current scope. */
  fresh(hint = "v"): string {
    const base = [...this.prefix, hint].join("/");
    let n = base;
    while (this.used.has(n)) n = `${base}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  /** Run `fn` with node/value names prefixed by `name` (readable graphs, e.g. "up_blocks.2"). */
  scope<T>(name: string, fn: () => T): T {
    this.prefix.push(name);
    try {
      return fn();
    } finally {
      this.prefix.pop();
    }
  }

  /** Declare a graph input; string dims are symbolic (dynamic), e.g. ["batch", 4, "h", "w"]. */
  input(name: string, type: ElemType, shape: readonly Dim[]): string {
    if (this.used.has(name)) throw new Error(`graph: duplicate value name ${name}`);
    this.used.add(name);
    this.inputs.push({ name, type, shape: [...shape] });
    return name;
  }

  /** Expose `value` as graph output `name` (an Identity node renames it). */
  output(name: string, value: string, type: ElemType = "F32", shape: readonly Dim[] | null = null): string {
    if (this.used.has(name)) throw new Error(`graph: duplicate value name ${name}`);
    this.used.add(name);
    this.nodes.push({ opType: "Identity", inputs: [value], outputs: [name], name: `out:${name}`, attrs: {} });
    this.outputs.push({ name, type, shape: shape ? [...shape] : null });
    return name;
  }

  /** Number of graph outputs declared so far. */
  get outputCount(): number {
    return this.outputs.length;
  }

  /**
   * Add a tensor as an initializer. Float tensors are stored in the builder's dtype (F32 or F16);
   * I64/I32 as given (`keepType` keeps floats as given too). Large ones are streamed to the external-data file when configured.
   */
  initializer(t: Tensor, hint = "w", keepType = false): string {
    let data: Uint8Array;
    let code: number;
    if (keepType && (t.dtype === "F32" || t.dtype === "F16")) {
      code = ELEM_CODE[t.dtype];
      data = bytesOf(t);
    } else if (t.dtype === "F32" || t.dtype === "F16") {
      code = ELEM_CODE[this.dtype];
      data = this.floatBytes(t);
    } else if (t.dtype === "I64" || t.dtype === "I32") {
      code = ELEM_CODE[t.dtype];
      data = bytesOf(t);
    } else throw new Error(`graph: unsupported initializer dtype ${t.dtype}`);
    const name = this.fresh(hint);
    const spec: TensorSpec = { name, dataType: code, dims: [...t.shape] };
    if (this.store && data.byteLength >= (this.store.threshold ?? 1024)) {
      spec.external = this.store.store.put(data);
    } else if (this.ext && data.byteLength >= (this.ext.threshold ?? 1024)) {
      // Align each tensor to 4 KiB so ORT can memory-map it without copying.
      const pad = (4096 - (this.ext.offset % 4096)) % 4096;
      if (pad) fs.writeSync(this.ext.fd, new Uint8Array(pad), 0, pad, this.ext.offset);
      this.ext.offset += pad;
      let w = 0;
      while (w < data.byteLength) {
        w += fs.writeSync(this.ext.fd, data, w, data.byteLength - w, this.ext.offset + w);
      }
      spec.external = { location: this.ext.location, offset: this.ext.offset, length: data.byteLength };
      this.ext.offset += data.byteLength;
    } else spec.raw = data.slice();
    this.weightBytes += data.byteLength;
    this.inits.push(spec);
    return name;
  }

  private floatBytes(t: Tensor): Uint8Array {
    if (t.dtype === this.dtype) return bytesOf(t);
    const n = numel(t.shape);
    if (this.dtype === "F16") {
      const src = t.data as Float32Array;
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = floatToHalf(src[i]);
      return new Uint8Array(out.buffer);
    }
    const src = t.data as Uint16Array;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
    return new Uint8Array(out.buffer);
  }

  /** A float constant in the builder's dtype (deduplicated). */
  constant(values: readonly number[] | Float32Array, shape: readonly number[] = [values.length]): string {
    const key = `f:${shape}:${Array.from(values).join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.initializer({ dtype: "F32", shape, data: Float32Array.from(values) }, "const");
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 constant regardless of the builder's dtype (Resize scales, timestep frequencies). */
  constantF32(values: readonly number[] | Float32Array, shape: readonly number[] = [values.length]): string {
    const key = `f32:${shape}:${Array.from(values).join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.initializer({ dtype: "F32", shape, data: Float32Array.from(values) }, "const", true);
    this.constCache.set(key, name);
    return name;
  }

  /** A float scalar constant (rank 0) in the builder's dtype. */
  scalar(v: number): string {
    return this.constant([v], []);
  }

  /** An int64 constant (shapes, axes, indices), deduplicated. */
  i64(values: readonly number[], shape: readonly number[] = [values.length]): string {
    const key = `i:${shape}:${values.join(",")}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.initializer(
      { dtype: "I64", shape, data: BigInt64Array.from(values.map((v) => BigInt(v))) },
      "shape",
    );
    this.constCache.set(key, name);
    return name;
  }

  /** Generic node with one output. Empty-string inputs are "omitted optional input". */
  op(type: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, hint?: string): string {
    return this.opN(type, inputs, 1, attrs, hint)[0];
  }

  /** Generic node with `n` outputs. */
  opN(
    type: string,
    inputs: readonly string[],
    n: number,
    attrs: Record<string, Attr> = {},
    hint?: string,
    domain?: string,
  ): string[] {
    const base = hint ?? type.toLowerCase();
    const outs = Array.from({ length: n }, (_, i) => this.fresh(n === 1 ? base : `${base}.${i}`));
    const a: Record<string, AttrValue> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = toAttr(v);
    this.nodes.push({ opType: type, inputs: [...inputs], outputs: outs, name: outs[0], attrs: a, domain });
    return outs;
  }

  // ---- elementwise and shape ops ----
  /** a + b (broadcasting). */
  add(a: string, b: string): string {
    return this.op("Add", [a, b]);
  }
  /** a - b. */
  sub(a: string, b: string): string {
    return this.op("Sub", [a, b]);
  }
  /** a * b. */
  mul(a: string, b: string): string {
    return this.op("Mul", [a, b]);
  }
  /** a / b. */
  div(a: string, b: string): string {
    return this.op("Div", [a, b]);
  }
  /** Matrix product (batched, numpy semantics). */
  matmul(a: string, b: string): string {
    return this.op("MatMul", [a, b]);
  }
  /** Reshape to `shape` (0 copies the input dim, -1 infers). */
  reshape(x: string, shape: readonly number[]): string {
    return this.op("Reshape", [x, this.i64(shape)]);
  }
  /** Reshape to the runtime shape held by another value (int64 1-D). */
  reshapeTo(x: string, shape: string): string {
    return this.op("Reshape", [x, shape]);
  }
  /** Runtime shape of x (int64 1-D). */
  shape(x: string): string {
    return this.op("Shape", [x]);
  }
  /** Permute axes. */
  transpose(x: string, perm: readonly number[]): string {
    return this.op("Transpose", [x], { perm });
  }
  /** Concatenate along `axis`. */
  concat(xs: readonly string[], axis: number): string {
    return this.op("Concat", xs, { axis });
  }
  /** Split into `n` equal parts along `axis`. */
  split(x: string, n: number, axis: number): string[] {
    // Opset 17 Split without a `split` input cuts into as many equal parts as there are outputs.
    return this.opN("Split", [x], n, { axis });
  }
  /** Cast to an element type. */
  cast(x: string, to: ElemType): string {
    return this.op("Cast", [x], { to: ELEM_CODE[to] });
  }
  /** Cast an F32 graph input into the compute dtype (no-op for F32 graphs). */
  toCompute(x: string): string {
    return this.dtype === "F32" ? x : this.cast(x, this.dtype);
  }
  /** Cast a compute-dtype value to F32 for a graph output (no-op for F32 graphs). */
  toF32(x: string): string {
    return this.dtype === "F32" ? x : this.cast(x, "F32");
  }

  /** Close the external-data file without encoding (after a failed build). */
  dispose(): void {
    if (this.ext) fs.closeSync(this.ext.fd);
    this.ext = undefined;
  }

  /**
   * Encode the model. Nodes not needed by any output are pruned first (truncated variants), and
   * inline initializers no node reads are dropped. Closes the external-data file if any.
   */
  toModel(docString?: string): Chunks {
    const needed = new Set(this.outputs.map((o) => o.name));
    const keep: NodeSpec[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (n.outputs.some((o) => needed.has(o))) {
        keep.push(n);
        for (const x of n.inputs) if (x) needed.add(x);
      }
    }
    keep.reverse();
    if (this.ext) {
      fs.closeSync(this.ext.fd);
      this.ext = undefined;
    }
    return modelProto({
      graphName: this.name,
      nodes: keep,
      initializers: this.inits.filter((t) => needed.has(t.name)),
      inputs: this.inputs.map((i) => valueInfo(i.name, ELEM_CODE[i.type], i.shape)),
      outputs: this.outputs.map((o) => valueInfo(o.name, ELEM_CODE[o.type], o.shape)),
      opsets: [{ domain: "", version: OPSET }, { domain: "com.microsoft", version: 1 }],
      irVersion: 8,
      producer: "vidseg",
      docString,
    });
  }
}
