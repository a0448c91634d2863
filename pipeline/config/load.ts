/**
 * Loading a config file: YAML → `defaults` + named `rows` of overrides (deep-merged over the schema
 * defaults) → `--set` overrides → validation → paths resolved against the repo root. Every mistake is a
 * one-line UserError naming the file, the key path and what was expected.
 *
 *   title: "Table 2"            # optional
 *   defaults: {kmeans: {k: 20}}
 *   rows:
 *     A: {title: "...", paper: {mIoU: 33.4, mVC8: 70.6, mVC16: 60.2}, batch_size: 1}
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { UserError } from "../errors.ts";
import { type LeafSpec, schemaDefaults, schemaLeaves, specAt, type VidsegConfig } from "./schema.ts";
import {
  checkCrossFields,
  checkLeaf,
  describeValue,
  type Origin,
  unknownKey,
  validateLayer,
} from "./validate.ts";
import { REPO_ROOT, resolveRepoPath } from "./paths.ts";

/** Published numbers stored beside a row (percent). */
export interface PaperNumbers {
  /** mIoU (percent). */
  mIoU: number | null;
  /** mVC8 (percent). */
  mVC8: number | null;
  /** mVC16 (percent). */
  mVC16: number | null;
}

/** One row: its name, label, published numbers and fully resolved config. */
export interface ConfigRow {
  /** Row name (the key under `rows`). */
  name: string;
  /** Row title, if the file gives one. */
  title: string | null;
  /** Published numbers of the row, if the file gives them. */
  paper: PaperNumbers | null;
  /** The resolved config of the row (defaults, row overrides, `--set`). */
  config: VidsegConfig;
  /**
   * `optional: true` in the file: left out of the default selection (e.g. rows that need weights a fresh
   * machine does not have); run when named with --rows (`selectRows`) or `LoadOptions.include`.
   */
  optional?: boolean;
}

/** A loaded config file. */
export interface LoadedConfig {
  /** The path as given (used in messages). */
  file: string;
  /** File name without extension (names the results folder). */
  name: string;
  /** The file's `title`, if any. */
  title: string | null;
  /** The selected rows: every non-optional row, plus the optional rows asked for. */
  rows: ConfigRow[];
  /** Every row of the file in file order, optional ones included (absent = same as `rows`). */
  allRows?: ConfigRow[];
}

/** Options of `loadConfig`. */
export interface LoadOptions {
  /** `KEY=VALUE` overrides (VALUE parsed as YAML); `rows.NAME.KEY=VALUE` targets one row. */
  set?: string[];
  /** Keep only these rows (in config order; optional rows may be named). */
  rows?: string[];
  /** Optional rows to include in `rows` (names of other rows are ignored). */
  include?: string[];
  /** Base of relative paths inside the config (default: the repo root). */
  root?: string;
  /** Directory the config file name is relative to (default: the current directory). */
  cwd?: string;
}

const TOP_KEYS = ["title", "defaults", "rows"];
/** Largest config text accepted (a config is a few kilobytes; a huge one is a mistake or an attack). */
const MAX_CONFIG_CHARS = 1 << 20;
/** Most alias expansions in one config (yaml's default of 100 bounds the expanded size). */
const MAX_ALIASES = 100;
const PAPER_KEYS = ["mIoU", "mVC8", "mVC16"];
const ROW_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PATH_LEAVES = schemaLeaves().filter(([, s]) => s.kind === "path").map(([p]) => p);

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Read and validate a config file. */
export function loadConfig(file: string, opts: LoadOptions = {}): LoadedConfig {
  if (file.trim() === "") throw new UserError(`config: empty path; expected a YAML config file`);
  let text: string;
  try {
    const abs = path.resolve(opts.cwd ?? Deno.cwd(), file);
    if (fs.statSync(abs).isDirectory()) throw new UserError(`${file}: is a folder; expected a YAML config file`);
    text = fs.readFileSync(abs, "utf8");
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      `${file}: ${code === "ENOENT" ? "config file not found" : `cannot read config (${code})`}`,
    );
  }
  return parseConfig(text, file, opts);
}

/** Parse YAML text into a validated config (`file` is used for messages and the config name). */
export function parseConfig(text: string, file: string, opts: LoadOptions = {}): LoadedConfig {
  if (text.length > MAX_CONFIG_CHARS) {
    throw new UserError(
      `${file}: config is ${text.length} characters; expected a config file of at most ${MAX_CONFIG_CHARS}`,
    );
  }
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new UserError(`${file}${pos ? `:${pos.line}:${pos.col}` : ""}: YAML syntax error: ${msg}`);
  }
  if (doc.contents === null) {
    throw new UserError(`${file}: the config is empty; expected a mapping with defaults and rows`);
  }
  let top: unknown;
  try {
    // Aliases expand on conversion: a few nested ones can stand for billions of nodes ("billion laughs").
    top = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (e) {
    throw new UserError(
      `${file}: YAML aliases expand too far (${(e as Error).message.split("\n")[0]}); expected at most ${MAX_ALIASES} alias uses`,
    );
  }
  const at = (prefix: string): Origin => ({ kind: "file", file, prefix });
  if (!isMapping(top)) {
    throw new UserError(`${file}: expected a mapping with defaults and rows, got ${describeValue(top)}`);
  }
  for (const k of Object.keys(top)) {
    if (!TOP_KEYS.includes(k)) throw new UserError(`${file}: ${k}: ${unknownKey(k, TOP_KEYS, "")}`);
  }
  const title = top.title ?? null;
  if (title !== null && typeof title !== "string") {
    throw new UserError(`${file}: title: expected a string, got ${describeValue(title)}`);
  }
  const defaults = top.defaults ?? {};
  validateLayer(defaults, at("defaults"));

  const rawRows = top.rows ?? { default: {} };
  if (!isMapping(rawRows) || !Object.keys(rawRows).length) {
    throw new UserError(
      `${file}: rows: expected a mapping of row names to overrides, got ${describeValue(rawRows)}`,
    );
  }
  const rows: {
    name: string;
    title: string | null;
    paper: PaperNumbers | null;
    optional: boolean;
    over: Record<string, unknown>;
  }[] = [];
  for (const [name, raw] of Object.entries(rawRows)) {
    if (!ROW_NAME.test(name)) {
      throw new UserError(`${file}: rows.${name}: expected a row name of letters, digits, "_", "." or "-"`);
    }
    const over = raw ?? {};
    let rowTitle: string | null = null, paper: PaperNumbers | null = null, optional = false;
    validateLayer(over, at(`rows.${name}`), {
      optional: (v) => {
        if (typeof v !== "boolean") {
          throw new UserError(
            `${file}: rows.${name}.optional: expected true or false, got ${describeValue(v)}`,
          );
        }
        optional = v;
      },
      title: (v) => {
        if (typeof v !== "string") {
          throw new UserError(`${file}: rows.${name}.title: expected a string, got ${describeValue(v)}`);
        }
        rowTitle = v;
      },
      paper: (v) => (paper = checkPaper(v, `${file}: rows.${name}.paper`)),
    });
    const { title: _t, paper: _p, optional: _o, ...params } = over as Record<string, unknown>;
    rows.push({ name, title: rowTitle, paper, optional, over: params });
  }

  const sets = (opts.set ?? []).map((s) => parseSet(s, rows.map((r) => r.name)));
  const root = opts.root ?? REPO_ROOT;
  const include = new Set([...(opts.include ?? []), ...(opts.rows ?? [])]);
  const all: ConfigRow[] = rows.map((r) => {
    try {
      const origins = new Map<string, Origin>();
      const merged = schemaDefaults();
      mergeInto(merged, defaults as Record<string, unknown>, at("defaults"), origins);
      mergeInto(merged, r.over, at(`rows.${r.name}`), origins);
      for (const s of sets) {
        if (s.row === null || s.row === r.name) {
          mergeInto(merged, nest(s.key, s.value), { kind: "set" }, origins);
        }
      }
      checkCrossFields(merged, origins, { kind: "default", file });
      for (const p of PATH_LEAVES) resolvePathLeaf(merged, p, root);
      const row: ConfigRow = {
        name: r.name,
        title: r.title,
        paper: r.paper,
        config: merged as unknown as VidsegConfig,
      };
      if (r.optional) row.optional = true;
      return row;
    } catch (e) {
      // An optional row nobody asked for must not block the others (e.g. `--set backbone.kind=sd` for a table
      // whose optional rows are SVD); its error is raised when it is selected.
      if (!r.optional || include.has(r.name) || !(e instanceof UserError)) throw e;
      const row: ConfigRow = { name: r.name, title: r.title, paper: r.paper, optional: true, config: null! };
      deferredErrors.set(row, e);
      return row;
    }
  });
  const loaded: LoadedConfig = {
    file,
    name: path.basename(file).replace(/\.ya?ml$/i, ""),
    title,
    rows: all.filter((r) => !r.optional || include.has(r.name)),
    allRows: all,
  };
  return opts.rows?.length ? selectRows(loaded, opts.rows) : loaded;
}

/** The config restricted to `names` (config order kept; optional rows may be named); unknown names are a UserError. */
export function selectRows(config: LoadedConfig, names: readonly string[]): LoadedConfig {
  const all = config.allRows ?? config.rows;
  for (const n of names) {
    if (!all.some((r) => r.name === n)) {
      throw new UserError(
        `--rows: unknown row "${n}" (${config.file} has rows ${all.map((r) => r.name).join(", ")})`,
      );
    }
  }
  const rows = all.filter((r) => names.includes(r.name));
  for (const r of rows) if (deferredErrors.has(r)) throw deferredErrors.get(r)!;
  return { ...config, rows };
}

/** Validation errors of optional rows that were not selected when the file was loaded. */
const deferredErrors = new WeakMap<ConfigRow, UserError>();

/** A parsed `--set` override. */
export interface SetOverride {
  /** Row it applies to (null: every row). */
  row: string | null;
  key: string;
  value: unknown;
}

/** Parse and validate `KEY=VALUE` (VALUE as a YAML scalar or flow value). */
export function parseSet(arg: string, rowNames: string[]): SetOverride {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new UserError(`--set: expected KEY=VALUE, got ${JSON.stringify(arg)}`);
  let key = arg.slice(0, eq).trim();
  let row: string | null = null;
  const m = /^rows\.([^.]+)\.(.+)$/.exec(key);
  if (m) {
    if (!rowNames.includes(m[1])) {
      throw new UserError(`--set ${key}: unknown row "${m[1]}" (rows: ${rowNames.join(", ")})`);
    }
    [row, key] = [m[1], m[2]];
  }
  let value: unknown;
  try {
    value = YAML.parse(arg.slice(eq + 1));
  } catch (e) {
    throw new UserError(`--set ${key}: value is not valid YAML (${(e as Error).message.split("\n")[0]})`);
  }
  const spec = specAt(key);
  if (!spec) {
    // The same walk as a YAML layer: names the first unknown segment with the same "did you mean".
    validateLayer(nest(key, value), { kind: "set" });
    throw new UserError(`--set ${key}: unknown key`);
  }
  if (spec.kind === "group") validateLayer(nest(key, value), { kind: "set" });
  else {
    const err = checkLeaf(spec as LeafSpec, value);
    if (err) throw new UserError(`--set ${key}: ${err}`);
  }
  return { row, key, value };
}

function checkPaper(v: unknown, where: string): PaperNumbers {
  if (!isMapping(v)) {
    throw new UserError(`${where}: expected a mapping {mIoU, mVC8, mVC16}, got ${describeValue(v)}`);
  }
  const out: PaperNumbers = { mIoU: null, mVC8: null, mVC16: null };
  for (const [k, x] of Object.entries(v)) {
    if (!PAPER_KEYS.includes(k)) throw new UserError(`${where}.${k}: ${unknownKey(k, PAPER_KEYS, "paper.")}`);
    if (x !== null && (typeof x !== "number" || !(x >= 0 && x <= 100))) {
      throw new UserError(`${where}.${k}: expected number in [0, 100] or null, got ${describeValue(x)}`);
    }
    out[k as keyof PaperNumbers] = x as number | null;
  }
  return out;
}

/** {a: {b: value}} from "a.b". */
function nest(dotted: string, value: unknown): Record<string, unknown> {
  return dotted.split(".").reduceRight<unknown>((v, k) => ({ [k]: v }), value) as Record<string, unknown>;
}

/** Deep-merge a validated layer: groups merge, leaves (incl. lists) replace; records each leaf's origin. */
function mergeInto(
  target: Record<string, unknown>,
  layer: Record<string, unknown>,
  origin: Origin,
  origins: Map<string, Origin>,
  prefix = "",
): void {
  for (const [k, v] of Object.entries(layer)) {
    const dotted = prefix + k;
    if (specAt(dotted)?.kind === "group") {
      mergeInto(
        target[k] as Record<string, unknown>,
        v as Record<string, unknown>,
        origin,
        origins,
        dotted + ".",
      );
    } else {
      target[k] = structuredClone(v);
      origins.set(dotted, origin);
    }
  }
}

function resolvePathLeaf(config: Record<string, unknown>, dotted: string, root: string): void {
  const parts = dotted.split(".");
  const parent = parts.slice(0, -1).reduce((o, k) => o[k] as Record<string, unknown>, config);
  const leaf = parts[parts.length - 1];
  if (typeof parent[leaf] === "string") parent[leaf] = resolveRepoPath(parent[leaf] as string, root);
}
