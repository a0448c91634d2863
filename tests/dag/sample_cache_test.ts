/**
 * The runner's sample cache: items round-trip byte-exactly, are scoped by stage and code version, a damaged item
 * is deleted and reported missing (never returned), a killed writer leaves nothing the next run could read, and
 * the runner hands every stage instance a scoped cache plus the keys of its upstream entries.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { SampleStore } from "../../pipeline/dag/sample_cache.ts";
import { ArtifactStore } from "../../pipeline/dag/store.ts";
import type { RowSpec } from "../../pipeline/dag/plan.ts";
import type { Stage, StageContext } from "../../pipeline/dag/stage.ts";
import { f32 } from "../../pipeline/tensor/tensor.ts";
import { quietRunner, tempDir } from "./fixtures/util.ts";

function payload(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24 & (i % 7 ? 0x0f : 0xff);
  return out;
}

/** Every item file under the store. */
function itemFiles(root: string): string[] {
  return fs.readdirSync(root, { recursive: true }).map(String).map((p) => path.join(root, p))
    .filter((p) => fs.statSync(p).isFile());
}

Deno.test("sample cache: round trip, keys by value, scoped by stage and version", () => {
  const cache = tempDir("samples");
  const store = new SampleStore(cache, path.join(cache, ".tmp"));
  const a = store.scope("modulate", 1);
  const bytes = payload(172_800, 3);
  const key = { frames: "abc", batch: [0, 14], f: 3, mask: "0110" };
  assertEquals(a.get(key), undefined);
  a.put(key, bytes);
  // The same key built in another member order is the same item (canonical JSON).
  const back = a.get({ mask: "0110", f: 3, batch: [0, 14], frames: "abc" });
  assert(
    back !== undefined && back.length === bytes.length && back.every((v, i) => v === bytes[i]),
    "round trip",
  );
  assertEquals(a.get({ ...key, f: 4 }), undefined);
  assertEquals(store.scope("modulate", 2).get(key), undefined, "another code version must not see the item");
  assertEquals(store.scope("other", 1).get(key), undefined, "another stage must not see the item");
  assertEquals({ ...a.stats }, { hits: 1, misses: 2, stored: 1, corrupt: 0 });
  // Stored compressed: the test payload is mostly 4-bit values.
  const [file] = itemFiles(store.root);
  assert(fs.statSync(file).size < bytes.length * 0.8, `item not compressed: ${fs.statSync(file).size} bytes`);
  assertEquals(fs.readdirSync(path.join(cache, ".tmp")), [], "temp file left after put");
});

Deno.test("sample cache: a damaged or truncated item is deleted and reported missing", () => {
  const cache = tempDir("samples");
  const store = new SampleStore(cache, path.join(cache, ".tmp"));
  const s = store.scope("modulate", 1);
  const bytes = payload(50_000, 9);
  for (const damage of ["flip", "truncate", "empty"] as const) {
    s.put({ damage }, bytes);
    const files = itemFiles(store.root);
    assertEquals(files.length, 1);
    const file = files[0];
    const raw = fs.readFileSync(file);
    if (damage === "flip") raw[raw.length - 10] ^= 0x40;
    fs.writeFileSync(
      file,
      damage === "truncate" ? raw.subarray(0, raw.length >> 1) : damage === "empty" ? new Uint8Array() : raw,
    );
    // verify() reports the damage without touching it; a read then deletes it.
    assertEquals(store.verify(), { items: 0, corrupt: [file] }, damage);
    assertEquals(s.get({ damage }), undefined, damage);
    assert(!fs.existsSync(file), `${damage}: the bad item was not deleted`);
  }
  assertEquals(s.stats.corrupt, 3);
  // A clean rewrite works again.
  s.put({ damage: "flip" }, bytes);
  assertEquals(s.get({ damage: "flip" })?.length, bytes.length);
  assertEquals(store.verify(), { items: 1, corrupt: [] });
});

Deno.test("sample cache: a writer killed before its rename leaves only a temp file, which the sweep removes", () => {
  const cache = tempDir("samples");
  const artifacts = new ArtifactStore(cache);
  const store = new SampleStore(cache, artifacts.tmpDir);
  fs.mkdirSync(artifacts.tmpDir, { recursive: true });
  // What a killed process leaves: its temp item (pid 2^22+1 is never alive).
  const orphan = path.join(artifacts.tmpDir, `${2 ** 22 + 1}~${Deno.hostname()}~sample-x`);
  fs.writeFileSync(orphan, payload(100, 1));
  assertEquals(store.scope("modulate", 1).get({ any: 1 }), undefined);
  assertEquals(artifacts.sweepTemp(), 1);
  assert(!fs.existsSync(orphan));
});

Deno.test("runner: each instance gets a stage-scoped sample cache and its upstream keys", async () => {
  const seen: { stage: string; ctx: StageContext }[] = [];
  const up: Stage = {
    name: "up",
    version: 1,
    params: ["seed"],
    upstream: [],
    run(_i, p, ctx) {
      seen.push({ stage: "up", ctx });
      return Promise.resolve({ tensors: { v: f32([1], new Float32Array([p.seed as number])) }, json: {} });
    },
  };
  const down: Stage = {
    name: "down",
    version: 1,
    params: [],
    upstream: ["up"],
    run(_i, _p, ctx) {
      seen.push({ stage: "down", ctx });
      // An item a later instance of the same stage (another row) can read.
      ctx.samples!.put({ from: ctx.upstreamKeys!.up }, new Uint8Array([1, 2, 3]));
      return Promise.resolve({
        tensors: {},
        json: { hit: ctx.samples!.get({ from: "elsewhere" }) !== undefined },
      });
    },
  };
  const cache = tempDir();
  const { runner } = quietRunner(cache);
  const rows: RowSpec[] = [{ name: "A", config: { seed: 1 }, units: ["u"] }];
  const plan = await runner.plan([up, down], rows);
  await runner.execute(plan);
  const downCtx = seen.find((s) => s.stage === "down")!.ctx;
  const upInst = [...plan.instances.values()].find((i) => i.stage.name === "up")!;
  assertEquals(downCtx.upstreamKeys, { up: upInst.key });
  assertEquals(seen.find((s) => s.stage === "up")!.ctx.upstreamKeys, {});
  // The item is stored under the runner's cache, readable by the same stage name only.
  const store = new SampleStore(cache, path.join(cache, ".tmp"));
  assertEquals([...store.scope("down", 1).get({ from: upInst.key })!], [1, 2, 3]);
  assertEquals(store.scope("up", 1).get({ from: upInst.key }), undefined);
});
