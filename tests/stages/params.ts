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
