/**
 * The `sd21` bench phase: an SD 2.1-base-sized model (UNet 865 M parameters, KL-VAE [128, 256, 512, 512]) from
 * deterministic random weights, written as a diffusers folder (no download), run through the UNet variant
 * runner the `features` and `modulate` stages use, on one batch at 448×320 (latent 56×40).
 *
 * Measured: graph build s and cold session s per variant (first open: build, optimise, save), bytes on disk
 * (weights store + every variant's graph), session s when reopened from the cache, s/sample of each variant at
 * batch 1/2/4 (1/2 with --quick) and its GFLOP/s, the decoders' s/frame (KL-VAE and TAESD), and the peak RSS of
 * the modulate step with every variant it opens (recording pass + modulated suffix), measured after a peak reset
 * so the one-off build does not count.
 *
 * Runs as its own process (`deno run -A pipeline/bench/sd21.ts --work DIR [--quick]`, JSON on stdout), started
 * by `deno task bench --phases sd21`.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { SD21_BASE_UNET } from "./sd_unet.ts";
import { loadVae } from "../backbone/vae/autoencoder.ts";
import { parseUNetConfig, type UNetLayout } from "../backbone/sd/config.ts";
import { specParams, unetSpec } from "../backbone/sd/spec.ts";
import { tapName } from "../backbone/blocks/taps.ts";
import { klSpec, parseKlConfig } from "../backbone/vae/kl.ts";
import { type ParamSpec, RandomWeights } from "../backbone/weights/weight_map.ts";
import { releaseModels, taesdFolder } from "../backbone/pool.ts";
import { loadedUNets, unetRowBytes, VariantRunner } from "../backbone/sd/models.ts";
import type { UNetRequest } from "../backbone/sd/passes.ts";
import type { BackboneParams } from "../backbone/types.ts";
import { f32, numel, type Tensor } from "../tensor/tensor.ts";
import { totalMacs, unetMacs, variantShapeOf } from "./flops.ts";
import { peakRss } from "./rss.ts";

/** SD 2.1-base vae/config.json (architecture keys). */
export const SD21_VAE = {
  _class_name: "AutoencoderKL",
  act_fn: "silu",
  block_out_channels: [128, 256, 512, 512],
  down_block_types: new Array(4).fill("DownEncoderBlock2D"),
  up_block_types: new Array(4).fill("UpDecoderBlock2D"),
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  sample_size: 768,
  scaling_factor: 0.18215,
};

/** Image size of the bench batch (W×H) and the modulated/split position and injected positions of Table 2. */
export const SD21_BENCH = {
  width: 448,
  height: 320,
  block: 7,
  inject: [3, 4, 5, 6, 7, 8, 9, 10, 11],
  features: [6, 7, 8],
};

/** Write `spec` from {@link RandomWeights} as a safetensors file, one tensor at a time (never all in memory). */
function writeRandomSafetensors(file: string, spec: ParamSpec, seed: number): number {
  const w = new RandomWeights(spec, seed, path.basename(file));
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [k, s] of spec) {
    const n = numel(s) * 4;
    header[k] = { dtype: "F32", shape: [...s], data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const fd = fs.openSync(`${file}.tmp`, "w");
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(head.length), true);
    fs.writeSync(fd, len);
    fs.writeSync(fd, head);
    for (const k of spec.keys()) {
      const t = w.take(k).data as Float32Array;
      const b = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
      let done = 0;
      while (done < b.length) done += fs.writeSync(fd, b, done, b.length - done);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(`${file}.tmp`, file);
  return off;
}

/** The SD 2.1-base-sized diffusers folder under `dir` (written once). */
export function sd21Folder(dir: string): { root: string; layout: UNetLayout; weightBytes: number } {
  const root = path.join(dir, "sd21-base-random");
  const layout = parseUNetConfig(SD21_BASE_UNET, "<sd21-base config>");
  const unetFile = path.join(root, "unet", "diffusion_pytorch_model.safetensors");
  if (!fs.existsSync(unetFile)) {
    fs.mkdirSync(path.dirname(unetFile), { recursive: true });
    fs.writeFileSync(path.join(root, "unet", "config.json"), JSON.stringify(SD21_BASE_UNET, null, 2));
    writeRandomSafetensors(unetFile, unetSpec(layout), 1);
    const vaeDir = path.join(root, "vae");
    fs.mkdirSync(vaeDir, { recursive: true });
    fs.writeFileSync(path.join(vaeDir, "config.json"), JSON.stringify(SD21_VAE, null, 2));
    const cfg = parseKlConfig({ json: SD21_VAE, path: path.join(vaeDir, "config.json") } as never);
    writeRandomSafetensors(path.join(vaeDir, "diffusion_pytorch_model.safetensors"), klSpec(cfg), 2);
  }
  return { root, layout, weightBytes: specParams(unetSpec(layout)) * 4 };
}

/** An existing folder in place of the SD 2.1-sized one. */
function modelFolder(root: string): { root: string; layout: UNetLayout; weightBytes: number } {
  const cfgPath = path.join(root, "unet", "config.json");
  const layout = parseUNetConfig(JSON.parse(fs.readFileSync(cfgPath, "utf8")), cfgPath);
  return { root, layout, weightBytes: specParams(unetSpec(layout)) * 4 };
}

function randn(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 3.4;
  }
  return out;
}

/** Rows `0..b-1` of every tensor (batch slices of the recorded tensors). */
function firstRows(ts: Record<string, Tensor<"F32">>, b: number): Record<string, Tensor<"F32">> {
  const out: Record<string, Tensor<"F32">> = {};
  for (const [k, t] of Object.entries(ts)) {
    const per = t.data.length / t.shape[0];
    out[k] = f32([b, ...t.shape.slice(1)], t.data.slice(0, b * per));
  }
  return out;
}

/** What the phase reports (bench.json `sd21`). */
export interface Sd21Result {
  quick: boolean;
  image: [number, number];
  latent: [number, number];
  params: number;
  weights_bytes: number;
  store_bytes: number;
  variants_disk_bytes: number;
  graph_bytes: Record<string, number>;
  graph_build_s: Record<string, number>;
  session_cold_s: Record<string, number>;
  session_cached_s: Record<string, number>;
  unet_s_per_sample: Record<string, Record<string, number>>;
  unet_gflops: Record<string, number>;
  /** s/sample at the largest batch in the second process (sessions from the saved forms): no slowdown from sharing. */
  unet_s_per_sample_cached: Record<string, number>;
  decode_s_per_frame: { vae: number; taesd: number };
  peak_rss_bytes: number | null;
  /** Estimated onnxruntime activations of the largest batch (the bound the RSS target adds to the weights). */
  activations_bytes: number;
  batches: number[];
}

/** Run the phase in this process (see the module comment). */
export async function runSd21(
  work: string,
  quick: boolean,
  log: (m: string) => void,
  /** Another diffusers folder with unet/ and vae/ (tests run the phase on the conformance model). */
  model?: string,
  /** "cached": only reopen the saved variants and run the modulate step (the second-run child process). */
  part: "all" | "cached" = "all",
): Promise<Sd21Result> {
  const cache = path.join(work, "graphs");
  const before = Deno.env.get("VIDSEG_GRAPH_CACHE");
  Deno.env.set("VIDSEG_GRAPH_CACHE", cache);
  try {
    return await measure(work, cache, quick, log, model, part);
  } finally {
    if (before === undefined) Deno.env.delete("VIDSEG_GRAPH_CACHE");
    else Deno.env.set("VIDSEG_GRAPH_CACHE", before);
  }
}

async function measure(
  work: string,
  cache: string,
  quick: boolean,
  log: (m: string) => void,
  model: string | undefined,
  part: "all" | "cached",
): Promise<Sd21Result> {
  if (!model && part === "all") log("sd21: writing the random-weight SD 2.1-base folder");
  const { root, layout, weightBytes } = model ? modelFolder(model) : sd21Folder(work);
  const lh = SD21_BENCH.height / 8, lw = SD21_BENCH.width / 8;
  const b: BackboneParams = { kind: "sd", weights: root, provider: "cpu", dtype: "fp32" };
  const runner = new VariantRunner(b, SD21_BENCH.block, SD21_BENCH.inject);
  const batches = quick ? [1, 2] : [1, 2, 4];
  const maxB = batches[batches.length - 1];
  const C = layout.crossDim;
  const sample = f32([maxB, 4, lh, lw], randn(maxB * 4 * lh * lw, 7));
  const context = f32([maxB, 77, C], randn(maxB * 77 * C, 8).map((x) => x * 0.3));
  const featureTaps = SD21_BENCH.features.map((i) => tapName(i, "attn1_q"));
  const injectTaps = SD21_BENCH.inject.flatMap((
    i,
  ) => [tapName(i, "attn1_q"), tapName(i, "attn1_k"), tapName(i, "attn2_out")]);
  let recorded: { taps: Record<string, Tensor<"F32">>; prefix: Record<string, Tensor<"F32">> } | null = null;
  // The three requests of the stages: features (truncated taps), modulate's recording pass, modulated suffix.
  const requests: Record<string, (B: number) => UNetRequest> = {
    features: (B) => ({
      sample: firstRows({ s: sample }, B).s,
      timestep: 400,
      context: firstRows({ c: context }, B).c,
      taps: featureTaps,
      needEps: false,
    }),
    record: (B) => ({
      sample: firstRows({ s: sample }, B).s,
      timestep: 400,
      context: firstRows({ c: context }, B).c,
      taps: injectTaps,
      exposePrefix: true,
    }),
    modulated: (B) => {
      const inj = Object.fromEntries(
        Object.entries(recorded!.taps).filter(([k]) => Number(/pos(\d\d)/.exec(k)![1]) >= SD21_BENCH.block),
      );
      const tokens = recorded!.taps[tapName(SD21_BENCH.block, "attn2_out")].shape[1];
      return {
        prefix: firstRows(recorded!.prefix, B),
        timestep: 400,
        context: firstRows({ c: context }, B).c,
        modulation: f32([B, tokens, 1], randn(B * tokens, 9)),
        injected: firstRows(inj, B),
      };
    },
  };
  const run = async (name: string, B: number) => {
    const t0 = performance.now();
    const r = await runner.run(requests[name](B));
    if (name === "record" && B === maxB) recorded = { taps: r.taps, prefix: r.prefix! };
    return (performance.now() - t0) / 1000;
  };
  const names = Object.keys(requests);
  const res: Sd21Result = {
    quick,
    image: [SD21_BENCH.width, SD21_BENCH.height],
    latent: [lw, lh],
    params: weightBytes / 4,
    weights_bytes: weightBytes,
    store_bytes: 0,
    variants_disk_bytes: 0,
    graph_bytes: {},
    graph_build_s: {},
    session_cold_s: {},
    session_cached_s: {},
    unet_s_per_sample: {},
    unet_gflops: {},
    unet_s_per_sample_cached: {},
    decode_s_per_frame: { vae: 0, taesd: 0 },
    peak_rss_bytes: null,
    activations_bytes: 0,
    batches,
  };
  res.activations_bytes = unetRowBytes(layout, lh, lw, SD21_BENCH.inject, SD21_BENCH.block).activations *
    maxB;
  if (part === "cached") {
    // A fresh process, as a second run: reopen from the saved forms; the modulate step's peak with both variants.
    for (const name of ["record", "modulated", "features"]) {
      if (name === "features") {
        res.peak_rss_bytes = peakRss();
        for (const u of await loadedUNets()) await u.release();
        releaseModels();
      }
      const t = await run(name, maxB);
      const u = (await loadedUNets()).at(-1)!;
      res.session_cached_s[name] = (u.graph.start?.ms ?? 0) / 1000;
      res.unet_s_per_sample_cached[name] = (t - res.session_cached_s[name]) / maxB;
      if (!u.graph.start?.fromOptimized) {
        throw new Error(`sd21: ${name} did not reopen from its optimised form`);
      }
      log(`sd21: ${name}: cached session ${res.session_cached_s[name].toFixed(1)} s`);
    }
    for (const u of await loadedUNets()) await u.release();
    releaseModels();
    return res;
  }
  // Cold: build, optimise and save each variant, then time it at every batch size.
  const seen = new Set<string>();
  for (const name of names) {
    if (name === "modulated") await run("record", maxB); // the suffix resumes from the recorded prefix
    log(`sd21: ${name}: first open (build + optimise)`);
    await run(name, 1);
    const u = (await loadedUNets()).find((x) => !seen.has(x.variantName))!;
    seen.add(u.variantName);
    res.graph_build_s[name] = u.graph.buildMs / 1000;
    res.session_cold_s[name] = (u.graph.start?.ms ?? 0) / 1000;
    res.graph_bytes[name] = u.graph.bytes;
    res.unet_s_per_sample[name] = {};
    for (const B of batches) {
      const s = await run(name, B);
      res.unet_s_per_sample[name][B] = s / B;
      log(`sd21: ${name} batch ${B}: ${(s / B).toFixed(2)} s/sample`);
    }
    const best = Math.min(...Object.values(res.unet_s_per_sample[name]));
    const macs = totalMacs(unetMacs(layout, lh, lw, variantShapeOf(u.options, layout)));
    res.unet_gflops[name] = (2 * macs) / best / 1e9;
  }
  const files = fs.readdirSync(cache).filter((f) => !f.endsWith(".lock"));
  const store = files.find((f) => /-weights-.*\.bin$/.test(f))!;
  res.store_bytes = fs.statSync(path.join(cache, store)).size;
  res.variants_disk_bytes = files.reduce((a, f) => a + fs.statSync(path.join(cache, f)).size, 0);

  for (const u of await loadedUNets()) await u.release();
  releaseModels();
  // Cached: a second process reopens the variants (the first one's heap does not count in its peak RSS).
  log("sd21: second process: sessions from the saved forms, modulate step");
  const again = await cachedChild(work, maxB === 2, model);
  res.session_cached_s = again.session_cached_s;
  res.unet_s_per_sample_cached = again.unet_s_per_sample_cached;
  res.peak_rss_bytes = again.peak_rss_bytes;

  // Decoders: s/frame of the KL-VAE and of TAESD on latents of the bench size.
  const frames = quick ? 1 : 2;
  const lat = f32([frames, 4, lh, lw], randn(frames * 4 * lh * lw, 11));
  for (const [k, folder] of [["vae", root], ["taesd", taesdFolder()]] as const) {
    const vae = await loadVae(folder, { maxBatch: 1 });
    await vae.decode(f32([1, 4, lh, lw], lat.data.slice(0, 4 * lh * lw))); // warm-up
    const t0 = performance.now();
    await vae.decode(lat);
    res.decode_s_per_frame[k] = (performance.now() - t0) / 1000 / frames;
    await vae.release();
    log(`sd21: ${k} decoder ${res.decode_s_per_frame[k].toFixed(2)} s/frame`);
  }
  return res;
}

/** Run the cached part in a child process (its peak RSS is the modulate step's alone). */
async function cachedChild(work: string, quick: boolean, model?: string): Promise<Sd21Result> {
  const args = ["run", "-A", fileURLToPath(import.meta.url), "--cached", "--work", work];
  if (quick) args.push("--quick");
  if (model) args.push("--model", model);
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`sd21: the second-run process failed (exit ${out.code})`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Sd21Result;
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--work");
  const work = i >= 0 ? Deno.args[i + 1] : Deno.makeTempDirSync({ prefix: "vidseg-sd21-" });
  const m = Deno.args.indexOf("--model");
  const r = await runSd21(
    work,
    Deno.args.includes("--quick"),
    (m) => console.error(m),
    m >= 0 ? Deno.args[m + 1] : undefined,
    Deno.args.includes("--cached") ? "cached" : "all",
  );
  console.log(JSON.stringify(r));
}
