/**
 * Small helpers shared by the VAE / TAESD / text-encoder builders: reading a diffusers `config.json` with
 * one-line errors naming the file and key, finding a component's safetensors file, and running a session over a
 * batch in chunks (so a decoder never holds 14 full-resolution frames of activations at once).
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";
import { concat0, rows, type Tensor, toF32 } from "../../tensor/tensor.ts";
import { evaluations, type Session } from "../runtime.ts";

/** A parsed JSON config plus the path it came from (for messages). */
export interface JsonConfig {
  readonly path: string;
  readonly json: Record<string, unknown>;
}

/** Read a JSON object file; a missing or malformed file is one UserError line. */
export function readJsonConfig(file: string): JsonConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    fail(file, `cannot read (${(e as { code?: string }).code ?? e})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) fail(file, "expected a JSON object");
  return { path: file, json: json as Record<string, unknown> };
}

/** A positive integer config value (or `dflt` when absent). */
export function cfgInt(c: JsonConfig, key: string, dflt?: number): number {
  const v = c.json[key] ?? dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    fail(c.path, `"${key}" must be a positive integer, found ${JSON.stringify(c.json[key])}`);
  }
  return v;
}

/** A finite number config value (or `dflt` when absent or null). */
export function cfgNum(c: JsonConfig, key: string, dflt?: number): number {
  const raw = c.json[key];
  const v = raw === null || raw === undefined ? dflt : raw;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    fail(c.path, `"${key}" must be a number, found ${JSON.stringify(raw)}`);
  }
  return v;
}

/** A non-empty list of positive integers (or `dflt`). */
export function cfgIntList(c: JsonConfig, key: string, dflt?: number[]): number[] {
  const v = c.json[key] ?? dflt;
  if (
    !Array.isArray(v) || v.length === 0 ||
    !v.every((x) => typeof x === "number" && Number.isInteger(x) && x > 0)
  ) {
    fail(
      c.path,
      `"${key}" must be a non-empty list of positive integers, found ${JSON.stringify(c.json[key])}`,
    );
  }
  return v as number[];
}

/** A string config value restricted to `allowed` (or `dflt`). */
export function cfgEnum<T extends string>(c: JsonConfig, key: string, allowed: readonly T[], dflt?: T): T {
  const v = c.json[key] ?? dflt;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    fail(c.path, `"${key}" is ${JSON.stringify(c.json[key])}; supported: ${allowed.join(", ")}`);
  }
  return v as T;
}

/** A boolean config value (or `dflt`). */
export function cfgBool(c: JsonConfig, key: string, dflt: boolean): boolean {
  const v = c.json[key] ?? dflt;
  if (typeof v !== "boolean") {
    fail(c.path, `"${key}" must be true or false, found ${JSON.stringify(c.json[key])}`);
  }
  return v;
}

const PREFERRED = ["diffusion_pytorch_model.safetensors", "model.safetensors"];

/**
 * The weights file of a diffusers component folder: `diffusion_pytorch_model.safetensors` /
 * `model.safetensors` (or their sharded `.index.json`), else the only `*.safetensors` there (fp32 preferred
 * over `.fp16.` variants). Pickled-only folders get a hint to convert.
 */
export function findWeightsFile(folder: string): string {
  let names: string[];
  try {
    names = fs.readdirSync(folder);
  } catch (e) {
    fail(folder, `cannot list the folder (${(e as { code?: string }).code ?? e})`);
  }
  for (const p of PREFERRED) {
    if (names.includes(p)) return path.join(folder, p);
    if (names.includes(`${p}.index.json`)) return path.join(folder, `${p}.index.json`);
  }
  const st = names.filter((n) => n.endsWith(".safetensors")).sort();
  const full = st.filter((n) => !n.includes(".fp16."));
  if (full.length === 1) return path.join(folder, full[0]);
  if (full.length === 0 && st.length === 1) return path.join(folder, st[0]);
  if (st.length > 1) {
    fail(
      folder,
      `several weight files (${st.join(", ")}); expected one, e.g. diffusion_pytorch_model.safetensors`,
    );
  }
  const pickled = names.filter((n) => /\.(bin|ckpt|pt|pth)$/.test(n));
  if (pickled.length) {
    fail(
      folder,
      `only pickled weights (${pickled.join(", ")}); convert them to .safetensors (pickles are never loaded)`,
    );
  }
  fail(
    folder,
    "no .safetensors weights file found (expected config.json and e.g. diffusion_pytorch_model.safetensors)",
  );
}

/**
 * Run a single-input, single-output session over the first axis of `x` in chunks of at most `maxBatch`
 * samples (outputs concatenated back; F16 outputs widened to F32). Counts evaluations under `variant`.
 */
export async function runChunked(
  session: Session,
  input: string,
  output: string,
  x: Tensor<"F32">,
  maxBatch: number,
  variant: string,
): Promise<Tensor<"F32">> {
  const B = x.shape[0], parts: Tensor<"F32">[] = [];
  for (let i = 0; i < B; i += maxBatch) {
    const chunk = rows(x, i, Math.min(B, i + maxBatch));
    const t0 = performance.now();
    const out = await session.run({ [input]: chunk }, [output]);
    evaluations.add(variant, chunk.shape[0], performance.now() - t0);
    parts.push(toF32(out[output]));
  }
  return parts.length === 1 ? parts[0] : concat0(parts);
}
