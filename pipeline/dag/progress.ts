/**
 * Progress and accounting for a run: counts and ETA on stderr (one repainted line on a TTY; plain log lines
 * when stderr is not a TTY or CI=true), counters (run / cached / recomputed-corrupt), per-stage wall times,
 * and the closing summary table.
 * @module
 */

/** Where progress text goes (stderr by default). */
export interface TextSink {
  /** Write text as is. */
  write(text: string): void;
  /** Repaint a single status line in place (TTY mode). */
  isTty: boolean;
}

/** stderr as a sink; TTY mode only when it is a terminal and CI is not set. */
export function stderrSink(): TextSink {
  const enc = new TextEncoder();
  const ci = (Deno.env.get("CI") ?? "").toLowerCase();
  return {
    write: (t) => void Deno.stderr.writeSync(enc.encode(t)),
    isTty: Deno.stderr.isTerminal() && ci !== "true" && ci !== "1",
  };
}

/** Per-stage accounting. */
export interface StageStats {
  run: number;
  cached: number;
  corrupt: number;
  /** Total wall time of the instances computed in this run (ms). */
  wallMs: number;
}

/** Progress reporter and counters of one runner invocation. */
export class Progress {
  readonly stats = new Map<string, StageStats>();
  #toRun = new Map<string, number>();
  #done = 0;
  #current: { label: string; stage: string; t0: number; sub: string } | null = null;
  #lastPaint = 0;
  #lastPlain = 0;
  readonly #t0 = Date.now();

  constructor(readonly sink: TextSink = stderrSink()) {}

  /** Instances expected to run, per stage (for counts and ETA). */
  begin(toRunByStage: Map<string, number>): void {
    this.#toRun = new Map(toRunByStage);
  }

  /** One more instance to run than planned (a corrupt entry being recomputed). */
  addToRun(stage: string): void {
    this.#toRun.set(stage, (this.#toRun.get(stage) ?? 0) + 1);
  }

  #stat(stage: string): StageStats {
    let s = this.stats.get(stage);
    if (!s) this.stats.set(stage, s = { run: 0, cached: 0, corrupt: 0, wallMs: 0 });
    return s;
  }

  get totalToRun(): number {
    let n = 0;
    for (const v of this.#toRun.values()) n += v;
    return n;
  }

  /** An instance starts computing. */
  start(stage: string, label: string): void {
    this.#current = { label, stage, t0: Date.now(), sub: "" };
    if (this.sink.isTty) this.#paint(true);
    else this.#line(`[${this.#done + 1}/${this.totalToRun}] run ${label}`);
  }

  /** Sub-progress reported by the running stage. */
  sub(done: number, total: number, what = ""): void {
    if (!this.#current) return;
    this.#current.sub = `${what ? what + " " : ""}${done}/${total}`;
    if (this.sink.isTty) this.#paint(false);
    else if (Date.now() - this.#lastPlain > 10_000) {
      this.#line(`      ${this.#current.label}: ${this.#current.sub}`);
    }
  }

  /** An instance finished computing (`corrupt`: it replaced a corrupt entry). */
  finishRun(stage: string, label: string, wallMs: number, corrupt: boolean): void {
    const s = this.#stat(stage);
    if (corrupt) s.corrupt++;
    else s.run++;
    s.wallMs += wallMs;
    this.#done++;
    this.#current = null;
    const eta = this.eta();
    const msg = `[${this.#done}/${this.totalToRun}] done ${label} in ${fmtDuration(wallMs)}` +
      (eta === null ? "" : `, eta ${fmtDuration(eta)}`);
    if (this.sink.isTty) this.#paint(true);
    else this.#line(msg);
  }

  /** An instance was found in the cache (including after waiting for another process). */
  cached(stage: string, n = 1): void {
    this.#stat(stage).cached += n;
  }

  /** A plain message (clears the status line first on a TTY). */
  log(msg: string): void {
    if (this.sink.isTty) {
      this.sink.write(`\r\x1b[2K${msg}\n`);
      this.#paint(true);
    } else this.#line(msg);
  }

  /** Remaining time from this run's mean wall time per stage (null until something has finished). */
  eta(): number | null {
    let all = 0, n = 0;
    for (const s of this.stats.values()) (all += s.wallMs), (n += s.run + s.corrupt);
    if (n === 0) return null;
    let ms = 0;
    for (const [stage, planned] of this.#toRun) {
      const s = this.stats.get(stage);
      const finished = s ? s.run + s.corrupt : 0;
      const mean = s && finished > 0 ? s.wallMs / finished : all / n;
      ms += Math.max(0, planned - finished) * mean;
    }
    if (this.#current) ms -= Math.min(Date.now() - this.#current.t0, ms);
    return Math.max(0, ms);
  }

  /** Totals over all stages. */
  totals(): StageStats {
    const t = { run: 0, cached: 0, corrupt: 0, wallMs: 0 };
    for (const s of this.stats.values()) {
      (t.run += s.run), (t.cached += s.cached), (t.corrupt += s.corrupt), (t.wallMs += s.wallMs);
    }
    return t;
  }

  /** "3 run, 5 cached" (+ ", 1 recomputed (corrupt)" when any). */
  summaryLine(): string {
    const t = this.totals();
    return `${t.run} run, ${t.cached} cached` + (t.corrupt ? `, ${t.corrupt} recomputed (corrupt)` : "");
  }

  /** Per-stage table: counts, total and mean wall time of computed instances. */
  summaryTable(stageOrder: string[] = [...this.stats.keys()]): string {
    const head = ["stage", "run", "cached", "corrupt", "wall", "mean"];
    const body = stageOrder.filter((s) => this.stats.has(s)).map((name) => {
      const s = this.stats.get(name)!;
      const n = s.run + s.corrupt;
      return [
        name,
        `${s.run}`,
        `${s.cached}`,
        `${s.corrupt}`,
        fmtDuration(s.wallMs),
        n ? fmtDuration(s.wallMs / n) : "-",
      ];
    });
    const t = this.totals();
    const n = t.run + t.corrupt;
    body.push([
      "(all)",
      `${t.run}`,
      `${t.cached}`,
      `${t.corrupt}`,
      fmtDuration(t.wallMs),
      n ? fmtDuration(t.wallMs / n) : "-",
    ]);
    const width = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const fmt = (r: string[]) =>
      r.map((c, i) => (i === 0 ? c.padEnd(width[i]) : c.padStart(width[i]))).join("  ").trimEnd();
    return [fmt(head), ...body.map(fmt)].join("\n");
  }

  /** Wall time since this reporter was created (ms). */
  elapsedMs(): number {
    return Date.now() - this.#t0;
  }

  /** Clear the status line (TTY) before the final output. */
  end(): void {
    if (this.sink.isTty) this.sink.write("\r\x1b[2K");
  }

  #line(msg: string): void {
    this.#lastPlain = Date.now();
    this.sink.write(msg + "\n");
  }

  #paint(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.#lastPaint < 100) return; // at most 10 repaints per second
    this.#lastPaint = now;
    const eta = this.eta();
    const cur = this.#current
      ? ` | ${this.#current.label}${this.#current.sub ? ` (${this.#current.sub})` : ""}`
      : "";
    const line = `[${this.#done}/${this.totalToRun}]${cur}${
      eta === null ? "" : ` | eta ${fmtDuration(eta)}`
    }`;
    const cols = (() => {
      try {
        const c = Deno.consoleSize().columns;
        return c >= 20 ? c : 120; // a pty without a size reports 0
      } catch {
        return 120;
      }
    })();
    this.sink.write(`\r\x1b[2K${line.slice(0, cols - 1)}`);
  }
}

/** Human duration: "850ms", "12.3s", "4m05s", "2h03m". */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s - m * 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
