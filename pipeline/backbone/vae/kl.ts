/**
 * diffusers `AutoencoderKL` (the SD VAE) from `vae/config.json` + safetensors, as two ONNX graphs:
 * - encoder: image [B,3,H,W] in [−1,1] → `moments` [B,2L,H/8,W/8] = quant_conv(encoder(x)) = [mean | logvar];
 * - decoder: unscaled latent z [B,L,h,w] → image in [−1,1] (raw) = decoder(post_quant_conv(z)).
 * The scaling factor is NOT applied here: {@link AutoencoderKL.encodeMean} / {@link AutoencoderKL.decodeRaw} work
 * in the VAE's own latent space; the caller-facing wrapper in `autoencoder.ts` scales.
 * Attention weights are accepted under current (`to_q/to_k/to_v/to_out.0`) and legacy (`query/key/value/proj_attn`)
 * names, as Linear [C,C] or conv-shaped [C,C,1,1].
 * @module
 */
import { fail } from "../../errors.ts";
import { f32, type Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import type { Session } from "../runtime.ts";
import { type ParamSpec, SafetensorsWeights, type WeightSource } from "../weights/weight_map.ts";
import * as files from "../model_files.ts";
import {
  type BlockContext,
  vaeAttention,
  vaeConv,
  vaeDownsample,
  vaeGroupNorm,
  vaeResnet,
  vaeUpsample,
} from "./blocks.ts";

/** The parts of a diffusers AutoencoderKL config that shape the network. */
export interface KlConfig extends files.KlChannels {
  normNumGroups: number;
  midBlockAddAttention: boolean;
  useQuantConv: boolean;
  usePostQuantConv: boolean;
  /** scaled latent = (z − shiftFactor)·scalingFactor (SD: 0.18215, shift 0). */
  scalingFactor: number;
  shiftFactor: number;
}

/** Parse and validate `vae/config.json` (UserError naming the file and key). */
export function parseKlConfig(c: files.JsonConfig): KlConfig {
  files.expectClassName(c, "AutoencoderKL");
  files.cfgEnum(c, "act_fn", ["silu"], "silu");
  const cfg: KlConfig = {
    ...files.parseKlChannels(c),
    normNumGroups: files.cfgInt(c, "norm_num_groups", 32),
    midBlockAddAttention: files.cfgBool(c, "mid_block_add_attention", true),
    useQuantConv: files.cfgBool(c, "use_quant_conv", true),
    usePostQuantConv: files.cfgBool(c, "use_post_quant_conv", true),
    scalingFactor: files.cfgNum(c, "scaling_factor", 0.18215),
    shiftFactor: files.cfgNum(c, "shift_factor", 0),
  };
  const n = cfg.blockOutChannels.length, note = " (one per block_out_channels entry)";
  files.expectBlockTypes(c, "down_block_types", "DownEncoderBlock2D", n, note);
  files.expectBlockTypes(c, "up_block_types", "UpDecoderBlock2D", n, note);
  files.expectGroupable(c, cfg.blockOutChannels, cfg.normNumGroups, `norm_num_groups ${cfg.normNumGroups}`);
  return cfg;
}

const EPS = 1e-6; // every diffusers VAE GroupNorm

/** Debug outputs named as in conformance `vae_vectors.safetensors`. */
function tap(ctx: BlockContext, taps: boolean, name: string, v: string): void {
  if (taps && ctx.g) ctx.g.output(name, v);
}

function encoderBody(ctx: BlockContext, x: string, cfg: KlConfig, taps: boolean): string {
  const ch = cfg.blockOutChannels;
  let h = vaeConv(ctx, x, "encoder.conv_in", cfg.inChannels, ch[0], 3);
  ch.forEach((out, i) => {
    let cin = i === 0 ? ch[0] : ch[i - 1];
    for (let j = 0; j < cfg.layersPerBlock; j++) {
      h = vaeResnet(ctx, h, `encoder.down_blocks.${i}.resnets.${j}`, cin, out);
      cin = out;
    }
    if (i < ch.length - 1) h = vaeDownsample(ctx, h, `encoder.down_blocks.${i}.downsamplers.0`, out);
    tap(ctx, taps, `debug.encoder.down_block${i}.out`, h);
  });
  h = midBlock(ctx, h, "encoder.mid_block", ch.at(-1)!, cfg);
  tap(ctx, taps, "debug.encoder.mid_block.out", h);
  h = vaeGroupNorm(ctx, h, "encoder.conv_norm_out", ch.at(-1)!);
  h = vaeConv(ctx, ctx.g ? ctx.g.silu(h) : h, "encoder.conv_out", ch.at(-1)!, 2 * cfg.latentChannels, 3);
  tap(ctx, taps, "debug.encoder.out", h);
  if (cfg.useQuantConv) h = vaeConv(ctx, h, "quant_conv", 2 * cfg.latentChannels, 2 * cfg.latentChannels, 1);
  return h;
}

function decoderBody(ctx: BlockContext, z: string, cfg: KlConfig, taps: boolean): string {
  const rev = [...cfg.blockOutChannels].reverse();
  let h = z;
  if (cfg.usePostQuantConv) h = vaeConv(ctx, h, "post_quant_conv", cfg.latentChannels, cfg.latentChannels, 1);
  tap(ctx, taps, "debug.decoder.post_quant_conv", h);
  h = vaeConv(ctx, h, "decoder.conv_in", cfg.latentChannels, rev[0], 3);
  h = midBlock(ctx, h, "decoder.mid_block", rev[0], cfg);
  tap(ctx, taps, "debug.decoder.mid_block.out", h);
  rev.forEach((out, i) => {
    let cin = i === 0 ? rev[0] : rev[i - 1];
    for (let j = 0; j < cfg.layersPerBlock + 1; j++) {
      h = vaeResnet(ctx, h, `decoder.up_blocks.${i}.resnets.${j}`, cin, out);
      cin = out;
    }
    if (i < rev.length - 1) h = vaeUpsample(ctx, h, `decoder.up_blocks.${i}.upsamplers.0`, out);
    tap(ctx, taps, `debug.decoder.up_block${i}.out`, h);
  });
  h = vaeGroupNorm(ctx, h, "decoder.conv_norm_out", rev.at(-1)!);
  return vaeConv(ctx, ctx.g ? ctx.g.silu(h) : h, "decoder.conv_out", rev.at(-1)!, cfg.outChannels, 3);
}

function midBlock(ctx: BlockContext, x: string, key: string, c: number, cfg: KlConfig): string {
  let h = vaeResnet(ctx, x, `${key}.resnets.0`, c, c);
  if (cfg.midBlockAddAttention) h = vaeAttention(ctx, h, `${key}.attentions.0`, c);
  return vaeResnet(ctx, h, `${key}.resnets.1`, c, c);
}

/** Expected parameters (current diffusers names) → shapes, derived from the config. */
export function klSpec(cfg: KlConfig): ParamSpec {
  const ctx: BlockContext = { spec: new Map(), p: { groups: cfg.normNumGroups, eps: EPS } };
  encoderBody(ctx, "", cfg, false);
  decoderBody(ctx, "", cfg, false);
  return ctx.spec;
}

/** Options of the graph builders. */
export interface KlGraphOptions {
  /** Also output the intermediate `debug.*` tensors of the conformance set. */
  taps?: boolean;
}

/** One half as a graph: input `input` [B, channels, H, W] → `output` = body(input). */
function klGraph(
  name: string,
  cfg: KlConfig,
  w: WeightSource,
  input: [name: string, channels: number],
  output: string,
  body: (ctx: BlockContext, x: string, cfg: KlConfig, taps: boolean) => string,
  taps: boolean,
): Uint8Array {
  const g = new GraphBuilder({ name });
  const ctx: BlockContext = { g, w, spec: new Map(), p: { groups: cfg.normNumGroups, eps: EPS } };
  const x = g.input(input[0], "F32", ["batch", input[1], "height", "width"]);
  g.output(output, body(ctx, x, cfg, taps));
  return g.toBytes();
}

/** Encoder graph: `image` [B,3,H,W] in [−1,1] → `moments` [B,2L,H/8,W/8]. */
export function buildKlEncoder(cfg: KlConfig, w: WeightSource, opts: KlGraphOptions = {}): Uint8Array {
  return klGraph(
    "vae_encoder",
    cfg,
    w,
    ["image", cfg.inChannels],
    "moments",
    encoderBody,
    opts.taps ?? false,
  );
}

/** Decoder graph: `latent` (unscaled z) [B,L,h,w] → `image` [B,3,8h,8w] in [−1,1] (raw). */
export function buildKlDecoder(cfg: KlConfig, w: WeightSource, opts: KlGraphOptions = {}): Uint8Array {
  return klGraph(
    "vae_decoder",
    cfg,
    w,
    ["latent", cfg.latentChannels],
    "image",
    decoderBody,
    opts.taps ?? false,
  );
}

const LEGACY: Record<string, string> = { to_q: "query", to_k: "key", to_v: "value", "to_out.0": "proj_attn" };
const ATTN_KEY = /^(.*\.attentions\.\d+)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/;

/**
 * Open a VAE weights file and validate it against the config, mapping legacy attention names and conv-shaped
 * [C,C,1,1] attention weights onto the current layout. Every problem is one UserError naming file and key.
 */
export function openKlWeights(file: string, cfg: KlConfig, configPath: string): WeightSource {
  const sw = new SafetensorsWeights(file);
  try {
    if (sw.shapeOf("encoder.mid.attn_1.q.weight") || sw.shapeOf("encoder.down.0.block.0.conv1.weight")) {
      fail(
        file,
        "original LDM/sgm key layout (encoder.down.N.block…); convert it to the diffusers layout first",
      );
    }
    const spec = klSpec(cfg);
    const fileSpec: ParamSpec = new Map(), rename = new Map<string, string>(), flatten = new Set<string>();
    for (const [key, shape] of spec) {
      let fileKey = key;
      const m = ATTN_KEY.exec(key);
      if (m && !sw.shapeOf(key)) {
        const legacy = `${m[1]}.${LEGACY[m[2]]}.${m[3]}`;
        if (sw.shapeOf(legacy)) fileKey = legacy;
      }
      let want = shape;
      const got = sw.shapeOf(fileKey);
      if (m && shape.length === 2 && got?.length === 4 && got[2] === 1 && got[3] === 1) {
        want = [...shape, 1, 1];
        flatten.add(key);
      }
      fileSpec.set(fileKey, want);
      if (fileKey !== key) rename.set(key, fileKey);
    }
    sw.validate(fileSpec, { configPath });
    return {
      label: sw.label,
      identity: sw.identity,
      take(key: string): Tensor {
        const t = sw.take(rename.get(key) ?? key);
        return flatten.has(key) ? { ...t, shape: t.shape.slice(0, 2) } as Tensor : t;
      },
      close: () => sw.close(),
    };
  } catch (e) {
    sw.close();
    throw e;
  }
}

/** Diagonal Gaussian posterior of the moments: mean, logvar clamped to [−30, 20], std = exp(logvar/2). */
export function posteriorFromMoments(
  moments: Tensor<"F32">,
): { mean: Tensor<"F32">; logvar: Tensor<"F32">; std: Tensor<"F32"> } {
  const [B, C2, h, w] = moments.shape, L = C2 / 2, plane = L * h * w;
  const mean = new Float32Array(B * plane),
    logvar = new Float32Array(B * plane),
    std = new Float32Array(B * plane);
  for (let b = 0; b < B; b++) {
    mean.set(moments.data.subarray(b * 2 * plane, b * 2 * plane + plane), b * plane);
    for (let i = 0; i < plane; i++) {
      const lv = Math.min(20, Math.max(-30, moments.data[b * 2 * plane + plane + i]));
      logvar[b * plane + i] = lv;
      std[b * plane + i] = Math.exp(0.5 * lv);
    }
  }
  const shape = [B, L, h, w];
  return { mean: f32(shape, mean), logvar: f32(shape, logvar), std: f32(shape, std) };
}

/** Options of {@link AutoencoderKL.load}. */
export interface KlLoadOptions extends KlGraphOptions, files.ComponentSessionOptions {
  /** Frames per session run (default 1: a full-resolution SD decoder needs GBs of activations per frame). */
  maxBatch?: number;
}

/** Encoder side shared by the KL autoencoders (SD `AutoencoderKL`, SVD `TemporalVae`): moments and mean. */
export abstract class KlEncoderDecoder extends files.EncoderDecoder {
  /** quant_conv(encoder(x)) for images x [N, 3, H, W] in [−1, 1]: [N, 2L, H/8, W/8] = [mean | raw logvar]. */
  encodeMoments(image11: Tensor<"F32">): Promise<Tensor<"F32">> {
    return this.runEncoder(image11, "image", "moments");
  }

  /** Posterior mean (unscaled, = diffusers latent_dist.mode()) for images in [−1, 1]. */
  async encodeMean(image11: Tensor<"F32">): Promise<Tensor<"F32">> {
    return posteriorFromMoments(await this.encodeMoments(image11)).mean;
  }
}

/** A loaded AutoencoderKL: encoder and decoder sessions, working in the VAE's unscaled latent space. */
export class AutoencoderKL extends KlEncoderDecoder {
  private constructor(readonly cfg: KlConfig, encoder: Session, decoder: Session, maxBatch: number) {
    super(encoder, decoder, maxBatch, "vae");
  }

  /** Build from a diffusers `vae/` folder (config.json + weights). */
  static async load(vaeFolder: string, opts: KlLoadOptions = {}): Promise<AutoencoderKL> {
    const { cfg, file, built } = files.loadComponent(vaeFolder, {
      parse: parseKlConfig,
      open: openKlWeights,
      build: (cfg, w) => [buildKlEncoder(cfg, w, opts), buildKlDecoder(cfg, w, opts)],
    });
    const encoder = await files.componentSession(built[0], `${file} (encoder)`, opts);
    const decoder = await files.componentSession(built[1], `${file} (decoder)`, opts);
    return new AutoencoderKL(cfg, encoder, decoder, opts.maxBatch ?? 1);
  }

  /** decoder(post_quant_conv(z)) for an unscaled latent z: image in [−1, 1], not clamped. */
  decodeRaw(z: Tensor<"F32">): Promise<Tensor<"F32">> {
    return this.runDecoder(z, "latent", "image");
  }
}
