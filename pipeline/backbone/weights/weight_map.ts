/**
 * Weight sources for model builders. A model builder derives the expected parameter set
 * (key → shape, a {@link ParamSpec}) from its config; a source is validated against it once (missing,
 * extra or mis-shaped keys → one UserError line naming the file and the key) and then hands out tensors
 * by key while the graph is built.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";
import { numel, type Tensor } from "../../tensor/tensor.ts";
import { LazySafetensors } from "./lazy_safetensors.ts";

/** Expected parameters: key → shape, in build order. */
export type ParamSpec = Map<string, readonly number[]>;

/** Where a model builder gets its weights from. */
export interface WeightSource {
  /** The tensor of `key` (F32 or F16), already validated against the spec. */
  take(key: string): Tensor;
  /** Stable identity for graph caches (paths, sizes, mtimes). */
  readonly identity: string;
  /** Human name (file or folder) for messages. */
  readonly label: string;
  /** Release files. */
  close(): void;
}

/** Options of {@link SafetensorsWeights.validate}. */
export interface ValidateOptions {
  /** The config file the spec was derived from (named in messages). */
  configPath: string;
  /** Keys in the file that may be ignored (e.g. legacy buffers such as position_ids). */
  ignore?: (key: string) => boolean;
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Weights from one safetensors file or a sharded set (`*.safetensors.index.json`). */
export class SafetensorsWeights implements WeightSource {
  private readonly files: LazySafetensors[] = [];
  private readonly where = new Map<string, LazySafetensors>();
  readonly identity: string;

  /** Open `file` (a .safetensors, or a .safetensors.index.json listing shards). */
  constructor(readonly label: string) {
    if (label.endsWith(".index.json")) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(fs.readFileSync(label, "utf8"));
      } catch (e) {
        fail(label, `cannot read the shard index (${(e as Error).message.split("\n")[0]})`);
      }
      if (!index.weight_map || typeof index.weight_map !== "object") {
        fail(label, 'no "weight_map" object in the shard index');
      }
      const shards = new Map<string, LazySafetensors>();
      for (const [key, shard] of Object.entries(index.weight_map)) {
        let f = shards.get(shard);
        if (!f) {
          f = new LazySafetensors(path.join(path.dirname(label), shard));
          shards.set(shard, f);
          this.files.push(f);
        }
        if (!f.headers.has(key)) fail(f.path, `missing tensor "${key}" (listed in ${label})`);
        this.where.set(key, f);
      }
    } else {
      const f = new LazySafetensors(label);
      this.files.push(f);
      for (const k of f.headers.keys()) this.where.set(k, f);
    }
    this.identity = this.files.map((f) => `${path.resolve(f.path)}:${f.size}:${Math.round(f.mtimeMs)}`).join(
      "|",
    );
  }

  /** Keys present in the weights. */
  keys(): string[] {
    return [...this.where.keys()];
  }

  /** Shape of `key` as stored (undefined if absent). */
  shapeOf(key: string): readonly number[] | undefined {
    return this.where.get(key)?.headers.get(key)?.shape;
  }

  /** Check the stored key set and shapes against `spec`; the first problem is thrown as one line. */
  validate(spec: ParamSpec, opts: ValidateOptions): void {
    for (const [key, shape] of spec) {
      const f = this.where.get(key);
      if (!f) {
        fail(this.label, `missing tensor "${key}" (expected shape ${fmt(shape)} from ${opts.configPath})`);
      }
      const got = f.headers.get(key)!.shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        fail(f.path, `tensor "${key}" has shape ${fmt(got)} but ${opts.configPath} implies ${fmt(shape)}`);
      }
    }
    const extra = this.keys().filter((k) => !spec.has(k) && !(opts.ignore?.(k)));
    if (extra.length) {
      const f = this.where.get(extra[0])!;
      fail(
        f.path,
        `unexpected tensor "${extra[0]}" ${
          fmt(f.headers.get(extra[0])!.shape)
        } is not part of the model described by ${opts.configPath}` +
          (extra.length > 1 ? ` (${extra.length} unexpected tensors in total)` : ""),
      );
    }
  }

  take(key: string): Tensor {
    const f = this.where.get(key);
    if (!f) fail(this.label, `missing tensor "${key}"`);
    return f.read(key);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/**
 * Deterministic random weights for a spec (benchmarks and shape tests; never a real model): Linear/Conv
 * weights ~ U(−a, a) with a = √(3/fan_in) (unit-variance activations), norm weights 1, biases 0.
 */
export class RandomWeights implements WeightSource {
  readonly label: string;
  readonly identity: string;
  constructor(private readonly spec: ParamSpec, private readonly seed = 1, name = "random") {
    this.label = `<${name} weights>`;
    this.identity = `random:${seed}:${[...spec].map(([k, s]) => `${k}=${s}`).join(",").length}:${spec.size}`;
  }

  take(key: string): Tensor {
    const shape = this.spec.get(key);
    if (!shape) fail(this.label, `missing tensor "${key}"`);
    const n = numel(shape), data = new Float32Array(n);
    const isNorm = /norm/.test(key);
    if (key.endsWith(".bias")) return { dtype: "F32", shape: [...shape], data };
    if (isNorm && shape.length === 1) return { dtype: "F32", shape: [...shape], data: data.fill(1) };
    const fanIn = shape.length > 1 ? n / shape[0] : 1;
    const a = Math.sqrt(3 / fanIn);
    let s = (this.seed * 2654435761 + hashKey(key)) >>> 0;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      data[i] = ((s >>> 0) / 4294967296 * 2 - 1) * a;
    }
    return { dtype: "F32", shape: [...shape], data };
  }

  close(): void {}
}

function hashKey(k: string): number {
  let h = 2166136261;
  for (let i = 0; i < k.length; i++) h = Math.imul(h ^ k.charCodeAt(i), 16777619);
  return (h >>> 0) || 1;
}
