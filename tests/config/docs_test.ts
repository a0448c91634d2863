/** docs/configs.md is the generated reference of every config key (`deno task docs`), never stale. */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { CONFIGS_DOC, configsMarkdown } from "../../pipeline/config/docs.ts";
import { expectedText, schemaLeaves } from "../../pipeline/config/schema.ts";

Deno.test("docs: docs/configs.md equals the text generated from the schema (run `deno task docs` after a schema change)", () => {
  const committed = fs.readFileSync(path.join(ROOT, CONFIGS_DOC), "utf8");
  assertEquals(committed, configsMarkdown());
});

Deno.test("docs: configs.md has one row per schema key with its accepted values and default", () => {
  const rows = configsMarkdown().split("\n").filter((l) =>
    /^\| `[a-z_.]+` \|/.test(l) && !l.includes("VIDSEG_")
  );
  const leaves = schemaLeaves();
  assertEquals(rows.length, leaves.length);
  for (const [key, spec] of leaves) {
    const row = rows.find((r) => r.startsWith(`| \`${key}\` |`));
    assert(row, `a row for ${key}`);
    assert(row.includes(expectedText(spec).replaceAll("|", "\\|")), `${key}: accepted values`);
  }
  const tm = rows.find((r) => r.startsWith("| `sampler.t_m` |"))!;
  assertEquals(tm.split(" | ").slice(1, 3), ["integer ≥ 0", "`22`"]);
  const blocks = rows.find((r) => r.startsWith("| `features.blocks` |"))!;
  assert(blocks.includes("`[6, 7, 8]`"), blocks);
});
