/**
 * Validation of config values against the schema, with one-line, path-precise messages:
 *   `configs/x.yaml: rows.C.kmeans.k: expected integer ≥ 2, got "20"`.
 * Layers (defaults, a row's overrides, `--set`) are validated where they were written, so the message
 * names the place to fix; cross-field rules run on each merged row and blame the most specific origin.
 * @module
 */
import { UserError } from "../errors.ts";
import { expectedText, type LeafSpec, SCHEMA, schemaLeaves, type Spec } from "./schema.ts";
import { suggest } from "./suggest.ts";

/** Where a value came from. */
export type Origin =
  | { kind: "file"; file: string; prefix: string }
  | { kind: "set" }
  | { kind: "default"; file: string };

/** The "where" part of a message for a dotted key set at `origin`. */
export function locate(origin: Origin, dotted: string): string {
  switch (origin.kind) {
    case "file":
      return `${origin.file}: ${[origin.prefix, dotted].filter(Boolean).join(".")}`;
    case "set":
      return `--set ${dotted}`;
    case "default":
      return `${origin.file}: ${dotted} (default)`;
  }
}

/** Compact rendering of a value for "got …". */
export function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") {
    return Number.isNaN(v) ? ".nan" : v === Infinity ? ".inf" : v === -Infinity ? "-.inf" : String(v);
  }
  if (v === null || v === undefined || typeof v === "boolean") return String(v ?? null);
  if (Array.isArray(v)) {
    const s = JSON.stringify(v);
    return s.length > 40 ? `a list of ${v.length}` : s.replaceAll(",", ", ");
  }
  return "a mapping";
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

/** Check one leaf value; returns "expected …, got …" or null when valid. */
export function checkLeaf(spec: LeafSpec, v: unknown): string | null {
  const bad = () => `expected ${expectedText(spec)}, got ${describeValue(v)}`;
  if (v === null) return spec.nullable || spec.kind === "resolution" ? null : bad();
  switch (spec.kind) {
    case "int":
    case "number": {
      if (spec.kind === "int" ? !isInt(v) : typeof v !== "number" || !Number.isFinite(v)) return bad();
      const n = v as number;
      const lowOk = spec.min === undefined ||
        (spec.kind === "number" && spec.minExclusive ? n > spec.min : n >= spec.min);
      return lowOk && (spec.max === undefined || n <= spec.max) ? null : bad();
    }
    case "bool":
      return typeof v === "boolean" ? null : bad();
    case "enum":
      return typeof v === "string" && spec.values.includes(v) ? null : bad();
    case "string":
      return typeof v === "string" ? null : bad();
    case "path":
      return typeof v === "string" && v.length > 0 ? null : bad();
    case "intList":
      return Array.isArray(v) && v.length > 0 && v.every((x) => isInt(x) && x >= spec.min && x <= spec.max) &&
          new Set(v).size === v.length
        ? null
        : bad();
    case "resolution":
      return Array.isArray(v) && v.length === 2 && v.every((x) => isInt(x) && x > 0 && x <= 8192 && x % 64 === 0)
        ? null
        : bad();
    case "clips":
      if (v === "all") return null;
      return Array.isArray(v) && v.length > 0 && new Set(v).size === v.length &&
          v.every((c) => typeof c === "string" && c.length > 0 && !/[/\\]/.test(c) && c !== "." && c !== "..")
        ? null
        : bad();
  }
}

/** All dotted paths of the schema, groups included (suggestion candidates). */
const ALL_PATHS = (() => {
  const out: string[] = [];
  const walk = (fields: Record<string, Spec>, prefix: string) => {
    for (const [k, s] of Object.entries(fields)) {
      out.push(prefix + k);
      if (s.kind === "group") walk(s.fields, `${prefix}${k}.`);
    }
  };
  walk(SCHEMA, "");
  return out;
})();

/** The "unknown key" message with the closest suggestion, if any. */
export function unknownKey(typed: string, siblings: string[], siblingPrefix: string): string {
  const s = suggest(typed, siblings, siblingPrefix, ALL_PATHS);
  return `unknown key${s ? ` (did you mean ${s}?)` : ""}`;
}

/**
 * Validate a partial config (a layer) at `origin`. `extra` are additional allowed top-level keys (a row's
 * `paper` and `title`), validated by their own callbacks. Throws a UserError on the first problem.
 */
export function validateLayer(
  layer: unknown,
  origin: Origin,
  extra: Record<string, (value: unknown) => void> = {},
): void {
  const walk = (value: unknown, fields: Record<string, Spec>, prefix: string, top: boolean) => {
    if (!isMapping(value)) {
      throw new UserError(
        `${locate(origin, prefix.slice(0, -1))}: expected a mapping, got ${describeValue(value)}`,
      );
    }
    for (const [k, v] of Object.entries(value)) {
      const dotted = prefix + k;
      if (top && Object.hasOwn(extra, k)) {
        extra[k](v);
        continue;
      }
      const spec = Object.hasOwn(fields, k) ? fields[k] : undefined;
      if (!spec) {
        const siblings = [...Object.keys(fields), ...(top ? Object.keys(extra) : [])];
        throw new UserError(`${locate(origin, dotted)}: ${unknownKey(k, siblings, prefix)}`);
      }
      if (spec.kind === "group") walk(v, spec.fields, dotted + ".", false);
      else {
        const err = checkLeaf(spec, v);
        if (err) throw new UserError(`${locate(origin, dotted)}: ${err}`);
      }
    }
  };
  walk(layer, SCHEMA, "", true);
}

/** Specificity of an origin: the most specific one is blamed for a cross-field conflict. */
function rank(o: Origin | undefined): number {
  return !o || o.kind === "default" ? 0 : o.kind === "set" ? 3 : o.prefix === "defaults" ? 1 : 2;
}

/** A rule between two integer keys; `ok(a, b)` must hold, else blame a (msgA) or b (msgB). */
interface PairRule {
  a: string;
  b: string;
  ok(a: number, b: number): boolean;
  msgA(b: number): string;
  msgB(a: number): string;
}

const RULES: PairRule[] = [
  {
    a: "sampler.t_m",
    b: "sampler.steps",
    ok: (tm, steps) => tm < steps,
    msgA: (steps) => `expected integer < sampler.steps (${steps})`,
    msgB: (tm) => `expected integer > sampler.t_m (${tm})`,
  },
  {
    a: "sampler.t_f",
    b: "sampler.t_m",
    ok: (tf, tm) => tf >= tm,
    msgA: (tm) => `expected integer ≥ sampler.t_m (${tm})`,
    msgB: (tf) => `expected integer ≤ sampler.t_f (${tf})`,
  },
  {
    a: "sampler.t_f",
    b: "sampler.steps",
    ok: (tf, steps) => tf < steps,
    msgA: (steps) => `expected integer < sampler.steps (${steps})`,
    msgB: (tf) => `expected integer > sampler.t_f (${tf})`,
  },
];

/**
 * The attention the modulation perturbs is fixed by the backbone (docs/method.md §8.2): SD adds to the
 * cross-attention output, SVD to the spatial and temporal self-attention outputs; the graphs offer nothing else.
 */
const ATTN_OF_KIND: Record<string, string> = { tiny: "cross", sd: "cross", svd: "self" };

/** Cross-field rules on a merged row config; `origins` maps dotted leaves to where they were set. */
export function checkCrossFields(
  config: Record<string, unknown>,
  origins: Map<string, Origin>,
  fallback: Origin,
): void {
  const get = (p: string) =>
    p.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], config) as number;
  const kind = get("backbone.kind") as unknown as string, attn = get("modulation.attn") as unknown as string;
  if (ATTN_OF_KIND[kind] && attn !== ATTN_OF_KIND[kind]) {
    const ok = origins.get("backbone.kind"), oa = origins.get("modulation.attn");
    const where = rank(ok) > rank(oa)
      ? `${locate(ok!, "backbone.kind")}: ${kind} needs modulation.attn ${ATTN_OF_KIND[kind]}, got ${attn}`
      : `${locate(oa ?? fallback, "modulation.attn")}: expected ${
        ATTN_OF_KIND[kind]
      } with backbone.kind ${kind}, got ${attn}`;
    throw new UserError(
      `${where} (${kind === "svd" ? "SVD modulates self-attention" : "SD modulates cross-attention"})`,
    );
  }
  for (const r of RULES) {
    const a = get(r.a), b = get(r.b);
    if (r.ok(a, b)) continue;
    const oa = origins.get(r.a), ob = origins.get(r.b);
    const blameB = rank(ob) > rank(oa);
    const where = locate((blameB ? ob : oa) ?? fallback, blameB ? r.b : r.a);
    throw new UserError(`${where}: ${blameB ? r.msgB(a) : r.msgA(b)}, got ${blameB ? b : a}`);
  }
}

/** Dotted leaves of the schema (re-exported for callers that list keys). */
export const LEAF_PATHS = schemaLeaves().map(([p]) => p);
