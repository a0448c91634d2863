import { assertEquals } from "../assert.ts";
import { expectedText, schemaDefaults, schemaLeaves, specAt } from "../../pipeline/config/schema.ts";
import { editDistance, suggest } from "../../pipeline/config/suggest.ts";

Deno.test("schema: every key of the common brief is present, with the §11 SD defaults", () => {
  const d = schemaDefaults() as any;
  assertEquals(schemaLeaves().map(([p]) => p), [
    "backbone.kind",
    "backbone.weights",
    "backbone.provider",
    "backbone.dtype",
    "dataset.kind",
    "dataset.root",
    "dataset.split",
    "dataset.clips",
    "dataset.max_frames",
    "resolution",
    "seed",
    "sampler.steps",
    "sampler.t_m",
    "sampler.t_f",
    "sampler.guidance",
    "features.blocks",
    "features.aggregate",
    "features.block",
    "kmeans.k",
    "kmeans.n_init",
    "kmeans.max_iter",
    "kmeans.tol",
    "kmeans.fit",
    "batch_size",
    "dedupe_last_batch",
    "knn.k",
    "cbr.enabled",
    "cbr.block",
    "cbr.spatial_threshold",
    "cbr.abs_threshold",
    "modulation.lambda",
    "modulation.block",
    "modulation.attn",
    "modulation.latent_blending",
    "modulation.blend_until_end",
    "modulation.injection",
    "modulation.filter_strength",
    "modulation.difference_mode",
    "modulation.decoder",
    "modulation.batch_bytes",
    "schedule",
  ]);
  assertEquals(d.sampler, { steps: 25, t_m: 22, t_f: 24, guidance: 5 });
  assertEquals(d.features, { blocks: [6, 7, 8], aggregate: true, block: 7 });
  assertEquals(d.kmeans, { k: 20, n_init: 10, max_iter: 300, tol: 1e-4, fit: "batch" });
  assertEquals([d.batch_size, d.knn.k, d.seed, d.resolution, d.dedupe_last_batch], [14, 4, 1, null, false]);
  assertEquals(d.cbr, { enabled: true, block: 7, spatial_threshold: 1, abs_threshold: false });
  assertEquals(d.modulation, {
    lambda: 50,
    block: 7,
    attn: "cross",
    latent_blending: true,
    blend_until_end: false,
    injection: true,
    filter_strength: 0.7,
    difference_mode: "reference_uint8",
    decoder: "vae",
    batch_bytes: 2 ** 31,
  });
  assertEquals(d.schedule, "reference");
});

Deno.test("schema: expected-value phrases", () => {
  assertEquals(expectedText(specAt("kmeans.k")!), "integer ≥ 2");
  assertEquals(expectedText(specAt("modulation.filter_strength")!), "number in (0, 1]");
  assertEquals(expectedText(specAt("modulation.lambda")!), "number > 0");
  assertEquals(expectedText(specAt("dataset.max_frames")!), "integer ≥ 1 or null");
  assertEquals(expectedText(specAt("cbr.block")!), "integer in [0, 11]");
  assertEquals(specAt("cbr.nope"), undefined);
  assertEquals(specAt("toString"), undefined);
});

Deno.test("suggest: edit distance and suggestion choice", () => {
  assertEquals([
    editDistance("kitten", "sitting"),
    editDistance("ab", "ba"),
    editDistance("", "abc"),
    editDistance("K", "k"),
  ], [3, 1, 3, 0]);
  assertEquals(
    suggest("treshold", ["enabled", "block", "spatial_threshold", "abs_threshold"], "cbr."),
    "cbr.spatial_threshold",
  );
  assertEquals(suggest("blok", ["enabled", "block"], "cbr."), "cbr.block");
  assertEquals(suggest("qqq", ["enabled", "block"], "cbr."), null);
  assertEquals(suggest("knn_kk", [], "", ["knn", "knn.k", "kmeans.k"]), "knn.k");
});
