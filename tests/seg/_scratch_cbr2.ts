import { syntheticVideo, syntheticFeatures } from "../../pipeline/data/synthetic.ts";
import { computeTracks } from "../../pipeline/seg/cbr.ts";
import { resizeNearest } from "../../pipeline/tensor/ops.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";
const N = 14, H = 160, W = 256, gh = 10, gw = 16, hw = gh * gw;
const v = syntheticVideo({ frames: N, height: H, width: W, seed: 1 });
const g: Uint8Array[] = [];
for (let f = 0; f < N; f++) g.push(resizeNearest(u8([H, W], v.gt.data.subarray(f * H * W, (f + 1) * H * W)), gh, gw).data);
for (const [cw, aw, noise] of [[0.5, 3, 0.3], [0.5, 3, 0.1], [0.2, 4, 0.2], [1, 1, 0.2]]) {
  const f = syntheticFeatures(v, { gridH: gh, gridW: gw, channels: 32, noise, classWeight: cw, appearanceWeight: aw, seed: 7, noiseSeed: 12 });
  const t = computeTracks(f.data, N, gh, gw, 32);
  let kept = 0, consistent = 0, moved = 0, up = 0;
  for (let tr = 0; tr < hw; tr++) {
    if (!t.keep[tr]) continue; kept++;
    let ok = true, mv = false;
    for (let q = 0; q < N; q++) { if (g[q][t.pos[q * hw + tr]] !== g[0][tr]) ok = false; if (q && t.pos[q * hw + tr] !== t.pos[(q - 1) * hw + tr]) mv = true; }
    if (ok) consistent++; if (mv) moved++;
  }
  // gt-change at fixed positions
  let static_ok = 0; for (let tr = 0; tr < hw; tr++) { let ok = true; for (let q = 0; q < N; q++) if (g[q][tr] !== g[0][tr]) ok = false; if (ok) static_ok++; }
  console.log(cw, aw, noise, "kept", kept, "consistent", consistent, "moved", moved, "static-consistent cells", static_ok);
}
