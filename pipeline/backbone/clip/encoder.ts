/**
 * The transformer encoder both CLIP towers share (transformers `CLIPEncoder`): the config keys that shape it, the
 * parameters and graph of one pre-LN encoder layer, and the checks of `architectures`. Used by the text encoder
 * (`text.ts`, causal mask) and the image encoder (`vision.ts`, no mask).
 * @module
 */
import { fail } from "../../errors.ts";
import type { GraphBuilder } from "../onnx/builder.ts";
import type { ParamSpec, WeightSource } from "../weights/weight_map.ts";
import { linearFrom } from "../blocks/attention.ts";
import { cfgEnum, cfgInt, cfgNum, type JsonConfig } from "../model_files.ts";

/** The encoder part of a CLIPTextConfig / CLIPVisionConfig. */
export interface ClipEncoderConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  layerNormEps: number;
  hiddenAct: "gelu" | "quick_gelu";
}

/** Fail when `architectures` is a list without any of `accepted` (`expected` names it in the message). */
export function expectArchitecture(c: JsonConfig, accepted: readonly string[], expected = accepted[0]): void {
  const arch = c.json.architectures;
  if (Array.isArray(arch) && !arch.some((a) => accepted.includes(a))) {
    fail(c.path, `"architectures" is ${JSON.stringify(arch)}; expected ${expected}`);
  }
}

/**
 * Parse the encoder keys (defaults: the tower's transformers defaults for hidden/intermediate size and heads);
 * hidden_size must split into the heads.
 */
export function parseClipEncoder(
  c: JsonConfig,
  defaults: { hidden: number; intermediate: number; heads: number },
): ClipEncoderConfig {
  const cfg: ClipEncoderConfig = {
    hiddenSize: cfgInt(c, "hidden_size", defaults.hidden),
    intermediateSize: cfgInt(c, "intermediate_size", defaults.intermediate),
    numLayers: cfgInt(c, "num_hidden_layers", 12),
    numHeads: cfgInt(c, "num_attention_heads", defaults.heads),
    layerNormEps: cfgNum(c, "layer_norm_eps", 1e-5),
    hiddenAct: cfgEnum(c, "hidden_act", ["gelu", "quick_gelu"], "quick_gelu"),
  };
  if (cfg.hiddenSize % cfg.numHeads !== 0) {
    fail(c.path, `hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numHeads}`);
  }
  return cfg;
}

/** Parameters of one CLIP encoder layer (transformers names) of width C and MLP width I. */
export function clipEncoderLayerSpec(spec: ParamSpec, prefix: string, C: number, I: number): void {
  for (const p of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
    spec.set(`${prefix}.self_attn.${p}.weight`, [C, C]);
    spec.set(`${prefix}.self_attn.${p}.bias`, [C]);
  }
  for (const n of ["layer_norm1", "layer_norm2"]) {
    spec.set(`${prefix}.${n}.weight`, [C]);
    spec.set(`${prefix}.${n}.bias`, [C]);
  }
  spec.set(`${prefix}.mlp.fc1.weight`, [I, C]);
  spec.set(`${prefix}.mlp.fc1.bias`, [I]);
  spec.set(`${prefix}.mlp.fc2.weight`, [C, I]);
  spec.set(`${prefix}.mlp.fc2.bias`, [C]);
}

/** LayerNorm `${key}` (weight and bias) with the given eps. */
export function clipLayerNorm(g: GraphBuilder, w: WeightSource, x: string, key: string, eps: number): string {
  return g.layerNorm(x, { eps, weight: w.take(`${key}.weight`), bias: w.take(`${key}.bias`) });
}

/** Settings of {@link clipEncoderLayerGraph}. */
export interface ClipLayerParams {
  hidden: number;
  heads: number;
  eps: number;
  act: "gelu" | "quick_gelu";
  /** Attention of the projected q, k, v [B, L, C] (default: multi-head softmax(q·kᵀ/√d)·v, no mask). */
  attend?: (q: string, k: string, v: string) => string;
}

/**
 * One pre-LN CLIP encoder layer on tokens h [B, L, C]: h += out_proj(attn(layer_norm1(h))) (q/k/v with biases);
 * h += fc2(act(fc1(layer_norm2(h)))), act = exact GELU or x·σ(1.702x).
 */
export function clipEncoderLayerGraph(
  g: GraphBuilder,
  w: WeightSource,
  prefix: string,
  h: string,
  p: ClipLayerParams,
): string {
  return g.scope(prefix, () => {
    const ln = (x: string, key: string) => clipLayerNorm(g, w, x, key, p.eps);
    const lin = (x: string, key: string) => linearFrom(g, w, key, x, true);
    const attend = p.attend ??
      ((q, k, v) => g.attention(q, k, v, { heads: p.heads, headDim: p.hidden / p.heads }));
    const x = ln(h, `${prefix}.layer_norm1`);
    const a = attend(
      lin(x, `${prefix}.self_attn.q_proj`),
      lin(x, `${prefix}.self_attn.k_proj`),
      lin(x, `${prefix}.self_attn.v_proj`),
    );
    const r = g.add(h, lin(a, `${prefix}.self_attn.out_proj`));
    let m = lin(ln(r, `${prefix}.layer_norm2`), `${prefix}.mlp.fc1`);
    m = p.act === "gelu" ? g.gelu(m) : g.mul(m, g.op("Sigmoid", [g.mul(m, g.scalar(1.702))]));
    return g.add(r, lin(m, `${prefix}.mlp.fc2`));
  });
}
