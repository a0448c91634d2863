/**
 * diffusers `AutoencoderKLTemporalDecoder` (the SVD VAE) from `vae/config.json` + safetensors, as two ONNX graphs:
 * - encoder: the SD `AutoencoderKL` encoder + quant_conv, built by `vae.ts` (`buildKlEncoder`): image [N,3,H,W] in
 *   [−1,1] → moments [N, 2L, h, w] (frames are independent);
 * - decoder (`TemporalDecoder`, no post_quant_conv): latent [B, F, L, h, w] → image [B, F, 3, H, W]: conv_in, mid
 *   (SpatioTemporalResBlock, single-head attention, SpatioTemporalResBlock), up blocks of SpatioTemporalResBlocks
 *   (AlphaBlender "learned", switched: out = (1 − σ(m))·spatial + σ(m)·temporal), GroupNorm/SiLU/conv_out, then
 *   `time_conv_out` (Conv3d (3,1,1)) across the F frames of each window.
 * The window is what diffusers calls `num_frames` of `decode`: VidSeg decodes one frame at a time (window 1; the
 * temporal convolutions then see a single frame), a diffusers pipeline whole chunks. No scaling happens here
 * except in the {@link Vae} methods `encode` / `decode` (UNet-scaled latents, images in [0, 1]).
 * @module
 */
import { fail } from "../../errors.ts";
import { f32, reshape, type Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import type { Session } from "../runtime.ts";
import { expectPipeline } from "../weights/diffusers.ts";
import type { ParamSpec, WeightSource } from "../weights/weight_map.ts";
import type { EncodeOptions, Vae } from "./autoencoder.ts";
import * as files from "../model_files.ts";
import { temporalConvFrom } from "../blocks/resnet.ts";
import {
  flattenFrames,
  fromVideo,
  spatioTemporalResBlockGraph,
  spatioTemporalResBlockSpec,
  toVideo,
  unflattenFrames,
  type VideoContext,
  videoContext,
} from "../svd/blocks.ts";
import { buildKlEncoder, type KlConfig, KlEncoderDecoder, klSpec, posteriorFromMoments } from "./kl.ts";
import { type BlockContext, vaeAttention, vaeConv, vaeGroupNorm, vaeUpsample } from "./blocks.ts";

/** The parts of an AutoencoderKLTemporalDecoder config that shape the network. */
export interface TemporalVaeConfig extends files.KlChannels {
  /** UNet latent = scalingFactor · VAE latent (SVD: 0.18215). */
  scalingFactor: number;
}

/** Parse and validate `vae/config.json` of an SVD pipeline (UserError naming the file and key). */
export function parseTemporalVaeConfig(c: files.JsonConfig): TemporalVaeConfig {
  files.expectClassName(c, "AutoencoderKLTemporalDecoder");
  const cfg: TemporalVaeConfig = {
    ...files.parseKlChannels(c),
    scalingFactor: files.cfgNum(c, "scaling_factor", 0.18215),
  };
  files.expectBlockTypes(c, "down_block_types", "DownEncoderBlock2D", cfg.blockOutChannels.length);
  files.expectGroupable(c, cfg.blockOutChannels, 32, "the 32 GroupNorm groups");
  return cfg;
}

/** The encoder half as the SD AutoencoderKL config `vae.ts` builds it from. */
export function encoderKlConfig(cfg: TemporalVaeConfig): KlConfig {
  return {
    inChannels: cfg.inChannels,
    outChannels: cfg.outChannels,
    latentChannels: cfg.latentChannels,
    blockOutChannels: cfg.blockOutChannels,
    layersPerBlock: cfg.layersPerBlock,
    normNumGroups: 32,
    midBlockAddAttention: true,
    useQuantConv: true,
    usePostQuantConv: false,
    scalingFactor: cfg.scalingFactor,
    shiftFactor: 0,
  };
}

const EPS = 1e-6; // spatial GroupNorms of the decoder
const TEMPORAL_EPS = 1e-5; // its TemporalResnetBlocks (diffusers temporal_eps)

/** A SpatioTemporalResBlock of the decoder: spec only (ctx.g absent) or graph. */
function videoResnet(
  ctx: BlockContext,
  v: VideoContext | null,
  x: string,
  key: string,
  cin: number,
  cout: number,
): string {
  const d = {
    inCh: cin,
    outCh: cout,
    tembCh: null,
    groups: 32,
    eps: EPS,
    temporalEps: TEMPORAL_EPS,
    switchMix: true,
  };
  if (!ctx.g || !v) {
    spatioTemporalResBlockSpec((k, s) => ctx.spec.set(k, s), key, d);
    return x;
  }
  return spatioTemporalResBlockGraph(ctx.g, ctx.w!, key, d, x, v);
}

function decoderBody(
  ctx: BlockContext,
  v: VideoContext | null,
  z: string,
  cfg: TemporalVaeConfig,
  taps: boolean,
): string {
  const out = (name: string, val: string) => taps && ctx.g && ctx.g.output(name, val);
  const rev = [...cfg.blockOutChannels].reverse();
  let h = vaeConv(ctx, z, "decoder.conv_in", cfg.latentChannels, rev[0], 3);
  // MidBlockTemporalDecoder holds layers_per_block resnets and ONE attention, but runs only resnets[0] and then
  // (attention, resnets[1]) — zip(resnets[1:], attentions). Unused parameters still belong to the spec.
  const mid = "decoder.mid_block", c = rev[0];
  const specOnly: BlockContext = { ...ctx, g: undefined, w: undefined };
  h = videoResnet(ctx, v, h, `${mid}.resnets.0`, c, c);
  if (cfg.layersPerBlock >= 2) {
    h = vaeAttention(ctx, h, `${mid}.attentions.0`, c);
    h = videoResnet(ctx, v, h, `${mid}.resnets.1`, c, c);
  } else vaeAttention(specOnly, h, `${mid}.attentions.0`, c);
  for (let j = 2; j < cfg.layersPerBlock; j++) videoResnet(specOnly, null, h, `${mid}.resnets.${j}`, c, c);
  out("debug.decoder.mid_block.out", h);
  rev.forEach((ch, i) => {
    let cin = i === 0 ? rev[0] : rev[i - 1];
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) {
      h = videoResnet(ctx, v, h, `decoder.up_blocks.${i}.resnets.${j}`, cin, ch);
      cin = ch;
    }
    if (i < rev.length - 1) h = vaeUpsample(ctx, h, `decoder.up_blocks.${i}.upsamplers.0`, ch);
  });
  h = vaeGroupNorm(ctx, h, "decoder.conv_norm_out", rev.at(-1)!);
  h = vaeConv(ctx, ctx.g ? ctx.g.silu(h) : h, "decoder.conv_out", rev.at(-1)!, cfg.outChannels, 3);
  out("debug.decoder.conv_out", h);
  ctx.spec.set("decoder.time_conv_out.weight", [cfg.outChannels, cfg.outChannels, 3, 1, 1]);
  ctx.spec.set("decoder.time_conv_out.bias", [cfg.outChannels]);
  if (!ctx.g || !v) return h;
  return fromVideo(ctx.g, temporalConvFrom(ctx.g, ctx.w!, "decoder.time_conv_out", toVideo(ctx.g, v, h)));
}

/** Expected parameters of the whole AutoencoderKLTemporalDecoder (encoder + quant_conv + temporal decoder). */
export function temporalVaeSpec(cfg: TemporalVaeConfig): ParamSpec {
  const spec: ParamSpec = new Map();
  for (const [k, s] of klSpec(encoderKlConfig(cfg))) {
    if (k.startsWith("encoder.") || k.startsWith("quant_conv.")) spec.set(k, s);
  }
  decoderBody({ spec, p: { groups: 32, eps: EPS } }, null, "", cfg, false);
  return spec;
}

/** Decoder graph: `latent` (unscaled) [B, F, L, h, w] → `image` [B, F, 3, H, W] in [−1, 1] (raw). */
export function buildTemporalDecoder(
  cfg: TemporalVaeConfig,
  w: WeightSource,
  opts: { taps?: boolean } = {},
): Uint8Array {
  const g = new GraphBuilder({ name: "svd_vae_decoder" });
  const ctx: BlockContext = { g, w, spec: new Map(), p: { groups: 32, eps: EPS } };
  const z5 = g.input("latent", "F32", ["batch", "frames", cfg.latentChannels, "height", "width"]);
  const v = videoContext(g, z5);
  const img = decoderBody(ctx, v, flattenFrames(g, z5), cfg, opts.taps ?? false);
  g.output("image", unflattenFrames(g, v, img), "F32", [
    "batch",
    "frames",
    cfg.outChannels,
    "out_height",
    "out_width",
  ]);
  return g.toBytes();
}

/** Options of {@link TemporalVae.load}. */
export interface TemporalVaeLoadOptions extends files.ComponentSessionOptions {
  /** Also output the `debug.*` tensors of conformance-svd `vae_vectors` (encoder and decoder). */
  taps?: boolean;
  /** Encoder frames / decoder windows per session run (default 1: full-resolution activations are large). */
  maxBatch?: number;
}

/** A loaded SVD VAE. Implements the pipeline's {@link Vae} (decode = one frame per window, as VidSeg does). */
export class TemporalVae extends KlEncoderDecoder implements Vae {
  readonly kind = "kl";
  private constructor(readonly cfg: TemporalVaeConfig, encoder: Session, decoder: Session, maxBatch: number) {
    super(encoder, decoder, maxBatch, "svd_vae");
  }

  /** Build from a diffusers SVD folder (uses `vae/`) or a `vae/` component folder. */
  static async load(folder: string, opts: TemporalVaeLoadOptions = {}): Promise<TemporalVae> {
    expectPipeline(folder, "svd", "vae");
    const { cfg, file, built } = files.loadComponent(files.componentDir(folder, "vae"), {
      parse: parseTemporalVaeConfig,
      open: files.validatedWeights(temporalVaeSpec),
      build: (cfg, w) => [
        buildKlEncoder(encoderKlConfig(cfg), w, { taps: opts.taps }),
        buildTemporalDecoder(cfg, w, { taps: opts.taps }),
      ],
    });
    const encoder = await files.componentSession(built[0], `${file} (encoder)`, opts);
    const decoder = await files.componentSession(built[1], `${file} (temporal decoder)`, opts);
    return new TemporalVae(cfg, encoder, decoder, opts.maxBatch ?? 1);
  }

  /**
   * Decode unscaled latents z [N, L, h, w] in temporal windows of `window` consecutive frames (N divisible by it):
   * images [N, 3, H, W] in [−1, 1], not clamped. window 1 = frame by frame (VidSeg).
   */
  async decodeRaw(z: Tensor<"F32">, window = 1): Promise<Tensor<"F32">> {
    const [N, L, h, w] = z.shape;
    if (!(Number.isInteger(window) && window >= 1 && N % window === 0)) {
      fail("svd_vae.decode", `${N} frames cannot be cut into windows of ${window}`);
    }
    const out = await this.runDecoder(reshape(z, [N / window, window, L, h, w]), "latent", "image");
    return reshape(out, [N, ...out.shape.slice(2)]);
  }

  /** images [N, 3, H, W] in [0, 1] → UNet-scaled latents (posterior mean, or mean + std·ε with `posteriorNoise`). */
  async encode(images01: Tensor<"F32">, opts: EncodeOptions = {}): Promise<Tensor<"F32">> {
    const post = posteriorFromMoments(await this.encodeMoments(affine(images01, 2, -1)));
    const s = this.cfg.scalingFactor, eps = opts.posteriorNoise;
    if (eps && eps.shape.join() !== post.mean.shape.join()) {
      throw new Error(`svd_vae: posterior noise [${eps.shape}] vs latent [${post.mean.shape}]`);
    }
    const out = new Float32Array(post.mean.data.length);
    for (let i = 0; i < out.length; i++) {
      out[i] = s * (post.mean.data[i] + (eps ? post.std.data[i] * eps.data[i] : 0));
    }
    return f32(post.mean.shape, out);
  }

  /** UNet-scaled latents → images [N, 3, H, W] nominally in [0, 1] (not clamped), decoded frame by frame. */
  async decode(latents: Tensor<"F32">): Promise<Tensor<"F32">> {
    return affine(await this.decodeRaw(affine(latents, 1 / this.cfg.scalingFactor, 0), 1), 0.5, 0.5);
  }
}

/** y = a·x + b elementwise (new tensor). */
function affine(x: Tensor<"F32">, a: number, b: number): Tensor<"F32"> {
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a * x.data[i] + b;
  return f32(x.shape, out);
}
