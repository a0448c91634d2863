/**
 * This machine's fp32 matrix-multiply throughput through onnxruntime: a single MatMul graph built with the
 * project's GraphBuilder ([n, n] × [n, n], both inputs fed), run a few times; the best run gives GFLOP/s
 * (2n³ floating-point operations per product). The UNet's achieved GFLOP/s is reported as a fraction of it.
 * @module
 */
import { GraphBuilder } from "../backbone/onnx/builder.ts";
import { createSession, type Provider } from "../backbone/runtime.ts";
import { f32 } from "../tensor/tensor.ts";

/** Result of {@link matmulProbe}. */
export interface MatmulProbe {
  n: number;
  runs: number;
  /** Wall time of every timed run (ms), after one warm-up run. */
  ms: number[];
  /** 2n³ / best time, in GFLOP/s. */
  gflops: number;
  threads: number | null;
  provider: Provider;
}

/** Options of {@link matmulProbe}. */
export interface MatmulProbeOptions {
  /** Matrix size (default 1024). */
  n?: number;
  /** Timed runs (default 5). */
  runs?: number;
  provider?: Provider;
  /** Intra-op threads (default: onnxruntime's default, all cores). */
  threads?: number;
}

/** The MatMul model: inputs `a` [n, n] and `b` [n, n], output `c` = a·b. */
export function matmulModel(n: number): Uint8Array {
  const g = new GraphBuilder({ name: "matmul_probe" });
  const a = g.input("a", "F32", [n, n]);
  const b = g.input("b", "F32", [n, n]);
  g.output("c", g.matmul(a, b), "F32", [n, n]);
  return g.toBytes("vidseg matmul probe");
}

/** Measure fp32 MatMul GFLOP/s (best of `runs`). */
export async function matmulProbe(o: MatmulProbeOptions = {}): Promise<MatmulProbe> {
  const n = o.n ?? 1024, runs = o.runs ?? 5, provider = o.provider ?? "cpu";
  const session = await createSession({ bytes: matmulModel(n) }, {
    provider,
    threads: o.threads,
    label: "matmul probe",
  });
  try {
    const fill = (seed: number) => {
      const d = new Float32Array(n * n);
      for (let i = 0; i < d.length; i++) d[i] = ((i * 2654435761 + seed) % 1000) / 1000 - 0.5;
      return f32([n, n], d);
    };
    const feeds = { a: fill(1), b: fill(2) };
    await session.run(feeds); // warm-up: allocations, thread pool start
    const ms: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      await session.run(feeds);
      ms.push(performance.now() - t0);
    }
    const best = Math.min(...ms);
    return { n, runs, ms, gflops: (2 * n ** 3) / (best / 1000) / 1e9, threads: o.threads ?? null, provider };
  } finally {
    await session.release();
  }
}
