/**
 * safetensors on disk without holding the file in memory: a reader that parses only the header and reads a
 * tensor — or a range of its rows (first axis) — with positioned reads, and a writer that streams one tensor's
 * rows to a file whose header is fixed up front (shape known), hashing the bytes as they go. This is what lets
 * long videos flow through the pipeline batch by batch with bounded memory.
 * @module
 */
import * as fs from "node:fs";
import { createHash, type Hash } from "node:crypto";
import {
  bytesPerElement,
  headerLength,
  parseSafetensorsHeader,
  SafetensorsError,
  tensorFromBytes,
  type TensorInfo,
} from "./safetensors.ts";
import { type DType, numel, type Tensor } from "./tensor.ts";

/** A safetensors file opened for positioned reads (header parsed and validated). */
export class SafetensorsReader {
  readonly infos: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  readonly #dataStart: number;

  private constructor(readonly path: string, h: ReturnType<typeof parseSafetensorsHeader>) {
    this.infos = h.infos;
    this.metadata = h.metadata;
    this.#dataStart = h.dataStart;
  }

  /** Open and validate the header of `path` (errors name the file). */
  static open(path: string): SafetensorsReader {
    let fd: number;
    try {
      fd = fs.openSync(path, "r");
    } catch (e) {
      throw new SafetensorsError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      const first = readAt(fd, 0, Math.min(8, size));
      const hlen = headerLength(first);
      const head = hlen > 0 && 8 + hlen <= size && hlen <= 100_000_000 ? readAt(fd, 0, 8 + hlen) : first;
      return new SafetensorsReader(path, parseSafetensorsHeader(head, size, path));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Tensor names. */
  keys(): string[] {
    return [...this.infos.keys()];
  }

  /** dtype and shape of a tensor (no data read). */
  info(name: string): TensorInfo {
    const info = this.infos.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: missing tensor "${name}"`);
    return info;
  }

  /** The whole tensor. */
  read(name: string): Tensor {
    const info = this.info(name);
    return this.rows(name, 0, info.shape[0] ?? 1);
  }

  /** Rows [start, end) along the first axis (a scalar tensor has one row). */
  rows(name: string, start: number, end: number): Tensor {
    const info = this.info(name);
    const n0 = info.shape.length ? info.shape[0] : 1;
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n0)) {
      throw new Error(`${this.path}: rows [${start}, ${end}) of "${name}" outside [0, ${n0})`);
    }
    const rowBytes = (info.data_offsets[1] - info.data_offsets[0]) / Math.max(n0, 1);
    const shape = info.shape.length ? [end - start, ...info.shape.slice(1)] : [];
    const fd = fs.openSync(this.path, "r");
    try {
      const raw = readAt(fd, this.#dataStart + info.data_offsets[0] + start * rowBytes, (end - start) * rowBytes);
      return tensorFromBytes(info.dtype, shape, raw, `${this.path}: tensor "${name}"`);
    } finally {
      fs.closeSync(fd);
    }
  }
}

function readAt(fd: number, pos: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let off = 0;
  while (off < len) {
    const n = fs.readSync(fd, out, off, len - off, pos + off);
    if (n <= 0) throw new SafetensorsError(`unexpected end of file at byte ${pos + off}`);
    off += n;
  }
  return out;
}

/** Size and sha256 of a written file. */
export interface WrittenFile {
  size: number;
  sha256: string;
}

/**
 * Streams the rows of one tensor of known dtype and shape into a new safetensors file (`name` is the tensor's
 * key). Rows must arrive in order; `close` checks that all of them did, fsyncs, and returns size + sha256.
 */
export class SafetensorsRowWriter {
  readonly #fd: number;
  readonly #hash: Hash = createHash("sha256");
  readonly #rowBytes: number;
  readonly #rows: number;
  #rowsWritten = 0;
  #size = 0;
  #closed = false;

  constructor(
    readonly path: string,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    metadata: Record<string, string> = {},
  ) {
    if (!shape.length) throw new Error(`${path}: a streamed tensor needs at least one axis`);
    this.#rows = shape[0];
    this.#rowBytes = numel(shape.slice(1)) * bytesPerElement(dtype);
    const total = this.#rows * this.#rowBytes;
    const header: Record<string, unknown> = { [name]: { dtype, shape: [...shape], data_offsets: [0, total] } };
    if (Object.keys(metadata).length) header.__metadata__ = metadata;
    let text = JSON.stringify(header);
    text += " ".repeat((8 - (new TextEncoder().encode(text).length % 8)) % 8);
    const json = new TextEncoder().encode(text);
    const head = new Uint8Array(8 + json.length);
    new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
    head.set(json, 8);
    this.#fd = fs.openSync(path, "w");
    this.#put(head);
  }

  /** Rows written so far. */
  get rowsWritten(): number {
    return this.#rowsWritten;
  }

  /** Append rows: a tensor of this dtype whose shape is [r, ...shape[1:]]. */
  append(t: Tensor): void {
    if (this.#closed) throw new Error(`${this.path}: append after close`);
    if (t.dtype !== this.dtype || t.shape.slice(1).join() !== this.shape.slice(1).join()) {
      throw new Error(`${this.path}: rows of ${t.dtype} [${t.shape}] do not fit ${this.dtype} [${this.shape}]`);
    }
    const r = t.shape[0];
    if (this.#rowsWritten + r > this.#rows) {
      throw new Error(`${this.path}: ${this.#rowsWritten + r} rows of "${this.name}" exceed its ${this.#rows}`);
    }
    const d = t.data;
    this.#put(new Uint8Array(d.buffer, d.byteOffset, r * this.#rowBytes));
    this.#rowsWritten += r;
  }

  /** Finish the file: every row must have been written. */
  close(): WrittenFile {
    if (this.#closed) throw new Error(`${this.path}: closed twice`);
    this.#closed = true;
    try {
      if (this.#rowsWritten !== this.#rows) {
        throw new Error(`${this.path}: "${this.name}" got ${this.#rowsWritten} of its ${this.#rows} rows`);
      }
      fs.fsyncSync(this.#fd);
    } finally {
      fs.closeSync(this.#fd);
    }
    return { size: this.#size, sha256: this.#hash.digest("hex") };
  }

  /** Close without checks (the entry is being abandoned). */
  abandon(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #put(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(this.#fd, bytes, off, bytes.length - off);
    this.#hash.update(bytes);
    this.#size += bytes.length;
  }
}
