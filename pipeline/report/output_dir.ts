/**
 * Output folders written whole or not at all: a command writes into a staging folder beside its target
 * (`.<name>.<pid>.partial`, same file system, so renames are atomic) and swaps it in at the end. A finished
 * folder holds exactly that run's files; a failed or interrupted run leaves the previous folder as it was.
 * Staging folders of dead processes are removed the next time the same target is written.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UserError } from "../errors.ts";

/** A staging folder for `target`; `commit()` swaps it in, `discard()` removes it. */
export interface StagedDir {
  /** Where to write. */
  readonly dir: string;
  readonly target: string;
  /** Replace `target` by the staging folder (the previous target is removed). */
  commit(): void;
  /** Remove the staging folder (the target is untouched). */
  discard(): void;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

/** Remove staging/old folders of `target` left by processes that no longer run. */
function sweep(target: string): void {
  const parent = path.dirname(target), base = path.basename(target);
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  const re = new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.(\\d+)\\.(partial|old)$`);
  for (const n of names) {
    const m = re.exec(n);
    if (m && Number(m[1]) !== Deno.pid && !alive(Number(m[1]))) {
      fs.rmSync(path.join(parent, n), { recursive: true, force: true });
    }
  }
}

/** Create the staging folder of `target` (its parent is created). `option` names the flag in errors. */
export function stageDir(target: string, option: string): StagedDir {
  const abs = path.resolve(target);
  const parent = path.dirname(abs), base = path.basename(abs);
  const dir = path.join(parent, `.${base}.${Deno.pid}.partial`);
  const old = path.join(parent, `.${base}.${Deno.pid}.old`);
  const wrap = (what: string, e: unknown): never => {
    throw new UserError(
      `${option} ${abs}: cannot ${what} (${
        String((e as Error)?.message ?? e).split("\n")[0]
      }); expected a writable folder`,
    );
  };
  try {
    fs.mkdirSync(parent, { recursive: true });
    sweep(abs);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
  } catch (e) {
    wrap("create the output folder", e);
  }
  let done = false;
  return {
    dir,
    target: abs,
    commit() {
      if (done) return;
      let moved = false;
      try {
        if (fs.existsSync(abs)) {
          fs.renameSync(abs, old);
          moved = true;
        }
        fs.renameSync(dir, abs);
        done = true;
      } catch (e) {
        if (moved) fs.renameSync(old, abs); // put the previous results back
        wrap("replace the output folder", e);
      }
      try {
        fs.rmSync(old, { recursive: true, force: true });
      } catch {
        // The new results are in place; a previous folder we may not delete is swept by a later run.
      }
    },
    discard() {
      if (done) return;
      done = true;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run `write(stagingDir)` and swap the result in; on any error the staging folder is removed. */
export async function writeWhole<T>(
  target: string,
  option: string,
  write: (dir: string) => Promise<T>,
): Promise<T> {
  const staged = stageDir(target, option);
  try {
    const out = await write(staged.dir);
    staged.commit();
    return out;
  } catch (e) {
    staged.discard();
    throw e;
  }
}
