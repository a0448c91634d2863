/**
 * `deno task docs`: regenerate docs/configs.md from the config schema (tests/config/docs_test.ts checks that the
 * committed file equals the generated text).
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../config/paths.ts";
import { CONFIGS_DOC, configsMarkdown } from "../config/docs.ts";
import { runMain } from "./main.ts";

/** The docs command; returns the exit code. */
export function docs(): Promise<number> {
  const file = path.join(REPO_ROOT, CONFIGS_DOC);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, configsMarkdown());
  fs.renameSync(tmp, file); // never a half-written file
  console.log(`wrote ${CONFIGS_DOC}`);
  return Promise.resolve(0);
}

if (import.meta.main) await runMain(docs);
