/**
 * Inter-process, inter-host locks on cache keys, so two runs never compute the same stage instance at once,
 * also when many hosts share one cache on NFS, Lustre or a cluster's scratch.
 *
 * A lock is a file `<cache>/.locks/<key>.lock` holding {pid, host, started, procStart, nonce}. It is created
 * atomically with its content (write a temp file, then `link` it into place, which fails if the lock exists).
 * A lock is a lease: its holder renews a heartbeat (the file's mtime) every lease/5, and a lock whose heartbeat
 * is older than the lease is stale whichever host took it (a dead node cannot renew). On the holder's own host,
 * a dead pid (or a pid reused by a process with another start time) makes it stale at once.
 *
 * Breaking a stale lock renames it to a name unique to the breaker (only one of several breakers can move a given
 * file), then checks that what it moved is the stale lock it judged: if another breaker got there first and a new
 * holder's fresh lock was moved instead, it is linked back. Losing a lease to a mistaken break (a holder frozen
 * longer than the lease) costs duplicated work only: entries are content-addressed and published by rename, so
 * the first commit wins and the second is discarded.
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { UserError } from "../errors.ts";

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
  /** Lease (ms): a heartbeat older than this makes the lock stale (default {@link leaseMs}). */
  leaseMs?: number;
  /** Called once when we start waiting for a lock held by a live process. */
  onWait?(holder: LockInfo): void;
  /** Called when a heartbeat finds the lock taken over (our lease was broken). */
  onLost?(): void;
  signal?: AbortSignal;
}

/** Default lease: 5 minutes (a stage may block its event loop for a while; heartbeats are every lease/5). */
export const DEFAULT_LEASE_MS = 300_000;

/** The lease in ms: $VIDSEG_LOCK_LEASE (seconds) or {@link DEFAULT_LEASE_MS}. */
export function leaseMs(): number {
  const raw = Deno.env.get("VIDSEG_LOCK_LEASE");
  if (raw === undefined || raw === "") return DEFAULT_LEASE_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) {
    throw new UserError(`VIDSEG_LOCK_LEASE: "${raw}" is not a positive number of seconds`);
  }
  return s * 1000;
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

/**
 * True when the lock's owner is known to be gone: its heartbeat is `ageMs` old and that exceeds the lease (any
 * host), or it was taken on this host by a pid that is dead or reused. Without `ageMs` only the second applies.
 */
export function isStale(info: LockInfo, ageMs?: number, lease = DEFAULT_LEASE_MS): boolean {
  if (ageMs !== undefined && ageMs > lease) return true;
  if (info.host !== Deno.hostname()) return false;
  if (!isProcessAlive(info.pid)) return true;
  const now = processStartTime(info.pid);
  return info.procStart !== null && now !== null && now !== info.procStart;
}

/** Age of a file's heartbeat (now − mtime, ms), or null when it does not exist. */
export function heartbeatAge(file: string): number | null {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

function ownInfo(): LockInfo {
  return {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: new Date().toISOString(),
    procStart: processStartTime(Deno.pid),
    nonce: Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2),
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
  const tmp = `${file}.${info.host}.${info.pid}.${info.nonce}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  try {
    fs.linkSync(tmp, file);
    return info;
  } catch (e) {
    // NFS may answer EEXIST to a retransmitted link that did succeed: the link count tells the truth.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return linkCount(tmp) === 2 ? info : null;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function linkCount(file: string): number {
  try {
    return fs.statSync(file).nlink;
  } catch {
    return 0;
  }
}

/**
 * Break the lock at `file` if it is still the stale lock `seen`. Safe against concurrent breakers: the lock is
 * renamed to a name unique to us, and if what we moved is not `seen` (someone broke it first and a new holder
 * took it) it is put back. Returns true when we removed `seen`.
 */
export function breakStale(file: string, seen: LockInfo, lease = DEFAULT_LEASE_MS): boolean {
  const aside = `${file}.broken.${Deno.hostname()}.${Deno.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false; // released or broken by someone else
    throw e;
  }
  const moved = readLock(aside);
  const age = heartbeatAge(aside) ?? 0;
  if (moved && moved.nonce === seen.nonce && moved.pid === seen.pid && isStale(moved, age, lease)) {
    fs.rmSync(aside, { force: true });
    return true;
  }
  // A live lock taken after our check: restore it (if a third process took the path meanwhile, the displaced
  // holder's next heartbeat notices; at worst the instance is computed twice and the first commit wins).
  try {
    fs.linkSync(aside, file);
  } catch { /* the path is taken again */ }
  fs.rmSync(aside, { force: true });
  return false;
}

/** A lock file that exists but cannot be parsed and is older than 10 s (never produced by `tryLock`). */
function unreadableForLong(file: string): boolean {
  const age = heartbeatAge(file);
  return age !== null && age > 10_000;
}

/** Delete our lock (only if it is still ours). */
export function releaseLock(file: string, mine: LockInfo): void {
  const now = readLock(file);
  if (now && now.nonce === mine.nonce && now.pid === mine.pid) fs.rmSync(file, { force: true });
}

/** Renew our heartbeat on `file`; false when the lock is no longer ours. */
export function renewLock(file: string, mine: LockInfo): boolean {
  const now = readLock(file);
  if (!now || now.nonce !== mine.nonce) return false;
  try {
    const t = new Date();
    fs.utimesSync(file, t, t);
    return true;
  } catch {
    return false;
  }
}

/**
 * Take the lock, waiting while a live process holds it and breaking it when it is stale. While held, its
 * heartbeat is renewed every lease/5 until `release`. `waited` reports whether we had to wait.
 */
export async function acquireLock(
  file: string,
  opts: LockOptions = {},
): Promise<{ release: () => void; waited: boolean }> {
  const pollMs = opts.pollMs ?? 250;
  const lease = opts.leaseMs ?? leaseMs();
  let waited = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    const mine = tryLock(file);
    if (mine) {
      const timer = setInterval(() => {
        if (!renewLock(file, mine)) {
          clearInterval(timer);
          opts.onLost?.();
        }
      }, Math.max(50, lease / 5));
      Deno.unrefTimer(timer);
      return {
        release: () => {
          clearInterval(timer);
          releaseLock(file, mine);
        },
        waited,
      };
    }
    const holder = readLock(file);
    if (!holder && unreadableForLong(file)) {
      fs.rmSync(file, { force: true }); // garbage left by hand or a broken disk: locks are written whole
      continue;
    }
    const age = heartbeatAge(file);
    if (holder && age !== null && isStale(holder, age, lease)) {
      breakStale(file, holder, lease);
      continue;
    }
    if (!waited && holder) opts.onWait?.(holder);
    waited = true;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
