/**
 * transformers `CLIPTextModel` (the SD text encoder) from `text_encoder/config.json` + safetensors, as an ONNX
 * graph: `input_ids` [B, L] (int64) → `last_hidden_state` [B, L, C] = final_layer_norm(last layer output).
 * Pre-LN blocks: x += out_proj(attn(layer_norm1(x))) with a causal mask; x += fc2(act(fc1(layer_norm2(x)))),
 * act = exact GELU ("gelu", SD 2.x) or x·σ(1.702x) ("quick_gelu", SD 1.x). No attention mask other than the
 * causal one (as SD pipelines call it). A stored `position_ids` buffer is ignored (positions are 0..L−1).
 * @module
 */
import type { Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import { evaluations, type Session } from "../runtime.ts";
import type { ParamSpec, WeightSource } from "../weights/weight_map.ts";
import * as encoder from "./encoder.ts";
import {
  cfgInt,
  componentSession,
  type ComponentSessionOptions,
  type JsonConfig,
  loadComponent,
  validatedWeights,
} from "../model_files.ts";

/** The parts of a CLIPTextConfig that shape the network. */
export interface ClipTextConfig extends encoder.ClipEncoderConfig {
  vocabSize: number;
  maxPositions: number;
}

/** Parse and validate `text_encoder/config.json`. */
export function parseClipTextConfig(c: JsonConfig): ClipTextConfig {
  encoder.expectArchitecture(c, ["CLIPTextModel", "CLIPTextModelWithProjection"]);
  return {
    vocabSize: cfgInt(c, "vocab_size", 49408),
    maxPositions: cfgInt(c, "max_position_embeddings", 77),
    ...encoder.parseClipEncoder(c, { hidden: 512, intermediate: 2048, heads: 8 }),
  };
}

const P = "text_model";

/** Expected parameters (transformers names) → shapes. */
export function clipTextSpec(cfg: ClipTextConfig): ParamSpec {
  const C = cfg.hiddenSize, I = cfg.intermediateSize;
  const s: ParamSpec = new Map();
  s.set(`${P}.embeddings.token_embedding.weight`, [cfg.vocabSize, C]);
  s.set(`${P}.embeddings.position_embedding.weight`, [cfg.maxPositions, C]);
  for (let i = 0; i < cfg.numLayers; i++) encoder.clipEncoderLayerSpec(s, `${P}.encoder.layers.${i}`, C, I);
  s.set(`${P}.final_layer_norm.weight`, [C]);
  s.set(`${P}.final_layer_norm.bias`, [C]);
  return s;
}

/** Keys a CLIP text checkpoint may carry that last_hidden_state never reads. */
export const IGNORED_CLIP_KEYS = (k: string) =>
  k === `${P}.embeddings.position_ids` || k.startsWith("text_projection.");

/** Options of {@link buildClipText}. */
export interface ClipGraphOptions {
  /** Also output `debug.embeddings.out` and `debug.encoder.layerN.out` (conformance names). */
  taps?: boolean;
}

/** The text-encoder graph (weights validated by the caller against {@link clipTextSpec}). */
export function buildClipText(cfg: ClipTextConfig, w: WeightSource, opts: ClipGraphOptions = {}): Uint8Array {
  const g = new GraphBuilder({ name: "clip_text" });
  const C = cfg.hiddenSize, heads = cfg.numHeads, d = C / heads;
  const ids = g.input("input_ids", "I64", ["batch", "sequence"]);
  const L = g.op("Shape", [ids], { start: 1, end: 2 }); // int64 [1]
  const tok = g.op("Gather", [
    g.initializer(w.take(`${P}.embeddings.token_embedding.weight`), "token_embedding"),
    ids,
  ], { axis: 0 });
  const pos = g.op("Slice", [
    g.initializer(w.take(`${P}.embeddings.position_embedding.weight`), "position_embedding"),
    g.i64([0]),
    L,
    g.i64([0]),
  ]);
  let h = g.add(tok, pos);
  if (opts.taps) g.output("debug.embeddings.out", h);
  // additive causal mask [L, L]: 0 on/below the diagonal, a large negative above (any value ≤ −1e4 is equivalent)
  const M = cfg.maxPositions, maskData = new Float32Array(M * M);
  for (let i = 0; i < M; i++) for (let j = i + 1; j < M; j++) maskData[i * M + j] = -1e9;
  const LL = g.concat([L, L], 0);
  const mask = g.op("Slice", [
    g.initializer({ dtype: "F32", shape: [M, M], data: maskData }, "causal_mask"),
    g.i64([0, 0]),
    LL,
    g.i64([0, 1]),
  ]);
  // Causal self-attention of q, k, v [B, L, C] (explicit ops: the fused kernel takes no additive mask).
  const heads4 = (t: string, perm: number[]) => g.transpose(g.reshape(t, [0, 0, heads, d]), perm);
  const attend = (q: string, k: string, v: string) => {
    const scores = g.add(
      g.mul(g.matmul(heads4(q, [0, 2, 1, 3]), heads4(k, [0, 2, 3, 1])), g.scalar(d ** -0.5)),
      mask,
    );
    return g.reshape(g.transpose(g.matmul(g.softmax(scores, -1), heads4(v, [0, 2, 1, 3])), [0, 2, 1, 3]), [
      0,
      0,
      C,
    ]);
  };
  const p = { hidden: C, heads, eps: cfg.layerNormEps, act: cfg.hiddenAct, attend };
  for (let i = 0; i < cfg.numLayers; i++) {
    h = encoder.clipEncoderLayerGraph(g, w, `${P}.encoder.layers.${i}`, h, p);
    if (opts.taps) g.output(`debug.encoder.layer${i}.out`, h);
  }
  g.output("last_hidden_state", encoder.clipLayerNorm(g, w, h, `${P}.final_layer_norm`, cfg.layerNormEps));
  return g.toBytes();
}

/** Options of {@link ClipTextModel.load}. */
export interface ClipLoadOptions extends ClipGraphOptions, ComponentSessionOptions {}

/** A loaded CLIP text encoder. */
export class ClipTextModel {
  private constructor(readonly cfg: ClipTextConfig, readonly session: Session) {}

  /** Build from a transformers `text_encoder/` folder (config.json + weights). */
  static async load(folder: string, opts: ClipLoadOptions = {}): Promise<ClipTextModel> {
    const { cfg, file, built } = loadComponent(folder, {
      parse: parseClipTextConfig,
      open: validatedWeights(clipTextSpec, IGNORED_CLIP_KEYS),
      build: (cfg, w) => buildClipText(cfg, w, opts),
    });
    return new ClipTextModel(cfg, await componentSession(built, file, opts));
  }

  /** last_hidden_state [B, L, C] for token ids [B, L] (I64 or I32; ids must be < vocab_size). */
  async encode(ids: Tensor<"I64"> | Tensor<"I32">): Promise<Tensor<"F32">> {
    const raw = ids.data as ArrayLike<number | bigint>;
    for (let i = 0; i < raw.length; i++) {
      const n = Number(raw[i]);
      if (!(n >= 0 && n < this.cfg.vocabSize)) {
        throw new RangeError(`clip_text: token id ${n} outside 0..${this.cfg.vocabSize - 1}`);
      }
    }
    const i64: Tensor<"I64"> = ids.dtype === "I64" ? ids as Tensor<"I64"> : {
      dtype: "I64",
      shape: ids.shape,
      data: BigInt64Array.from(ids.data as Int32Array, (x) => BigInt(x)),
    };
    const t0 = performance.now();
    const out = await this.session.run({ input_ids: i64 }, ["last_hidden_state"]);
    evaluations.add("clip_text", ids.shape[0], performance.now() - t0);
    return out.last_hidden_state as Tensor<"F32">;
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
