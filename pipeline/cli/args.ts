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

/** A command-line path made absolute against the user's directory. */
export function userPath(p: string): string {
  return path.resolve(userCwd(), p);
}

/**
 * Check, before any work, that `dir` is (or can be created as) a writable folder: its nearest existing ancestor
 * must be a folder we may write to. Throws a one-line UserError naming `option` and the path otherwise.
 */
export function checkWritableDir(dir: string, option: string): void {
  let p = path.resolve(dir);
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  let problem = "";
  if (!fs.statSync(p).isDirectory()) problem = `${p} is a file`;
  else {
    try {
      fs.accessSync(p, fs.constants.W_OK);
    } catch {
      problem = `${p} is not writable`;
    }
  }
  if (problem) {
    throw new UserError(
      `${option} ${dir}: cannot write results there (${problem}); expected a writable folder`,
    );
  }
}
