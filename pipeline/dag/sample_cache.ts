/**
 * The runner's cache of single work items inside stage instances ("samples"). A stage instance is the unit the
 * DAG caches, but some work inside one is shared by instances that differ elsewhere: one modulated (frame, mask)
 * sample gives the same difference map in every ablation row whose masks agree there (table 2's rows C and E
 * differ only where CBR changed a cell). The stage names such an item by everything it depends on; the runner
 * owns where and how it is stored, exactly as for whole entries (a stage never touches the file system).
 *
 * Layout: `<cache>/samples/<stage>/<2 hex>/<sha256 of (stage, version, key)>`, each file
 * `VSMP1` + sha256(payload) + deflate(payload). Writes go to the store's temp folder and are renamed into place
 * (a killed run leaves no partial item; the temp sweep removes its leftovers); reads check the hash, and an item
 * that fails it is deleted and reported as missing, so the stage recomputes it.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { createHash } from "node:crypto";
import { canonicalJson, sha256Hex } from "./hash.ts";

const MAGIC = new TextEncoder().encode("VSMP1");

/** Counts of one scope's traffic (the bench and the progress log report them). */
export interface SampleCacheStats {
  hits: number;
  misses: number;
  stored: number;
  /** Items that failed their hash check and were deleted. */
  corrupt: number;
}

/** Per-item results shared between stage instances, keyed by a JSON value the stage builds. */
export interface SampleCache {
  /** The bytes stored for `key`, or undefined when absent (or corrupt: then deleted). */
  get(key: unknown): Uint8Array | undefined;
  /** Store bytes for `key` (atomic; storing an existing key again is harmless). */
  put(key: unknown, bytes: Uint8Array): void;
  readonly stats: SampleCacheStats;
}

/** The sample folders of one cache directory. */
export class SampleStore {
  readonly root: string;
  readonly #tmpDir: string;

  /** `tmpDir` must be on the same file system (the artifact store's temp folder, swept of dead runs' files). */
  constructor(cacheDir: string, tmpDir: string) {
    this.root = path.join(cacheDir, "samples");
    this.#tmpDir = tmpDir;
  }

  /**
   * Check every stored item's hash (all stages). Returns how many items are intact and the paths of those that
   * are not; damaged items are left in place (a read deletes them), so this is safe to call on a live cache.
   */
  verify(): { items: number; corrupt: string[] } {
    let items = 0;
    const corrupt: string[] = [];
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (decode(fs.readFileSync(p))) items++;
        else corrupt.push(p);
      }
    };
    walk(this.root);
    return { items, corrupt };
  }

  /** The cache of one stage (name and code version are part of every key). */
  scope(stage: string, version: number): SampleCache {
    const stats: SampleCacheStats = { hits: 0, misses: 0, stored: 0, corrupt: 0 };
    const fileOf = (key: unknown) => {
      const h = sha256Hex(canonicalJson({ stage, version, key }));
      return path.join(this.root, stage, h.slice(0, 2), h);
    };
    return {
      stats,
      get: (key) => {
        const file = fileOf(key);
        let raw: Uint8Array;
        try {
          raw = fs.readFileSync(file);
        } catch {
          stats.misses++;
          return undefined;
        }
        const payload = decode(raw);
        if (!payload) {
          stats.corrupt++;
          stats.misses++;
          fs.rmSync(file, { force: true });
          return undefined;
        }
        stats.hits++;
        return payload;
      },
      put: (key, bytes) => {
        const file = fileOf(key);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.mkdirSync(this.#tmpDir, { recursive: true });
        const tmp = path.join(
          this.#tmpDir,
          `${Deno.pid}~${Deno.hostname()}~sample-${Math.random().toString(36).slice(2)}`,
        );
        fs.writeFileSync(tmp, encode(bytes));
        fs.renameSync(tmp, file);
        stats.stored++;
      },
    };
  }
}

function encode(payload: Uint8Array): Uint8Array {
  const digest = createHash("sha256").update(payload).digest();
  const z = zlib.deflateRawSync(payload, { level: 6 });
  const out = new Uint8Array(MAGIC.length + 32 + z.length);
  out.set(MAGIC, 0);
  out.set(digest, MAGIC.length);
  out.set(z, MAGIC.length + 32);
  return out;
}

/** The payload, or null when the file is not a complete, intact item. */
function decode(raw: Uint8Array): Uint8Array | null {
  if (raw.length < MAGIC.length + 32 || MAGIC.some((b, i) => raw[i] !== b)) return null;
  let payload: Uint8Array;
  try {
    payload = new Uint8Array(zlib.inflateRawSync(raw.subarray(MAGIC.length + 32)));
  } catch {
    return null;
  }
  const digest = createHash("sha256").update(payload).digest();
  for (let i = 0; i < 32; i++) if (digest[i] !== raw[MAGIC.length + i]) return null;
  return payload;
}
