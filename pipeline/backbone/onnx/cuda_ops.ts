/**
 * Which operator types onnxruntime's CUDA execution provider implements, for the opset our graphs declare
 * (ai.onnx 17, com.microsoft 1), and the check that a graph uses only those: a graph that passes runs unchanged
 * on CUDA, no node falling back to the CPU (which would copy activations between devices at every such node).
 *
 * Source: the kernel registry of onnxruntime's CUDA provider, microsoft/onnxruntime
 * `onnxruntime/core/providers/cuda/cuda_execution_provider.cc` (`RegisterCudaKernels`; commit 0018ddb68e9b)
 * for the ai.onnx domain and `onnxruntime/contrib_ops/cuda/cuda_contrib_kernels.cc` for com.microsoft. An op is
 * listed when a float kernel is registered for a version range containing the op's version at opset 17 (the
 * "since" version noted beside it). The list covers the ops the project's builders emit and their common
 * neighbours; it is not the whole registry. CPU-only contrib ops (e.g. com.microsoft NchwcConv, the blocked
 * layout onnxruntime's CPU optimiser creates) are deliberately absent: graphs are checked before optimisation.
 * @module
 */
import { modelOpTypes, type OpType } from "./op_list.ts";

/** ai.onnx op type → the version whose CUDA kernel serves opset 17. */
export const CUDA_ONNX_OPS: Readonly<Record<string, number>> = {
  Abs: 13,
  Add: 14,
  Cast: 13,
  Clip: 13,
  Concat: 13,
  Conv: 11,
  Cos: 7,
  Div: 14,
  Equal: 13,
  Erf: 13,
  Exp: 13,
  Expand: 13,
  Gather: 13,
  Gemm: 13,
  Identity: 14,
  InstanceNormalization: 6,
  LayerNormalization: 17,
  Log: 13,
  MatMul: 13,
  Mul: 14,
  Neg: 13,
  Pad: 13,
  Pow: 15,
  ReduceMean: 13,
  ReduceSum: 13,
  Relu: 14,
  Reshape: 14,
  Resize: 13,
  Shape: 15,
  Sigmoid: 13,
  Sin: 7,
  Slice: 13,
  Softmax: 13,
  Split: 13,
  Sqrt: 13,
  Sub: 14,
  Tanh: 13,
  Transpose: 13,
  Unsqueeze: 13,
  Where: 16,
};

/** com.microsoft contrib ops with CUDA kernels (float and float16). */
export const CUDA_MS_OPS: ReadonlySet<string> = new Set([
  "MultiHeadAttention",
  "Attention",
  "BiasGelu",
  "FastGelu",
  "Gelu",
  "GroupNorm",
  "SkipLayerNormalization",
]);

/** True when onnxruntime's CUDA provider has a kernel for `op`. */
export function hasCudaKernel(op: OpType): boolean {
  if (op.domain === "") return op.opType in CUDA_ONNX_OPS;
  if (op.domain === "com.microsoft") return CUDA_MS_OPS.has(op.opType);
  return false;
}

/** Operator types of the encoded model without a CUDA kernel ("domain:OpType"; empty when it runs on CUDA). */
export function opsWithoutCudaKernel(model: Uint8Array): string[] {
  return modelOpTypes(model).filter((o) => !hasCudaKernel(o)).map((o) => `${o.domain}:${o.opType}`);
}
