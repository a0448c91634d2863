/**
 * Test helpers for the conformance sets (tests/fixtures/conformance, tests/fixtures/conformance-svd): reading their
 * safetensors files as float32 or float64, a temporary graph cache per test file, and the README tolerance check.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LazySafetensors } from "../../pipeline/backbone/weights/lazy_safetensors.ts";
import { maxAbs, maxAbsDiff, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../assert.ts";

/** All tensors of a safetensors file by name, widened to float32. */
export function loadF32Tensors(file: string): Record<string, Tensor<"F32">> {
  const f = new LazySafetensors(file);
  const out: Record<string, Tensor<"F32">> = {};
  for (const k of f.headers.keys()) out[k] = toF32(f.read(k));
  f.close();
  return out;
}

/** Every F32 / F64 tensor of `file` as float64 (the project reader has no F64; sgm's schedule values are F64). */
export function readF64Tensors(file: string): Map<string, { shape: number[]; data: Float64Array }> {
  const bytes = Deno.readFileSync(file);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (
    const [k, v] of Object.entries(header) as [
      string,
      { dtype: string; shape: number[]; data_offsets: number[] },
    ][]
  ) {
    if (k === "__metadata__") continue;
    const raw = bytes.slice(8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]).buffer;
    const data = v.dtype === "F64" ? new Float64Array(raw) : Float64Array.from(new Float32Array(raw));
    out.set(k, { shape: v.shape, data });
  }
  return out;
}

/** A fresh graph-cache folder under the system temp dir, removed when the test process ends. */
export function tempGraphCache(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  globalThis.addEventListener("unload", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** README rule max |a − b| ≤ 1e-4·max(1, max|b|); records the diff under `name` in `report`. */
export function closeTo(a: Tensor, b: Tensor<"F32">, name: string, report: Record<string, string>): void {
  const d = maxAbsDiff(toF32(a), b), tol = 1e-4 * Math.max(1, maxAbs(b));
  report[name] = d.toExponential(2);
  assertLess(d, tol, `${name}: max |diff| ${d} > ${tol}`);
}

/**
 * A truncated UNet variant against the full one: no model output (`output`), exactly the `feat` taps, bit-equal to
 * the full variant's, and a smaller graph file.
 */
export function assertTruncatedTaps(
  trunc: { graph: { path: string } },
  full: { graph: { path: string } },
  t: { taps: Record<string, Tensor<"F32">> },
  a: { taps: Record<string, Tensor<"F32">> },
  feat: readonly string[],
  output: unknown,
): void {
  assertEquals(output, undefined);
  assertEquals(Object.keys(t.taps).sort(), [...feat].sort());
  for (const k of feat) assertEquals(maxAbsDiff(t.taps[k], a.taps[k]), 0, `${k} truncated vs full`);
  assert(
    fs.statSync(trunc.graph.path).size < fs.statSync(full.graph.path).size,
    "truncated graph is smaller",
  );
}
