/**
 * `deno task cache verify|gc [--cache DIR] [--older-than AGE] [--dry-run]`
 *
 * verify: checks every cache entry's and shared sample's hashes; exit 1 when any is corrupt (the next run that
 * reads a corrupt entry discards and recomputes it). gc: removes orphans (temporary folders of runs that are gone,
 * expired locks, entries that fail their manifest check); with --older-than, also entries no run used for that
 * long. Both are safe on a cache that live runs on other hosts are using.
 * @module
 */
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { REPO_ROOT } from "../config/paths.ts";
import { gcCache, verifyCache } from "../dag/maintain.ts";
import { leaseMs } from "../dag/lock.ts";
import { helpText, type OptionSpec, parseArgs, userPath } from "./args.ts";
import { runMain } from "./main.ts";

const USAGE = "deno task cache verify|gc [--cache DIR] [--older-than AGE] [--dry-run]";
const OPTIONS: Record<string, OptionSpec> = {
  cache: { type: "string", value: "DIR", doc: "cache directory (default $VIDSEG_CACHE or results/cache)" },
  "older-than": {
    type: "string",
    value: "AGE",
    doc: "gc: also remove entries unused for longer than AGE (e.g. 30d, 12h, 90m)",
  },
  "dry-run": { type: "boolean", doc: "gc: list what would be removed, remove nothing" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** "30d" / "12h" / "90m" / "45s" → ms. */
export function parseAge(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (!m) throw new UserError(`${option} ${text}: expected a duration such as 30d, 12h, 90m or 45s`);
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as "s" | "m" | "h" | "d"];
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The cache command; returns the exit code. */
export function cache(args: string[]): Promise<number> {
  const { options, positionals } = parseArgs(args, OPTIONS);
  if (options.help) {
    console.log(helpText(USAGE, OPTIONS));
    return Promise.resolve(0);
  }
  const [action] = positionals;
  if (positionals.length !== 1 || (action !== "verify" && action !== "gc")) {
    throw new UserError(`expected one action, verify or gc (usage: ${USAGE})`);
  }
  const dir = userPath(
    (options.cache as string | undefined) ?? Deno.env.get("VIDSEG_CACHE") ??
      path.join(REPO_ROOT, "results", "cache"),
  );
  if (action === "verify") {
    if (options["older-than"] !== undefined || options["dry-run"]) {
      throw new UserError("--older-than and --dry-run apply to gc, not verify");
    }
    const r = verifyCache(dir);
    for (const c of r.corrupt) console.log(`corrupt: ${c}`);
    for (const c of r.corruptSamples) console.log(`corrupt sample: ${path.relative(dir, c)}`);
    console.log(
      `cache verify ${dir}: ${r.entries} entries, ${r.corrupt.length} corrupt; ${
        r.samples + r.corruptSamples.length
      } samples, ${r.corruptSamples.length} corrupt`,
    );
    return Promise.resolve(r.corrupt.length || r.corruptSamples.length ? 1 : 0);
  }
  const older = options["older-than"] as string | undefined;
  const r = gcCache(dir, {
    olderThanMs: older === undefined ? undefined : parseAge(older, "--older-than"),
    leaseMs: leaseMs(),
    dryRun: options["dry-run"] as boolean,
  });
  const verb = options["dry-run"] ? "would remove" : "removed";
  for (const p of [...r.temp, ...r.locks, ...r.corrupt, ...r.unused]) console.log(`${verb}: ${p}`);
  console.log(
    `cache gc ${dir}: ${verb} ${r.temp.length} temporary, ${r.locks.length} expired locks, ${r.corrupt.length} corrupt entries` +
      (older === undefined
        ? ""
        : `, ${r.unused.length} entries and ${r.unusedSamples} samples unused for ${older}`) +
      ` (${mib(r.bytes)})`,
  );
  return Promise.resolve(0);
}

if (import.meta.main) await runMain(cache);
