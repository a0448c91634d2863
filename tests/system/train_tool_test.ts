/**
 * The training tool's own test (tools/test_train_tiny_ldm.py: a resumed run equals an uninterrupted one, evaluation
 * frames are refused). Needs Debian python3-torch and ffmpeg; Debian's torch lives with /usr/bin/python3, which is
 * preferred over another python3 earlier on PATH.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert } from "../assert.ts";
import { ROOT } from "../paths.ts";

const PYTHON = fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

Deno.test("tools/test_train_tiny_ldm.py: resume from a checkpoint reproduces an uninterrupted run", async () => {
  const r = await new Deno.Command(PYTHON, {
    args: [path.join(ROOT, "tools", "test_train_tiny_ldm.py")],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
  assert(r.code === 0, `exit ${r.code}\n${out.slice(-2000)}\n${err.slice(-2000)}`);
  assert(out.includes("ok: resumed run == uninterrupted run"), out.slice(-1000));
});
