/**
 * transformers `CLIPVisionModelWithProjection` (SVD's `image_encoder/`, OpenCLIP ViT-H/14 converted) as an ONNX
 * graph: `pixel_values` [B, 3, S, S] (already CLIP-normalised, S = image_size) → `image_embeds` [B, projection_dim].
 * Patch embedding (Conv2d, kernel = stride = patch_size, no bias; tokens row-major), class token first, learned
 * position embeddings, pre_layrnorm, pre-LN encoder layers (no mask), post_layernorm of the class token,
 * visual_projection (no bias). The encoder layer builder is the generic CLIP one ({@link clipEncoderLayerGraph}),
 * usable for the text encoder too.
 *
 * Not covered by the conformance set: tested only against an independent plain-JS forward of a tiny random
 * model (tests/backbone/svd_clip_vision_test.ts). The resize of a frame to S×S (sgm: bicubic with antialias) is
 * the caller's; {@link clipNormalize} applies the CLIP mean/std to [0, 1] pixels.
 * @module
 */
import { fail } from "../../errors.ts";
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import { evaluations, type Session } from "../runtime.ts";
import { expectPipeline } from "../weights/diffusers.ts";
import type { ParamSpec, WeightSource } from "../weights/weight_map.ts";
import { linearFrom } from "../blocks/attention.ts";
import {
  type ClipEncoderConfig,
  clipEncoderLayerGraph,
  clipEncoderLayerSpec,
  clipLayerNorm,
  expectArchitecture,
  parseClipEncoder,
} from "./encoder.ts";
import * as files from "../model_files.ts";

export { clipEncoderLayerGraph, clipEncoderLayerSpec } from "./encoder.ts";

/** The parts of a CLIPVisionConfig that shape the network. */
export interface ClipVisionConfig extends ClipEncoderConfig {
  imageSize: number;
  patchSize: number;
  numChannels: number;
  projectionDim: number;
}

/** Parse and validate `image_encoder/config.json`. */
export function parseClipVisionConfig(c: files.JsonConfig): ClipVisionConfig {
  expectArchitecture(c, ["CLIPVisionModelWithProjection"]);
  const cfg: ClipVisionConfig = {
    ...parseClipEncoder(c, { hidden: 768, intermediate: 3072, heads: 12 }),
    imageSize: files.cfgInt(c, "image_size", 224),
    patchSize: files.cfgInt(c, "patch_size", 32),
    numChannels: files.cfgInt(c, "num_channels", 3),
    projectionDim: files.cfgInt(c, "projection_dim", 512),
  };
  if (cfg.imageSize % cfg.patchSize !== 0) {
    fail(c.path, `image_size ${cfg.imageSize} is not a multiple of patch_size ${cfg.patchSize}`);
  }
  return cfg;
}

const P = "vision_model";

/** Expected parameters of CLIPVisionModelWithProjection. */
export function clipVisionSpec(cfg: ClipVisionConfig): ParamSpec {
  const C = cfg.hiddenSize, n = (cfg.imageSize / cfg.patchSize) ** 2;
  const s: ParamSpec = new Map();
  s.set(`${P}.embeddings.class_embedding`, [C]);
  s.set(`${P}.embeddings.patch_embedding.weight`, [C, cfg.numChannels, cfg.patchSize, cfg.patchSize]);
  s.set(`${P}.embeddings.position_embedding.weight`, [n + 1, C]);
  for (const ln of ["pre_layrnorm", "post_layernorm"]) {
    s.set(`${P}.${ln}.weight`, [C]);
    s.set(`${P}.${ln}.bias`, [C]);
  }
  for (let i = 0; i < cfg.numLayers; i++) {
    clipEncoderLayerSpec(s, `${P}.encoder.layers.${i}`, C, cfg.intermediateSize);
  }
  s.set("visual_projection.weight", [cfg.projectionDim, C]);
  return s;
}

/** Keys a vision checkpoint may carry that the embedding never reads. */
export const IGNORED_CLIP_VISION_KEYS = (k: string) => k === `${P}.embeddings.position_ids`;

/** The image-encoder graph (weights validated by the caller against {@link clipVisionSpec}). */
export function buildClipVision(cfg: ClipVisionConfig, w: WeightSource): Uint8Array {
  const g = new GraphBuilder({ name: "clip_vision" });
  const C = cfg.hiddenSize, S = cfg.imageSize;
  const px = g.input("pixel_values", "F32", ["batch", cfg.numChannels, S, S]);
  const patches = g.conv2d(px, {
    weight: w.take(`${P}.embeddings.patch_embedding.weight`),
    stride: cfg.patchSize,
  });
  const tokens = g.transpose(g.reshape(patches, [0, C, -1]), [0, 2, 1]); // [B, n, C], n = row·grid + col
  const cls = g.op("Expand", [
    g.reshape(g.initializer(w.take(`${P}.embeddings.class_embedding`), "class_embedding"), [1, 1, C]),
    g.concat([g.op("Shape", [px], { start: 0, end: 1 }), g.i64([1, C])], 0),
  ]);
  let h = g.add(
    g.concat([cls, tokens], 1),
    g.initializer(w.take(`${P}.embeddings.position_embedding.weight`), "position_embedding"),
  );
  const ln = (x: string, key: string) => clipLayerNorm(g, w, x, key, cfg.layerNormEps);
  h = ln(h, `${P}.pre_layrnorm`);
  const p = { hidden: C, heads: cfg.numHeads, eps: cfg.layerNormEps, act: cfg.hiddenAct };
  for (let i = 0; i < cfg.numLayers; i++) h = clipEncoderLayerGraph(g, w, `${P}.encoder.layers.${i}`, h, p);
  const pooled = ln(g.op("Gather", [h, g.i64([0], [])], { axis: 1 }), `${P}.post_layernorm`); // class token
  g.output("image_embeds", linearFrom(g, w, "visual_projection", pooled));
  return g.toBytes();
}

/** OpenAI CLIP pixel statistics (CLIPImageProcessor and sgm's OpenCLIP embedder). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
/** See {@link CLIP_MEAN}. */
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** (x − mean_c)/std_c for RGB images [B, 3, H, W] in [0, 1]. */
export function clipNormalize(images01: Tensor<"F32">): Tensor<"F32"> {
  const [B, Cc, H, W] = images01.shape, plane = H * W;
  if (Cc !== 3) throw new Error(`clipNormalize: expected RGB [B, 3, H, W], got [${images01.shape}]`);
  const out = new Float32Array(images01.data.length);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < 3; c++) {
      const o = (b * 3 + c) * plane, m = CLIP_MEAN[c], s = CLIP_STD[c];
      for (let i = 0; i < plane; i++) out[o + i] = (images01.data[o + i] - m) / s;
    }
  }
  return f32(images01.shape, out);
}

/** Options of {@link ClipVisionModel.load}. */
export interface ClipVisionLoadOptions extends files.ComponentSessionOptions {}

/** A loaded CLIP image encoder. */
export class ClipVisionModel {
  private constructor(readonly cfg: ClipVisionConfig, readonly session: Session) {}

  /** Build from an SVD pipeline folder (uses `image_encoder/`) or the `image_encoder/` folder itself. */
  static async load(folder: string, opts: ClipVisionLoadOptions = {}): Promise<ClipVisionModel> {
    expectPipeline(folder, "svd", "image_encoder");
    const { cfg, file, built } = files.loadComponent(files.componentDir(folder, "image_encoder"), {
      parse: parseClipVisionConfig,
      open: files.validatedWeights(clipVisionSpec, IGNORED_CLIP_VISION_KEYS),
      build: buildClipVision,
    });
    return new ClipVisionModel(cfg, await files.componentSession(built, file, opts));
  }

  /** image_embeds [B, projection_dim] for CLIP-normalised pixels [B, 3, S, S]. */
  async embed(pixelValues: Tensor<"F32">): Promise<Tensor<"F32">> {
    const s = pixelValues.shape, S = this.cfg.imageSize;
    if (s.length !== 4 || s[1] !== this.cfg.numChannels || s[2] !== S || s[3] !== S) {
      fail("clip_vision.embed", `pixel_values must be [B, ${this.cfg.numChannels}, ${S}, ${S}], got [${s}]`);
    }
    const t0 = performance.now();
    const out = await this.session.run({ pixel_values: pixelValues }, ["image_embeds"]);
    evaluations.add("clip_vision", s[0], performance.now() - t0);
    return out.image_embeds as Tensor<"F32">;
  }

  /** The SVD UNet context [B, 1, projection_dim] for [0, 1] images already resized to S×S. */
  async svdContext(images01: Tensor<"F32">): Promise<Tensor<"F32">> {
    const e = await this.embed(clipNormalize(images01));
    return f32([e.shape[0], 1, e.shape[1]], e.data);
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
