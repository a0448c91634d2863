// Segment the first 4 swan frames with the embedded model at 128x64; print each cluster's share of the pixels.
import { segment } from "../mod.ts";

const swan = `${import.meta.dirname}/../data/swan/images`;
const opts = { k: 4, set: ["dataset.max_frames=4"], progress: null };
const { clips: [clip] } = await segment(swan, { ...opts, resolution: [128, 64] });
const counts = new Map<number, number>();
for (const id of clip.labels.data) counts.set(id, (counts.get(id) ?? 0) + 1);
console.log(`${clip.name}: ${clip.frames.length} frames of ${clip.labels.shape[2]}x${clip.labels.shape[1]}`);
for (const [id, n] of [...counts].sort((a, b) => a[0] - b[0])) {
  console.log(`  cluster ${id}: ${(100 * n / clip.labels.data.length).toFixed(1)}%`);
}
