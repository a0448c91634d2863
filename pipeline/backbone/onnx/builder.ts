/**
 * GraphBuilder: build ONNX graphs from TypeScript with typed helpers for the layers of diffusers models.
 * Weights are plain project Tensors ({dtype, shape, data}) in PyTorch layout; the helpers convert them
 * (e.g. Linear weights are pre-transposed to [in, out] for MatMul).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "../onnx/builder.ts";
 * import { createSession } from "../runtime.ts";
 * import { f32 } from "../../tensor/tensor.ts";
 *
 * const g = new GraphBuilder({ name: "tiny" });                 // opts: dtype "F16", externalData {...}
 * const x = g.toCompute(g.input("x", "F32", ["batch", 8, "h", "w"]));   // strings = dynamic dims
 * let h = g.conv2d(x, { weight: w.get("conv.weight"), bias: w.get("conv.bias"), padding: 1 });
 * h = g.silu(g.groupNorm(h, { groups: 4, eps: 1e-6, weight: gamma, bias: beta }));
 * // tokens [B, h·w, C] for attention:
 * const tok = g.transpose(g.reshape(h, [0, 0, -1]), [0, 2, 1]);
 * const q = g.linear(tok, { weight: wq }), k = g.linear(tok, { weight: wk }), v = g.linear(tok, { weight: wv });
 * const a = g.attention(q, k, v, { heads: 1, headDim: 8 });
 * g.output("y", g.toF32(a), "F32", ["batch", "tokens", 8]);
 * const session = await createSession({ bytes: g.toBytes() });          // or write .onnx and pass { path }
 * const { y } = await session.run({ x: f32([1, 8, 4, 4], data) });     // project Tensors in and out
 * ```
 * Large models: pass `externalData: { path: "/abs/m.onnx.data", location: "m.onnx.data" }`, write
 * `g.toModel()` to `/abs/m.onnx` (see `writeModel` in ./io.ts) and create the session from that path —
 * or let `cachedGraph()` in ./cache.ts do all of that (hash-keyed, atomic, external data above 1.8 GB).
 * `attention` uses onnxruntime's fused com.microsoft MultiHeadAttention unless `{ attention: "matmul" }`.
 * @module
 */
import { type Tensor } from "../../tensor/tensor.ts";
import { floatAttr, GraphCore } from "./graph.ts";
import { flatten } from "./proto.ts";

/** Weights of a 2-D convolution, PyTorch layout [out, in, kh, kw]. */
export interface ConvParams {
  weight: Tensor;
  bias?: Tensor;
  stride?: number;
  padding?: number;
}

/** Weights of a Linear layer, PyTorch layout [out, in]. */
export interface LinearParams {
  weight: Tensor;
  bias?: Tensor;
}

/** Affine normalisation parameters. */
export interface NormParams {
  eps: number;
  weight?: Tensor;
  bias?: Tensor;
}

/** Transpose a 2-D float tensor (PyTorch Linear [out, in] → MatMul [in, out]). */
export function transpose2d(t: Tensor): Tensor {
  if (t.shape.length !== 2) throw new Error(`transpose2d: expected a 2-D tensor, got [${t.shape}]`);
  const [r, c] = t.shape;
  const src = t.data as Float32Array | Uint16Array;
  const out = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(r * c);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  }
  return { dtype: t.dtype, shape: [c, r], data: out } as Tensor;
}

/** The graph builder: GraphCore bookkeeping plus neural-network layer helpers. */
export class GraphBuilder extends GraphCore {
  /** 2-D convolution, NCHW, square kernel/stride/padding. */
  conv2d(x: string, p: ConvParams): string {
    const [, , kh, kw] = p.weight.shape;
    const pad = p.padding ?? 0, s = p.stride ?? 1;
    const ins = [x, this.initializer(p.weight, "conv.weight")];
    if (p.bias) ins.push(this.initializer(p.bias, "conv.bias"));
    return this.op("Conv", ins, {
      kernel_shape: [kh, kw],
      pads: [pad, pad, pad, pad],
      strides: [s, s],
      dilations: [1, 1],
      group: 1,
    }, "conv");
  }

  /**
   * GroupNorm with PyTorch semantics on [B, C, ...] (rank ≥ 3): statistics over each group of C/groups
   * channels × all spatial positions, biased variance, then per-channel affine. Formulated as
   * reshape → InstanceNormalization (unit scale) → reshape back, which matches PyTorch exactly
   * (ONNX GroupNormalization-18 has per-group affine, which is not PyTorch's).
   */
  groupNorm(x: string, p: NormParams & { groups: number; rank?: number }): string {
    const rank = p.rank ?? 4;
    const g = p.groups;
    const grouped = this.reshape(x, [0, g, -1]);
    const normed = this.op(
      "InstanceNormalization",
      [
        grouped,
        this.constant(new Float32Array(g).fill(1)),
        this.constant(new Float32Array(g)),
      ],
      { epsilon: floatAttr(p.eps) },
      "groupnorm",
    );
    let y = this.reshapeTo(normed, this.shape(x));
    const bshape = [-1, ...new Array(rank - 2).fill(1)];
    if (p.weight) y = this.mul(y, this.initializer(reshapeT(p.weight, bshape), "norm.weight"));
    if (p.bias) y = this.add(y, this.initializer(reshapeT(p.bias, bshape), "norm.bias"));
    return y;
  }

  /** LayerNorm over the last axis (ONNX LayerNormalization, opset 17). */
  layerNorm(x: string, p: NormParams): string {
    if (!p.weight) throw new Error("layerNorm: weight required");
    const ins = [x, this.initializer(p.weight, "ln.weight")];
    if (p.bias) ins.push(this.initializer(p.bias, "ln.bias"));
    return this.op("LayerNormalization", ins, { axis: -1, epsilon: floatAttr(p.eps) }, "layernorm");
  }

  /** Linear layer on the last axis: x·Wᵀ + b with W in PyTorch layout [out, in]. */
  linear(x: string, p: LinearParams, hint = "linear"): string {
    const y = this.matmul(x, this.initializer(transpose2d(p.weight), `${hint}.weight`));
    return p.bias ? this.add(y, this.initializer(p.bias, `${hint}.bias`)) : y;
  }

  /** x·sigmoid(x). */
  silu(x: string): string {
    return this.mul(x, this.op("Sigmoid", [x]));
  }

  /** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
  gelu(x: string): string {
    const e = this.op("Erf", [this.mul(x, this.scalar(Math.SQRT1_2))]);
    return this.mul(this.mul(x, this.scalar(0.5)), this.add(e, this.scalar(1)));
  }

  /** GEGLU: proj → split in (hidden, gate) along the last axis → hidden·gelu(gate). */
  geglu(x: string, proj: LinearParams): string {
    const [hidden, gate] = this.split(this.linear(x, proj, "geglu.proj"), 2, -1);
    return this.mul(hidden, this.gelu(gate));
  }

  /** Softmax along `axis` (default last). */
  softmax(x: string, axis = -1): string {
    return this.op("Softmax", [x], { axis });
  }

  /**
   * Multi-head scaled dot-product attention on token layout: q [B, N, H·d], k/v [B, M, H·d] → [B, N, H·d].
   * Head n uses channels n·d..n·d+d−1 (diffusers head_to_batch_dim). Scores = (q·kᵀ)·scale, softmax
   * over keys, ·v, heads merged back.
   */
  attention(q: string, k: string, v: string, p: { heads: number; headDim: number; scale?: number }): string {
    const { heads, headDim } = p;
    if (this.attentionImpl === "mha") {
      return this.opN(
        "MultiHeadAttention",
        [q, k, v],
        1,
        {
          num_heads: heads,
          scale: floatAttr(p.scale ?? 1 / Math.sqrt(headDim)),
        },
        "mha",
        "com.microsoft",
      )[0];
    }
    const split = (t: string, perm: number[]) =>
      this.transpose(this.reshape(t, [0, 0, heads, headDim]), perm);
    const qh = split(q, [0, 2, 1, 3]); // [B, H, N, d]
    const kt = split(k, [0, 2, 3, 1]); // [B, H, d, M]
    const vh = split(v, [0, 2, 1, 3]); // [B, H, M, d]
    const scores = this.mul(this.matmul(qh, kt), this.scalar(p.scale ?? 1 / Math.sqrt(headDim)));
    const out = this.matmul(this.softmax(scores, -1), vh); // [B, H, N, d]
    return this.reshape(this.transpose(out, [0, 2, 1, 3]), [0, 0, heads * headDim]);
  }

  /** Nearest-neighbour ×2 upsampling of NCHW (each pixel repeated 2×2, as torch interpolate nearest). */
  upsampleNearest2x(x: string): string {
    return this.op("Resize", [x, "", this.constantF32([1, 1, 2, 2])], {
      mode: "nearest",
      coordinate_transformation_mode: "asymmetric",
      nearest_mode: "floor",
    }, "upsample");
  }

  /**
   * Sinusoidal timestep features of diffusers `Timesteps`: t [B] (float32) → [B, dim].
   * freq_j = exp(−ln(maxPeriod)·j / (dim/2 − freqShift)), computed with float32 rounding at each step as
   * torch does; output [sin | cos], or [cos | sin] when `flipSinToCos`. Computed in float32, then cast.
   */
  timestepEmbedding(
    t: string,
    p: { dim: number; flipSinToCos: boolean; freqShift: number; maxPeriod?: number; scale?: number },
  ): string {
    const half = Math.floor(p.dim / 2);
    if (half * 2 !== p.dim) throw new Error(`timestepEmbedding: odd dim ${p.dim} is not supported`);
    const f = Math.fround;
    const negLog = f(-Math.log(p.maxPeriod ?? 10000));
    const denom = f(half - p.freqShift);
    const freqs = new Float32Array(half);
    for (let j = 0; j < half; j++) freqs[j] = f(Math.exp(f(f(negLog * j) / denom)));
    const tf = this.op("Unsqueeze", [t, this.i64([1])]); // [B, 1]
    let arg = this.mul(tf, this.constantF32(freqs, [1, half]));
    if (p.scale !== undefined && p.scale !== 1) arg = this.mul(arg, this.constantF32([p.scale], []));
    const sin = this.op("Sin", [arg]), cos = this.op("Cos", [arg]);
    return this.toCompute(this.concat(p.flipSinToCos ? [cos, sin] : [sin, cos], -1));
  }

  /** Encode to one byte buffer (small models; use ./io.ts writeModel for big ones). */
  toBytes(docString?: string): Uint8Array {
    return flatten(this.toModel(docString));
  }
}

function reshapeT(t: Tensor, shape: number[]): Tensor {
  const n = t.data.length;
  const s = shape.map((d) => (d === -1 ? n / shape.filter((x) => x !== -1).reduce((a, b) => a * b, 1) : d));
  return { dtype: t.dtype, shape: s, data: t.data } as Tensor;
}
