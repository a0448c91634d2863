/**
 * transformers `CLIPTextModel` (the SD text encoder) from `text_encoder/config.json` + safetensors, as an ONNX
 * graph: `input_ids` [B, L] (int64) → `last_hidden_state` [B, L, C] = final_layer_norm(last layer output).
 * Pre-LN blocks: x += out_proj(attn(layer_norm1(x))) with a causal mask; x += fc2(act(fc1(layer_norm2(x)))),
 * act = exact GELU ("gelu", SD 2.x) or x·σ(1.702x) ("quick_gelu", SD 1.x). No attention mask other than the
 * causal one (as SD pipelines call it). A stored `position_ids` buffer is ignored (positions are 0..L−1).
 * @module
 */
import * as path from "node:path";
import { fail } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import { createSession, evaluations, type Provider, type Session } from "../runtime.ts";
import { type ParamSpec, SafetensorsWeights, type WeightSource } from "../weights/weight_map.ts";
import { cfgEnum, cfgInt, cfgNum, findWeightsFile, type JsonConfig, readJsonConfig } from "./model_files.ts";

/** The parts of a CLIPTextConfig that shape the network. */
export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  layerNormEps: number;
  hiddenAct: "gelu" | "quick_gelu";
}

/** Parse and validate `text_encoder/config.json`. */
export function parseClipTextConfig(c: JsonConfig): ClipTextConfig {
  const arch = c.json.architectures;
  if (
    Array.isArray(arch) && !arch.some((a) => a === "CLIPTextModel" || a === "CLIPTextModelWithProjection")
  ) {
    fail(c.path, `"architectures" is ${JSON.stringify(arch)}; expected CLIPTextModel`);
  }
  const cfg: ClipTextConfig = {
    vocabSize: cfgInt(c, "vocab_size", 49408),
    hiddenSize: cfgInt(c, "hidden_size", 512),
    intermediateSize: cfgInt(c, "intermediate_size", 2048),
    numLayers: cfgInt(c, "num_hidden_layers", 12),
    numHeads: cfgInt(c, "num_attention_heads", 8),
    maxPositions: cfgInt(c, "max_position_embeddings", 77),
    layerNormEps: cfgNum(c, "layer_norm_eps", 1e-5),
    hiddenAct: cfgEnum(c, "hidden_act", ["gelu", "quick_gelu"], "quick_gelu"),
  };
  if (cfg.hiddenSize % cfg.numHeads !== 0) {
    fail(c.path, `hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numHeads}`);
  }
  return cfg;
}

const P = "text_model";

/** Expected parameters (transformers names) → shapes. */
export function clipTextSpec(cfg: ClipTextConfig): ParamSpec {
  const C = cfg.hiddenSize, I = cfg.intermediateSize;
  const s: ParamSpec = new Map();
  s.set(`${P}.embeddings.token_embedding.weight`, [cfg.vocabSize, C]);
  s.set(`${P}.embeddings.position_embedding.weight`, [cfg.maxPositions, C]);
  for (let i = 0; i < cfg.numLayers; i++) {
    const l = `${P}.encoder.layers.${i}`;
    for (const p of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      s.set(`${l}.self_attn.${p}.weight`, [C, C]);
      s.set(`${l}.self_attn.${p}.bias`, [C]);
    }
    for (const n of ["layer_norm1", "layer_norm2"]) {
      s.set(`${l}.${n}.weight`, [C]);
      s.set(`${l}.${n}.bias`, [C]);
    }
    s.set(`${l}.mlp.fc1.weight`, [I, C]);
    s.set(`${l}.mlp.fc1.bias`, [I]);
    s.set(`${l}.mlp.fc2.weight`, [C, I]);
    s.set(`${l}.mlp.fc2.bias`, [C]);
  }
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
  const ln = (x: string, key: string) =>
    g.layerNorm(x, { eps: cfg.layerNormEps, weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) });
  const lin = (x: string, key: string) =>
    g.linear(x, { weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) }, key.split(".").at(-1));
  const heads4 = (t: string, perm: number[]) => g.transpose(g.reshape(t, [0, 0, heads, d]), perm);
  for (let i = 0; i < cfg.numLayers; i++) {
    const l = `${P}.encoder.layers.${i}`;
    h = g.scope(`layers.${i}`, () => {
      const x = ln(h, `${l}.layer_norm1`);
      const q = heads4(lin(x, `${l}.self_attn.q_proj`), [0, 2, 1, 3]); // [B, H, L, d]
      const kT = heads4(lin(x, `${l}.self_attn.k_proj`), [0, 2, 3, 1]); // [B, H, d, L]
      const v = heads4(lin(x, `${l}.self_attn.v_proj`), [0, 2, 1, 3]);
      const scores = g.add(g.mul(g.matmul(q, kT), g.scalar(d ** -0.5)), mask);
      const a = g.reshape(g.transpose(g.matmul(g.softmax(scores, -1), v), [0, 2, 1, 3]), [0, 0, C]);
      const r = g.add(h, lin(a, `${l}.self_attn.out_proj`));
      let m = lin(ln(r, `${l}.layer_norm2`), `${l}.mlp.fc1`);
      m = cfg.hiddenAct === "gelu" ? g.gelu(m) : g.mul(m, g.op("Sigmoid", [g.mul(m, g.scalar(1.702))]));
      return g.add(r, lin(m, `${l}.mlp.fc2`));
    });
    if (opts.taps) g.output(`debug.encoder.layer${i}.out`, h);
  }
  g.output("last_hidden_state", ln(h, `${P}.final_layer_norm`));
  return g.toBytes();
}

/** Options of {@link ClipTextModel.load}. */
export interface ClipLoadOptions extends ClipGraphOptions {
  provider?: Provider;
  threads?: number;
}

/** A loaded CLIP text encoder. */
export class ClipTextModel {
  private constructor(readonly cfg: ClipTextConfig, readonly session: Session) {}

  /** Build from a transformers `text_encoder/` folder (config.json + weights). */
  static async load(folder: string, opts: ClipLoadOptions = {}): Promise<ClipTextModel> {
    const configPath = path.join(folder, "config.json");
    const cfg = parseClipTextConfig(readJsonConfig(configPath));
    const file = findWeightsFile(folder);
    const w = new SafetensorsWeights(file);
    let bytes: Uint8Array;
    try {
      w.validate(clipTextSpec(cfg), { configPath, ignore: IGNORED_CLIP_KEYS });
      bytes = buildClipText(cfg, w, opts);
    } finally {
      w.close();
    }
    return new ClipTextModel(
      cfg,
      await createSession({ bytes }, { provider: opts.provider, threads: opts.threads, label: file }),
    );
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
