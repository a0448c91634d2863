/**
 * Checks of a run's values against its data, before any stage runs: a config can be valid on its own and still
 * impossible for the clips it names (K-Means asked for more clusters than a batch has feature cells, a clip
 * without frames, frames too large). Each failure is one UserError naming the value and what it must satisfy,
 * instead of a crash after the earlier stages have run.
 * @module
 */
import sharp from "sharp";
import { fail } from "../errors.ts";
import { datasetSpecFromConfig, loadDataset } from "./dataset.ts";
import type { VideoClip } from "./clip.ts";

/** Largest processing side (pixels): larger sizes exceed what one batch's tensors can hold. */
export const MAX_SIDE = 8192;
/** The diffusion features sit on a grid 16× smaller than the processing size. */
const FEATURE_STRIDE = 16;

type P = Record<string, unknown>;

/** Size [W0, H0] of a frame from its header (no decode). */
async function frameSize(file: string): Promise<[number, number]> {
  try {
    const m = await sharp(file).metadata();
    if (m.width && m.height) return [m.width, m.height];
  } catch { /* reported below */ }
  fail(file, "cannot read the image header; expected a PNG/JPEG frame");
}

/** Processing size [W, H] of a clip under `resolution` (same rule as the frames stage). */
async function processingSize(clip: VideoClip, resolution: unknown): Promise<[number, number]> {
  if (Array.isArray(resolution)) return [resolution[0] as number, resolution[1] as number];
  const first = clip.frames[0].image;
  const [W0, H0] = await frameSize(first);
  if (W0 < 64 || H0 < 64) {
    fail(`resolution`, `frames of ${first} are ${W0}×${H0}, smaller than 64 px; set resolution: [W, H]`);
  }
  if (W0 > MAX_SIDE || H0 > MAX_SIDE) {
    fail(
      `resolution`,
      `frames of ${first} are ${W0}×${H0}; expected sides up to ${MAX_SIDE} px (set resolution: [W, H])`,
    );
  }
  return [W0 - (W0 % 64), H0 - (H0 % 64)];
}

/**
 * Check every row's values against its clips. Rows sharing a dataset share one listing; frame headers are
 * read once per clip.
 */
export async function checkAgainstData(rows: readonly P[]): Promise<void> {
  const listings = new Map<string, VideoClip[]>();
  const sizes = new Map<string, [number, number]>();
  for (const cfg of rows) {
    const spec = datasetSpecFromConfig(cfg.dataset as P);
    const key = JSON.stringify(spec);
    if (!listings.has(key)) listings.set(key, loadDataset(spec));
    const kmeans = cfg.kmeans as { k: number; fit: string };
    const batchSize = cfg.batch_size as number;
    const knnK = (cfg.knn as { k: number } | undefined)?.k ?? 1;
    for (const clip of listings.get(key)!) {
      const N = clip.frames.length;
      if (N === 0) fail(spec.root, `clip "${clip.name}" has no frames; expected at least 1`);
      const sizeKey = `${clip.frames[0].image}\0${JSON.stringify(cfg.resolution)}`;
      if (!sizes.has(sizeKey)) sizes.set(sizeKey, await processingSize(clip, cfg.resolution));
      const [W, H] = sizes.get(sizeKey)!;
      const h = H / FEATURE_STRIDE, w = W / FEATURE_STRIDE;
      const F = Math.min(batchSize, N);
      const fitFrames = kmeans.fit === "batch" ? F : 1;
      const cells = fitFrames * h * w;
      if (kmeans.k > cells) {
        fail(
          "kmeans.k",
          `${kmeans.k} is more than the ${cells} feature cells K-Means is fitted on (clip "${clip.name}": ${fitFrames} frame(s) × ${w}×${h} cells at ${W}×${H}); expected kmeans.k ≤ ${cells} (lower kmeans.k, or raise resolution or batch_size)`,
        );
      }
      // The KNN memory starts as frame 0's cells alone.
      if (knnK > h * w) {
        fail(
          "knn.k",
          `${knnK} is more than the ${
            h * w
          } feature cells of one frame (clip "${clip.name}": ${w}×${h} cells at ${W}×${H}); expected knn.k ≤ ${
            h * w
          }`,
        );
      }
    }
  }
}
