/**
 * The artifact store: one directory per stage instance, `<cache>/<stage>/<key>/`, holding
 *   tensors.safetensors  the tensors the stage returned (absent when it has none)
 *   streams/<name>.safetensors  tensors the stage streamed row by row while it ran (`StageContext.output`)
 *   meta.json            the JSON artifacts
 *   blobs/<name>         binary blobs (PNGs, …)
 *   manifest.json        what produced it (stage, version, params, upstream keys) + each file's size and
 *                        sha256 + a digest of the manifest itself.
 * Writes are atomic: everything is written and fsync'ed in `<cache>/.tmp/<pid>~<host>~…`, then the whole
 * directory is renamed into place, so an entry is either complete or invisible. Reads verify every hash
 * (streaming through the files); a mismatch raises `CorruptEntryError` and the entry is never used. Tensors are
 * then loaded lazily: whole on first access of `artifacts.tensors[name]`, or a range of rows at a time through
 * `artifacts.readRows` — so consumers of a long video read it batch by batch.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeSafetensors } from "../tensor/safetensors.ts";
import { SafetensorsReader, SafetensorsRowWriter } from "../tensor/safetensors_file.ts";
import type { DType, Tensor } from "../tensor/tensor.ts";
import type { Artifacts, Json, TensorSink } from "./stage.ts";
import { canonicalJson, sha256File, sha256Hex } from "./hash.ts";
import { isProcessAlive } from "./lock.ts";
import { UserError } from "../errors.ts";

/** Provenance + integrity record of a cache entry. */
export interface Manifest {
  format: 1;
  stage: string;
  version: number;
  key: string;
  unit: string | null;
  params: Record<string, unknown>;
  upstream: Record<string, string>;
  /** Relative file path → size and sha256. */
  files: Record<string, { size: number; sha256: string }>;
  wallMs: number;
  createdAt: string;
  host: string;
  pid: number;
  /** sha256 of the canonical JSON of all other fields. */
  digest: string;
}

/** What the runner knows about an instance when storing it. */
export type EntryInfo = Pick<
  Manifest,
  "stage" | "version" | "key" | "unit" | "params" | "upstream" | "wallMs"
>;

/** Fault-injection points for tests (e.g. a child process that is SIGKILLed half way through a write). */
export interface StoreHooks {
  /** Called after each file is written into the temporary directory. */
  afterFile?(tmpDir: string, relPath: string): void | Promise<void>;
}

/** A cache entry that exists but does not verify. */
export class CorruptEntryError extends Error {
  override name = "CorruptEntryError";
  constructor(readonly entry: string, readonly reason: string) {
    super(`${entry}: corrupt cache entry (${reason})`);
  }
}

const TENSORS = "tensors.safetensors";
const STREAMS = "streams/";
const META = "meta.json";
const MANIFEST = "manifest.json";
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Atomic, verified artifact storage under one cache directory. */
export class ArtifactStore {
  readonly tmpDir: string;
  constructor(readonly root: string, readonly hooks: StoreHooks = {}) {
    this.tmpDir = path.join(root, ".tmp");
  }

  /** Directory of an entry (whether or not it exists). */
  entryDir(stage: string, key: string): string {
    return path.join(this.root, stage, key);
  }

  /** True when the entry is visible (it may still turn out corrupt on read). */
  has(stage: string, key: string): boolean {
    return fs.existsSync(this.entryDir(stage, key));
  }

  /** Record a use of an entry (its folder's mtime; `cache gc --older-than` removes entries unused for long). */
  touch(stage: string, key: string): void {
    try {
      const t = new Date();
      fs.utimesSync(this.entryDir(stage, key), t, t);
    } catch { /* read-only cache or entry gone: nothing to record */ }
  }

  /**
   * Read and verify an entry (every file's size and sha256, streamed; `verify: false` skips the hashes, for an
   * entry this process has just written). Tensors load lazily. Throws CorruptEntryError on any mismatch.
   */
  read(stage: string, key: string, opts: { verify?: boolean } = {}): { artifacts: Artifacts; manifest: Manifest } {
    const dir = this.entryDir(stage, key);
    const where = path.relative(this.root, dir);
    const bad = (reason: string): never => {
      throw new CorruptEntryError(where, reason);
    };
    let manifest: Manifest;
    try {
      manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8"));
    } catch {
      return bad(`${MANIFEST} unreadable`);
    }
    const { digest, ...rest } = manifest ?? ({} as Manifest);
    if (!digest || sha256Hex(canonicalJson(rest)) !== digest) bad(`${MANIFEST} digest mismatch`);
    if (manifest.key !== key || manifest.stage !== stage) bad(`${MANIFEST} names another entry`);
    for (const [rel, info] of Object.entries(manifest.files)) {
      const file = path.join(dir, rel);
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch {
        return bad(`${rel} missing`);
      }
      if (size !== info.size || (opts.verify !== false && sha256File(file) !== info.sha256)) {
        bad(`${rel}: sha256 mismatch`);
      }
    }
    const artifacts: Artifacts = { tensors: {}, json: {} };
    const readers = new Map<string, SafetensorsReader>();
    try {
      for (const rel of Object.keys(manifest.files)) {
        if (rel !== TENSORS && !(rel.startsWith(STREAMS) && rel.endsWith(".safetensors"))) continue;
        const reader = SafetensorsReader.open(path.join(dir, rel));
        for (const name of reader.keys()) readers.set(name, reader);
      }
    } catch (e) {
      return bad(`unreadable tensors (${(e as Error).message})`);
    }
    for (const [name, reader] of readers) {
      let loaded: Tensor | undefined;
      Object.defineProperty(artifacts.tensors, name, {
        enumerable: true,
        get: () => (loaded ??= reader.read(name)),
      });
    }
    artifacts.readRows = (name, start, end) => {
      const r = readers.get(name);
      if (!r) throw new Error(`${where}: no tensor "${name}"`);
      return r.rows(name, start, end);
    };
    artifacts.tensorInfo = (name) => {
      const info = readers.get(name)?.infos.get(name);
      return info ? { dtype: info.dtype as DType, shape: [...info.shape] } : undefined;
    };
    if (manifest.files[META]) {
      artifacts.json = JSON.parse(fs.readFileSync(path.join(dir, META), "utf8")) as Record<string, Json>;
    }
    for (const rel of Object.keys(manifest.files)) {
      if (!rel.startsWith("blobs/")) continue;
      const buf = fs.readFileSync(path.join(dir, rel));
      (artifacts.blobs ??= {})[rel.slice(6)] = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    return { artifacts, manifest };
  }

  /**
   * Store an entry atomically. If another process committed the same key first, its entry is kept (equal
   * keys mean equal inputs) and ours is discarded. Returns the manifest written.
   */
  write(info: EntryInfo, artifacts: Artifacts): Promise<Manifest> {
    return this.begin(info).commit(artifacts);
  }

  /**
   * Start an entry whose tensors may be streamed while the stage runs ({@link PendingEntry.output}); nothing is
   * visible until {@link PendingEntry.commit}. `abort` (or a dead process's sweep) removes the partial files.
   */
  begin(info: EntryInfo): PendingEntry {
    return new PendingEntry(this, info);
  }

  /** Make an entry invisible at once (rename aside), then delete it. */
  discard(stage: string, key: string): void {
    const dir = this.entryDir(stage, key);
    const aside = path.join(
      this.tmpDir,
      `${Deno.pid}~${Deno.hostname()}~discard-${stage}~${key.slice(0, 16)}~${randomTag()}`,
    );
    fs.mkdirSync(this.tmpDir, { recursive: true });
    try {
      fs.renameSync(dir, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
    fs.rmSync(aside, { recursive: true, force: true });
  }

  /** Delete temporary directories left by dead processes of this host. Returns how many were removed. */
  sweepTemp(): number {
    let removed = 0;
    let names: string[];
    try {
      names = fs.readdirSync(this.tmpDir);
    } catch {
      return 0;
    }
    const host = Deno.hostname();
    for (const name of names) {
      const [pid, h] = name.split("~");
      if (h !== host || !/^\d+$/.test(pid) || isProcessAlive(Number(pid))) continue;
      fs.rmSync(path.join(this.tmpDir, name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  }
}

/** A cache entry being written: streamed tensors first, then {@link commit} (or {@link abort}). */
export class PendingEntry {
  readonly #store: ArtifactStore;
  readonly #info: EntryInfo;
  #tmp: string | null = null;
  readonly #files: Manifest["files"] = {};
  readonly #writers = new Map<string, SafetensorsRowWriter>();

  constructor(store: ArtifactStore, info: EntryInfo) {
    this.#store = store;
    this.#info = info;
  }

  /** Stream tensor `name` ([rows, ...] of `dtype`) into the entry, rows in order. */
  output(name: string, dtype: DType, shape: readonly number[]): TensorSink {
    if (!SAFE_NAME.test(name) || this.#writers.has(name)) {
      throw new Error(`stage ${this.#info.stage}: output "${name}" is not a plain, unused tensor name`);
    }
    const w = this.#guard(() => {
      const dir = path.join(this.#tmpDir(), "streams");
      fs.mkdirSync(dir, { recursive: true });
      return new SafetensorsRowWriter(path.join(dir, `${name}.safetensors`), name, dtype, shape, {
        stage: this.#info.stage,
        key: this.#info.key,
      });
    });
    this.#writers.set(name, w);
    return { append: (t) => this.#guard(() => w.append(t)) };
  }

  /** Write the returned artifacts, close the streams and publish the entry atomically. */
  async commit(artifacts: Artifacts): Promise<Manifest> {
    try {
      return await this.#commit(artifacts);
    } catch (e) {
      this.abort();
      // A full disk, a read-only or misplaced cache folder is the user's to fix: one line, not a stack.
      if (e instanceof UserError || !errnoOf(e)) throw e;
      throw this.#userError(e);
    }
  }

  /** Drop everything written so far. */
  abort(): void {
    for (const w of this.#writers.values()) {
      try {
        w.abandon();
      } catch { /* already unusable */ }
    }
    try {
      if (this.#tmp) fs.rmSync(this.#tmp, { recursive: true, force: true });
    } catch { /* a dead process's leftovers are swept on the next run */ }
    this.#tmp = null;
  }

  #tmpDir(): string {
    if (this.#tmp) return this.#tmp;
    const info = this.#info;
    const tmp = path.join(
      this.#store.tmpDir,
      `${Deno.pid}~${Deno.hostname()}~${info.stage}~${info.key.slice(0, 16)}~${randomTag()}`,
    );
    fs.mkdirSync(tmp, { recursive: true });
    return (this.#tmp = tmp);
  }

  #userError(e: unknown): UserError {
    return new UserError(
      `cache ${this.#store.root}: cannot write the ${this.#info.stage} entry (${errnoText(e)}); expected a writable cache folder with free space`,
    );
  }

  #guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (!errnoOf(e)) throw e;
      this.abort();
      throw this.#userError(e);
    }
  }

  async #commit(artifacts: Artifacts): Promise<Manifest> {
    const info = this.#info;
    const tmp = this.#tmpDir();
    const files = this.#files;
    const hooks = this.#store.hooks;
    for (const [name, w] of this.#writers) {
      if (name in artifacts.tensors) throw new Error(`stage ${info.stage}: tensor "${name}" both streamed and returned`);
      files[`${STREAMS}${name}.safetensors`] = w.close();
      await hooks.afterFile?.(tmp, `${STREAMS}${name}.safetensors`);
    }
    const put = async (rel: string, bytes: Uint8Array) => {
      writeDurable(path.join(tmp, rel), bytes);
      files[rel] = { size: bytes.length, sha256: sha256Hex(bytes) };
      await hooks.afterFile?.(tmp, rel);
    };
    if (Object.keys(artifacts.tensors).length) {
      await put(
        TENSORS,
        encodeSafetensors(artifacts.tensors as Record<string, Tensor>, { stage: info.stage, key: info.key }),
      );
    }
    await put(META, new TextEncoder().encode(JSON.stringify(artifacts.json ?? {}, null, 1)));
    const blobs = Object.entries(artifacts.blobs ?? {});
    if (blobs.length) fs.mkdirSync(path.join(tmp, "blobs"));
    for (const [name, bytes] of blobs) {
      if (!SAFE_NAME.test(name)) {
        throw new Error(`stage ${info.stage}: blob name "${name}" is not a plain file name`);
      }
      await put(`blobs/${name}`, bytes);
    }
    const body = {
      format: 1 as const,
      ...info,
      files,
      createdAt: new Date().toISOString(),
      host: Deno.hostname(),
      pid: Deno.pid,
    };
    const manifest: Manifest = { ...body, digest: sha256Hex(canonicalJson(body)) };
    // Written last and not listed in itself (its digest covers it).
    writeDurable(path.join(tmp, MANIFEST), new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
    await hooks.afterFile?.(tmp, MANIFEST);
    if (this.#writers.size) fsyncPath(path.join(tmp, "streams"));
    fsyncPath(tmp);
    const dest = this.#store.entryDir(info.stage, info.key);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    try {
      fs.renameSync(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
      fs.rmSync(tmp, { recursive: true, force: true }); // someone else committed the same key first
    }
    this.#tmp = null;
    fsyncPath(path.dirname(dest));
    return manifest;
  }
}

/** The errno code of a file-system error (ENOSPC, ENOTDIR, EACCES, …), or null for any other error. */
function errnoOf(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : null;
}

/** First line of a file-system error's message ("ENOSPC: no space left on device, write '…'"). */
export function errnoText(e: unknown): string {
  return String((e as Error)?.message ?? e).split("\n")[0];
}

function randomTag(): string {
  return Math.random().toString(36).slice(2, 10);
}

/** Write a file and fsync it, so the rename that publishes it can never expose unwritten data. */
function writeDurable(file: string, bytes: Uint8Array): void {
  const fd = fs.openSync(file, "w");
  try {
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
