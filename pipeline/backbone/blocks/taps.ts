/**
 * Tap naming, option checks and tap emission shared by the SD UNet graph (`sd/graph.ts`) and the SVD UNet graph
 * (`svd/graph.ts`): both walk the same diffusers down/mid/up layout, so their position labels, the skeleton of
 * their tap lists, the checks of taps/modulation/injection/truncation and the "output a tap once, stop when a
 * truncated variant has them all" logic are the same.
 * @module
 */
import { fail } from "../../errors.ts";
import type { Dim } from "../onnx/proto.ts";
import type { GraphBuilder } from "../onnx/builder.ts";
import type { AttnTapKind } from "./attention.ts";
import { type UNetLayout, upPositions } from "../sd/config.ts";

/** Two-digit position label. */
export const posLabel = (i: number): string => `up.pos${String(i).padStart(2, "0")}`;

/** Tap name of an attention tensor at up-path position i, e.g. tapName(7, "attn1_q") = "up.pos07.attn1_q". */
export function tapName(i: number, kind: AttnTapKind | "resnet" | "out"): string {
  return `${posLabel(i)}.${kind}`;
}

/** Positions that have a transformer. */
export function attentionPositions(l: UNetLayout): number[] {
  const per = l.layersPerBlock + 1, out: number[] = [];
  l.up.forEach((lvl, j) => {
    if (lvl.attention) { for (let k = 0; k < per; k++) out.push(j * per + k); }
  });
  return out;
}

/**
 * Every tap name of a UNet layout: `head` (the time-embedding / conv_in debug taps), `debug.down_blockI.out`,
 * `debug.mid_block.out`, then per up-path position the names `position(i, hasTransformer)` gives, and
 * `up.blockJ.upsampler` after each upsampling block.
 */
export function unetTapNames(
  l: UNetLayout,
  head: readonly string[],
  position: (i: number, hasTransformer: boolean) => string[],
): string[] {
  const out = [...head];
  l.down.forEach((_, i) => out.push(`debug.down_block${i}.out`));
  out.push("debug.mid_block.out");
  const per = l.layersPerBlock + 1;
  l.up.forEach((lvl, j) => {
    for (let k = 0; k < per; k++) out.push(...position(j * per + k, lvl.attention));
    if (lvl.upsample) out.push(`up.block${j}.upsampler`);
  });
  return out;
}

/** The build options both UNet variants check the same way. */
export interface CommonUNetOptions {
  taps?: readonly string[];
  modulationPosition?: number | null;
  injectPositions?: readonly number[];
  truncate?: boolean;
}

/** Wording of the {@link checkUNetOptions} messages for one UNet family. */
export interface OptionWording {
  /** Where an unknown tap is reported ("unet taps"). */
  tapsKey: string;
  /** Example tap named in the unknown-tap message. */
  tapExample: string;
  /** What a non-transformer position lacks for modulation / injection ("has no cross-attention"). */
  noModulation: string;
  noInjection: string;
  /** Heading of the list of valid positions ("positions with attention"). */
  validList: string;
}

/**
 * Check taps (against `available`), the modulation position, the injected positions (`perInjected` runs after
 * each one's own check) and truncation; every problem is one UserError line.
 */
export function checkUNetOptions(
  l: UNetLayout,
  o: CommonUNetOptions,
  available: readonly string[],
  words: OptionWording,
  perInjected: (p: number) => void = () => {},
): void {
  const avail = new Set(available);
  const attn = attentionPositions(l);
  for (const t of o.taps ?? []) {
    if (!avail.has(t)) {
      fail(
        words.tapsKey,
        `unknown tap "${t}" (this UNet offers e.g. ${words.tapExample}; positions 0..${upPositions(l) - 1})`,
      );
    }
  }
  const valid = `(${words.validList}: ${attn.join(", ")})`;
  const m = o.modulationPosition;
  if (m !== undefined && m !== null && !attn.includes(m)) {
    fail("modulation.block", `up-path position ${m} ${words.noModulation} ${valid}`);
  }
  for (const p of o.injectPositions ?? []) {
    if (!attn.includes(p)) fail("unet injection", `up-path position ${p} ${words.noInjection} ${valid}`);
    perInjected(p);
  }
  if (o.truncate && !(o.taps ?? []).length) {
    fail("unet truncate", "a truncated variant needs at least one tap");
  }
}

/** Tap output of a graph build: `emit` outputs a requested tap once; `done` = truncated and all taps out. */
export interface TapEmitter {
  emit: (name: string, v: string) => void;
  done: () => boolean;
}

/** The {@link TapEmitter} of a build with options `o`. */
export function tapEmitter(g: GraphBuilder, o: { taps?: readonly string[]; truncate?: boolean }): TapEmitter {
  const remaining = new Set(o.taps ?? []);
  return {
    emit: (name, v) => {
      if (remaining.delete(name)) g.output(name, g.toF32(v));
    },
    done: () => o.truncate === true && remaining.size === 0,
  };
}

/** Graph input `inject.posII.<kind>` of up-path position i (float32 in, compute type inside). */
export function injectInput(g: GraphBuilder, i: number, kind: string, shape: readonly Dim[]): string {
  return g.toCompute(g.input(`inject.${posLabel(i).slice(3)}.${kind}`, "F32", shape));
}
