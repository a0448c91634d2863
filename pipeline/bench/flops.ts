/**
 * Multiply-accumulate (MAC) counts of one UNet sample-evaluation per graph variant, derived from the UNet
 * layout and the latent size — an independent walk of the diffusers structure (it does not look at built
 * graphs). Counted like tools/count_macs.py: Conv2d and Linear (weights × outputs) and the two attention
 * matmuls (q·kᵀ, probs·v); norms, activations, softmax and additions are O(activations) and not counted.
 *
 * Variants (what the graph builder in backbone/sd/graph.ts computes):
 * - full: everything (ε output);
 * - truncated after position p: conv_in … up-path position p (its transformer included), no upsampler after it,
 *   no conv_norm_out/conv_out (the feature pass's last step);
 * - injected positions: at each, transformer_blocks[0]'s attn1 to_q/to_k and the whole attn2 are replaced by
 *   inputs (the modulated passes);
 * - resumed at position p: time embedding + positions p.. + output head only (the prefix-reused suffix).
 * @module
 */
import type { UNetLayout } from "../backbone/sd/config.ts";
import type { UNetBuildOptions } from "../backbone/sd/graph.ts";

/** MACs of one sample by kind. */
export interface Macs {
  conv: number;
  linear: number;
  attention: number;
}

/** Which parts of the UNet a variant computes. */
export interface UNetVariantShape {
  /** Last up-path position computed (truncated variants); null = the whole UNet with its output head. */
  truncateAfter?: number | null;
  /** Up-path positions whose attn1 q/k and attn2 output are injected (not computed). */
  injectPositions?: readonly number[];
  /** First up-path position computed (prefix-reused suffix variants); null = from conv_in. */
  resumeAt?: number | null;
}

/** Sum of a {@link Macs}. */
export function totalMacs(m: Macs): number {
  return m.conv + m.linear + m.attention;
}

const zero = (): Macs => ({ conv: 0, linear: 0, attention: 0 });

function addInto(a: Macs, b: Macs): void {
  a.conv += b.conv;
  a.linear += b.linear;
  a.attention += b.attention;
}

/** ResnetBlock2D at h×w: conv1 3×3, time_emb_proj, conv2 3×3, 1×1 shortcut when channels change. */
export function resnetMacs(inCh: number, outCh: number, tembCh: number, h: number, w: number): Macs {
  const n = h * w;
  return {
    conv: n * outCh * inCh * 9 + n * outCh * outCh * 9 + (inCh !== outCh ? n * outCh * inCh : 0),
    linear: tembCh * outCh,
    attention: 0,
  };
}

/** Options of {@link transformerMacs}. */
export interface TransformerMacOptions {
  /** transformer_blocks[0] has attn1 q/k and attn2 injected. */
  injected?: boolean;
}

/**
 * Transformer2DModel on N tokens of C channels, `depth` BasicTransformerBlocks, text context of S tokens with
 * D channels: proj_in, per block attn1 (q,k,v,out + 2 matmuls), attn2 (q from tokens, k/v from the context,
 * out + 2 matmuls), GEGLU feed-forward (C→8C, 4C→C), proj_out.
 */
export function transformerMacs(
  C: number,
  N: number,
  depth: number,
  S: number,
  D: number,
  o: TransformerMacOptions = {},
): Macs {
  const m: Macs = { conv: 0, linear: 2 * N * C * C, attention: 0 }; // proj_in + proj_out (Linear or 1×1 conv)
  for (let t = 0; t < depth; t++) {
    const inj = t === 0 && !!o.injected;
    // attn1: q, k (unless injected), v, to_out; scores and probs·v.
    m.linear += (inj ? 2 : 4) * N * C * C;
    m.attention += 2 * N * N * C;
    // attn2: q, k/v of the context, to_out; scores and probs·v — all replaced when injected.
    if (!inj) {
      m.linear += 2 * N * C * C + 2 * S * D * C;
      m.attention += 2 * N * S * C;
    }
    // GEGLU feed-forward.
    m.linear += N * 8 * C * C + N * 4 * C * C;
  }
  return m;
}

/** Latent grid of each down level: level i runs at ceil(H/2^i) × ceil(W/2^i) (stride-2 convs, padding 1). */
function levelSize(h: number, w: number, level: number): [number, number] {
  let a = h, b = w;
  for (let i = 0; i < level; i++) (a = Math.ceil(a / 2)), (b = Math.ceil(b / 2));
  return [a, b];
}

/**
 * MACs of one sample-evaluation of a UNet variant at latent h×w with a text context of `contextLen` tokens,
 * split by up-path position so callers can see where the cost sits.
 */
export function unetMacs(
  l: UNetLayout,
  latentH: number,
  latentW: number,
  v: UNetVariantShape = {},
  contextLen = 77,
): Macs {
  const m = zero();
  const C0 = l.blockOut[0], T = l.timeEmbedDim, S = contextLen, D = l.crossDim;
  const resumeAt = v.resumeAt ?? null, truncateAfter = v.truncateAfter ?? null;
  const injected = new Set(v.injectPositions ?? []);
  const n = l.down.length, per = l.layersPerBlock + 1;
  // Time embedding MLP (always computed: every variant takes the timestep).
  m.linear += C0 * T + T * T;
  if (resumeAt === null) {
    const [h0, w0] = [latentH, latentW];
    m.conv += h0 * w0 * C0 * l.inChannels * l.convInKernel * l.convInKernel;
    l.down.forEach((lvl, i) => {
      const [h, w] = levelSize(latentH, latentW, i);
      for (let k = 0; k < l.layersPerBlock; k++) {
        addInto(m, resnetMacs(k === 0 ? lvl.inCh : lvl.outCh, lvl.outCh, T, h, w));
        if (lvl.attention) addInto(m, transformerMacs(lvl.outCh, h * w, l.transformerDepth, S, D));
      }
      if (lvl.downsample) {
        const [h2, w2] = levelSize(latentH, latentW, i + 1);
        m.conv += h2 * w2 * lvl.outCh * lvl.outCh * 9;
      }
    });
    const last = l.blockOut[n - 1];
    const [hm, wm] = levelSize(latentH, latentW, n - 1);
    addInto(m, resnetMacs(last, last, T, hm, wm));
    addInto(m, transformerMacs(last, hm * wm, l.transformerDepth, S, D));
    addInto(m, resnetMacs(last, last, T, hm, wm));
  }
  for (let j = 0; j < l.up.length; j++) {
    const lvl = l.up[j];
    // up_blocks[j] runs at the resolution of down level n−1−j.
    const [h, w] = levelSize(latentH, latentW, n - 1 - j);
    for (let k = 0; k < per; k++) {
      const i = j * per + k;
      if (resumeAt !== null && i < resumeAt) continue;
      addInto(m, resnetMacs(lvl.resnetIn[k], lvl.outCh, T, h, w));
      if (lvl.attention) {
        addInto(
          m,
          transformerMacs(lvl.outCh, h * w, l.transformerDepth, S, D, { injected: injected.has(i) }),
        );
      }
      if (truncateAfter === i) return m;
    }
    const lastPos = j * per + per - 1;
    if (lvl.upsample && (resumeAt === null || lastPos >= resumeAt)) {
      const [h2, w2] = levelSize(latentH, latentW, n - 2 - j);
      m.conv += h2 * w2 * lvl.outCh * lvl.outCh * 9;
    }
  }
  m.conv += latentH * latentW * l.outChannels * C0 * l.convOutKernel * l.convOutKernel;
  return m;
}

/**
 * The {@link UNetVariantShape} of a variant built with `o`: a truncated variant ends after the deepest up-path
 * position among its taps (the builder stops after the first position at which every tap exists).
 */
export function variantShapeOf(o: UNetBuildOptions, l: UNetLayout): UNetVariantShape {
  let truncateAfter: number | null = null;
  if (o.truncate) {
    const per = l.layersPerBlock + 1;
    for (const t of o.taps ?? []) {
      const pos = /^up\.pos(\d+)\./.exec(t), blk = /^up\.block(\d+)\./.exec(t);
      const i = pos ? Number(pos[1]) : blk ? Number(blk[1]) * per + per - 1 : -1;
      truncateAfter = Math.max(truncateAfter ?? -1, i);
    }
    // Taps before the up path (debug.*) end the graph earlier; counting through position 0 is an upper bound.
    if (truncateAfter !== null && truncateAfter < 0) truncateAfter = 0;
  }
  return { truncateAfter, injectPositions: o.injectPositions ?? [], resumeAt: o.resumeAt ?? null };
}
