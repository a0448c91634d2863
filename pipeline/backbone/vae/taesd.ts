/**
 * TAESD (Tiny AutoEncoder for Stable Diffusion, diffusers `AutoencoderTiny`) as ONNX graphs.
 *
 * Conventions (tests/fixtures/taesd/README.md): images in [0, 1], latents directly in the UNet's scaled latent
 * space (no 0.18215 factor), deterministic encoder. Weight layouts accepted:
 * - `taesd`: taesd.py `nn.Sequential` indices, one file per half (`encoder.safetensors` / `decoder.safetensors`,
 *   or ComfyUI's `taesd_encoder.safetensors` / `taesd_decoder.safetensors`), e.g. `3.conv.0.weight`;
 * - `diffusers`: an `AutoencoderTiny` folder (`config.json` + one weights file) with `encoder.layers.N.*` and
 *   `decoder.layers.N.*` — the decoder there has no Clamp layer, so its indices are taesd's minus one.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { GraphBuilder } from "../onnx/builder.ts";
import type { Session } from "../runtime.ts";
import type { ParamSpec, SafetensorsWeights, WeightSource } from "../weights/weight_map.ts";
import * as files from "../model_files.ts";

/** Architecture of a tiny autoencoder (diffusers `AutoencoderTiny` config). */
export interface TinyConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  encoderChannels: number[];
  decoderChannels: number[];
  numEncoderBlocks: number[];
  numDecoderBlocks: number[];
  /** Latent = (enc(x) − shift)·scale is what the UNet sees (1 and 0 for TAESD). */
  scalingFactor: number;
  shiftFactor: number;
}

/** taesd.py for SD 1.x / 2.x. */
export const TAESD_CONFIG: TinyConfig = {
  inChannels: 3,
  outChannels: 3,
  latentChannels: 4,
  encoderChannels: [64, 64, 64, 64],
  decoderChannels: [64, 64, 64, 64],
  numEncoderBlocks: [1, 3, 3, 3],
  numDecoderBlocks: [3, 3, 3, 1],
  scalingFactor: 1,
  shiftFactor: 0,
};

/** Parse a diffusers `AutoencoderTiny` config.json (missing keys take diffusers' defaults). */
export function parseTinyConfig(c: files.JsonConfig): TinyConfig {
  const act = c.json.act_fn ?? "relu";
  if (act !== "relu") fail(c.path, `"act_fn" is ${JSON.stringify(act)}; only relu is supported`);
  const up = c.json.upsampling_scaling_factor ?? 2;
  if (up !== 2) fail(c.path, `"upsampling_scaling_factor" is ${JSON.stringify(up)}; only 2 is supported`);
  if (c.json.upsample_fn !== undefined && c.json.upsample_fn !== "nearest") {
    fail(c.path, `"upsample_fn" is ${JSON.stringify(c.json.upsample_fn)}; only nearest is supported`);
  }
  const cfg: TinyConfig = {
    inChannels: files.cfgInt(c, "in_channels", 3),
    outChannels: files.cfgInt(c, "out_channels", 3),
    latentChannels: files.cfgInt(c, "latent_channels", 4),
    encoderChannels: files.cfgIntList(c, "encoder_block_out_channels", [64, 64, 64, 64]),
    decoderChannels: files.cfgIntList(c, "decoder_block_out_channels", [64, 64, 64, 64]),
    numEncoderBlocks: files.cfgIntList(c, "num_encoder_blocks", [1, 3, 3, 3]),
    numDecoderBlocks: files.cfgIntList(c, "num_decoder_blocks", [3, 3, 3, 1]),
    scalingFactor: files.cfgNum(c, "scaling_factor", 1),
    shiftFactor: files.cfgNum(c, "shift_factor", 0),
  };
  if (cfg.encoderChannels.length !== cfg.numEncoderBlocks.length) {
    fail(c.path, `"encoder_block_out_channels" and "num_encoder_blocks" must have the same length`);
  }
  if (cfg.decoderChannels.length !== cfg.numDecoderBlocks.length) {
    fail(c.path, `"decoder_block_out_channels" and "num_decoder_blocks" must have the same length`);
  }
  return cfg;
}

/** One layer of the taesd.py Sequential (index = taesd.py index). */
type Layer =
  | { idx: number; kind: "conv"; cin: number; cout: number; stride: number; bias: boolean }
  | { idx: number; kind: "block"; ch: number }
  | { idx: number; kind: "relu" | "up" | "clamp" };

function encoderLayers(c: TinyConfig): Layer[] {
  const L: Layer[] = [];
  let idx = 0;
  c.encoderChannels.forEach((ch, i) => {
    // as diffusers EncoderTiny: level 0 starts with conv(in → ch), later levels with a stride-2 conv(ch → ch)
    L.push(
      i === 0
        ? { idx: idx++, kind: "conv", cin: c.inChannels, cout: ch, stride: 1, bias: true }
        : { idx: idx++, kind: "conv", cin: ch, cout: ch, stride: 2, bias: false },
    );
    for (let b = 0; b < c.numEncoderBlocks[i]; b++) L.push({ idx: idx++, kind: "block", ch });
  });
  L.push({
    idx: idx++,
    kind: "conv",
    cin: c.encoderChannels.at(-1)!,
    cout: c.latentChannels,
    stride: 1,
    bias: true,
  });
  return L;
}

function decoderLayers(c: TinyConfig): Layer[] {
  const L: Layer[] = [{ idx: 0, kind: "clamp" }];
  let idx = 1;
  L.push({
    idx: idx++,
    kind: "conv",
    cin: c.latentChannels,
    cout: c.decoderChannels[0],
    stride: 1,
    bias: true,
  });
  L.push({ idx: idx++, kind: "relu" });
  c.decoderChannels.forEach((ch, i) => {
    const last = i === c.decoderChannels.length - 1;
    for (let b = 0; b < c.numDecoderBlocks[i]; b++) L.push({ idx: idx++, kind: "block", ch });
    if (!last) L.push({ idx: idx++, kind: "up" });
    L.push({ idx: idx++, kind: "conv", cin: ch, cout: last ? c.outChannels : ch, stride: 1, bias: last });
  });
  return L;
}

/** Which half and which key layout. */
export type TinyHalf = "encoder" | "decoder";
/** Key layout of the weights (see module doc). */
export type TinyLayout = "taesd" | "diffusers";

function keyPrefix(half: TinyHalf, layout: TinyLayout, idx: number): string {
  if (layout === "taesd") return `${idx}.`;
  return `${half}.layers.${half === "decoder" ? idx - 1 : idx}.`;
}

/** Expected parameters (key → shape) of one half in the given layout. */
export function tinySpec(cfg: TinyConfig, half: TinyHalf, layout: TinyLayout): ParamSpec {
  const spec: ParamSpec = new Map();
  for (const l of half === "encoder" ? encoderLayers(cfg) : decoderLayers(cfg)) {
    const p = keyPrefix(half, layout, l.idx);
    if (l.kind === "conv") {
      spec.set(`${p}weight`, [l.cout, l.cin, 3, 3]);
      if (l.bias) spec.set(`${p}bias`, [l.cout]);
    } else if (l.kind === "block") {
      for (const j of [0, 2, 4]) {
        spec.set(`${p}conv.${j}.weight`, [l.ch, l.ch, 3, 3]);
        spec.set(`${p}conv.${j}.bias`, [l.ch]);
      }
    }
  }
  return spec;
}

/** Options of {@link buildTinyGraph}. */
export interface TinyGraphOptions {
  /** Extra outputs `act.N` = activation after taesd.py Sequential index N (debugging a port). */
  taps?: readonly number[];
}

/**
 * ONNX graph of one half: encoder `image` [B,3,H,W] in [0,1] → `latent` [B,4,H/8,W/8] (raw, unscaled);
 * decoder `latent` → `image` (raw, not clamped). Weights are validated against {@link tinySpec} by the caller.
 */
export function buildTinyGraph(
  cfg: TinyConfig,
  half: TinyHalf,
  layout: TinyLayout,
  w: WeightSource,
  opts: TinyGraphOptions = {},
): Uint8Array {
  const g = new GraphBuilder({ name: `taesd_${half}` });
  const inName = half === "encoder" ? "image" : "latent";
  const inC = half === "encoder" ? cfg.inChannels : cfg.latentChannels;
  let h = g.input(inName, "F32", ["batch", inC, "height", "width"]);
  const taps = new Set(opts.taps ?? []);
  const conv = (x: string, p: string, stride: number, bias: boolean) =>
    g.conv2d(x, {
      weight: w.take(`${p}weight`),
      bias: bias ? w.take(`${p}bias`) : undefined,
      stride,
      padding: 1,
    });
  const relu = (x: string) => g.op("Relu", [x]);
  for (const l of half === "encoder" ? encoderLayers(cfg) : decoderLayers(cfg)) {
    const p = keyPrefix(half, layout, l.idx);
    g.scope(`${l.idx}`, () => {
      if (l.kind === "conv") h = conv(h, p, l.stride, l.bias);
      else if (l.kind === "relu") h = relu(h);
      else if (l.kind === "up") h = g.upsampleNearest2x(h);
      else if (l.kind === "clamp") h = g.mul(g.op("Tanh", [g.div(h, g.scalar(3))]), g.scalar(3)); // 3·tanh(x/3)
      else {
        // Block: relu(conv4(relu(conv2(relu(conv0(x))))) + x); in = out channels, so the skip is the identity
        let y = relu(conv(h, `${p}conv.0.`, 1, true));
        y = relu(conv(y, `${p}conv.2.`, 1, true));
        y = conv(y, `${p}conv.4.`, 1, true);
        h = relu(g.add(y, h));
      }
    });
    if (taps.has(l.idx)) g.output(`act.${l.idx}`, h);
  }
  g.output(half === "encoder" ? "latent" : "image", h);
  return g.toBytes();
}

/** Where a tiny autoencoder's weights are. */
export interface TinySource {
  cfg: TinyConfig;
  layout: TinyLayout;
  /** Weights file per half (the same file for the diffusers layout). */
  files: Record<TinyHalf, string>;
  configPath: string;
}

/**
 * Locate TAESD weights in `folder`: a diffusers `AutoencoderTiny` folder (config.json) or taesd.py files
 * (`encoder.safetensors` + `decoder.safetensors`, optionally `taesd_`-prefixed).
 */
export function locateTiny(folder: string): TinySource {
  const cfgPath = path.join(folder, "config.json");
  if (fs.existsSync(cfgPath)) {
    const c = files.readJsonConfig(cfgPath);
    if (c.json._class_name !== "AutoencoderTiny") {
      fail(
        cfgPath,
        `"_class_name" is ${JSON.stringify(c.json._class_name)}, expected AutoencoderTiny for a TAESD folder`,
      );
    }
    // A config.json next to taesd.py-layout halves (the embedded model's vae/): use the halves.
    const halves = ["encoder", "decoder"].map((h) => path.join(folder, `${h}.safetensors`));
    if (halves.every((f) => fs.existsSync(f))) {
      return {
        cfg: parseTinyConfig(c),
        layout: "taesd",
        files: { encoder: halves[0], decoder: halves[1] },
        configPath: cfgPath,
      };
    }
    const file = files.findWeightsFile(folder);
    return {
      cfg: parseTinyConfig(c),
      layout: "diffusers",
      files: { encoder: file, decoder: file },
      configPath: cfgPath,
    };
  }
  const pick = (half: TinyHalf) => {
    for (const n of [`${half}.safetensors`, `taesd_${half}.safetensors`]) {
      if (fs.existsSync(path.join(folder, n))) return path.join(folder, n);
    }
    fail(
      folder,
      `no TAESD ${half} weights (expected ${half}.safetensors or taesd_${half}.safetensors, or a diffusers AutoencoderTiny config.json)`,
    );
  };
  return {
    cfg: TAESD_CONFIG,
    layout: "taesd",
    files: { encoder: pick("encoder"), decoder: pick("decoder") },
    configPath: "taesd.py (SD 1.x/2.x)",
  };
}

/** Open and validate the weights of one half (one UserError line naming file and key on mismatch). */
export function openTinyWeights(src: TinySource, half: TinyHalf): SafetensorsWeights {
  const other = src.layout === "diffusers" ? (half === "encoder" ? "decoder." : "encoder.") : null;
  const open = files.validatedWeights(
    (cfg: TinyConfig) => tinySpec(cfg, half, src.layout),
    (k) => other !== null && k.startsWith(other),
  );
  return open(src.files[half], src.cfg, src.configPath);
}

/** Options of {@link TinyAutoencoder.load}. */
export interface TinyLoadOptions extends files.ComponentSessionOptions {
  /** Frames per session run (default 4). */
  maxBatch?: number;
  taps?: TinyGraphOptions["taps"];
}

/** A loaded TAESD: encoder and decoder sessions. */
export class TinyAutoencoder extends files.EncoderDecoder {
  private constructor(readonly cfg: TinyConfig, encoder: Session, decoder: Session, maxBatch: number) {
    super(encoder, decoder, maxBatch, "taesd");
  }

  /** Build both graphs from `folder` (see {@link locateTiny}) and create their sessions. */
  static async load(folder: string, opts: TinyLoadOptions = {}): Promise<TinyAutoencoder> {
    const src = locateTiny(folder);
    const sessions: Session[] = [];
    for (const half of ["encoder", "decoder"] as const) {
      const bytes = files.closing(
        openTinyWeights(src, half),
        (w) => buildTinyGraph(src.cfg, half, src.layout, w, { taps: opts.taps }),
      );
      sessions.push(await files.componentSession(bytes, `${src.files[half]} (${half})`, opts));
    }
    return new TinyAutoencoder(src.cfg, sessions[0], sessions[1], opts.maxBatch ?? 4);
  }

  /** Raw encoder output enc(images01) [B,4,H/8,W/8] (TAESD: already the UNet's latent scale). */
  encodeRaw(images01: Tensor<"F32">): Promise<Tensor<"F32">> {
    return this.runEncoder(images01, "image", "latent");
  }

  /** Raw decoder output dec(latent) [B,3,8h,8w], approximately in [0, 1], not clamped. */
  decodeRaw(latents: Tensor<"F32">): Promise<Tensor<"F32">> {
    return this.runDecoder(latents, "latent", "image");
  }

  /** Run one half and return all its outputs (including `act.N` taps). */
  async runWithTaps(half: TinyHalf, x: Tensor<"F32">): Promise<Record<string, Tensor>> {
    return await (half === "encoder" ? this.encoder : this.decoder).run({
      [half === "encoder" ? "image" : "latent"]: x,
    });
  }
}
