/**
 * Hashing helpers for cache keys and artifact manifests: sha256 of bytes/strings/files and a canonical
 * JSON encoding (sorted object keys) so that equal values always hash equally.
 * @module
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";

/** Hex sha256 of bytes or a UTF-8 string. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex sha256 of a file's content, read in chunks (weights can be gigabytes). */
export function sha256File(path: string): string {
  const h = createHash("sha256");
  const buf = new Uint8Array(4 << 20); // one reused 4 MiB buffer: no per-chunk allocation
  const fd = fs.openSync(path, "r");
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

/**
 * Canonical JSON: object keys sorted at every level, `undefined` members dropped. Non-finite numbers
 * are encoded as strings ("NaN", "Infinity") instead of JSON's lossy `null`, so they stay distinct.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") {
    return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify(String(value));
  }
  if (typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "bigint") return JSON.stringify(value.toString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
  }
  throw new Error(`canonicalJson: cannot encode a ${typeof value}`);
}
