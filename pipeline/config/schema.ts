/**
 * The config schema: every hyperparameter of the pipeline with its type, range, default and meaning.
 * Defaults are the SD values of the authors' code (docs/method.md §11), except the backbone and dataset,
 * which default to the embedded model and data (SD 2.1 weights are not shipped).
 * @module
 */

/** Common fields of a leaf spec. */
interface Base {
  doc: string;
  /** `null` is also accepted. */
  nullable?: boolean;
}

/** A schema node. */
export type Spec =
  | Base & { kind: "int"; min?: number; max?: number; default: number | null }
  | Base & { kind: "number"; min?: number; max?: number; minExclusive?: boolean; default: number | null }
  | Base & { kind: "bool"; default: boolean }
  | Base & { kind: "enum"; values: readonly string[]; default: string }
  | Base & { kind: "string"; default: string | null }
  /** A file or folder; relative values resolve against the repo root. */
  | Base & { kind: "path"; default: string | null }
  | Base & { kind: "intList"; min: number; max: number; default: number[] }
  /** [W, H], multiples of 64 from 64 to 8192, or null (= source size rounded down to multiples of 64). */
  | Base & { kind: "resolution"; default: [number, number] | null }
  /** "all" or a list of clip names. */
  | Base & { kind: "clips"; default: "all" | string[] }
  | { kind: "group"; doc: string; fields: Record<string, Spec> };

/** A leaf spec (anything but a group). */
export type LeafSpec = Exclude<Spec, { kind: "group" }>;

const group = (doc: string, fields: Record<string, Spec>): Spec => ({ kind: "group", doc, fields });
/** Output-block index of the SD/SVD UNet decoder (docs/method.md §2: 12 output blocks). */
const BLOCK = { min: 0, max: 11 };

/** The whole schema (field order = documentation order). */
export const SCHEMA: Record<string, Spec> = {
  backbone: group("diffusion backbone", {
    kind: {
      kind: "enum",
      values: ["tiny", "sd", "svd"],
      default: "tiny",
      doc: "tiny = embedded tiny LDM; sd = SD 2.1; svd = SVD",
    },
    weights: { kind: "path", default: "data/models/tiny-ldm", doc: "diffusers folder of the backbone" },
    provider: {
      kind: "enum",
      values: ["cpu", "cuda"],
      default: "cpu",
      doc: "onnxruntime execution provider",
    },
    dtype: {
      kind: "enum",
      values: ["fp32", "fp16"],
      default: "fp32",
      doc: "UNet precision (code: fp16 autocast on GPU)",
    },
  }),
  dataset: group("input videos", {
    kind: {
      kind: "enum",
      values: ["camvid", "vspw", "cityscapes", "frames"],
      default: "camvid",
      doc: "dataset layout",
    },
    root: { kind: "path", default: "data/camvid", doc: "dataset folder" },
    split: {
      kind: "string",
      nullable: true,
      default: null,
      doc: "split (null = the dataset's evaluation split)",
    },
    clips: { kind: "clips", default: "all", doc: `"all" or a list of clip names` },
    max_frames: {
      kind: "int",
      min: 1,
      nullable: true,
      default: null,
      doc: "use only the first N frames of each clip",
    },
  }),
  resolution: {
    kind: "resolution",
    default: null,
    doc: "[W, H] processing size; null = (W - W%64, H - H%64)",
  },
  seed: { kind: "int", min: 0, default: 1, doc: "noise seed, re-seeded every batch" },
  sampler: group("noising and sampling (docs/method.md §3)", {
    steps: { kind: "int", min: 1, default: 25, doc: "sampling steps" },
    t_m: { kind: "int", min: 0, default: 22, doc: "modulation step index = noise start (< steps)" },
    t_f: { kind: "int", min: 0, default: 24, doc: "feature step index (t_m ≤ t_f < steps)" },
    guidance: {
      kind: "number",
      min: 0,
      default: 5,
      doc: "classifier-free guidance scale (SVD: last frame's scale of the per-frame ramp 1 → guidance; code 2.5)",
    },
  }),
  features: group("features for K-Means/KNN (docs/method.md §4)", {
    blocks: {
      kind: "intList",
      ...BLOCK,
      default: [6, 7, 8],
      doc: "decoder blocks averaged when aggregate is true",
    },
    aggregate: { kind: "bool", default: true, doc: "feature aggregation (false: features.block only)" },
    block: { kind: "int", ...BLOCK, default: 7, doc: "the single block used when aggregate is false" },
  }),
  kmeans: group("first-frame K-Means (docs/method.md §5)", {
    k: { kind: "int", min: 2, default: 20, doc: "number of clusters K" },
    n_init: { kind: "int", min: 1, default: 10, doc: "k-means++ restarts" },
    max_iter: { kind: "int", min: 1, default: 300, doc: "Lloyd iterations per restart" },
    tol: { kind: "number", min: 0, default: 1e-4, doc: "relative tolerance (sklearn semantics)" },
    fit: {
      kind: "enum",
      values: ["batch", "first_frame"],
      default: "batch",
      doc: "fit on all frames of batch 0 (code) or frame 0 (paper)",
    },
  }),
  batch_size: { kind: "int", min: 1, default: 14, doc: "frames per diffusion batch and context update" },
  dedupe_last_batch: { kind: "bool", default: false, doc: "skip the duplicated last batch when N mod F = 0" },
  knn: group("scene-context KNN (docs/method.md §6)", {
    k: { kind: "int", min: 1, default: 4, doc: "neighbours" },
  }),
  cbr: group("correspondence-based refinement (docs/method.md §7)", {
    enabled: { kind: "bool", default: true, doc: "CBR on/off" },
    block: { kind: "int", ...BLOCK, default: 7, doc: "feature block for correspondences" },
    spatial_threshold: { kind: "int", min: 0, default: 1, doc: "spatial test threshold in cells" },
    abs_threshold: { kind: "bool", default: false, doc: "|Δ| test instead of the code's signed test" },
  }),
  modulation: group("masked modulation (docs/method.md §8)", {
    lambda: { kind: "number", min: 0, minExclusive: true, default: 50, doc: "modulation strength λ" },
    block: { kind: "int", ...BLOCK, default: 7, doc: "modulated decoder block" },
    attn: { kind: "enum", values: ["cross", "self"], default: "cross", doc: "modulated attention output" },
    latent_blending: { kind: "bool", default: true, doc: "latent blending with the unmodulated pass" },
    blend_until_end: {
      kind: "bool",
      default: false,
      doc: "blend every step (SVD code) instead of t_m..t_m+1 (SD code)",
    },
    injection: { kind: "bool", default: true, doc: "inject stored q/k of output blocks 3..11" },
    filter_strength: {
      kind: "number",
      min: 0,
      minExclusive: true,
      max: 1,
      default: 0.7,
      doc: "outside-mask factor s (1.0 = no filtering)",
    },
    difference_mode: {
      kind: "enum",
      values: ["reference_uint8", "float_l2"],
      default: "reference_uint8",
      doc: "difference map arithmetic",
    },
    decoder: {
      kind: "enum",
      values: ["vae", "taesd"],
      default: "vae",
      doc: "decoder of the modulated latents",
    },
    batch_bytes: {
      kind: "int", min: 1, default: 2 ** 31,
      doc: "memory budget of one group of modulated samples in bytes (optimized schedule; results do not change)",
    },
  }),
  schedule: {
    kind: "enum",
    values: ["reference", "optimized"],
    default: "reference",
    doc: "reference = code's order of passes",
  },
};

/** Resolved config of one row (the shape of SCHEMA). */
export interface VidsegConfig {
  /** Diffusion backbone (`backbone.*`). */
  backbone: {
    kind: "tiny" | "sd" | "svd";
    weights: string;
    provider: "cpu" | "cuda";
    dtype: "fp32" | "fp16";
  };
  /** Input videos (`dataset.*`). */
  dataset: {
    kind: "camvid" | "vspw" | "cityscapes" | "frames";
    root: string;
    split: string | null;
    clips: "all" | string[];
    max_frames: number | null;
  };
  /** Processing size [W, H]; null = each side rounded down to a multiple of 64. */
  resolution: [number, number] | null;
  /** Noise seed, re-seeded every batch. */
  seed: number;
  /** Noising and sampling (`sampler.*`). */
  sampler: { steps: number; t_m: number; t_f: number; guidance: number };
  /** Features for K-Means/KNN (`features.*`). */
  features: { blocks: number[]; aggregate: boolean; block: number };
  /** First-frame K-Means (`kmeans.*`). */
  kmeans: { k: number; n_init: number; max_iter: number; tol: number; fit: "batch" | "first_frame" };
  /** Frames per diffusion batch and context update. */
  batch_size: number;
  /** Skip the repeated last batch when the batch size divides the clip length. */
  dedupe_last_batch: boolean;
  /** Scene-context KNN (`knn.*`). */
  knn: { k: number };
  /** Correspondence-based refinement (`cbr.*`). */
  cbr: { enabled: boolean; block: number; spatial_threshold: number; abs_threshold: boolean };
  /** Masked modulation (`modulation.*`). */
  modulation: {
    lambda: number;
    block: number;
    attn: "cross" | "self";
    latent_blending: boolean;
    blend_until_end: boolean;
    injection: boolean;
    filter_strength: number;
    difference_mode: "reference_uint8" | "float_l2";
    decoder: "vae" | "taesd";
    batch_bytes: number;
  };
  /** Organisation of the modulated passes (same labels either way). */
  schedule: "reference" | "optimized";
}

/** A fresh copy of all defaults (paths not yet resolved). */
export function schemaDefaults(fields: Record<string, Spec> = SCHEMA): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(fields)) {
    out[k] = spec.kind === "group" ? schemaDefaults(spec.fields) : structuredClone(spec.default);
  }
  return out;
}

/** Every leaf as [dotted path, spec], in schema order. */
export function schemaLeaves(fields: Record<string, Spec> = SCHEMA, prefix = ""): [string, LeafSpec][] {
  const out: [string, LeafSpec][] = [];
  for (const [k, spec] of Object.entries(fields)) {
    if (spec.kind === "group") out.push(...schemaLeaves(spec.fields, `${prefix}${k}.`));
    else out.push([`${prefix}${k}`, spec]);
  }
  return out;
}

/** The spec at a dotted path (a group or a leaf), or undefined. */
export function specAt(dotted: string): Spec | undefined {
  let fields: Record<string, Spec> | undefined = SCHEMA;
  let spec: Spec | undefined;
  for (const part of dotted.split(".")) {
    spec = fields?.[part];
    if (!spec || !Object.hasOwn(fields!, part)) return undefined;
    fields = spec.kind === "group" ? spec.fields : undefined;
  }
  return spec;
}

/** What a spec accepts, in words: "integer ≥ 2", "number in (0, 1]", "one of cpu, cuda", … */
export function expectedText(spec: Spec): string {
  const orNull = "nullable" in spec && spec.nullable ? " or null" : "";
  switch (spec.kind) {
    case "group":
      return "a mapping";
    case "int":
    case "number": {
      const noun = spec.kind === "int" ? "integer" : "number";
      const lo = spec.kind === "number" && spec.minExclusive ? "(" : "[";
      if (spec.min !== undefined && spec.max !== undefined) {
        return `${noun} in ${lo}${spec.min}, ${spec.max}]${orNull}`;
      }
      if (spec.min !== undefined) return `${noun} ${lo === "(" ? ">" : "≥"} ${spec.min}${orNull}`;
      if (spec.max !== undefined) return `${noun} ≤ ${spec.max}${orNull}`;
      return `${noun}${orNull}`;
    }
    case "bool":
      return "true or false";
    case "enum":
      return `one of ${spec.values.join(", ")}`;
    case "string":
      return `a string${orNull}`;
    case "path":
      return `a path${orNull}`;
    case "intList":
      return `a non-empty list of distinct integers in [${spec.min}, ${spec.max}]`;
    case "resolution":
      return "[W, H] with W and H multiples of 64 from 64 to 8192, or null";
    case "clips":
      return `"all" or a non-empty list of distinct clip names`;
  }
}
