import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import {
  defaultUnits,
  registeredStages,
  registerStages,
  registerUnitResolver,
  resolveUnits,
} from "../../pipeline/dag/registry.ts";
import { orderStages } from "../../pipeline/dag/plan.ts";
import type { Stage } from "../../pipeline/dag/stage.ts";
import { UserError } from "../../pipeline/errors.ts";
import { DATA } from "../paths.ts";
import { tempDir } from "./fixtures/util.ts";

const stage = (name: string, upstream: string[] = []): Stage => ({
  name,
  version: 1,
  params: [],
  upstream,
  run: () => Promise.resolve({ tensors: {}, json: {} }),
});

Deno.test("registry: registration is idempotent per object and refuses a different stage under a taken name", () => {
  const a = stage("regtest_a"), b = stage("regtest_b", ["regtest_a"]);
  registerStages(b, a);
  registerStages(a);
  const names = registeredStages().map((s) => s.name);
  assert(names.indexOf("regtest_a") < names.indexOf("regtest_b"), "topological order");
  assertThrows(() => registerStages(stage("regtest_a")), Error, 'a different stage named "regtest_a"');
});

Deno.test("stage lists: unknown upstreams, cycles and bad names are programming errors", () => {
  assertThrows(() => orderStages([stage("x", ["nope"])]), Error, 'stage "x" has unknown upstream "nope"');
  assertThrows(() => orderStages([stage("x", ["y"]), stage("y", ["x"])]), Error, "stage cycle: x → y → x");
  assertThrows(() => orderStages([stage(".tmp")]), Error, 'stage name ".tmp"');
  assertThrows(() => orderStages([stage("x"), stage("x")]), Error, 'two stages are named "x"');
});

Deno.test("units: explicit lists, clips.json (CamVid layout), sub-folders, frames folders", () => {
  assertEquals(defaultUnits({ dataset: { kind: "camvid", root: "/nowhere", clips: ["b", "a"] } }), [
    "b",
    "a",
  ]);
  const camvid = path.join(DATA, "camvid");
  assertEquals(defaultUnits({ dataset: { kind: "camvid", root: camvid, clips: "all" } }), [
    "val_0016E5_07959",
    "train_0006R0_f02010",
    "train_0016E5_04350",
  ]);
  const dir = tempDir("units");
  for (const d of ["v2", "v1", ".hidden"]) fs.mkdirSync(path.join(dir, d));
  fs.writeFileSync(path.join(dir, "val.txt"), "");
  assertEquals(defaultUnits({ dataset: { kind: "vspw", root: dir, clips: "all" } }), ["v1", "v2"]);
  assertEquals(defaultUnits({ dataset: { kind: "frames", root: path.join(dir, "v1"), clips: "all" } }), [
    "v1",
  ]);
  assertEquals(
    assertThrows(() => defaultUnits({ dataset: { kind: "vspw", root: "/no/such", clips: "all" } }), UserError)
      .message,
    "dataset.root: /no/such: directory not found (needed to list its clips)",
  );
});

Deno.test("units: a registered resolver wins for its dataset kind", async () => {
  registerUnitResolver("regtest_kind", (c) => [`from-${(c.dataset as { root: string }).root}`]);
  assertEquals(await resolveUnits({ dataset: { kind: "regtest_kind", root: "r", clips: "all" } }), [
    "from-r",
  ]);
});
