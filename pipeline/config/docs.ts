/**
 * `docs/configs.md`, generated from the schema so the reference of config keys cannot drift from what the
 * validator accepts: one table per group with each key's accepted values, default and meaning. `deno task docs`
 * writes it; tests/config/docs_test.ts fails when the committed file differs from {@link configsMarkdown}.
 * @module
 */
import { expectedText, type LeafSpec, SCHEMA, type Spec } from "./schema.ts";

/** The file `deno task docs` writes, relative to the repo root. */
export const CONFIGS_DOC = "docs/configs.md";

const HEADER = `# Config keys

<!-- Generated from pipeline/config/schema.ts by \`deno task docs\`; do not edit by hand. -->

A config file is YAML: optional \`title\`, \`defaults\` (keys below) and \`rows\` (a mapping of row names to
overrides of the same keys). Each row is the schema defaults, deep-merged with \`defaults\`, then with the row's
overrides, then with every \`--set KEY=VALUE\` of the command line (\`--set rows.NAME.KEY=VALUE\` targets one row;
VALUE is parsed as YAML). Relative paths resolve against the repo root. A mistake is one line naming the file, the
key path and what was expected, with a "did you mean" for unknown keys.

Besides the keys below, a row may carry \`title\` (a label for tables), \`paper: {mIoU, mVC8, mVC16}\` (published
numbers, reported beside ours) and \`optional: true\` (left out unless named with \`--rows\`).

What each key does in the method, and which value the paper and the authors' code use, is in
[method.md](method.md) (section numbers in the group titles below).
`;

const FOOTER = `## Environment variables

| variable | effect |
|---|---|
| \`VIDSEG_CACHE\` | cache folder of \`ablate\`, \`segment\`, \`figures\` and the notebooks (default \`results/cache\`; \`--cache\` wins) |
| \`VIDSEG_RESULTS\` | results root of \`ablate\` and the notebooks (default \`results\`; \`--results\` wins) |
| \`VIDSEG_GRAPH_CACHE\` | folder of the built ONNX graphs (default \`graphs/\` in the cache folder: \`--cache DIR\` or \`VIDSEG_CACHE\`, else \`results/cache\`) |
| \`VIDSEG_THREADS\` | onnxruntime intra-op threads (a positive integer; default: every core) |
| \`VIDSEG_GEMM\` | \`js\` forces the JavaScript matrix kernel of K-Means/KNN/CBR instead of WebAssembly SIMD |
`;

/** A default value as it would be written in YAML. */
function yamlValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(yamlValue).join(", ")}]`;
  if (typeof v === "string") return /^[A-Za-z0-9_./-]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}

/** Escape text for a Markdown table cell. */
const cell = (s: string) => s.replaceAll("|", "\\|");

function leafRow(dotted: string, spec: LeafSpec): string {
  return `| \`${dotted}\` | ${cell(expectedText(spec))} | \`${yamlValue(spec.default)}\` | ${
    cell(spec.doc)
  } |`;
}

const TABLE_HEAD = ["| key | accepted values | default | meaning |", "|---|---|---|---|"];

/** The whole of docs/configs.md. */
export function configsMarkdown(schema: Record<string, Spec> = SCHEMA): string {
  const out: string[] = [HEADER];
  const topLeaves = Object.entries(schema).filter(([, s]) => s.kind !== "group") as [string, LeafSpec][];
  for (const [name, spec] of Object.entries(schema)) {
    if (spec.kind !== "group") continue;
    // Group docs cite docs/method.md sections; from inside docs/ that is a sibling link.
    const title = spec.doc.replace(/docs\/method\.md (§[\d.]+)/g, "[method.md $1](method.md)");
    out.push(`## \`${name}\` — ${title}`, "", ...TABLE_HEAD);
    for (const [k, s] of Object.entries(spec.fields)) {
      if (s.kind === "group") throw new Error(`configs doc: nested group ${name}.${k} is not supported`);
      out.push(leafRow(`${name}.${k}`, s));
    }
    out.push("");
  }
  out.push("## Top-level keys", "", ...TABLE_HEAD, ...topLeaves.map(([k, s]) => leafRow(k, s)), "");
  out.push(FOOTER);
  return out.join("\n");
}
