/**
 * The repo root (the directory holding deno.json) and path resolution against it: relative paths in a
 * config mean the same files whatever the current directory is.
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

/** Nearest ancestor of `start` that contains deno.json. */
export function findRepoRoot(start: string): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, "deno.json"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no deno.json above ${start}`);
    dir = up;
  }
}

/** The repository root of this checkout. */
export const REPO_ROOT: string = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

/** Absolute path: `~/x` is under $HOME, relative paths are under `root` (default: the repo root). */
export function resolveRepoPath(p: string, root: string = REPO_ROOT): string {
  if (p === "~" || p.startsWith("~/")) return path.join(os.homedir(), p.slice(1));
  return path.resolve(root, p);
}
