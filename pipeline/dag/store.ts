/**
 * The artifact store: one directory per stage instance, `<cache>/<stage>/<key>/`, holding
 *   tensors.safetensors  all tensors of the instance (absent when it has none)
 *   meta.json            the JSON artifacts
 *   blobs/<name>         binary blobs (PNGs, …)
 *   manifest.json        what produced it (stage, version, params, upstream keys) + each file's size and
 *                        sha256 + a digest of the manifest itself.
 * Writes are atomic: everything is written and fsync'ed in `<cache>/.tmp/<pid>~<host>~…`, then the whole
 * directory is renamed into place, so an entry is either complete or invisible. Reads verify every hash;
 * a mismatch raises `CorruptEntryError` and the entry is never used.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeSafetensors, parseSafetensors } from "../tensor/safetensors.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Artifacts, Json } from "./stage.ts";
import { canonicalJson, sha256Hex } from "./hash.ts";
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

  /** Read and verify an entry. Throws CorruptEntryError on any mismatch. */
  read(stage: string, key: string): { artifacts: Artifacts; manifest: Manifest } {
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
    const bytesOf = new Map<string, Uint8Array>();
    for (const [rel, info] of Object.entries(manifest.files)) {
      let bytes: Uint8Array;
      try {
        // A plain Uint8Array view, not a Node Buffer: Buffer#slice does not copy, which breaks the
        // aligned-copy logic of parseSafetensors.
        const buf = fs.readFileSync(path.join(dir, rel));
        bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch {
        return bad(`${rel} missing`);
      }
      if (bytes.length !== info.size || sha256Hex(bytes) !== info.sha256) bad(`${rel}: sha256 mismatch`);
      bytesOf.set(rel, bytes);
    }
    const artifacts: Artifacts = { tensors: {}, json: {} };
    const st = bytesOf.get(TENSORS);
    if (st) {
      const file = parseSafetensors(st, path.join(dir, TENSORS));
      for (const name of file.keys()) artifacts.tensors[name] = file.get(name);
    }
    const meta = bytesOf.get(META);
    if (meta) artifacts.json = JSON.parse(new TextDecoder().decode(meta)) as Record<string, Json>;
    for (const [rel, bytes] of bytesOf) {
      if (rel.startsWith("blobs/")) (artifacts.blobs ??= {})[rel.slice(6)] = bytes;
    }
    return { artifacts, manifest };
  }

  /**
   * Store an entry atomically. If another process committed the same key first, its entry is kept (equal
   * keys mean equal inputs) and ours is discarded. Returns the manifest written.
   */
  async write(info: EntryInfo, artifacts: Artifacts): Promise<Manifest> {
    try {
      return await this.#write(info, artifacts);
    } catch (e) {
      // A full disk, a read-only or misplaced cache folder is the user's to fix: one line, not a stack.
      if (!errnoOf(e)) throw e;
      const why = errnoText(e);
      throw new UserError(
        `cache ${this.root}: cannot write the ${info.stage} entry (${why}); expected a writable cache folder with free space`,
      );
    }
  }

  async #write(info: EntryInfo, artifacts: Artifacts): Promise<Manifest> {
    const tmp = path.join(
      this.tmpDir,
      `${Deno.pid}~${Deno.hostname()}~${info.stage}~${info.key.slice(0, 16)}~${randomTag()}`,
    );
    fs.mkdirSync(tmp, { recursive: true });
    const files: Manifest["files"] = {};
    const put = async (rel: string, bytes: Uint8Array) => {
      writeDurable(path.join(tmp, rel), bytes);
      files[rel] = { size: bytes.length, sha256: sha256Hex(bytes) };
      await this.hooks.afterFile?.(tmp, rel);
    };
    try {
      if (Object.keys(artifacts.tensors).length) {
        await put(
          TENSORS,
          encodeSafetensors(artifacts.tensors as Record<string, Tensor>, {
            stage: info.stage,
            key: info.key,
          }),
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
      await this.hooks.afterFile?.(tmp, MANIFEST);
      fsyncPath(tmp);
      const dest = this.entryDir(info.stage, info.key);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      try {
        fs.renameSync(tmp, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e;
        fs.rmSync(tmp, { recursive: true, force: true }); // someone else committed the same key first
      }
      fsyncPath(path.dirname(dest));
      return manifest;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
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
