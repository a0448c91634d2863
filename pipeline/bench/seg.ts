/**
 * Timing of the segmentation kernels at the sizes of the reference setting (a 1024-cell feature grid, 640
 * channels, batches of 14 frames): K-Means (this module vs npm ml-kmeans), KNN prediction of a batch against a
 * batch-sized memory, CBR trajectories of a batch. Run: `deno run -A pipeline/bench/seg.ts [--quick]`.
 * `--quick` skips the 14-frame KNN and CBR cases.
 * @module
 */
import { kmeans as mlKmeans } from "ml-kmeans";
import { createRng } from "../seg/rng.ts";
import { kmeansFit } from "../seg/kmeans.ts";
import { knnPredict } from "../seg/knn.ts";
import { trackTrajectories } from "../seg/cbr.ts";

/** n points in d dims around `clusters` random centres (N(0, spread²) centres, unit noise), as float32. */
function clustered(n: number, d: number, clusters: number, seed: number, spread = 3): Float32Array {
  const rng = createRng(seed);
  const centres = Array.from(
    { length: clusters },
    () => Float64Array.from({ length: d }, () => spread * rng.normal()),
  );
  const X = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = centres[rng.int(clusters)];
    for (let k = 0; k < d; k++) X[i * d + k] = c[k] + rng.normal();
  }
  return X;
}

function time<T>(label: string, fn: () => T): T {
  const t0 = performance.now();
  const out = fn();
  console.log(`${label}: ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return out;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const n = 1024, d = 640, K = 20;
  for (
    const [name, X] of [["well separated", clustered(n, d, 12, 1)], [
      "overlapping",
      clustered(n, d, 40, 1, 0.15),
    ]] as const
  ) {
    console.log(`-- ${name} clusters`);
    const ours1 = time(
      `kmeans (this module), ${n}×${d}, K=${K}, n_init=1`,
      () => kmeansFit(X, n, d, { k: K, nInit: 1, seed: 1 }),
    );
    console.log(`  iterations ${ours1.nIter}, inertia ${ours1.inertia.toFixed(0)}`);
    const ours10 = time(
      `kmeans (this module), ${n}×${d}, K=${K}, n_init=10`,
      () => kmeansFit(X, n, d, { k: K, nInit: 10, seed: 1 }),
    );
    console.log(`  inertia ${ours10.inertia.toFixed(0)}`);
    const rows = Array.from({ length: n }, (_, i) => Array.from(X.subarray(i * d, (i + 1) * d)));
    const ml = time(
      `ml-kmeans 7.0.1, ${n}×${d}, K=${K}, one kmeans++ run`,
      () => mlKmeans(rows, K, { seed: 1, initialization: "kmeans++", maxIterations: 300 }),
    );
    let mlInertia = 0;
    ml.clusters.forEach((c, i) => ml.centroids[c].forEach((v, k) => (mlInertia += (rows[i][k] - v) ** 2)));
    console.log(`  iterations ${ml.iterations}, inertia ${mlInertia.toFixed(0)}`);
  }
  if (!quick) {
    const F = 14, hw = 1024;
    const batch = clustered(F * hw, d, 12, 2);
    const memory = {
      features: clustered(F * hw, d, 12, 3),
      labels: Int32Array.from({ length: F * hw }, (_, i) => i % 7),
      n: F * hw,
      d,
    };
    const fitSet = clustered(F * hw, d, 40, 4, 0.15);
    const big = time(
      `kmeans (this module), ${F}×${hw}×${d} (batch fit), K=${K}, n_init=10`,
      () => kmeansFit(fitSet, F * hw, d, { k: K, nInit: 10, seed: 1 }),
    );
    console.log(`  iterations of the best run ${big.nIter}`);
    time(
      `knn k=4: ${F}×${hw} queries × ${d} vs memory ${F}×${hw}`,
      () => knnPredict(memory, batch, F * hw, 4),
    );
    time(`cbr trajectories: ${F} frames × ${hw} cells × ${d}`, () => trackTrajectories(batch, F, hw, d));
  }
}
