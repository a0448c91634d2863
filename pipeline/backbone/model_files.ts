/**
 * Small helpers shared by the VAE / TAESD / CLIP builders: reading a diffusers `config.json` with one-line errors
 * naming the file and key (plus the checks several configs share), finding a component's safetensors file,
 * loading a component (config → validated weights → graph bytes → sessions), and running a session over a batch
 * in chunks (so a decoder never holds 14 full-resolution frames of activations at once).
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import { concat0, rows, type Tensor, toF32 } from "../tensor/tensor.ts";
import { createSession, evaluations, type Provider, type Session } from "./runtime.ts";
import { type ParamSpec, SafetensorsWeights, type WeightSource } from "./weights/weight_map.ts";

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

/** Fail unless `_class_name` is absent or `want`. */
export function expectClassName(c: JsonConfig, want: string): void {
  if (c.json._class_name !== undefined && c.json._class_name !== want) {
    fail(c.path, `"_class_name" is ${JSON.stringify(c.json._class_name)}, expected ${want}`);
  }
}

/** Fail unless list `key` is absent or lists `n` × `want` (`note` is appended to the expectation). */
export function expectBlockTypes(c: JsonConfig, key: string, want: string, n: number, note = ""): void {
  const types = c.json[key];
  if (types !== undefined && (!Array.isArray(types) || types.length !== n || types.some((t) => t !== want))) {
    fail(c.path, `"${key}" must list ${n} × ${want}${note}, found ${JSON.stringify(types)}`);
  }
}

/** Fail unless every block_out_channels entry divides into `groups` GroupNorm groups (`what` names them). */
export function expectGroupable(
  c: JsonConfig,
  channels: readonly number[],
  groups: number,
  what: string,
): void {
  for (const ch of channels) {
    if (ch % groups !== 0) fail(c.path, `block_out_channels entry ${ch} is not divisible by ${what}`);
  }
}

/** The config keys every diffusers KL autoencoder has (AutoencoderKL, AutoencoderKLTemporalDecoder). */
export interface KlChannels {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
}

/** Parse {@link KlChannels} with diffusers' defaults. */
export function parseKlChannels(c: JsonConfig): KlChannels {
  return {
    inChannels: cfgInt(c, "in_channels", 3),
    outChannels: cfgInt(c, "out_channels", 3),
    latentChannels: cfgInt(c, "latent_channels", 4),
    blockOutChannels: cfgIntList(c, "block_out_channels", [64]),
    layersPerBlock: cfgInt(c, "layers_per_block", 1),
  };
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

/** `folder/<sub>` when it holds a config.json (a pipeline folder), else `folder` (the component folder itself). */
export function componentDir(folder: string, sub: string): string {
  const dir = path.join(folder, sub);
  return fs.existsSync(path.join(dir, "config.json")) ? dir : folder;
}

/** How {@link loadComponent} reads one component folder. */
export interface ComponentLoader<C, R> {
  /** Parse and validate config.json. */
  parse(c: JsonConfig): C;
  /** Open the weights file validated for `cfg` (see {@link validatedWeights}). */
  open(file: string, cfg: C, configPath: string): WeightSource;
  /** Build the graph(s) from the open weights. */
  build(cfg: C, w: WeightSource): R;
}

/** Opener of safetensors weights validated against `spec(cfg)` (keys `ignore` accepts may be extra). */
export function validatedWeights<C>(
  spec: (cfg: C) => ParamSpec,
  ignore?: (key: string) => boolean,
): (file: string, cfg: C, configPath: string) => SafetensorsWeights {
  return (file, cfg, configPath) => {
    const w = new SafetensorsWeights(file);
    try {
      w.validate(spec(cfg), { configPath, ignore });
    } catch (e) {
      w.close();
      throw e;
    }
    return w;
  };
}

/**
 * Read component folder `dir`: parse `dir/config.json`, open and validate its weights file, build from it (the
 * file is closed afterwards, also on error). Returns the config, the weights file and what was built.
 */
export function loadComponent<C, R>(
  dir: string,
  loader: ComponentLoader<C, R>,
): { cfg: C; file: string; built: R } {
  const configPath = path.join(dir, "config.json");
  const cfg = loader.parse(readJsonConfig(configPath));
  const file = findWeightsFile(dir);
  return { cfg, file, built: closing(loader.open(file, cfg, configPath), (w) => loader.build(cfg, w)) };
}

/** `use(w)`, closing `w` afterwards (also on error). */
export function closing<W extends { close(): void }, R>(w: W, use: (w: W) => R): R {
  try {
    return use(w);
  } finally {
    w.close();
  }
}

/** Session options of the in-memory component models. */
export interface ComponentSessionOptions {
  provider?: Provider;
  threads?: number;
}

/** Session of an in-memory graph, labelled `label` in errors. */
export function componentSession(
  bytes: Uint8Array,
  label: string,
  opts: ComponentSessionOptions,
): Promise<Session> {
  return createSession({ bytes }, { provider: opts.provider, threads: opts.threads, label });
}

/**
 * An encoder and a decoder session run in chunks of at most `maxBatch` samples (the VAEs and TAESD), counted as
 * `<counter>.encode` / `<counter>.decode` evaluations.
 */
export abstract class EncoderDecoder {
  protected constructor(
    readonly encoder: Session,
    readonly decoder: Session,
    protected readonly maxBatch: number,
    private readonly counter: string,
  ) {}

  /** Run the encoder on `x` fed as `input`, returning output `output`. */
  protected runEncoder(x: Tensor<"F32">, input: string, output: string): Promise<Tensor<"F32">> {
    return runChunked(this.encoder, input, output, x, this.maxBatch, `${this.counter}.encode`);
  }

  /** Run the decoder on `x` fed as `input`, returning output `output`. */
  protected runDecoder(x: Tensor<"F32">, input: string, output: string): Promise<Tensor<"F32">> {
    return runChunked(this.decoder, input, output, x, this.maxBatch, `${this.counter}.decode`);
  }

  /** Free both sessions. */
  async release(): Promise<void> {
    await this.encoder.release();
    await this.decoder.release();
  }
}
