/**
 * onnxruntime-node sessions for the backbone: creation from model bytes or a file path (external data
 * needs the path), execution-provider selection, the ONE place where project Tensors and ort.Tensors are
 * converted, and evaluation counters (sample-evaluations per graph variant).
 * @module
 */
import * as os from "node:os";
import * as ort from "onnxruntime-node";
import { fail } from "../errors.ts";
import type { DType, Tensor } from "../tensor/tensor.ts";

/** Execution providers we support. */
export type Provider = "cpu" | "cuda";

/** Options of {@link createSession}. */
export interface SessionOptions {
  /** "cpu" (default) or "cuda". */
  provider?: Provider;
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /** Name used in error messages (the model file or variant). */
  label?: string;
  /** Graph optimisation level (default "all"; "disabled" for a graph onnxruntime already optimised). */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * Write the optimised graph to `path`, its initializers of at least 1 KiB to `dataName` (a file name beside
   * `path`), while creating the session; with `prepacked`, also the weights as the CPU kernels pre-pack them.
   */
  saveOptimized?: { path: string; dataName: string; prepacked?: boolean };
}

const ORT_TYPE: Record<DType, ort.Tensor.Type> = {
  F32: "float32",
  F16: "float16",
  I32: "int32",
  U8: "uint8",
  I64: "int64",
};
const FROM_ORT: Partial<Record<string, DType>> = {
  float32: "F32",
  float16: "F16",
  int32: "I32",
  uint8: "U8",
  int64: "I64",
};

/** Project Tensor → ort.Tensor (shares the buffer, no copy). */
export function toOrt(t: Tensor): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[t.dtype], t.data as never, [...t.shape]);
}

/** ort.Tensor → project Tensor (shares the buffer, no copy). F16 comes back as raw Uint16 bits. */
export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = FROM_ORT[t.type];
  if (!dtype) throw new Error(`runtime: unsupported output element type ${t.type}`);
  let data = t.data as unknown as Tensor["data"];
  if (dtype === "F16" && !(data instanceof Uint16Array)) {
    const d = data as unknown as { buffer: ArrayBuffer; byteOffset: number; length: number };
    data = new Uint16Array(d.buffer, d.byteOffset, d.length);
  }
  return { dtype, shape: [...t.dims], data } as Tensor;
}

/** True when the CUDA execution provider's shared library is installed beside the ORT binding. */
export function cudaAvailable(): boolean {
  return ort.listSupportedBackends?.().some((b) => b.name === "cuda" && b.bundled) ?? false;
}

/** A loaded model: run it with project Tensors. */
export class Session {
  constructor(readonly raw: ort.InferenceSession, readonly label: string, readonly provider: Provider) {}

  /** Graph input names. */
  get inputNames(): readonly string[] {
    return this.raw.inputNames;
  }
  /** Graph output names. */
  get outputNames(): readonly string[] {
    return this.raw.outputNames;
  }

  /** Run with named inputs; returns the requested outputs (default: all). */
  async run(feeds: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = toOrt(v);
    const res = outputs ? await this.raw.run(f, [...outputs]) : await this.raw.run(f);
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(res)) out[k] = fromOrt(v);
    return out;
  }

  /** Free the native session. */
  async release(): Promise<void> {
    await this.raw.release();
  }
}

/**
 * Default intra-op thread count: `$VIDSEG_THREADS` when set (a positive integer), else every core the machine
 * reports.
 */
export function defaultThreads(): number {
  const env = Deno.env.get("VIDSEG_THREADS");
  if (env !== undefined && env !== "") {
    if (!/^[1-9]\d*$/.test(env.trim())) {
      fail("VIDSEG_THREADS", `"${env}" is not a positive integer (expected e.g. 1 or 4)`);
    }
    return Number(env.trim());
  }
  return (globalThis.navigator?.hardwareConcurrency ?? 0) || os.cpus().length || 1;
}

/**
 * Create a session from a model file (`path`, required when the model uses external data: ORT resolves
 * the side file relative to it) or from in-memory bytes. Graph optimisation "all", all cores.
 */
export async function createSession(
  src: { path: string } | { bytes: Uint8Array },
  opts: SessionOptions = {},
): Promise<Session> {
  const provider = opts.provider ?? "cpu";
  const label = opts.label ?? ("path" in src ? src.path : "in-memory model");
  if (provider === "cuda" && !cudaAvailable()) {
    fail(
      "backbone.provider",
      "cuda requested but onnxruntime-node has no CUDA execution provider here; on a machine with CUDA 12 + " +
        "cuDNN 9 run `ONNXRUNTIME_NODE_INSTALL=cuda12 deno run -A node_modules/onnxruntime-node/script/install.js` " +
        "(Deno skips npm install scripts unless allowed), or use provider: cpu",
    );
  }
  if (provider !== "cpu" && provider !== "cuda") {
    fail("backbone.provider", `unknown provider ${provider} (expected cpu or cuda)`);
  }
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: provider === "cuda" ? ["cuda", "cpu"] : ["cpu"],
    graphOptimizationLevel: opts.optimization ?? "all",
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: "sequential",
  };
  if (opts.saveOptimized) {
    so.optimizedModelFilePath = opts.saveOptimized.path;
    // onnxruntime warns that a graph optimised with the CPU's blocked conv layout is machine-specific: the
    // saved form is keyed by CPU model and onnxruntime version for that reason.
    so.logSeverityLevel = 3;
    so.extra = {
      session: {
        optimized_model_external_initializers_file_name: opts.saveOptimized.dataName,
        optimized_model_external_initializers_min_size_in_bytes: "1024",
        save_external_prepacked_constant_initializers: opts.saveOptimized.prepacked ? "1" : "0",
      },
    };
  }
  const raw = "path" in src
    ? await ort.InferenceSession.create(src.path, so)
    : await ort.InferenceSession.create(src.bytes, so);
  return new Session(raw, label, provider);
}

/** Sample-evaluation counters per graph variant (a batch of B samples counts B). */
export class EvalCounters {
  private readonly counts = new Map<string, { calls: number; samples: number; ms: number }>();

  /** Record one call of `variant` on `samples` samples taking `ms` milliseconds. */
  add(variant: string, samples: number, ms = 0): void {
    const c = this.counts.get(variant) ?? { calls: 0, samples: 0, ms: 0 };
    c.calls += 1;
    c.samples += samples;
    c.ms += ms;
    this.counts.set(variant, c);
  }

  /** Sample-evaluations of one variant so far. */
  samples(variant: string): number {
    return this.counts.get(variant)?.samples ?? 0;
  }

  /** All counters: variant → {calls, samples, ms}. */
  snapshot(): Record<string, { calls: number; samples: number; ms: number }> {
    return Object.fromEntries([...this.counts].map(([k, v]) => [k, { ...v }]));
  }

  /** Forget everything. */
  reset(): void {
    this.counts.clear();
  }
}

/** Process-wide counters used by the model wrappers (UNet, VAE, …). */
export const evaluations = new EvalCounters();
