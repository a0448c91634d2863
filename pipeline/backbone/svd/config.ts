/**
 * diffusers `UNetSpatioTemporalConditionModel` config.json (Stable Video Diffusion) → a validated layout.
 * The down/mid/up channel bookkeeping is the SD UNet's (same diffusers walk, same skip connections), so the
 * SVD config is checked for its own keys and then mapped onto {@link parseUNetConfig}; the SVD-only parts
 * (added time ids embedding, per-block GroupNorm eps) are added on top. Problems are one UserError line naming
 * the config file and key.
 * @module
 */
import { fail } from "../../errors.ts";
import { parseUNetConfig, type UNetLayout } from "../sd/config.ts";
import type { ResnetSite } from "../sd/graph.ts";

/** Derived SVD UNet layout: the SD layout fields plus the SVD conditioning dimensions. */
export interface SvdLayout extends UNetLayout {
  /** Sinusoid width per added time id (`addition_time_embed_dim`, 256 for SVD). */
  addTimeEmbedDim: number;
  /** Input width of `add_embedding` (`projection_class_embeddings_input_dim`, 768 = 3 ids × 256). */
  projectionInputDim: number;
  /** Number of added time ids the model takes (projectionInputDim / addTimeEmbedDim; 3 for SVD). */
  numAddedIds: number;
  /** `num_frames` of the config (training length; the graph takes any frame count). */
  configFrames: number;
}

const DOWN: Record<string, string> = {
  CrossAttnDownBlockSpatioTemporal: "CrossAttnDownBlock2D",
  DownBlockSpatioTemporal: "DownBlock2D",
};
const UP: Record<string, string> = {
  CrossAttnUpBlockSpatioTemporal: "CrossAttnUpBlock2D",
  UpBlockSpatioTemporal: "UpBlock2D",
};

/** diffusers defaults of UNetSpatioTemporalConditionModel.__init__. */
const DEFAULTS: Record<string, unknown> = {
  in_channels: 8,
  out_channels: 4,
  down_block_types: [
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "CrossAttnDownBlockSpatioTemporal",
    "DownBlockSpatioTemporal",
  ],
  up_block_types: [
    "UpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
  ],
  block_out_channels: [320, 640, 1280, 1280],
  addition_time_embed_dim: 256,
  projection_class_embeddings_input_dim: 768,
  layers_per_block: 2,
  cross_attention_dim: 1024,
  transformer_layers_per_block: 1,
  num_attention_heads: [5, 10, 20, 20],
  num_frames: 25,
};

/** Parse and validate an SVD UNet config object read from `configPath`. */
export function parseSvdUNetConfig(raw: Record<string, unknown>, configPath: string): SvdLayout {
  const bad = (key: string, what: string): never => fail(configPath, `${key}: ${what}`);
  if (raw._class_name !== undefined && raw._class_name !== "UNetSpatioTemporalConditionModel") {
    bad(
      "_class_name",
      `"${raw._class_name}" is not supported here (expected "UNetSpatioTemporalConditionModel" of Stable Video Diffusion)`,
    );
  }
  const get = (k: string) => (raw[k] === undefined ? DEFAULTS[k] : raw[k]);
  const int = (k: string): number => {
    const v = get(k);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      bad(k, `expected a positive integer, got ${JSON.stringify(v)}`);
    }
    return v as number;
  };
  const mapTypes = (k: string, table: Record<string, string>): string[] => {
    const v = get(k);
    if (!Array.isArray(v)) bad(k, `expected a list of block names, got ${JSON.stringify(v)}`);
    return (v as unknown[]).map((t) => {
      const m = typeof t === "string" ? table[t] : undefined;
      if (!m) bad(k, `unsupported block ${JSON.stringify(t)} (expected ${Object.keys(table).join(" or ")})`);
      return m!;
    });
  };
  const downTypes = mapTypes("down_block_types", DOWN);
  const upTypes = mapTypes("up_block_types", UP);
  for (const k of ["cross_attention_dim", "layers_per_block", "transformer_layers_per_block"]) {
    if (typeof get(k) !== "number") {
      bad(k, `only a single integer is supported, got ${JSON.stringify(get(k))}`);
    }
  }
  const addDim = int("addition_time_embed_dim");
  const projDim = int("projection_class_embeddings_input_dim");
  if (projDim % addDim !== 0) {
    bad(
      "projection_class_embeddings_input_dim",
      `${projDim} is not a multiple of addition_time_embed_dim ${addDim} (one sinusoid per added time id)`,
    );
  }
  if (addDim % 2 !== 0) bad("addition_time_embed_dim", `must be even, got ${addDim}`);
  // Everything diffusers hard-codes for SVD, expressed in the SD UNet's config vocabulary.
  const sd = parseUNetConfig({
    _class_name: "UNet2DConditionModel",
    in_channels: int("in_channels"),
    out_channels: int("out_channels"),
    block_out_channels: get("block_out_channels"),
    down_block_types: downTypes,
    up_block_types: upTypes,
    layers_per_block: get("layers_per_block"),
    cross_attention_dim: get("cross_attention_dim"),
    transformer_layers_per_block: get("transformer_layers_per_block"),
    num_attention_heads: get("num_attention_heads"),
    norm_num_groups: 32,
    norm_eps: 1e-5,
    use_linear_projection: true,
    flip_sin_to_cos: true,
    freq_shift: 0,
  }, configPath);
  return {
    ...sd,
    addTimeEmbedDim: addDim,
    projectionInputDim: projDim,
    numAddedIds: projDim / addDim,
    configFrames: int("num_frames"),
  };
}

/**
 * GroupNorm eps of the SpatioTemporalResBlock at `site`, as diffusers hard-codes it: 1e-6 in
 * CrossAttnDownBlockSpatioTemporal and in every up block (default `resnet_eps`), 1e-5 in DownBlockSpatioTemporal
 * and in the mid block.
 */
export function svdResnetEps(l: SvdLayout, site: ResnetSite): number {
  if (site.path === "mid") return 1e-5;
  if (site.path === "up") return 1e-6;
  return l.down[site.level].attention ? 1e-6 : 1e-5;
}

/** GroupNorm eps of `conv_norm_out` (diffusers: 1e-5). */
export const SVD_NORM_OUT_EPS = 1e-5;
