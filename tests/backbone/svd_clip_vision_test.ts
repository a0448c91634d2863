/**
 * CLIPVisionModelWithProjection (SVD image encoder). The conformance set has no image encoder, so the graph is
 * checked against an independent plain-JS forward (loops, no ONNX) of a tiny random model written from the
 * transformers layout: patch conv, class token first, position embeddings, pre-LN layers, class-token
 * post-LN, projection. Plus config/weight errors.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  clipNormalize,
  type ClipVisionConfig,
  ClipVisionModel,
  clipVisionSpec,
} from "../../pipeline/backbone/clip/vision.ts";
import { gaussianNoise } from "../../pipeline/backbone/sampler/noise.ts";
import { UserError } from "../../pipeline/errors.ts";
import { encodeSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { f32, maxAbs, maxAbsDiff, type Tensor } from "../../pipeline/tensor/tensor.ts";
import { assertEquals, assertLess, assertRejects } from "../assert.ts";

const CONFIG = {
  architectures: ["CLIPVisionModelWithProjection"],
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  image_size: 8,
  patch_size: 4,
  num_channels: 3,
  projection_dim: 6,
  layer_norm_eps: 1e-5,
  hidden_act: "gelu",
};
const CFG: ClipVisionConfig = {
  hiddenSize: 8,
  intermediateSize: 16,
  numLayers: 2,
  numHeads: 2,
  imageSize: 8,
  patchSize: 4,
  numChannels: 3,
  projectionDim: 6,
  layerNormEps: 1e-5,
  hiddenAct: "gelu",
};

/** Random weights for every key of the spec (norm weights around 1). */
function weights(): Record<string, Tensor<"F32">> {
  const out: Record<string, Tensor<"F32">> = {};
  let seed = 10;
  for (const [k, shape] of clipVisionSpec(CFG)) {
    const t = gaussianNoise(seed++, shape);
    const norm = /norm/.test(k) && k.endsWith(".weight");
    out[k] = f32(shape, t.data.map((v) => (norm ? 1 + 0.1 * v : 0.5 * v)));
  }
  return out;
}

/** erf, Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const y = 1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-a * a);
  return s * y;
}

/** Plain-JS forward of one image [3, S, S] → image_embeds [proj]. */
function reference(W: Record<string, Tensor<"F32">>, img: Float32Array): number[] {
  const C = CFG.hiddenSize, S = CFG.imageSize, p = CFG.patchSize, g = S / p, L = g * g + 1, H = CFG.numHeads;
  const d = C / H;
  const get = (k: string) => W[k].data;
  const lin = (x: number[], k: string, bias = true) => {
    const w = get(`${k}.weight`), o = W[`${k}.weight`].shape[0], n = x.length;
    return Array.from({ length: o }, (_, j) => {
      let s = bias ? get(`${k}.bias`)[j] : 0;
      for (let i = 0; i < n; i++) s += w[j * n + i] * x[i];
      return s;
    });
  };
  const ln = (x: number[], k: string) => {
    const m = x.reduce((a, b) => a + b) / x.length;
    const v = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
    return x.map((y, i) =>
      ((y - m) / Math.sqrt(v + CFG.layerNormEps)) * get(`${k}.weight`)[i] + get(`${k}.bias`)[i]
    );
  };
  const pw = get("vision_model.embeddings.patch_embedding.weight"),
    pos = get("vision_model.embeddings.position_embedding.weight");
  let h: number[][] = [Array.from(get("vision_model.embeddings.class_embedding"))];
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      h.push(Array.from({ length: C }, (_, o) => {
        let s = 0;
        for (let ch = 0; ch < 3; ch++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) {
              s += pw[((o * 3 + ch) * p + ky) * p + kx] * img[(ch * S + r * p + ky) * S + c * p + kx];
            }
          }
        }
        return s;
      }));
    }
  }
  h = h.map((t, i) => ln(t.map((v, j) => v + pos[i * C + j]), "vision_model.pre_layrnorm"));
  for (let l = 0; l < CFG.numLayers; l++) {
    const pre = `vision_model.encoder.layers.${l}`;
    const x = h.map((t) => ln(t, `${pre}.layer_norm1`));
    const q = x.map((t) => lin(t, `${pre}.self_attn.q_proj`)),
      k = x.map((t) => lin(t, `${pre}.self_attn.k_proj`));
    const v = x.map((t) => lin(t, `${pre}.self_attn.v_proj`));
    const att = h.map((_, i) => {
      const o = new Array(C).fill(0);
      for (let hd = 0; hd < H; hd++) {
        const sc = Array.from({ length: L }, (_, j) => {
          let s = 0;
          for (let e = 0; e < d; e++) s += q[i][hd * d + e] * k[j][hd * d + e];
          return s / Math.sqrt(d);
        });
        const mx = Math.max(...sc), ex = sc.map((s) => Math.exp(s - mx)), z = ex.reduce((a, b) => a + b);
        for (let j = 0; j < L; j++) {
          for (let e = 0; e < d; e++) o[hd * d + e] += (ex[j] / z) * v[j][hd * d + e];
        }
      }
      return o;
    });
    h = h.map((t, i) => lin(att[i], `${pre}.self_attn.out_proj`).map((y, j) => y + t[j]));
    h = h.map((t) => {
      const m = lin(ln(t, `${pre}.layer_norm2`), `${pre}.mlp.fc1`).map((y) =>
        0.5 * y * (1 + erf(y / Math.SQRT2))
      );
      return lin(m, `${pre}.mlp.fc2`).map((y, j) => y + t[j]);
    });
  }
  return lin(ln(h[0], "vision_model.post_layernorm"), "visual_projection", false);
}

function fixture(tensors: Record<string, Tensor>, config: unknown = CONFIG): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-clipvision-"));
  fs.mkdirSync(path.join(root, "image_encoder"));
  fs.writeFileSync(path.join(root, "image_encoder", "config.json"), JSON.stringify(config));
  fs.writeFileSync(path.join(root, "image_encoder", "model.safetensors"), encodeSafetensors(tensors));
  return root;
}

Deno.test("CLIP image encoder matches a plain-JS forward of a tiny random model (two images)", async () => {
  const W = weights();
  const root = fixture({ ...W, "vision_model.embeddings.position_ids": f32([1, 5]) });
  try {
    const m = await ClipVisionModel.load(root);
    const images01 = f32([2, 3, 8, 8], gaussianNoise(99, [2, 3, 8, 8]).data.map((v) => 0.5 + 0.2 * v));
    const px = clipNormalize(images01);
    const got = await m.embed(px);
    assertEquals(got.shape, [2, 6]);
    const ref = new Float32Array(12);
    for (let b = 0; b < 2; b++) ref.set(reference(W, px.data.subarray(b * 192, (b + 1) * 192)), b * 6);
    const d = maxAbsDiff(got, f32([2, 6], ref));
    assertLess(d, 1e-4 * Math.max(1, maxAbs(f32([2, 6], ref))), `max|diff| ${d}`);
    console.log(
      `image_embeds max|diff| vs plain-JS forward: ${d.toExponential(2)} (max|ref| ${
        maxAbs(f32([2, 6], ref)).toFixed(3)
      })`,
    );
    const ctx = await m.svdContext(images01);
    assertEquals(ctx.shape, [2, 1, 6]);
    assertEquals(maxAbsDiff(f32([2, 6], ctx.data), got), 0);
    // normalisation: (x − mean)/std per channel
    assertLess(Math.abs(px.data[64] - (images01.data[64] - 0.4578275) / 0.26130258), 1e-6);
    await m.release();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

Deno.test("CLIP image encoder: wrong shapes, wrong architecture and wrong input are one UserError line", async () => {
  const W = weights();
  const bad = fixture({ ...W, "visual_projection.weight": f32([5, 8]) });
  const arch = fixture(W, { ...CONFIG, architectures: ["CLIPTextModel"] });
  const good = fixture(W);
  try {
    await assertRejects(
      () => ClipVisionModel.load(bad),
      UserError,
      'tensor "visual_projection.weight" has shape [5, 8]',
    );
    await assertRejects(
      () => ClipVisionModel.load(arch),
      UserError,
      "expected CLIPVisionModelWithProjection",
    );
    const m = await ClipVisionModel.load(good);
    await assertRejects(() => m.embed(f32([1, 3, 4, 4])), UserError, "pixel_values must be [B, 3, 8, 8]");
    await m.release();
  } finally {
    for (const r of [bad, arch, good]) fs.rmSync(r, { recursive: true, force: true });
  }
});
