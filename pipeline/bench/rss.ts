/**
 * Resident memory of this process: the kernel's peak (VmHWM in /proc/self/status), a reset of that peak
 * (writing "5" to /proc/self/clear_refs) so phases can be measured separately, and a sampler of
 * `Deno.memoryUsage().rss` for systems without /proc.
 * @module
 */
import * as fs from "node:fs";

const MB = 2 ** 20;

/** A `kB` field of /proc/self/status in bytes, or null when unavailable. */
function statusField(name: string): number | null {
  try {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Current resident set size in bytes. */
export function currentRss(): number {
  return statusField("VmRSS") ?? Deno.memoryUsage().rss;
}

/** Peak resident set size since process start (or the last {@link resetPeakRss}) in bytes, or null. */
export function peakRss(): number | null {
  return statusField("VmHWM");
}

/** Reset the kernel's peak RSS to the current RSS; false when not supported (then peaks are cumulative). */
export function resetPeakRss(): boolean {
  try {
    fs.writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** Polls the RSS every `intervalMs` and keeps the maximum (a fallback where VmHWM is missing). */
export class RssSampler {
  #max = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(readonly intervalMs = 50) {}

  /** Start polling (also takes one sample now). */
  start(): this {
    this.sample();
    const timer = setInterval(() => this.sample(), this.intervalMs);
    // Never keep the process alive just for sampling.
    Deno.unrefTimer(timer);
    this.#timer = timer;
    return this;
  }

  /** Take one sample. */
  sample(): void {
    this.#max = Math.max(this.#max, currentRss());
  }

  /** Stop polling; returns the peak seen (bytes). */
  stop(): number {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
    return this.#max;
  }

  /** Peak seen so far (bytes). */
  get peak(): number {
    return this.#max;
  }
}

/** Peak RSS of the process: VmHWM when available, else the sampler's peak. */
export function processPeak(sampler?: RssSampler): number {
  return peakRss() ?? sampler?.peak ?? currentRss();
}

/** Bytes → MiB rounded to 0.1. */
export function mib(bytes: number): number {
  return Math.round((bytes / MB) * 10) / 10;
}
