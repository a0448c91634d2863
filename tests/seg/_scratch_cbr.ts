import { syntheticVideo, syntheticFeatures } from "../../pipeline/data/synthetic.ts";
import { computeTracks } from "../../pipeline/seg/cbr.ts";
const N = 14, H = 160, W = 256, gh = 10, gw = 16, hw = gh * gw;
const v = syntheticVideo({ frames: N, height: H, width: W, seed: 1 });
for (const [cw, aw, noise] of [[1, 0.5, 0.3], [1, 2, 0.3], [0.5, 3, 0.3], [0.5, 3, 0.1], [0.2, 4, 0.2]]) {
  const f = syntheticFeatures(v, { gridH: gh, gridW: gw, channels: 32, noise, classWeight: cw, appearanceWeight: aw, seed: 7, noiseSeed: 12 });
  const t = computeTracks(f.data, N, gh, gw, 32);
  let kept = 0; for (const k of t.keep) kept += k;
  // mean abs displacement per step of kept tracks
  let moves = 0, cnt = 0, big = 0;
  for (let tr = 0; tr < hw; tr++) for (let q = 1; q < N; q++) { const a = t.pos[(q - 1) * hw + tr], b = t.pos[q * hw + tr]; const d = Math.abs(Math.floor(a / gw) - Math.floor(b / gw)) + Math.abs(a % gw - b % gw); moves += d; cnt++; if (d > 2) big++; }
  console.log(cw, aw, noise, "kept", kept, "/", hw, "mean move", (moves / cnt).toFixed(2), "big jumps", big);
}
