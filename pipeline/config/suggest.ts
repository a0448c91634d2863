/**
 * "did you mean …?" for unknown config keys: Damerau-Levenshtein distance against the key's siblings first,
 * then against every schema path (so `cbr_treshold` finds `cbr.spatial_threshold`).
 * @module
 */

/** Optimal-string-alignment distance (insert, delete, substitute, swap adjacent), case-insensitive. */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const m = a.length, n = b.length;
  const d: number[][] = Array.from(
    { length: m + 1 },
    (_, i) => Array.from({ length: n + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[m][n];
}

/** Spellings a user might mean by a key: the key itself and its "_"-separated suffixes ("threshold"). */
function variants(name: string): string[] {
  const parts = name.split("_");
  return parts.map((_, i) => parts.slice(i).join("_"));
}

function distance(typed: string, candidate: string): number {
  return Math.min(...variants(candidate).map((v) => editDistance(typed, v) + (v === candidate ? 0 : 0.5)));
}

/**
 * Best suggestion for an unknown key `typed` found among `siblings` (names at the same level) or, failing
 * that, among `paths` (all dotted schema paths). Returns the suggestion text as it should be printed
 * (`siblingPrefix` + name for siblings, the dotted path otherwise), or null when nothing is close.
 */
export function suggest(
  typed: string,
  siblings: string[],
  siblingPrefix: string,
  paths: string[] = [],
): string | null {
  const limit = Math.max(1, Math.floor(typed.length / 3));
  let best: { text: string; d: number } | null = null;
  for (const s of siblings) {
    const d = distance(typed, s);
    if (d <= limit + 0.5 && (!best || d < best.d)) best = { text: siblingPrefix + s, d };
  }
  if (best) return best.text;
  for (const p of paths) {
    const parts = p.split(".");
    const leaf = parts[parts.length - 1];
    // "cbr_treshold" vs cbr.spatial_threshold: compare with group_leaf and group_<leaf suffix>.
    const group = parts.slice(0, -1).join("_");
    const spellings = [
      p,
      p.replaceAll(".", "_"),
      ...variants(leaf).map((v) => (group ? `${group}_${v}` : v)),
    ];
    const d = Math.min(...spellings.map((s) => editDistance(typed, s)));
    if (d <= limit && (!best || d < best.d)) best = { text: p, d };
  }
  return best?.text ?? null;
}
