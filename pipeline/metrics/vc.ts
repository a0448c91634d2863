/**
 * Video consistency mVC_n (docs/method.md §10.3, VSPW `VC_perclip.py`): for a video of N annotated frames
 * (skipped when N ≤ n), for each start i in 0 .. N−n−1 (N − n windows: the official code leaves out the last
 * possible one), G = pixels where the GT is the same in frames i .. i+n−1, P = the same for the prediction,
 * VC_i = |G ∧ P| / |G| (NaN when |G| = 0). Raw values, no ignore handling. mVC_n = nanmean of all windows of all
 * videos pooled.
 * @module
 */

/** VC_i of every window of one video; frames are flat label arrays of equal length. */
export function vcWindows(
  gt: readonly ArrayLike<number>[],
  pred: readonly ArrayLike<number>[],
  n: number,
): number[] {
  if (gt.length !== pred.length) {
    throw new Error(`vcWindows: ${gt.length} GT frames vs ${pred.length} predicted`);
  }
  const N = gt.length;
  if (N <= n) return [];
  const P = gt[0].length;
  for (let f = 0; f < N; f++) {
    if (gt[f].length !== P || pred[f].length !== P) {
      throw new Error(`vcWindows: frame ${f} has a different size`);
    }
  }
  const out: number[] = [];
  for (let i = 0; i < N - n; i++) {
    let g = 0, both = 0;
    const g0 = gt[i], p0 = pred[i];
    for (let x = 0; x < P; x++) {
      let gs = true, ps = true;
      for (let j = 1; j < n && gs; j++) gs = gt[i + j][x] === g0[x];
      if (!gs) continue;
      g++;
      for (let j = 1; j < n && ps; j++) ps = pred[i + j][x] === p0[x];
      if (ps) both++;
    }
    out.push(g === 0 ? NaN : both / g);
  }
  return out;
}

/** Mean of the non-NaN values (null when there are none). */
export function nanmean(values: readonly number[]): number | null {
  let s = 0, k = 0;
  for (const v of values) if (!Number.isNaN(v)) (s += v), k++;
  return k > 0 ? s / k : null;
}

/** mVC_n pooled over videos, each given as {gt, pred} frame lists. */
export function meanVideoConsistency(
  videos: readonly { gt: ArrayLike<number>[]; pred: ArrayLike<number>[] }[],
  n: number,
): number | null {
  return nanmean(videos.flatMap((v) => vcWindows(v.gt, v.pred, n)));
}
