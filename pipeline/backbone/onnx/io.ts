/**
 * Writing encoded models to disk atomically (temp file + rename), streaming the protobuf parts so a
 * model is never held twice in memory.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Chunks } from "./proto.ts";

/** A temp name beside `target` that no other process uses. */
export function tempPath(target: string): string {
  return `${target}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Stream `model` to `target` atomically (parent directory created). */
export function writeModel(model: Chunks, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPath(target);
  const fd = fs.openSync(tmp, "w");
  try {
    for (const p of model.parts) {
      let w = 0;
      while (w < p.length) w += fs.writeSync(fd, p, w, p.length - w);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
}
