/**
 * diffusers `UNet2DConditionModel` config.json (SD 1.x/2.x family) → a validated, fully derived layout:
 * channels, heads and skip connections of every block. Unsupported options are one UserError line naming
 * the config file and key.
 * @module
 */
import { fail } from "../../errors.ts";

/** One level of the down path. */
export interface DownLevel {
  inCh: number;
  outCh: number;
  attention: boolean;
  heads: number;
  downsample: boolean;
}

/** One level of the up path (up_blocks[j]); resnet k takes `resnetIn[k]` channels (hidden ‖ skip). */
export interface UpLevel {
  outCh: number;
  resnetIn: number[];
  attention: boolean;
  heads: number;
  upsample: boolean;
}

/** Derived UNet layout. */
export interface UNetLayout {
  configPath: string;
  inChannels: number;
  outChannels: number;
  blockOut: number[];
  layersPerBlock: number;
  crossDim: number;
  groups: number;
  normEps: number;
  linearProjection: boolean;
  transformerDepth: number;
  flipSinToCos: boolean;
  freqShift: number;
  timeEmbedDim: number;
  convInKernel: number;
  convOutKernel: number;
  centerInput: boolean;
  downsamplePadding: number;
  midScale: number;
  midHeads: number;
  down: DownLevel[];
  up: UpLevel[];
}

/** Keys that must hold exactly these (default) values: anything else changes the architecture. */
const FIXED: Record<string, unknown> = {
  act_fn: "silu",
  addition_embed_type: null,
  addition_time_embed_dim: null,
  attention_type: "default",
  class_embed_type: null,
  class_embeddings_concat: false,
  cross_attention_norm: null,
  dual_cross_attention: false,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  mid_block_type: "UNetMidBlock2DCrossAttn",
  num_class_embeds: null,
  only_cross_attention: false,
  projection_class_embeddings_input_dim: null,
  resnet_skip_time_act: false,
  resnet_time_scale_shift: "default",
  reverse_transformer_layers_per_block: null,
  time_cond_proj_dim: null,
  time_embedding_act_fn: null,
  time_embedding_type: "positional",
  timestep_post_act: null,
  mid_block_only_cross_attention: null,
  resnet_out_scale_factor: 1,
};

/** Keys read with their diffusers defaults; keys in neither list are ignored (dropout, sample_size, …). */
const DEFAULTS: Record<string, unknown> = {
  in_channels: 4,
  out_channels: 4,
  center_input_sample: false,
  flip_sin_to_cos: true,
  freq_shift: 0,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  norm_num_groups: 32,
  norm_eps: 1e-5,
  cross_attention_dim: 1280,
  transformer_layers_per_block: 1,
  attention_head_dim: 8,
  num_attention_heads: null,
  use_linear_projection: false,
  time_embedding_dim: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
};

/** Parse and validate a UNet config object read from `configPath`. */
export function parseUNetConfig(raw: Record<string, unknown>, configPath: string): UNetLayout {
  const bad = (key: string, what: string): never => fail(configPath, `${key}: ${what}`);
  if (raw._class_name !== undefined && raw._class_name !== "UNet2DConditionModel") {
    bad(
      "_class_name",
      `"${raw._class_name}" is not supported (expected "UNet2DConditionModel" of SD 1.x/2.x)`,
    );
  }
  for (const [k, v] of Object.entries(FIXED)) {
    const got = raw[k] ?? (v === null ? null : v);
    const ok = got === v || (k === "mid_block_only_cross_attention" && got === false);
    if (!ok) bad(k, `unsupported value ${JSON.stringify(got)} (only ${JSON.stringify(v)} is implemented)`);
  }
  const get = (k: string) => (raw[k] === undefined ? DEFAULTS[k] : raw[k]);
  const int = (k: string, min = 1): number => {
    const v = get(k);
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      bad(k, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const num = (k: string): number => {
    const v = get(k);
    if (typeof v !== "number" || !Number.isFinite(v)) bad(k, `expected a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string): boolean => {
    const v = get(k);
    if (typeof v !== "boolean") bad(k, `expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const intList = (k: string): number[] => {
    const v = get(k);
    if (!Array.isArray(v) || !v.length || v.some((x) => !Number.isInteger(x) || x < 1)) {
      bad(k, `expected a list of positive integers, got ${JSON.stringify(v)}`);
    }
    return v as number[];
  };
  const blockOut = intList("block_out_channels");
  const n = blockOut.length;
  const downTypes = get("down_block_types") as string[];
  const upTypes = get("up_block_types") as string[];
  if (!Array.isArray(downTypes) || downTypes.length !== n) {
    bad("down_block_types", `expected ${n} entries (one per block_out_channels)`);
  }
  if (!Array.isArray(upTypes) || upTypes.length !== n) {
    bad("up_block_types", `expected ${n} entries (one per block_out_channels)`);
  }
  downTypes.forEach((t) => {
    if (t !== "CrossAttnDownBlock2D" && t !== "DownBlock2D") {
      bad("down_block_types", `unsupported block "${t}" (expected CrossAttnDownBlock2D or DownBlock2D)`);
    }
  });
  upTypes.forEach((t) => {
    if (t !== "CrossAttnUpBlock2D" && t !== "UpBlock2D") {
      bad("up_block_types", `unsupported block "${t}" (expected CrossAttnUpBlock2D or UpBlock2D)`);
    }
  });
  // diffusers quirk kept for SD 2.x configs: attention_head_dim holds the number of heads per level.
  const headsRaw = get("num_attention_heads") ?? get("attention_head_dim");
  const heads = typeof headsRaw === "number" ? new Array(n).fill(headsRaw) : headsRaw as number[];
  if (!Array.isArray(heads) || heads.length !== n || heads.some((h) => !Number.isInteger(h) || h < 1)) {
    bad(
      get("num_attention_heads") !== null ? "num_attention_heads" : "attention_head_dim",
      `expected an integer or ${n} integers, got ${JSON.stringify(headsRaw)}`,
    );
  }
  const crossDim = get("cross_attention_dim");
  if (typeof crossDim !== "number") {
    bad("cross_attention_dim", `only a single integer is supported, got ${JSON.stringify(crossDim)}`);
  }
  if (typeof get("layers_per_block") !== "number") {
    bad("layers_per_block", "only a single integer is supported");
  }
  if (typeof get("transformer_layers_per_block") !== "number") {
    bad("transformer_layers_per_block", "only a single integer is supported");
  }
  const groups = int("norm_num_groups");
  for (const c of blockOut) {
    if (c % groups) bad("block_out_channels", `${c} is not divisible by norm_num_groups ${groups}`);
  }
  const L = int("layers_per_block");
  const convIn = int("conv_in_kernel"), convOut = int("conv_out_kernel");
  // diffusers pads asymmetrically when downsample_padding is 0; only the SD value 1 is implemented.
  if (get("downsample_padding") !== 1) {
    bad(
      "downsample_padding",
      `unsupported value ${JSON.stringify(get("downsample_padding"))} (only 1 is implemented)`,
    );
  }
  if (convIn % 2 === 0) bad("conv_in_kernel", "must be odd");
  if (convOut % 2 === 0) bad("conv_out_kernel", "must be odd");

  const down: DownLevel[] = [];
  const skips: number[] = [blockOut[0]]; // conv_in output is the first skip
  for (let i = 0; i < n; i++) {
    const lvl: DownLevel = {
      inCh: i === 0 ? blockOut[0] : blockOut[i - 1],
      outCh: blockOut[i],
      attention: downTypes[i] === "CrossAttnDownBlock2D",
      heads: heads[i],
      downsample: i < n - 1,
    };
    for (let k = 0; k < L; k++) skips.push(lvl.outCh);
    if (lvl.downsample) skips.push(lvl.outCh);
    down.push(lvl);
  }
  const rev = [...blockOut].reverse(), revHeads = [...heads].reverse();
  const up: UpLevel[] = [];
  let prev = blockOut[n - 1];
  for (let j = 0; j < n; j++) {
    const resnetIn: number[] = [];
    for (let k = 0; k <= L; k++) resnetIn.push((k === 0 ? prev : rev[j]) + skips.pop()!);
    up.push({
      outCh: rev[j],
      resnetIn,
      attention: upTypes[j] === "CrossAttnUpBlock2D",
      heads: revHeads[j],
      upsample: j < n - 1,
    });
    prev = rev[j];
  }
  const levels = [...down, ...up].filter((l) => l.attention);
  for (const l of levels) {
    const c = "outCh" in l ? l.outCh : 0;
    if (c % l.heads) bad("attention_head_dim", `${c} channels are not divisible into ${l.heads} heads`);
  }
  const ted = get("time_embedding_dim");
  return {
    configPath,
    inChannels: int("in_channels"),
    outChannels: int("out_channels"),
    blockOut,
    layersPerBlock: L,
    crossDim: int("cross_attention_dim"),
    groups,
    normEps: num("norm_eps"),
    linearProjection: bool("use_linear_projection"),
    transformerDepth: int("transformer_layers_per_block"),
    flipSinToCos: bool("flip_sin_to_cos"),
    freqShift: num("freq_shift"),
    timeEmbedDim: ted === null ? 4 * blockOut[0] : int("time_embedding_dim"),
    convInKernel: convIn,
    convOutKernel: convOut,
    centerInput: bool("center_input_sample"),
    downsamplePadding: 1,
    midScale: num("mid_block_scale_factor"),
    midHeads: heads[n - 1],
    down,
    up,
  };
}

/** Number of up-path positions (3 per level for layers_per_block 2). */
export function upPositions(l: UNetLayout): number {
  return l.up.length * (l.layersPerBlock + 1);
}
