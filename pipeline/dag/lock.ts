/**
 * Inter-process locks on cache keys, so two runs never compute the same stage instance at once.
 *
 * A lock is a file `<cache>/.locks/<key>.lock` holding {pid, host, started, procStart, nonce}. It is created
 * atomically with its content (write a temp file, then `link` it into place, which fails if the lock exists).
 * A lock is stale when its owner is on this host and that pid is dead (or the pid was reused by a process
 * with another start time); stale locks are broken under a short-lived "breaker" lock so two waiters can
 * never both break it and then delete each other's fresh lock.
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";

/** Content of a lock file. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Kernel start time of the owner (field 22 of /proc/<pid>/stat), to detect pid reuse. */
  procStart: string | null;
  nonce: string;
}

/** Options for `acquireLock`. */
export interface LockOptions {
  /** Poll interval while waiting (ms). */
  pollMs?: number;
  /** Called once when we start waiting for a lock held by a live process. */
  onWait?(holder: LockInfo): void;
  signal?: AbortSignal;
}

/** True if a process with this pid exists (on this host). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Kernel start time of a process (Linux), or null where /proc is unavailable. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: split after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** True when the lock's owner is known to be gone (only decidable for locks taken on this host). */
export function isStale(info: LockInfo): boolean {
  if (info.host !== Deno.hostname()) return false;
  if (!isProcessAlive(info.pid)) return true;
  const now = processStartTime(info.pid);
  return info.procStart !== null && now !== null && now !== info.procStart;
}

function ownInfo(): LockInfo {
  return {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: new Date().toISOString(),
    procStart: processStartTime(Deno.pid),
    nonce: Math.random().toString(36).slice(2),
  };
}

/** Read a lock file; null if it does not exist or cannot be parsed. */
export function readLock(file: string): LockInfo | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
  } catch {
    return null;
  }
}

/** Try once to create the lock. Returns our LockInfo on success, null if it is held. */
export function tryLock(file: string): LockInfo | null {
  const info = ownInfo();
  const tmp = `${file}.${info.pid}.${info.nonce}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  try {
    fs.linkSync(tmp, file);
    return info;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return null;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Remove the lock at `file` if it is still the same stale lock `seen`. */
function breakStale(file: string, seen: LockInfo): void {
  const breaker = `${file}.break`;
  const mine = tryLock(breaker);
  if (!mine) {
    const holder = readLock(breaker);
    if (holder && isStale(holder)) fs.rmSync(breaker, { force: true });
    return; // someone else is breaking it; we re-check on the next poll
  }
  try {
    const now = readLock(file);
    if (now && now.nonce === seen.nonce && now.pid === seen.pid) fs.rmSync(file, { force: true });
  } finally {
    releaseLock(breaker, mine);
  }
}

/** A lock file that exists but cannot be parsed and is older than 10 s (never produced by `tryLock`). */
function unreadableForLong(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > 10_000;
  } catch {
    return false;
  }
}

/** Delete our lock (only if it is still ours). */
export function releaseLock(file: string, mine: LockInfo): void {
  const now = readLock(file);
  if (now && now.nonce === mine.nonce && now.pid === mine.pid) fs.rmSync(file, { force: true });
}

/**
 * Take the lock, waiting while a live process holds it and breaking it when its owner is dead.
 * Returns a release function. Returns after `waited` reports whether we had to wait.
 */
export async function acquireLock(
  file: string,
  opts: LockOptions = {},
): Promise<{ release: () => void; waited: boolean }> {
  const pollMs = opts.pollMs ?? 250;
  let waited = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    const mine = tryLock(file);
    if (mine) return { release: () => releaseLock(file, mine), waited };
    const holder = readLock(file);
    if (!holder && unreadableForLong(file)) {
      fs.rmSync(file, { force: true }); // garbage left by hand or a broken disk: locks are written whole
      continue;
    }
    if (holder && isStale(holder)) {
      breakStale(file, holder);
      continue;
    }
    if (!waited && holder) opts.onWait?.(holder);
    waited = true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
