/**
 * One weights file shared by every graph variant of a model. Variants (full, truncated, prefix/suffix split,
 * modulated/injected) reference their initializers in this file by ONNX external-data offsets, so a model's
 * weights are on disk once however many variants are built.
 *
 * The store is content-addressed: a tensor's bytes (as the graph stores them — Linear weights transposed, fp16
 * converted, …) are hashed; bytes already in the store are referenced, new ones appended at a page-aligned
 * offset (onnxruntime memory-maps page-aligned external data instead of copying it). The index
 * (`<file>.json`: hash → offset, length) is rewritten atomically after each build; bytes appended by a build that
 * died before its index write are never referenced. Builds of one store are serialised by a lock file.
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isStale, type LockInfo, readLock, releaseLock, tryLock } from "../../dag/lock.ts";
import { tempPath } from "./io.ts";

/** Where one tensor lives in the store. */
export interface StoreRef {
  /** File name, relative to the directory of the models that reference it. */
  location: string;
  offset: number;
  length: number;
}

/** Page alignment for tensors onnxruntime may memory-map; small ones are read (and only need 64). */
const PAGE = 4096, PAGE_FROM = 64 * 1024, SMALL = 64;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** An open weights store: `put` tensors while building, then `commit` (or `abort`). */
export class WeightStore {
  private readonly index: Map<string, [number, number]>;
  private fd: number;
  private end: number;
  private lock: LockInfo;
  private readonly start: number;
  private closed = false;
  /** Bytes appended by this writer (new tensors). */
  appended = 0;
  /** Bytes referenced that were already stored (shared with other variants). */
  reused = 0;

  private constructor(readonly file: string, lock: LockInfo) {
    this.lock = lock;
    this.index = new Map();
    try {
      const raw = JSON.parse(fs.readFileSync(`${file}.json`, "utf8")) as Record<string, [number, number]>;
      for (const [k, v] of Object.entries(raw)) this.index.set(k, v);
    } catch {
      // no index yet (or an unreadable one: its bytes are simply not reused)
    }
    this.fd = fs.openSync(file, fs.existsSync(file) ? "r+" : "w+");
    this.end = fs.fstatSync(this.fd).size;
    this.start = this.end;
  }

  /** Open the store `file` for writing, waiting while another process writes to it. */
  static open(file: string): WeightStore {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const lockFile = `${file}.lock`;
    for (;;) {
      const mine = tryLock(lockFile);
      if (mine) return new WeightStore(file, mine);
      const held = readLock(lockFile);
      if (held && isStale(held)) fs.rmSync(lockFile, { force: true });
      else sleepSync(200);
    }
  }

  /** Store `data` (or find it already stored) and return where it is. */
  put(data: Uint8Array): StoreRef {
    const key = createHash("sha256").update(data).digest("hex");
    const location = path.basename(this.file);
    const hit = this.index.get(key);
    if (hit && hit[1] === data.byteLength) {
      this.reused += data.byteLength;
      return { location, offset: hit[0], length: hit[1] };
    }
    const align = data.byteLength >= PAGE_FROM ? PAGE : SMALL;
    const offset = Math.ceil(this.end / align) * align;
    let w = 0;
    while (w < data.byteLength) w += fs.writeSync(this.fd, data, w, data.byteLength - w, offset + w);
    this.end = offset + data.byteLength;
    this.index.set(key, [offset, data.byteLength]);
    this.appended += data.byteLength;
    return { location, offset, length: data.byteLength };
  }

  /** Flush the data, write the index atomically and release the lock. */
  commit(): void {
    if (this.closed) return;
    this.closed = true;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    const tmp = tempPath(`${this.file}.json`);
    fs.writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.index)));
    fs.renameSync(tmp, `${this.file}.json`);
    releaseLock(`${this.file}.lock`, this.lock);
  }

  /** Give up without recording this build's tensors (their bytes stay unreferenced). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    fs.ftruncateSync(this.fd, this.start);
    fs.closeSync(this.fd);
    releaseLock(`${this.file}.lock`, this.lock);
  }
}

/** Bytes of a store file (0 when absent). */
export function storeBytes(file: string): number {
  return fs.existsSync(file) ? fs.statSync(file).size : 0;
}
