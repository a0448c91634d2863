import * as path from "node:path";
import { assertEquals, assertThrows } from "../assert.ts";
import { loadConfig, parseConfig } from "../../pipeline/config/load.ts";
import { UserError } from "../../pipeline/errors.ts";
import { ROOT } from "../paths.ts";

const F = "configs/x.yaml";
/** The one-line message of a config mistake. */
function error(yaml: string, opts: Parameters<typeof parseConfig>[2] = {}): string {
  return assertThrows(() => parseConfig(yaml, F, opts), UserError).message;
}
const ROWS = "rows:\n  A: {}\n  C:\n    title: c\n";

Deno.test("config: unknown keys name the path and suggest the closest key", () => {
  assertEquals(
    error("rows:\n  C:\n    cbr:\n      treshold: 2\n"),
    `${F}: rows.C.cbr.treshold: unknown key (did you mean cbr.spatial_threshold?)`,
  );
  assertEquals(
    error("rows:\n  C:\n    cbr_treshold: 2\n"),
    `${F}: rows.C.cbr_treshold: unknown key (did you mean cbr.spatial_threshold?)`,
  );
  assertEquals(
    error("defaults:\n  kmean: {k: 3}\n"),
    `${F}: defaults.kmean: unknown key (did you mean kmeans?)`,
  );
  assertEquals(
    error("defaults:\n  sampler: {stpes: 3}\n"),
    `${F}: defaults.sampler.stpes: unknown key (did you mean sampler.steps?)`,
  );
  assertEquals(
    error("rows:\n  A: {papr: {mIoU: 1}}\n"),
    `${F}: rows.A.papr: unknown key (did you mean paper?)`,
  );
  assertEquals(
    error("rows:\n  A: {paper: {mVC9: 1}}\n"),
    `${F}: rows.A.paper.mVC9: unknown key (did you mean paper.mVC8?)`,
  );
  assertEquals(error("default:\n  seed: 1\n"), `${F}: default: unknown key (did you mean defaults?)`);
  assertEquals(error("defaults:\n  zzzzzz: 1\n"), `${F}: defaults.zzzzzz: unknown key`);
});

Deno.test("config: wrong types", () => {
  assertEquals(
    error('rows:\n  C:\n    kmeans: {k: "20"}\n'),
    `${F}: rows.C.kmeans.k: expected integer ≥ 2, got "20"`,
  );
  assertEquals(
    error("defaults:\n  kmeans: {k: 2.5}\n"),
    `${F}: defaults.kmeans.k: expected integer ≥ 2, got 2.5`,
  );
  assertEquals(
    error("defaults:\n  cbr: {enabled: yes}\n"),
    `${F}: defaults.cbr.enabled: expected true or false, got "yes"`,
  );
  assertEquals(
    error("defaults:\n  backbone: {kind: sd3}\n"),
    `${F}: defaults.backbone.kind: expected one of tiny, sd, svd, got "sd3"`,
  );
  assertEquals(error("defaults:\n  sampler: 5\n"), `${F}: defaults.sampler: expected a mapping, got 5`);
  assertEquals(
    error("defaults:\n  features: {blocks: [6, 6]}\n"),
    `${F}: defaults.features.blocks: expected a non-empty list of distinct integers in [0, 11], got [6, 6]`,
  );
  assertEquals(
    error("defaults:\n  resolution: [320, 250]\n"),
    `${F}: defaults.resolution: expected [W, H] with W and H multiples of 64 from 64 to 8192, or null, got [320, 250]`,
  );
  assertEquals(
    error("defaults:\n  dataset: {clips: some}\n"),
    `${F}: defaults.dataset.clips: expected "all" or a non-empty list of distinct clip names, got "some"`,
  );
  assertEquals(
    error("rows:\n  A: {paper: {mIoU: high}}\n"),
    `${F}: rows.A.paper.mIoU: expected number in [0, 100] or null, got "high"`,
  );
});

Deno.test("config: out-of-range values", () => {
  assertEquals(
    error("defaults:\n  kmeans: {k: 1}\n"),
    `${F}: defaults.kmeans.k: expected integer ≥ 2, got 1`,
  );
  assertEquals(
    error("defaults:\n  batch_size: 0\n"),
    `${F}: defaults.batch_size: expected integer ≥ 1, got 0`,
  );
  assertEquals(
    error("defaults:\n  modulation: {filter_strength: 0}\n"),
    `${F}: defaults.modulation.filter_strength: expected number in (0, 1], got 0`,
  );
  assertEquals(
    error("defaults:\n  modulation: {filter_strength: 1.5}\n"),
    `${F}: defaults.modulation.filter_strength: expected number in (0, 1], got 1.5`,
  );
  assertEquals(
    error("defaults:\n  features: {block: 12}\n"),
    `${F}: defaults.features.block: expected integer in [0, 11], got 12`,
  );
  assertEquals(
    error("defaults:\n  modulation: {lambda: .inf}\n"),
    `${F}: defaults.modulation.lambda: expected number > 0, got .inf`,
  );
});

Deno.test("config: cross-field rules blame the key that was set", () => {
  assertEquals(
    error("rows:\n  C:\n    sampler: {t_m: 25}\n"),
    `${F}: rows.C.sampler.t_m: expected integer < sampler.steps (25), got 25`,
  );
  assertEquals(
    error("rows:\n  C:\n    sampler: {t_f: 20}\n"),
    `${F}: rows.C.sampler.t_f: expected integer ≥ sampler.t_m (22), got 20`,
  );
  // steps set in defaults, t_m only defaulted: the steps setting is the mistake.
  assertEquals(
    error("defaults:\n  sampler: {steps: 10}\n"),
    `${F}: defaults.sampler.steps: expected integer > sampler.t_m (22), got 10`,
  );
  // The row overrides the default t_m: the row is more specific.
  assertEquals(
    error("defaults:\n  sampler: {steps: 30, t_f: 29}\nrows:\n  B: {sampler: {t_m: 29, t_f: 28}}\n"),
    `${F}: rows.B.sampler.t_f: expected integer ≥ sampler.t_m (29), got 28`,
  );
});

Deno.test("config: YAML syntax errors give line:col", () => {
  assertEquals(
    error("defaults:\n  seed: [1, 2\n"),
    `${F}:3:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
  );
  assertEquals(
    error("defaults:\n  seed: 1\n  seed: 2\n"),
    `${F}:3:3: YAML syntax error: Map keys must be unique`,
  );
  assertEquals(
    error("rows:\n  A: {}\n  - B\n"),
    `${F}:3:1: YAML syntax error: A block sequence may not be used as an implicit map key`,
  );
});

Deno.test("config: file-level shape errors", () => {
  assertEquals(error("- a\n"), `${F}: expected a mapping with defaults and rows, got ["a"]`);
  assertEquals(error("rows: []\n"), `${F}: rows: expected a mapping of row names to overrides, got []`);
  assertEquals(
    error("rows:\n  a b: {}\n"),
    `${F}: rows.a b: expected a row name of letters, digits, "_", "." or "-"`,
  );
  assertEquals(
    assertThrows(() => loadConfig("configs/nope.yaml"), UserError).message,
    "configs/nope.yaml: config file not found",
  );
});

Deno.test("config: defaults + rows deep-merge over the schema defaults", () => {
  const c = parseConfig(
    "title: T\ndefaults:\n  kmeans: {k: 7}\n  cbr: {enabled: false}\nrows:\n  A: {}\n  B:\n    title: b\n    paper: {mIoU: 40}\n    kmeans: {n_init: 2}\n    features: {blocks: [7]}\n",
    F,
  );
  assertEquals(c.name, "x");
  assertEquals(c.title, "T");
  assertEquals(c.rows.map((r) => r.name), ["A", "B"]);
  const [a, b] = c.rows;
  assertEquals([a.config.kmeans.k, a.config.kmeans.n_init, a.config.cbr.enabled], [7, 10, false]);
  assertEquals([b.config.kmeans.k, b.config.kmeans.n_init, b.config.features.blocks], [7, 2, [7]]);
  assertEquals(b.title, "b");
  assertEquals(b.paper, { mIoU: 40, mVC8: null, mVC16: null });
  assertEquals([a.title, a.paper], [null, null]);
  // No rows: one row named "default".
  assertEquals(parseConfig("defaults: {seed: 3}\n", F).rows.map((r) => [r.name, r.config.seed]), [[
    "default",
    3,
  ]]);
});

Deno.test("config: relative paths resolve against the repo root, not the cwd", () => {
  const c = parseConfig("defaults:\n  backbone: {weights: data/models/w}\n  dataset: {root: /abs/data}\n", F);
  assertEquals(c.rows[0].config.backbone.weights, path.join(ROOT, "data/models/w"));
  assertEquals(c.rows[0].config.dataset.root, "/abs/data");
});

Deno.test("config: --set overrides are parsed as YAML and validated the same way", () => {
  const c = parseConfig(ROWS, F, {
    set: [
      "backbone.weights=/path/to/sd21",
      "kmeans.k=5",
      "resolution=[512, 384]",
      "rows.C.cbr.enabled=false",
      "dataset.max_frames=null",
    ],
  });
  for (const r of c.rows) {
    assertEquals([
      r.config.backbone.weights,
      r.config.kmeans.k,
      r.config.resolution,
      r.config.dataset.max_frames,
    ], ["/path/to/sd21", 5, [512, 384], null]);
  }
  assertEquals(c.rows.map((r) => r.config.cbr.enabled), [true, false]);
  assertEquals(
    error(ROWS, { set: ["cbr.treshold=1"] }),
    "--set cbr.treshold: unknown key (did you mean cbr.spatial_threshold?)",
  );
  assertEquals(error(ROWS, { set: ["kmeans.k=1"] }), "--set kmeans.k: expected integer ≥ 2, got 1");
  assertEquals(error(ROWS, { set: ['kmeans.k="20"'] }), '--set kmeans.k: expected integer ≥ 2, got "20"');
  assertEquals(
    error(ROWS, { set: ["sampler.t_m=30"] }),
    "--set sampler.t_m: expected integer < sampler.steps (25), got 30",
  );
  assertEquals(error(ROWS, { set: ["kmeans.k"] }), '--set: expected KEY=VALUE, got "kmeans.k"');
  assertEquals(error(ROWS, { set: ["rows.Z.seed=2"] }), '--set rows.Z.seed: unknown row "Z" (rows: A, C)');
  assertEquals(
    error(ROWS, { set: ["sampler={steps: 0}"] }),
    "--set sampler.steps: expected integer ≥ 1, got 0",
  );
});

Deno.test("config: --rows selects rows and rejects unknown names", () => {
  assertEquals(parseConfig(ROWS, F, { rows: ["C"] }).rows.map((r) => r.name), ["C"]);
  assertEquals(error(ROWS, { rows: ["C", "G"] }), `--rows: unknown row "G" (${F} has rows A, C)`);
});

Deno.test("config: the shipped configs load; table2 rows match docs/method.md §12.3", () => {
  const t2 = loadConfig(path.join(ROOT, "configs/table2.yaml"));
  const sw = t2.rows.map((r) => {
    const c = r.config;
    const mm = c.modulation.latent_blending && c.modulation.lambda === 50 &&
      c.modulation.filter_strength === 0.7;
    const noMm = !c.modulation.latent_blending && c.modulation.lambda === 10 &&
      c.modulation.filter_strength === 1;
    if (!mm && !noMm) throw new Error(`row ${r.name}: inconsistent masked-modulation switch`);
    return [r.name, c.batch_size, mm, c.features.aggregate, c.cbr.enabled];
  });
  assertEquals(sw, [
    ["A", 1, false, false, false],
    ["B", 14, false, false, false],
    ["C", 14, true, false, false],
    ["D", 14, true, true, false],
    ["E", 14, true, false, true],
    ["F", 14, true, true, true],
  ]);
  assertEquals(t2.rows.map((r) => r.paper!.mIoU), [33.4, 43.4, 45.6, 46.6, 47.4, 46.5]);
  assertEquals(t2.rows[5].paper, { mIoU: 46.5, mVC8: 89.8, mVC16: 88.4 });
  const d = t2.rows[0].config;
  assertEquals([d.backbone.kind, d.backbone.weights, d.dataset.root, d.resolution], [
    "tiny",
    path.join(ROOT, "data/models/tiny-ldm"),
    path.join(ROOT, "data/camvid"),
    [256, 192],
  ]);
  assertEquals([d.sampler.steps, d.sampler.t_m, d.sampler.t_f, d.sampler.guidance, d.kmeans.k], [
    25,
    22,
    24,
    5,
    20,
  ]);
  const t1 = loadConfig(path.join(ROOT, "configs/table1.yaml"));
  assertEquals(t1.rows.map((r) => `${r.config.dataset.kind}/${r.config.backbone.kind}`), [
    "vspw/sd",
    "vspw/svd",
    "cityscapes/sd",
    "cityscapes/svd",
    "camvid/sd",
    "camvid/svd",
  ]);
  assertEquals(t1.rows.map((r) => r.paper!.mIoU), [60.6, 53.2, 37.3, 36.2, 20.6, 16.6]);
  const small = loadConfig(path.join(ROOT, "configs/small.yaml"));
  assertEquals(small.rows.length, 2);
  assertEquals(small.rows[0].config.dataset.max_frames, 14);
});
