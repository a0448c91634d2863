/**
 * The operator types an encoded ONNX model uses (ModelProto.graph → NodeProto op_type and domain), read from the
 * model's bytes: what an execution provider must implement to run the graph unchanged.
 * @module
 */
import { fields } from "./relocate.ts";

const dec = new TextDecoder();

/** One operator type: ONNX domain ("" = ai.onnx) and op type. */
export interface OpType {
  domain: string;
  opType: string;
}

/** Sorted, de-duplicated operator types of the model in `bytes` (nodes of the main graph). */
export function modelOpTypes(bytes: Uint8Array): OpType[] {
  const seen = new Map<string, OpType>();
  for (const mf of fields(bytes)) {
    if (mf.no !== 7 || !mf.body) continue;
    for (const gf of fields(bytes, mf.body[0], mf.body[1])) {
      if (gf.no !== 1 || !gf.body) continue;
      let opType = "", domain = "";
      for (const nf of fields(bytes, gf.body[0], gf.body[1])) {
        if (nf.no === 4 && nf.body) opType = dec.decode(bytes.subarray(...nf.body));
        if (nf.no === 7 && nf.body) domain = dec.decode(bytes.subarray(...nf.body));
      }
      if (domain === "ai.onnx") domain = "";
      seen.set(`${domain}:${opType}`, { domain, opType });
    }
  }
  return [...seen.values()].sort((a, b) =>
    `${a.domain}:${a.opType}`.localeCompare(`${b.domain}:${b.opType}`)
  );
}
