/**
 * SVD UNet build/run benchmark (run by hand, never in the test suite). `--config svd` builds a
 * stable-video-diffusion-img2vid-sized UNet (1.5 G parameters) from deterministic random weights generated in
 * memory (shapes only — not a real model; external data, as the weights exceed 2 GB), reports build time and
 * ONNX size, and unless `--no-run` times one pass on `--batch` videos of `--frames` frames at `--width`×`--height`
 * pixels. `--config conformance` does the same with the tiny conformance UNet. Also prints the memory the method
 * needs to store the temporal attn1 q/k of positions 3..11 per step and per batch (docs/method.md §8.3).
 * Prints one JSON line. `--keep` keeps the (multi-GB) graph cache; by default it is deleted afterwards.
 *
 *   deno run -A pipeline/bench/svd_unet.ts --config svd --width 576 --height 320 --frames 14 [--no-run]
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { benchArg, benchOptions, graphFacts } from "./probe_common.ts";
import { gaussianNoise } from "../backbone/sampler/noise.ts";
import { svdAddedTimeIds } from "../backbone/sampler/svd.ts";
import { RandomWeights } from "../backbone/weights/weight_map.ts";
import { parseSvdUNetConfig, type SvdLayout } from "../backbone/svd/config.ts";
import { svdUnetSpec } from "../backbone/svd/spec.ts";
import { SvdUNet } from "../backbone/svd/unet.ts";
import { attentionPositions } from "../backbone/sd/graph.ts";
import { specParams } from "../backbone/sd/spec.ts";

/** stabilityai/stable-video-diffusion-img2vid unet/config.json (architecture keys). */
export const SVD_IMG2VID_UNET = {
  _class_name: "UNetSpatioTemporalConditionModel",
  addition_time_embed_dim: 256,
  block_out_channels: [320, 640, 1280, 1280],
  cross_attention_dim: 1024,
  down_block_types: [
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "DownBlockSpatioTemporal",
  ],
  in_channels: 8,
  layers_per_block: 2,
  num_attention_heads: [5, 10, 20, 20],
  num_frames: 14,
  out_channels: 4,
  projection_class_embeddings_input_dim: 768,
  sample_size: 96,
  transformer_layers_per_block: 1,
  up_block_types: [
    "UpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
  ],
};

/**
 * Bytes of the temporal attn1 q and k of the given up-path positions for `videos` videos of `frames` frames on an
 * h×w latent: Σ 2·(videos·h_j·w_j)·frames·C_j·bytesPerValue, position i at level j = i div (L+1) with resolution
 * latent/2^(n−1−j).
 */
export function temporalQkBytes(
  l: SvdLayout,
  latentH: number,
  latentW: number,
  frames: number,
  videos: number,
  bytesPerValue: number,
  positions: readonly number[] = attentionPositions(l),
): number {
  const per = l.layersPerBlock + 1, n = l.up.length;
  let total = 0;
  for (const i of positions) {
    const j = Math.floor(i / per), f = 2 ** (n - 1 - j);
    total += 2 * videos * (latentH / f) * (latentW / f) * frames * l.up[j].outCh * bytesPerValue;
  }
  return total;
}

function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : -1;
}

async function main(): Promise<void> {
  const { which, dtype, cacheDir, run } = benchOptions("svd", "vidseg-svd-bench-graphs");
  const W = Number(benchArg("width", "576")), H = Number(benchArg("height", "320"));
  const F = Number(benchArg("frames", "14")), B = Number(benchArg("batch", "1"));
  const t0 = performance.now();
  let unet: SvdUNet;
  let params: number;
  if (which === "svd") {
    const layout = parseSvdUNetConfig(SVD_IMG2VID_UNET, "<svd-img2vid config>");
    const spec = svdUnetSpec(layout);
    params = specParams(spec);
    unet = await SvdUNet.fromWeights(layout, new RandomWeights(spec, 1, "svd-img2vid random"), {
      cacheDir,
      dtype,
      configJson: SVD_IMG2VID_UNET,
    });
  } else {
    unet = await SvdUNet.load(path.resolve(import.meta.dirname!, "../../tests/fixtures/conformance-svd"), {
      cacheDir,
      dtype,
    });
    params = specParams(svdUnetSpec(unet.layout));
  }
  const loadMs = performance.now() - t0;
  const l = unet.layout, h = H / 8, w = W / 8;
  const qk = (videos: number, bytes: number) => temporalQkBytes(l, h, w, F, videos, bytes);
  const result: Record<string, unknown> = {
    config: which,
    params,
    dtype,
    ...graphFacts(unet.graph),
    sessionMs: Math.round(loadMs - unet.graph.buildMs),
    temporalQkMBPerStep: {
      fp32_cond: Math.round(qk(1, 4) / 2 ** 20),
      fp32_cfg: Math.round(qk(2, 4) / 2 ** 20),
      fp16_cfg: Math.round(qk(2, 2) / 2 ** 20),
    },
    temporalQkMBPerBatch8Steps: {
      fp32_cfg: Math.round(8 * qk(2, 4) / 2 ** 20),
      fp16_cfg: Math.round(8 * qk(2, 2) / 2 ** 20),
    },
    rssAfterLoadMB: Math.round(Deno.memoryUsage().rss / 2 ** 20),
  };
  if (run) {
    const sample = gaussianNoise(7, [B, F, l.inChannels, h, w]);
    const context = gaussianNoise(8, [B, 1, l.crossDim]);
    const t1 = performance.now();
    const out = await unet.run({ sample, timestep: 0.0604, context, addedTimeIds: svdAddedTimeIds() });
    Object.assign(result, {
      width: W,
      height: H,
      frames: F,
      batch: B,
      runMs: Math.round(performance.now() - t1),
      finite: out.v!.data.every(Number.isFinite),
      outShape: out.v!.shape,
    });
  }
  result.peakRssMB = peakRssMB();
  await unet.release();
  if (!Deno.args.includes("--keep")) fs.rmSync(cacheDir, { recursive: true, force: true });
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
