/** Locations for tests: the repo root and the read-only reference material (../shared beside the repo). */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SHARED = Deno.env.get("VIDSEG_SHARED") ?? path.resolve(ROOT, "..", "shared");
