/**
 * PCA pictures of the diffusion features (docs/method.md §4): for the chosen frames of a clip, the top three
 * principal components of each decoder block's self-attention queries (cached `features` stage, q<i>
 * [T, h·w, C]) and of their mean (the aggregated feature, seg/aggregate.ts) shown as RGB on the feature
 * grid. One basis per block, fitted on all chosen frames together, so colours are comparable over time.
 * @module
 */
import { aggregatedFeatures } from "../seg/aggregate.ts";
import { type Tensor, toF32 } from "../tensor/tensor.ts";
import { UserError } from "../errors.ts";
import type { RunView } from "./artifacts.ts";
import { fitPca, project, scoresToRgb } from "./pca.ts";
import { rgbImage } from "./images.ts";

/** One block's (or the mean's) PCA colouring of the chosen frames. */
export interface PcaPanel {
  /** "block 6", …, "mean of 6, 7, 8". */
  name: string;
  /** Per chosen frame, U8 [h, w, 3]. */
  images: Tensor<"U8">[];
  /** Fraction of the total variance along each of the 3 components. */
  explained: number[];
}

/**
 * Row (in frames) of frame f in a features tensor stacked per batch (`batches` [[start, end), …], in order):
 * the last batch containing f, as the coarse maps do (a later batch overwrites). Without batches, row f.
 */
export function featureRowOf(batches: readonly (readonly [number, number])[] | undefined, f: number): number {
  if (!batches) return f;
  let off = 0, found = -1;
  for (const [s, e] of batches) {
    if (f >= s && f < e) found = off + (f - s);
    off += e - s;
  }
  if (found < 0) throw new Error(`features: frame ${f} is in no batch of ${JSON.stringify(batches)}`);
  return found;
}

/** PCA panels of `blocks` (default: the row's features.blocks) and of their mean, for `frames` of a clip. */
export async function featurePca(
  run: RunView,
  row: string,
  clip: string,
  frames: readonly number[],
  blocks?: readonly number[],
): Promise<{ grid: [number, number]; frames: number[]; panels: PcaPanel[] }> {
  const a = await run.load("features", row, clip);
  const [h, w] = a.json.grid as [number, number];
  const N = (a.json.frames as string[]).length;
  for (const f of frames) {
    if (f < 0 || f >= N) throw new UserError(`frame ${f} is outside 0..${N - 1} (clip ${clip})`);
  }
  const batches = a.json.batches as [number, number][] | undefined;
  const use = [...(blocks ?? (run.param(row, "features.blocks") as number[]))];
  const missing = use.filter((i) => !a.tensors[`q${i}`]);
  if (missing.length) {
    throw new UserError(
      `features of row ${row} have no block ${missing.join(", ")} (stored: ${
        Object.keys(a.tensors).join(", ")
      })`,
    );
  }
  const sources: { name: string; t: Tensor<"F32"> }[] = use.map((i) => ({
    name: `block ${i}`,
    t: toF32(a.tensors[`q${i}`]),
  }));
  if (use.length > 1) {
    sources.push({ name: `mean of ${use.join(", ")}`, t: aggregatedFeatures(a, true, use, use[0]) });
  }
  const hw = h * w;
  const panels = sources.map(({ name, t }) => {
    const C = t.shape[2];
    // The chosen frames' rows, stacked: [frames·h·w, C].
    const x = new Float32Array(frames.length * hw * C);
    frames.forEach((f, j) => {
      const r = featureRowOf(batches, f);
      x.set(t.data.subarray(r * hw * C, (r + 1) * hw * C), j * hw * C);
    });
    const n = frames.length * hw;
    const pca = fitPca(x, n, C, 3);
    const k = pca.components.length;
    const rgb = scoresToRgb(project(pca, x, n), n, k);
    return {
      name,
      images: frames.map((_, j) => rgbImage(rgb.slice(j * hw * 3, (j + 1) * hw * 3), h, w)),
      explained: pca.variances.map((v) => (pca.total > 0 ? v / pca.total : 0)),
    };
  });
  return { grid: [h, w], frames: [...frames], panels };
}
