/**
 * The ONNX graph builder in one import: `GraphBuilder` (layers), `GraphCore` (bookkeeping), model writing.
 * See the usage example at the top of `./builder.ts`.
 * @module
 */
export { type ConvParams, GraphBuilder, type LinearParams, type NormParams, transpose2d } from "./builder.ts";
export {
  type Attr,
  type ElemType,
  type ExternalDataOptions,
  floatAttr,
  GraphCore,
  type GraphOptions,
  OPSET,
} from "./graph.ts";
export { tempPath, writeModel } from "./io.ts";
export { type Chunks, type Dim, flatten } from "./proto.ts";
