/**
 * Stage params for tests that build them by hand as config groups: the groups plus every leaf as the dotted key a
 * stage declares (`modulation.lambda`), leaves missing from a given group filled with the schema default.
 */
import { schemaLeaves } from "../../pipeline/config/schema.ts";

const isGroup = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

export function flatParams(nested: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...nested };
  for (const [key, spec] of schemaLeaves()) {
    const [group, field] = key.split(".");
    if (field === undefined || !isGroup(nested[group])) continue;
    const g = nested[group] as Record<string, unknown>;
    out[key] = field in g ? g[field] : structuredClone(spec.default);
  }
  return out;
}

/** What {@link sdModulateParams} varies between tests. */
export interface SdModulateOptions {
  /** Weights folder (a conformance set). */
  weights: string;
  batch: number;
  dedupe?: boolean;
  decoder?: string;
  schedule?: string;
}

/** Params of the SD diffusion stages with the reference code's values (25 steps, t_m 22, λ 5 at block 7, CFG 5). */
export function sdModulateParams(o: SdModulateOptions): Record<string, unknown> {
  return flatParams({
    backbone: { kind: "sd", weights: o.weights, provider: "cpu", dtype: "fp32" },
    seed: 1,
    batch_size: o.batch,
    dedupe_last_batch: o.dedupe ?? false,
    sampler: { steps: 25, t_m: 22, t_f: 24, guidance: 5 },
    modulation: {
      lambda: 5,
      block: 7,
      attn: "cross",
      latent_blending: true,
      blend_until_end: false,
      injection: true,
      filter_strength: 0.7,
      difference_mode: "float_l2",
      decoder: o.decoder ?? "vae",
    },
    schedule: o.schedule ?? "optimized",
  });
}
