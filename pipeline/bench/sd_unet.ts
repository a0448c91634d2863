/**
 * UNet build/run benchmark. `--config sd21` builds an SD 2.1-base-sized UNet (865 M parameters) from
 * deterministic random weights generated in memory (shapes only — not a real model; external data is
 * required above 2 GB) and times one pass; `--config conformance` does the same with the tiny conformance
 * UNet's real weights. Prints one JSON line. Heavy: run by hand, never in the test suite.
 *
 *   deno run -A pipeline/bench/sd_unet.ts --config sd21 --batch 2 --latent 64 [--no-run] [--dtype fp16]
 * @module
 */
import * as path from "node:path";
import { f32 } from "../tensor/tensor.ts";
import { benchArg, benchOptions, graphFacts } from "./probe_common.ts";
import { UNet } from "../backbone/sd/unet.ts";
import { parseUNetConfig } from "../backbone/sd/config.ts";
import { specParams, unetSpec } from "../backbone/sd/spec.ts";
import { RandomWeights } from "../backbone/weights/weight_map.ts";

/** SD 2.1-base UNet config (stabilityai/stable-diffusion-2-1-base unet/config.json, architecture keys). */
export const SD21_BASE_UNET = {
  _class_name: "UNet2DConditionModel",
  attention_head_dim: [5, 10, 20, 20],
  block_out_channels: [320, 640, 1280, 1280],
  cross_attention_dim: 1024,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  in_channels: 4,
  out_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  norm_eps: 1e-5,
  use_linear_projection: true,
  flip_sin_to_cos: true,
  freq_shift: 0,
  sample_size: 64,
};

function randn(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 2) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 1) / 4294967297;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = s / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

async function main(): Promise<void> {
  const { which, dtype, cacheDir, run } = benchOptions("sd21", "vidseg-bench-graphs");
  const batch = Number(benchArg("batch", "2")), latent = Number(benchArg("latent", "64"));
  const t0 = performance.now();
  let unet: UNet;
  if (which === "sd21") {
    const layout = parseUNetConfig(SD21_BASE_UNET, "<sd21-base config>");
    const spec = unetSpec(layout);
    unet = await UNet.fromWeights(layout, new RandomWeights(spec, 1, "sd21-base random"), {
      cacheDir,
      dtype,
      configJson: SD21_BASE_UNET,
    });
    console.error(`params ${specParams(spec)}`);
  } else {
    unet = await UNet.load(path.resolve(import.meta.dirname!, "../../tests/fixtures/conformance"), {
      cacheDir,
      dtype,
    });
  }
  const loadMs = performance.now() - t0;
  const result: Record<string, unknown> = {
    config: which,
    dtype,
    ...graphFacts(unet.graph),
    loadMs: Math.round(loadMs),
  };
  if (run) {
    const C = unet.layout.crossDim;
    const input = {
      sample: f32([batch, 4, latent, latent], randn(batch * 4 * latent * latent, 7)),
      timestep: 119,
      context: f32([batch, 77, C], randn(batch * 77 * C, 8)),
    };
    const repeat = Math.max(1, Number(benchArg("repeat", "1")));
    const times: number[] = [];
    let eps: Float32Array = new Float32Array(0);
    for (let i = 0; i < repeat; i++) {
      const t1 = performance.now();
      eps = (await unet.run(input)).eps!.data;
      times.push(Math.round(performance.now() - t1));
    }
    const best = Math.min(...times);
    const finite = eps.every(Number.isFinite);
    Object.assign(result, { batch, latent, runMs: times, msPerSample: Math.round(best / batch), finite });
    result.rssMB = Math.round(Deno.memoryUsage().rss / 2 ** 20);
  }
  await unet.release();
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
