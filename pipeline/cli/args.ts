/**
 * Command-line parsing shared by the CLIs: `--name value`, `--name=value`, repeatable list options,
 * boolean flags, `--` to end options. Mistakes are UserErrors ("unknown option --plna (did you mean
 * --plan?)").
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";
import { suggest } from "../config/suggest.ts";

/** One option. */
export interface OptionSpec {
  type: "boolean" | "string" | "list";
  /** Placeholder in the help text ("DIR"). */
  value?: string;
  /** Single-letter alias ("h"). */
  short?: string;
  doc: string;
}

/** Parsed command line. */
export interface ParsedArgs {
  /** boolean → true/false, string → string|undefined, list → string[] (repeatable; commas are not split). */
  options: Record<string, boolean | string | string[] | undefined>;
  positionals: string[];
}

/** Parse `argv` against `spec`. */
export function parseArgs(argv: readonly string[], spec: Record<string, OptionSpec>): ParsedArgs {
  const options: ParsedArgs["options"] = {};
  for (const [name, s] of Object.entries(spec)) {
    options[name] = s.type === "boolean" ? false : s.type === "list" ? [] : undefined;
  }
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(spec).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const rawName = eq > 0 ? arg.slice(0, eq) : arg;
    const name = rawName.startsWith("--") ? rawName.slice(2) : byShort.get(rawName.slice(1)) ?? "";
    const s = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!s) {
      const near = suggest(rawName.replace(/^-+/, ""), Object.keys(spec), "--");
      throw new UserError(`unknown option ${rawName}${near ? ` (did you mean ${near}?)` : ""}`);
    }
    if (s.type === "boolean") {
      if (eq > 0) throw new UserError(`--${name} takes no value`);
      options[name] = true;
      continue;
    }
    let value: string;
    if (eq > 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) {
        throw new UserError(`--${name}: expected a value${s.value ? ` (${s.value})` : ""}`);
      }
      value = argv[++i];
    }
    if (s.type === "list") (options[name] as string[]).push(value);
    else options[name] = value;
  }
  return { options, positionals };
}

/** Help text: the usage line, then one line per option. */
export function helpText(usage: string, spec: Record<string, OptionSpec>, epilog = ""): string {
  const lines = Object.entries(spec).map(([n, s]) => {
    const head = `${s.short ? `-${s.short}, ` : "    "}--${n}${s.value ? ` ${s.value}` : ""}`;
    return `  ${head.padEnd(26)} ${s.doc}`;
  });
  return [`usage: ${usage}`, "", "options:", ...lines, ...(epilog ? ["", epilog] : [])].join("\n");
}

/**
 * The directory the user typed the command in: `deno task` runs tasks from the repo root but keeps the
 * caller's directory in INIT_CWD, so command-line paths must be resolved against it.
 */
export function userCwd(): string {
  return Deno.env.get("INIT_CWD") || Deno.cwd();
}

/** A command-line path made absolute against the user's directory; `what` names it in the error for "". */
export function userPath(p: string, what = "path"): string {
  // An empty path would resolve to the current folder: never what was meant (an unset shell variable).
  if (p.trim() === "") throw new UserError(`${what}: empty path; expected a file or folder name`);
  return path.resolve(userCwd(), p);
}

/**
 * The cache folder of a command: --cache, else $VIDSEG_CACHE, else results/cache under `repoRoot`. The built
 * ONNX graphs live in its `graphs/` sub-folder unless $VIDSEG_GRAPH_CACHE names another place.
 */
export function cacheDirOption(option: string | undefined, repoRoot: string): string {
  const env = Deno.env.get("VIDSEG_CACHE");
  const dir = option !== undefined
    ? userPath(option, "--cache")
    : env !== undefined
    ? userPath(env, "VIDSEG_CACHE")
    : path.join(repoRoot, "results", "cache");
  if (!Deno.env.get("VIDSEG_GRAPH_CACHE")) Deno.env.set("VIDSEG_GRAPH_CACHE", path.join(dir, "graphs"));
  return dir;
}

/**
 * Check, before any work, that `dir` is (or can be created as) a folder this process can replace or fill:
 * if it exists it must be a folder, and the folder holding it (or its nearest existing ancestor) must be a
 * writable folder — outputs are staged beside the target and swapped in. Throws a one-line UserError naming
 * `option` and the path otherwise.
 */
export function checkWritableDir(dir: string, option: string): void {
  const target = path.resolve(dir);
  let problem = "";
  const writable = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) problem = `${target} is a file`;
  else if (fs.existsSync(target)) {
    // The previous folder is replaced at the end: every folder in it must be removable.
    const stuck = unremovable(target, writable);
    if (stuck) problem = `${stuck} is not writable, so the previous results cannot be replaced`;
  }
  if (!problem) {
    let p = path.dirname(target);
    while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
    if (!fs.statSync(p).isDirectory()) problem = `${p} is a file`;
    else if (!writable(p)) problem = `${p} is not writable`;
  }
  if (problem) {
    throw new UserError(`${option} ${dir}: cannot write there (${problem}); expected a writable folder`);
  }
}

/** The first folder under (and including) `dir` whose entries cannot be removed, or "". */
function unremovable(dir: string, writable: (p: string) => boolean): string {
  if (!writable(dir)) return dir;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return dir;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const bad = unremovable(path.join(dir, e.name), writable);
    if (bad) return bad;
  }
  return "";
}
