/**
 * The config keys the diffusion stages read, one dotted path each (a stage's cache key holds exactly these), and
 * the typed groups rebuilt from a stage's flat params.
 * @module
 */
import type { BackboneParams, ModulationParams, SamplerParams } from "../backbone/backbone.ts";

type P = Record<string, unknown>;

/** Dotted paths `group.field` for the given fields. */
export function keysOf(group: string, fields: readonly string[]): string[] {
  return fields.map((f) => `${group}.${f}`);
}

/** Group `group` rebuilt from the dotted params of `fields` (absent fields stay absent). */
export function groupOf<T>(p: P, group: string, fields: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (`${group}.${f}` in p) out[f] = p[`${group}.${f}`];
  return out as T;
}

/** Backbone fields every pass reads (dtype is the UNet's precision: not read by the VAE-only invert stage). */
export const BACKBONE_FIELDS = ["kind", "weights", "provider", "dtype"] as const;
/** Backbone fields of the VAE encode. */
export const ENCODER_FIELDS = ["kind", "weights", "provider"] as const;
/** Sampler fields of the modulated passes (t_f is the feature pass's). */
export const MODULATE_SAMPLER_FIELDS = ["steps", "t_m", "guidance"] as const;
export const FEATURE_SAMPLER_FIELDS = ["steps", "t_m", "t_f", "guidance"] as const;
/** Modulation fields of the `modulate` stage (`filter_strength` is read by `labels` only). */
export const MODULATE_FIELDS = [
  "lambda",
  "block",
  "attn",
  "latent_blending",
  "blend_until_end",
  "injection",
  "difference_mode",
  "decoder",
  "batch_bytes",
] as const;

export const backboneOf = (p: P, fields: readonly string[] = BACKBONE_FIELDS) =>
  groupOf<BackboneParams>(p, "backbone", fields);
export const samplerOf = (p: P, fields: readonly string[]) => groupOf<SamplerParams>(p, "sampler", fields);
export const modulationOf = (p: P) => groupOf<ModulationParams>(p, "modulation", MODULATE_FIELDS);
