/**
 * A lazy safetensors reader for model weights: only the header is read up front (validated against the
 * file size), tensors are read one at a time with positioned reads, so multi-GB checkpoints are never held
 * in memory at once. Pickled PyTorch files are recognised and refused without being unpickled.
 * @module
 */
import * as fs from "node:fs";
import { fail } from "../../errors.ts";
import { numel, type Tensor } from "../../tensor/tensor.ts";

/** Header entry of one tensor. */
export interface TensorHeader {
  dtype: "F32" | "F16" | "BF16";
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

const ELT: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

function looksPickled(b: Uint8Array): boolean {
  // zip container (torch >= 1.6 .bin/.pt/.ckpt) or a raw pickle protocol marker (0x80 0x02..0x05).
  return (b[0] === 0x50 && b[1] === 0x4b) || (b[0] === 0x80 && b[1] >= 2 && b[1] <= 5);
}

/** One open safetensors file. Call `close()` when done. */
export class LazySafetensors {
  private fd: number;
  /** Tensor headers by key (metadata excluded). */
  readonly headers = new Map<string, TensorHeader>();
  /** File size in bytes. */
  readonly size: number;
  /** mtime in ms (cache identity). */
  readonly mtimeMs: number;

  /** Open and validate `path`; every problem is one UserError naming the file. */
  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = fs.openSync(path, "r");
    } catch (e) {
      fail(path, `cannot open (${(e as { code?: string }).code ?? e})`);
    }
    this.fd = fd;
    const st = fs.fstatSync(fd);
    this.size = st.size;
    this.mtimeMs = st.mtimeMs;
    try {
      this.parseHeader();
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  private parseHeader(): void {
    const head = new Uint8Array(8);
    const got = fs.readSync(this.fd, head, 0, 8, 0);
    if (got >= 2 && looksPickled(head)) {
      fail(
        this.path,
        "this is a pickled PyTorch file (.bin/.ckpt/.pt), not safetensors; refusing to unpickle it — convert it to .safetensors first",
      );
    }
    if (got < 8) {
      fail(this.path, `truncated safetensors file (${this.size} bytes, need an 8-byte header length)`);
    }
    const hlen = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (hlen <= 0 || hlen > 100_000_000 || 8 + hlen > this.size) {
      fail(this.path, `not a valid safetensors file (header length ${hlen} vs file size ${this.size})`);
    }
    const hb = new Uint8Array(hlen);
    fs.readSync(this.fd, hb, 0, hlen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder().decode(hb));
    } catch {
      fail(this.path, "not a valid safetensors file (header is not JSON)");
    }
    const dataStart = 8 + hlen;
    const dataLen = this.size - dataStart;
    for (const [k, v] of Object.entries(header)) {
      if (k === "__metadata__") continue;
      const info = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
      if (!info || !Array.isArray(info.shape) || !Array.isArray(info.data_offsets)) {
        fail(this.path, `tensor "${k}" has a malformed header entry`);
      }
      if (!(info.dtype! in ELT)) {
        fail(this.path, `tensor "${k}" has dtype ${info.dtype} (expected F32, F16 or BF16 weights)`);
      }
      const [a, b] = info.data_offsets;
      if (b > dataLen) {
        fail(
          this.path,
          `truncated — tensor "${k}" ends at byte ${b} of the data section but the file has only ${dataLen}`,
        );
      }
      if (a < 0 || b < a || b - a !== numel(info.shape) * ELT[info.dtype!]) {
        fail(
          this.path,
          `tensor "${k}" has offsets [${a},${b}] inconsistent with shape [${info.shape}] ${info.dtype}`,
        );
      }
      this.headers.set(k, {
        dtype: info.dtype as TensorHeader["dtype"],
        shape: info.shape,
        begin: dataStart + a,
        end: dataStart + b,
      });
    }
  }

  /** Read one tensor: F32 and F16 as stored, BF16 widened to F32. */
  read(key: string): Tensor {
    const h = this.headers.get(key);
    if (!h) fail(this.path, `missing tensor "${key}"`);
    const buf = new ArrayBuffer(h.end - h.begin);
    const u8 = new Uint8Array(buf);
    let off = 0;
    while (off < u8.length) {
      const n = fs.readSync(this.fd, u8, off, u8.length - off, h.begin + off);
      if (n <= 0) fail(this.path, `truncated while reading tensor "${key}"`);
      off += n;
    }
    if (h.dtype === "F32") return { dtype: "F32", shape: h.shape, data: new Float32Array(buf) };
    if (h.dtype === "F16") return { dtype: "F16", shape: h.shape, data: new Uint16Array(buf) };
    const src = new Uint16Array(buf), out = new Uint32Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
    return { dtype: "F32", shape: h.shape, data: new Float32Array(out.buffer) };
  }

  /** Release the file descriptor. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
