/**
 * Stage `modulate` (docs/method.md §8.1–8.5): per batch, the unmodulated pass (recording latents and the
 * attention to inject), then for every label and sign a modulated re-denoising of the frames, decoded to images at
 * the original frame size, and the blurred ± difference map of every (frame, label). One clip loop for every
 * backbone: a *sample* is what the backbone re-denoises together — one frame (SD), or the whole batch when its
 * frames are one video (SVD).
 *
 * Schedules (`schedule`):
 * - `reference`: the reference code's pass structure literally — for sign in (+,−), for each label, every frame
 *   of the batch is re-denoised (frames where the label is absent get an all-zero mask).
 * - `optimized`: only samples with a non-empty mask are re-denoised, all signs/labels batched together. An absent
 *   label's difference map is exactly zero in the reference too: with a zero mask there is no modulation, blending
 *   restores the unmodulated latent, and injection makes every later step the unmodulated one, so I⁺ = I⁻
 *   (tests/stages/modulate_test.ts). Groups are as large as the memory budget `modulation.batch_bytes` allows,
 *   and, where the backbone supports it, the first modulated step reuses the unmodulated pass's UNet prefix (its
 *   input is x_{t_m} itself, so everything before the modulated block is identical; tests/bench/optimized_test.ts).
 *   A batch the plan repeats is run once (its rerun is identical). Every difference map it computes is also a
 *   shared sample (the runner's sample cache): another instance with the same frames, params and mask — an
 *   ablation row that differs elsewhere — copies it instead of re-denoising.
 *
 * The stored attention of the unmodulated pass stays in memory inside this stage: recomputing the unmodulated pass
 * costs one pass out of 1 + 2·|Labels|, far cheaper than caching gigabytes per batch.
 *
 * Artifacts: tensors `diff` U8 [N, L, H0, W0] (blurred difference maps, before normalisation), json
 * {labels: number[]}.
 * @module
 */
import {
  type Artifacts,
  rowsOf,
  shapeOf,
  type Stage,
  type StageContext,
  tensorOutput,
} from "../dag/stage.ts";
import { type Tensor, u8 } from "../tensor/tensor.ts";
import type { BatchRange } from "../seg/video.ts";
import { distinctBatches, planBatches } from "../seg/video.ts";
import { resizeBilinearCv } from "../tensor/ops.ts";
import { differenceMap } from "../seg/labels.ts";
import { modelFiles, type ModSample, openBackbone } from "../backbone/backbone.ts";
import {
  BACKBONE_FIELDS,
  backboneOf,
  BATCHING,
  keysOf,
  MODULATE_FIELDS,
  MODULATE_SAMPLER_FIELDS,
  modulationOf,
  samplerOf,
} from "./params.ts";
import { noiseOf } from "./features.ts";

type P = Record<string, unknown>;

/** Knobs of the optimized schedule (the stage derives them from the config; the bench varies them). */
export interface OptimizedOptions {
  /** Samples per modulated group (each sample is 2 UNet rows per frame under CFG); default: the memory budget's. */
  groupSamples?: number;
  /** UNet rows per backend run; default: the memory budget's. */
  microBatch?: number;
  /** Resume the first modulated step from the unmodulated pass's prefix (backbones that support it). */
  reusePrefix: boolean;
  /**
   * Run a batch the plan repeats (the reference reruns the last window when N is a multiple of the batch size,
   * docs/method.md §13.14) only once: the rerun has the same frames, noise and masks, so its output is identical.
   */
  skipRepeats: boolean;
}

export const modulateStage: Stage<P> = {
  name: "modulate",
  version: 1,
  params: [...keysOf("backbone", BACKBONE_FIELDS), ...keysOf("sampler", MODULATE_SAMPLER_FIELDS), ...BATCHING]
    .concat([...keysOf("modulation", MODULATE_FIELDS), "schedule"]),
  upstream: ["frames", "invert", "knn"],
  inputFiles: (p) => modelFiles(p["backbone.weights"] as string),
  run(inputs, p, ctx): Promise<Artifacts> {
    return modulateClip(
      inputs,
      p,
      ctx,
      p.schedule === "reference" ? null : { reusePrefix: true, skipRepeats: true },
    );
  },
};

/** Which (label, sign) a sample of a group is, and its masks (for the sample cache). */
interface SampleKey {
  l: number;
  sign: number;
}

/**
 * The stage's work on one clip: the reference schedule (`opt` null) or the optimized one with the given knobs
 * (exported so the bench and tests can vary them; the stage derives them from the memory budget).
 */
export async function modulateClip(
  inputs: Record<string, Artifacts>,
  p: P,
  ctx: StageContext,
  opt: OptimizedOptions | null,
): Promise<Artifacts> {
  const z0Shape = shapeOf(inputs.invert, "z0")!.shape; // [N, 4, h, w]; read batch by batch
  const noise = noiseOf(inputs.invert);
  // Per distinct batch, the (CBR-refined when on) coarse maps: the masks of that batch's passes.
  const coarse = inputs.knn.tensors.coarse_batches as Tensor<"I32">; // [B, F, h, w]
  const labels = inputs.knn.json.labels as number[];
  const [H0, W0] = inputs.frames.json.size0 as [number, number];
  const N = z0Shape[0], tokens = coarse.shape[2] * coarse.shape[3];
  const m = modulationOf(p);
  const backbone = openBackbone(backboneOf(p));
  const setup = {
    sampler: samplerOf(p, MODULATE_SAMPLER_FIELDS),
    modulation: m,
    reusePrefix: !!opt?.reusePrefix && backbone.prefixReuse,
    size0: [H0, W0] as const,
  };

  const L = labels.length;
  const diffOut = tensorOutput(ctx, "diff", "U8", [N, L, H0, W0]);
  // The full plan (a repeated last batch is rerun, as in the reference); masks come from its distinct slot.
  const plan = planBatches(N, p.batch_size as number, p.dedupe_last_batch as boolean);
  const distinct = distinctBatches(plan);
  const batches = opt?.skipRepeats ? distinct : plan;
  const owned = finalRows(batches);
  // Optimized schedule inside the runner: each sample's difference maps are also a shared sample keyed by what
  // they depend on — frames and inverted latents (upstream keys), params, batch, frames, masks — so ablation rows
  // that agree on a mask compute them once (tests/stages/modulate_test.ts). The reference stays literal.
  const shared = opt && ctx.upstreamKeys?.frames && ctx.upstreamKeys?.invert ? ctx.samples : undefined;
  const { schedule: _, ...sharedParams } = p;
  const sharedBase = {
    frames: ctx.upstreamKeys?.frames,
    invert: ctx.upstreamKeys?.invert,
    params: sharedParams,
  };
  const plane = H0 * W0;
  let done = 0, sharedPairs = 0;
  for (const [bi, { start, end }] of batches.entries()) {
    const slot = distinct.findIndex((d) => d.start === start && d.end === end);
    const F = end - start;
    // The samples of a label: one per frame, or one for the whole batch when its frames are one video.
    const units = backbone.coupledFrames
      ? [Array.from({ length: F }, (_, f) => f)]
      : Array.from({ length: F }, (_, f) => [f]);
    // This batch's maps; a later (overlapping) batch overwrites its frames entirely, so only the rows no later
    // batch rewrites are streamed out (absent labels stay zero).
    const diff = u8([F, L, H0, W0]);
    const mask = (f: number, label: number): Uint8Array | null => {
      const src = coarse.data.subarray((slot * F + f) * tokens, (slot * F + f + 1) * tokens);
      const out = new Uint8Array(tokens);
      let any = false;
      for (let n = 0; n < tokens; n++) if (src[n] === label) (out[n] = 1, any = true);
      return any ? out : null;
    };
    const itemKey = (q: ModSample) => ({
      ...sharedBase,
      batch: [start, end],
      frames: q.frames,
      masks: q.masks.map((mk) => (mk ? mk.join("") : "")),
    });
    // A sample of label l still to modulate (both signs), or none when its masks are empty or it was shared.
    const todo = (u: readonly number[], l: number): ModSample | null => {
      const masks = u.map((f) => mask(f, labels[l]));
      if (masks.every((mk) => mk === null)) return null;
      const q = { frames: u, masks, sign: 1 };
      const hit = shared?.get(itemKey(q));
      if (hit?.length !== u.length * plane) return q;
      u.forEach((f, i) => diff.data.set(hit.subarray(i * plane, (i + 1) * plane), (f * L + l) * plane));
      sharedPairs += u.length;
      return null;
    };
    // Reference: for sign in (+, −), for each label, one group of every sample (absent → zero masks).
    // Optimized: only present samples, both signs adjacent, grouped by the memory budget below.
    const list: { q: ModSample; k: SampleKey }[][] = [];
    if (!opt) {
      for (const sign of [1, -1]) {
        for (let l = 0; l < L; l++) {
          list.push(
            units.map((u) => ({
              q: {
                frames: u,
                masks: u.map((f) => mask(f, labels[l])),
                sign,
              },
              k: { l, sign },
            })),
          );
        }
      }
    } else {
      const all: { q: ModSample; k: SampleKey }[] = [];
      for (let l = 0; l < L; l++) {
        for (const u of units) {
          const q = todo(u, l);
          if (q) { for (const sign of [1, -1]) all.push({ q: { ...q, sign }, k: { l, sign } }); }
        }
      }
      if (all.length) list.push(all);
    }
    // Everything shared already: not even the unmodulated pass is needed.
    if (!list.length) {
      ctx.progress(++done, batches.length, "batches modulated");
    } else {
      const record = await backbone.record({
        frames: () => rowsOf(inputs.frames, "frames", start, end) as Tensor<"U8">,
        z0: rowsOf(inputs.invert, "z0", start, end) as Tensor<"F32">,
        noise,
      }, setup);
      const budgeted = opt && (opt.groupSamples === undefined || opt.microBatch === undefined)
        ? backbone.groupOptions(record, m.batch_bytes)
        : undefined;
      const groups = opt ? chunk(list[0], opt.groupSamples ?? budgeted!.groupSamples) : list;
      const microBatch = opt ? opt.microBatch ?? budgeted!.microBatch : undefined;
      const plus = new Map<string, Tensor<"U8">>();
      const minus = new Map<string, Tensor<"U8">>();
      for (const group of groups) {
        const imgs = await backbone.modulate(record, group.map((s) => s.q), microBatch); // [Σ frames, H, W, 3]
        const [, H, W] = imgs.shape;
        let row = 0;
        for (const { q, k } of group) {
          for (const f of q.frames) {
            const one = {
              dtype: "U8" as const,
              shape: [H, W, 3],
              data: imgs.data.subarray(row * H * W * 3, (row + 1) * H * W * 3),
            };
            row++;
            const full = resizeBilinearCv(one, H0, W0);
            const key = `${f}|${k.l}`;
            (k.sign > 0 ? plus : minus).set(key, full);
            const a = plus.get(key), c = minus.get(key);
            if (a && c) {
              const d = differenceMap(a, c, m.difference_mode);
              diff.data.set(d.data, (f * L + k.l) * plane);
              plus.delete(key);
              minus.delete(key);
            }
          }
          // Both signs of the sample done: share its maps.
          if (shared && k.sign < 0) {
            const maps = new Uint8Array(q.frames.length * plane);
            q.frames.forEach((f, i) =>
              maps.set(diff.data.subarray((f * L + k.l) * plane, (f * L + k.l + 1) * plane), i * plane)
            );
            shared.put(itemKey(q), maps);
          }
        }
        done += 1 / groups.length;
        ctx.progress(Math.round(100 * done) / 100, batches.length, "batches modulated");
      }
    }
    const [a, b] = owned[bi];
    if (b > a) {
      const rows = L * plane;
      diffOut.append({
        dtype: "U8",
        shape: [b - a, L, H0, W0],
        data: diff.data.subarray((a - start) * rows, (b - start) * rows),
      });
    }
  }
  if (sharedPairs) ctx.log(`${sharedPairs} (frame, label) difference maps shared with other rows`);
  return { tensors: diffOut.result(), json: { labels } };
}

/** Groups of at most `size` items; even sizes keep a sample's ± pair in one group (its maps are taken at once). */
function chunk<T>(all: readonly T[], size: number): T[][] {
  const step = Math.max(2, size - (size % 2));
  const out: T[][] = [];
  for (let i = 0; i < all.length; i += step) out.push(all.slice(i, i + step));
  return out;
}

/**
 * For each batch of a plan (in order), the frame rows [a, b) it writes last — the rows no later batch covers.
 * Batch starts never decrease, so these ranges are consecutive and cover [0, N): streaming them in order equals
 * overwriting a whole-clip tensor batch after batch.
 */
export function finalRows(batches: readonly BatchRange[]): [number, number][] {
  let written = 0;
  return batches.map((r, i) => {
    const laterStart = Math.min(r.end, ...batches.slice(i + 1).map((q) => q.start));
    const b = Math.max(written, laterStart);
    const out: [number, number] = [written, b];
    written = b;
    return out;
  });
}
