/**
 * Prefix reuse for the UNet graph builder: the split of a UNet at the input of an up-path position p into a
 * prefix (everything before p; its graph also outputs the `prefix.*` tensors) and a suffix (positions p.. fed by
 * `prefix.*` inputs). Names, shapes and option checks live here; the walk itself is in graph.ts.
 * @module
 */
import { fail } from "../../errors.ts";
import type { UNetBuildOptions } from "./graph.ts";
import { type UNetLayout, upPositions } from "./config.ts";

/** Name of the hidden-state tensor of a prefix split. */
export const PREFIX_HIDDEN = "prefix.hidden";

/** Name of the skip connection the K-th position after the split concatenates. */
export const prefixSkip = (k: number): string => `prefix.skip${k}`;

/** Names of every `prefix.*` tensor of a split at position p (hidden first, then the skips in use order). */
export function prefixNames(l: UNetLayout, p: number): string[] {
  return [PREFIX_HIDDEN, ...Array.from({ length: upPositions(l) - p }, (_, k) => prefixSkip(k))];
}

/**
 * Channels and level (down-path resolution index) of the `prefix.*` tensors of a split at position p:
 * the hidden state entering p, then the skip of every position p.. (up level j runs at down level n−1−j).
 */
export function prefixTensorDims(l: UNetLayout, p: number): { name: string; ch: number; level: number }[] {
  const per = l.layersPerBlock + 1, n = l.up.length;
  const j0 = Math.floor(p / per), k0 = p % per;
  const hiddenCh = k0 > 0 ? l.up[j0].outCh : j0 > 0 ? l.up[j0 - 1].outCh : l.blockOut[n - 1];
  const out = [{ name: PREFIX_HIDDEN, ch: hiddenCh, level: n - 1 - j0 }];
  for (let i = p; i < upPositions(l); i++) {
    const j = Math.floor(i / per), k = i % per;
    const prevCh = k > 0 ? l.up[j].outCh : j > 0 ? l.up[j - 1].outCh : l.blockOut[n - 1];
    out.push({ name: prefixSkip(i - p), ch: l.up[j].resnetIn[k] - prevCh, level: n - 1 - j });
  }
  return out;
}

/** A split of {@link unetBody} at the input of up-path position `at` (prefix reuse). */
export interface BodySplit {
  at: number;
  /** Prefix side: receives the hidden state entering `at` and the skips it and later positions use, in use order. */
  expose?: (hidden: string, skips: readonly string[]) => void;
  /** Suffix side: start at `at` from these values (same order as `expose` gives) instead of the full walk. */
  resume?: { hidden: string; skips: readonly string[] };
}

/** Split options: a valid position, not both sides at once, nothing requested before a resumed suffix. */
export function checkSplitOptions(l: UNetLayout, o: UNetBuildOptions): void {
  const P = upPositions(l);
  for (const [key, p] of [["exposePrefixAt", o.exposePrefixAt], ["resumeAt", o.resumeAt]] as const) {
    if (p !== undefined && p !== null && !(Number.isInteger(p) && p >= 0 && p < P)) {
      fail(`unet ${key}`, `expected an up-path position 0..${P - 1}, got ${p}`);
    }
  }
  const r = o.resumeAt;
  if (r === undefined || r === null) return;
  if (o.exposePrefixAt !== undefined && o.exposePrefixAt !== null) {
    fail("unet resumeAt", "a variant either exposes a prefix or resumes from one, not both");
  }
  const per = l.layersPerBlock + 1;
  for (const t of o.taps ?? []) {
    const m = /^up\.pos(\d\d)\./.exec(t) ?? /^up\.block(\d)\./.exec(t);
    const pos = m ? (t.startsWith("up.block") ? Number(m[1]) * per + per - 1 : Number(m[1])) : -1;
    if (pos < r) fail("unet taps", `${t} is computed before position ${r}, where this variant resumes`);
  }
  if (o.modulationPosition !== undefined && o.modulationPosition !== null && o.modulationPosition < r) {
    fail("modulation.block", `position ${o.modulationPosition} lies before the resumed position ${r}`);
  }
  for (const p of o.injectPositions ?? []) {
    if (p < r) {
      fail("unet injection", `position ${p} lies before the resumed position ${r} (inject only ${r}..)`);
    }
  }
}
