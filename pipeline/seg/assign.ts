/**
 * Cluster → dataset class (docs/method.md §5.3–5.5, `match_gt_mask`): every K-Means cluster present in frame 0
 * takes the most frequent GT value under its cells (ties → the smallest value; `np.unique` + `argmax`), GT
 * nearest-resized to the feature grid. Several clusters may merge into one class; GT values are used raw
 * (a cluster can become "others"/void). The label set Labels = sorted unique labels of the assigned frame-0 map
 * (`np.unique(ref_mask)`). Without GT ("single video") every cluster keeps its own id.
 * @module
 */

/** Result of the frame-0 label assignment. */
export interface Assignment {
  /** Assigned label per frame-0 grid cell (`ref_mask`). */
  refLabels: Int32Array;
  /** The video's label set, ascending (`ref_unique_labels`). */
  labels: number[];
  /** cluster id → assigned label, for clusters present in frame 0. */
  clusterLabel: Map<number, number>;
}

/**
 * Assign labels to the frame-0 cluster map `clusters` [h·w] by majority GT vote (`gt` [h·w] at grid size), or
 * keep cluster ids when `gt` is null.
 */
export function assignClusters(clusters: ArrayLike<number>, gt: ArrayLike<number> | null): Assignment {
  const n = clusters.length;
  if (gt && gt.length !== n) throw new Error(`assignClusters: GT has ${gt.length} cells, clusters ${n}`);
  const clusterLabel = new Map<number, number>();
  if (gt) {
    const counts = new Map<number, Map<number, number>>();
    for (let i = 0; i < n; i++) {
      let m = counts.get(clusters[i]);
      if (!m) counts.set(clusters[i], m = new Map());
      m.set(gt[i], (m.get(gt[i]) ?? 0) + 1);
    }
    for (const [c, m] of counts) {
      let best = 0, bestCount = -1;
      for (const [v, cnt] of m) {
        if (cnt > bestCount || (cnt === bestCount && v < best)) (best = v), (bestCount = cnt);
      }
      clusterLabel.set(c, best);
    }
  } else {
    for (let i = 0; i < n; i++) clusterLabel.set(clusters[i], clusters[i]);
  }
  const refLabels = new Int32Array(n);
  for (let i = 0; i < n; i++) refLabels[i] = clusterLabel.get(clusters[i])!;
  return { refLabels, labels: uniqueSorted(refLabels), clusterLabel };
}

/** Ascending distinct values. */
export function uniqueSorted(values: ArrayLike<number>): number[] {
  return [...new Set(Array.from(values))].sort((a, b) => a - b);
}
