/**
 * Identity of the data files a stage reads (part of its cache key).
 *
 * We use the file's *content* hash, not (path, size, mtime): a `git clone`, `cp -r` or `touch` changes
 * mtimes without changing data and must not invalidate hours of cached work, while a file rewritten with
 * the same size inside the mtime granularity must invalidate it. Hashing gigabyte weights on every run
 * would be slow, so the content hash is memoised per path under `<cache>/.filehash/`, keyed by
 * (size, mtime, inode): an unchanged file costs one stat, a changed one is re-hashed once.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { canonicalJson, sha256File, sha256Hex } from "./hash.ts";

interface MemoEntry {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** Content identities of input files/directories, memoised by stat on disk and in memory. */
export class FileIdentity {
  readonly #memoDir: string | null;
  readonly #mem = new Map<string, string>();

  /** `memoDir` = where memo records live (null: in-memory only). */
  constructor(memoDir: string | null) {
    this.#memoDir = memoDir;
  }

  /**
   * sha256 identity of a file, or of a directory (over its sorted relative paths and file hashes).
   * `reader` (the stage name) only appears in the error for a missing path.
   */
  identify(p: string, reader: string): string {
    const abs = path.resolve(p);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new UserError(`${abs}: input file not found (read by stage ${reader})`);
    }
    if (st.isDirectory()) {
      const parts = listFiles(abs).map((rel) => [rel, this.identify(path.join(abs, rel), reader)]);
      return sha256Hex(canonicalJson(parts));
    }
    const memoKey = `${abs}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
    const cached = this.#mem.get(memoKey);
    if (cached) return cached;
    const fromDisk = this.#readMemo(abs, st);
    const hash = fromDisk ?? hashReadable(abs, reader);
    if (!fromDisk) {
      this.#writeMemo({ path: abs, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: hash });
    }
    this.#mem.set(memoKey, hash);
    return hash;
  }

  #memoFile(abs: string): string | null {
    return this.#memoDir ? path.join(this.#memoDir, sha256Hex(abs).slice(0, 32) + ".json") : null;
  }

  #readMemo(abs: string, st: fs.Stats): string | null {
    const f = this.#memoFile(abs);
    if (!f) return null;
    try {
      const m = JSON.parse(fs.readFileSync(f, "utf8")) as MemoEntry;
      const same = m.path === abs && m.size === st.size && m.mtimeMs === st.mtimeMs && m.ino === st.ino;
      return same && /^[0-9a-f]{64}$/.test(m.sha256) ? m.sha256 : null;
    } catch {
      return null; // absent or unreadable memo: just re-hash
    }
  }

  #writeMemo(m: MemoEntry): void {
    const f = this.#memoFile(m.path);
    if (!f) return;
    // Best effort (a read-only cache still works); temp + rename so a reader never sees half a record.
    try {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      const tmp = `${f}.${Deno.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(m));
      fs.renameSync(tmp, f);
    } catch {
      // ignore
    }
  }
}

/** Relative paths of all files under a directory, sorted (deterministic identity). */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true })
      .map((e) => ({ name: e.name, isDir: e.isDirectory() }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDir) walk(r);
      else out.push(r);
    }
  };
  walk("");
  return out;
}

/** Content hash of an input file; an unreadable one is the user's to fix (one line, no stack trace). */
function hashReadable(abs: string, reader: string): string {
  try {
    return sha256File(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new UserError(`${abs}: cannot read this input (${code}; read by stage ${reader}); expected a readable file`);
  }
}
