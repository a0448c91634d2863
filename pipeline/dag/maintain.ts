/**
 * Maintenance of a cache directory that many runs and hosts share (`deno task cache verify|gc`).
 *
 * verify: every entry (`<stage>/<key>/`) is read with all its hashes checked, and every shared sample item too;
 *   nothing is changed (a damaged entry is discarded by the next run that reads it).
 * gc: removes orphans — temporary folders of writers that are gone (this host's dead pids at once, any host's
 *   after `tempGraceMs` without a write), lock files whose lease has expired and the leftovers of breaking them,
 *   entries that fail the cheap check (manifest digest and file sizes); with `olderThanMs`, also entries and
 *   sample items no run has used for that long (runs touch the entries they use). Locks held by live runs and
 *   their temporary folders are never touched, so gc is safe on a live cache.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ArtifactStore, CorruptEntryError } from "./store.ts";
import { SampleStore } from "./sample_cache.ts";
import { breakStale, heartbeatAge, isProcessAlive, isStale, readLock } from "./lock.ts";

const KEY = /^[0-9a-f]{64}$/;
/** Top-level folders of a cache that are not stages (videos: decoded video frames, pipeline/data/video.ts). */
const NOT_STAGES = new Set(["samples", "graphs", "videos"]);

/** Every entry of a cache: [stage, key]. */
export function listEntries(cacheDir: string): [string, string][] {
  const out: [string, string][] = [];
  for (const stage of readdir(cacheDir)) {
    if (stage.startsWith(".") || NOT_STAGES.has(stage)) continue;
    const dir = path.join(cacheDir, stage);
    if (!isDir(dir)) continue;
    for (const key of readdir(dir).sort()) {
      if (KEY.test(key) && isDir(path.join(dir, key))) out.push([stage, key]);
    }
  }
  return out.sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : 1));
}

/** Result of {@link verifyCache}. */
export interface VerifyReport {
  entries: number;
  /** "stage/key: reason". */
  corrupt: string[];
  samples: number;
  corruptSamples: string[];
}

/** Check every entry's and sample item's hashes. */
export function verifyCache(cacheDir: string, onEntry?: (done: number, total: number) => void): VerifyReport {
  const store = new ArtifactStore(cacheDir);
  const entries = listEntries(cacheDir);
  const corrupt: string[] = [];
  entries.forEach(([stage, key], i) => {
    try {
      store.read(stage, key);
    } catch (e) {
      if (!(e instanceof CorruptEntryError)) throw e;
      corrupt.push(`${stage}/${key}: ${e.reason}`);
    }
    onEntry?.(i + 1, entries.length);
  });
  const s = new SampleStore(cacheDir, store.tmpDir).verify();
  return { entries: entries.length, corrupt, samples: s.items, corruptSamples: s.corrupt };
}

/** Options of {@link gcCache}. */
export interface GcOptions {
  /** Also remove entries and sample items unused for longer than this (ms). */
  olderThanMs?: number;
  /** Temporary folders with no write for this long are orphans whatever host made them (default 24 h). */
  tempGraceMs?: number;
  /** Lock lease (ms) for judging lock files. */
  leaseMs?: number;
  /** Report only. */
  dryRun?: boolean;
}

/** What {@link gcCache} removed (paths relative to the cache), by kind. */
export interface GcReport {
  temp: string[];
  locks: string[];
  corrupt: string[];
  unused: string[];
  unusedSamples: number;
  bytes: number;
}

/** Remove orphans (and, with `olderThanMs`, unused entries). */
export function gcCache(cacheDir: string, opts: GcOptions = {}): GcReport {
  const report: GcReport = { temp: [], locks: [], corrupt: [], unused: [], unusedSamples: 0, bytes: 0 };
  const grace = opts.tempGraceMs ?? 24 * 3600_000;
  const remove = (p: string, list: string[] | null) => {
    report.bytes += sizeOf(p);
    list?.push(path.relative(cacheDir, p));
    if (!opts.dryRun) fs.rmSync(p, { recursive: true, force: true });
  };
  const host = Deno.hostname();
  const tmpDir = path.join(cacheDir, ".tmp");
  for (const name of readdir(tmpDir)) {
    const p = path.join(tmpDir, name);
    const [pid, h] = name.split("~");
    const deadHere = h === host && /^\d+$/.test(pid) && !isProcessAlive(Number(pid));
    if (deadHere || Date.now() - newestMtime(p) > grace) remove(p, report.temp);
  }
  const locksDir = path.join(cacheDir, ".locks");
  for (const name of readdir(locksDir)) {
    const p = path.join(locksDir, name);
    const age = heartbeatAge(p);
    if (age === null) continue;
    if (name.endsWith(".lock")) {
      const info = readLock(p);
      if (info ? !isStale(info, age, opts.leaseMs) : age <= 10_000) continue;
      report.locks.push(path.relative(cacheDir, p));
      // Through the breakers' protocol: a fresh lock taken since we looked is put back, never deleted.
      if (!opts.dryRun) info ? breakStale(p, info, opts.leaseMs) : fs.rmSync(p, { force: true });
    } else if (age > Math.max(10_000, opts.leaseMs ?? 0)) remove(p, report.locks); // broken-aside and link temps
  }
  const store = new ArtifactStore(cacheDir);
  for (const [stage, key] of listEntries(cacheDir)) {
    const dir = store.entryDir(stage, key);
    try {
      store.read(stage, key, { verify: false });
    } catch (e) {
      if (!(e instanceof CorruptEntryError)) throw e;
      remove(dir, report.corrupt);
      continue;
    }
    if (opts.olderThanMs !== undefined && Date.now() - mtime(dir) > opts.olderThanMs) {
      remove(dir, report.unused);
    }
  }
  if (opts.olderThanMs !== undefined) {
    const walk = (dir: string) => {
      for (const e of readdirTyped(dir)) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (Date.now() - mtime(p) > opts.olderThanMs!) {
          remove(p, null);
          report.unusedSamples++;
        }
      }
    };
    walk(path.join(cacheDir, "samples"));
  }
  return report;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function readdirTyped(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function mtime(p: string): number {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return Date.now();
  }
}

/** Latest mtime of a file or of anything under a folder (a writer streaming into a file updates only it). */
function newestMtime(p: string): number {
  let t = mtime(p);
  for (const e of readdirTyped(p)) t = Math.max(t, newestMtime(path.join(p, e.name)));
  return t;
}

function sizeOf(p: string): number {
  try {
    const st = fs.statSync(p);
    if (!st.isDirectory()) return st.size;
  } catch {
    return 0;
  }
  let n = 0;
  for (const e of readdirTyped(p)) n += sizeOf(path.join(p, e.name));
  return n;
}
