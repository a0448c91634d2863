/**
 * Config side of `backbone.kind: svd`: the SVD rows of configs/table1.yaml and configs/table2.yaml validate with
 * the SVD settings, table2's SVD rows are optional (left out of a default run, selectable by name), an optional
 * row's error does not block the others, and the backbone fixes which attention is modulated.
 */
import * as path from "node:path";
import { assertEquals, assertThrows } from "../assert.ts";
import { ROOT } from "../paths.ts";
import { loadConfig, parseConfig, selectRows } from "../../pipeline/config/load.ts";
import { UserError } from "../../pipeline/errors.ts";

const T2 = path.join(ROOT, "configs/table2.yaml");

Deno.test("table2: SVD rows A_svd..F_svd are optional, carry the paper's SVD numbers and the SVD settings", () => {
  const t2 = loadConfig(T2);
  assertEquals(t2.rows.map((r) => r.name), ["A", "B", "C", "D", "E", "F"]);
  const svd = selectRows(t2, ["A_svd", "B_svd", "C_svd", "D_svd", "E_svd", "F_svd"]).rows;
  assertEquals(svd.map((r) => r.paper!.mIoU), [26.6, 38.9, 38.6, 39.4, 37.1, 38.2]);
  assertEquals(svd[5].paper, { mIoU: 38.2, mVC8: 92.3, mVC16: 91.3 });
  for (const r of svd) {
    const c = r.config;
    assertEquals(r.optional, true);
    assertEquals([c.backbone.kind, c.backbone.weights], [
      "svd",
      path.join(ROOT, "data/user/stable-video-diffusion-img2vid"),
    ]);
    assertEquals([c.sampler.t_m, c.sampler.t_f, c.sampler.guidance], [17, 24, 2.5]);
    assertEquals([c.modulation.block, c.modulation.attn, c.modulation.blend_until_end], [8, "self", true]);
    assertEquals([c.features.block, c.cbr.block], [8, 7]);
  }
  // The same switches as the SD rows (docs/method.md §12.3).
  const switches = (rows: typeof svd) =>
    rows.map((r) => [
      r.config.batch_size,
      r.config.modulation.latent_blending,
      r.config.modulation.lambda,
      r.config.modulation.filter_strength,
      r.config.features.aggregate,
      r.config.cbr.enabled,
    ]);
  assertEquals(switches(svd), switches(t2.rows));
  // include= puts optional rows into `rows` (file order kept).
  assertEquals(loadConfig(T2, { include: ["B_svd"] }).rows.map((r) => r.name), [
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "B_svd",
  ]);
  assertEquals(loadConfig(T2, { rows: ["F", "A_svd"] }).rows.map((r) => r.name), ["F", "A_svd"]);
});

Deno.test("table1: the SVD rows validate with the SVD settings", () => {
  const t1 = loadConfig(path.join(ROOT, "configs/table1.yaml"));
  const svd = t1.rows.filter((r) => r.config.backbone.kind === "svd");
  assertEquals(svd.map((r) => r.name), ["vspw_svd", "cityscapes_svd", "camvid_svd"]);
  for (const r of svd) {
    const c = r.config;
    assertEquals([c.sampler.t_m, c.sampler.guidance, c.modulation.block, c.modulation.attn], [
      17,
      2.5,
      8,
      "self",
    ]);
    assertEquals([c.modulation.blend_until_end, c.features.block], [true, 8]);
  }
});

const F = "x.yaml";
const TEXT = [
  "defaults: {kmeans: {k: 3}}",
  "rows:",
  "  sd: {}",
  "  svd: {optional: true, backbone: {kind: svd}, modulation: {attn: self, block: 8}}",
].join("\n");

Deno.test("config: modulation.attn must match backbone.kind; an unselected optional row's error waits", () => {
  const err = (text: string, opts = {}) => {
    try {
      parseConfig(text, F, opts);
    } catch (e) {
      if (e instanceof UserError) return e.message;
      throw e;
    }
    return "no error";
  };
  assertEquals(
    err("rows:\n  a: {backbone: {kind: svd}}"),
    "x.yaml: rows.a.backbone.kind: svd needs modulation.attn self, got cross (SVD modulates self-attention)",
  );
  assertEquals(
    err("rows:\n  a: {modulation: {attn: self}}"),
    "x.yaml: rows.a.modulation.attn: expected cross with backbone.kind tiny, got self (SD modulates cross-attention)",
  );
  assertEquals(
    err(TEXT, { set: ["modulation.attn=cross"] }),
    "no error",
    "the optional svd row's conflict must not block the sd row",
  );
  const c = parseConfig(TEXT, F, { set: ["modulation.attn=cross"] });
  assertEquals(c.rows.map((r) => r.name), ["sd"]);
  assertThrows(
    () => selectRows(c, ["svd"]),
    UserError,
    "--set modulation.attn: expected self with backbone.kind svd, got cross",
  );
  assertEquals(
    err(TEXT, { set: ["modulation.attn=cross"], rows: ["svd"] }),
    "--set modulation.attn: expected self with backbone.kind svd, got cross (SVD modulates self-attention)",
  );
  assertEquals(err("rows:\n  a: {optional: 1}"), "x.yaml: rows.a.optional: expected true or false, got 1");
});
