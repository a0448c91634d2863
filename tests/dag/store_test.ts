import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { ArtifactStore, CorruptEntryError, type EntryInfo } from "../../pipeline/dag/store.ts";
import { f32, i32, u8 } from "../../pipeline/tensor/tensor.ts";
import { readSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { sha256Hex } from "../../pipeline/dag/hash.ts";
import { tempDir } from "./fixtures/util.ts";
import { type Artifacts, materialize } from "../../pipeline/dag/stage.ts";

const info = (key: string): EntryInfo => ({
  stage: "demo",
  version: 1,
  key,
  unit: "u",
  params: { "kmeans.k": 3 },
  upstream: {},
  wallMs: 1,
});
const sample = (): Artifacts => ({
  tensors: {
    a: f32([2, 2], new Float32Array([1, 2, 3, 4])),
    lab: u8([3], new Uint8Array([0, 5, 255])),
    idx: i32([1], new Int32Array([-7])),
  },
  json: { frames: ["x", "y"], n: 2 },
  blobs: { "frame.png": new Uint8Array([137, 80, 78, 71]) },
});

Deno.test("store: round trip of tensors, json and blobs; layout and manifest hashes", async () => {
  const store = new ArtifactStore(tempDir());
  const m = await store.write(info("k1"), sample());
  const dir = store.entryDir("demo", "k1");
  assertEquals(fs.readdirSync(dir).sort(), ["blobs", "manifest.json", "meta.json", "tensors.safetensors"]);
  assertEquals(Object.keys(m.files).sort(), ["blobs/frame.png", "meta.json", "tensors.safetensors"]);
  for (const [rel, f] of Object.entries(m.files)) {
    assertEquals(sha256Hex(fs.readFileSync(path.join(dir, rel))), f.sha256);
  }
  assertEquals(materialize(store.read("demo", "k1").artifacts), sample());
  // The tensor file is plain safetensors (readable by numpy/torch users).
  assertEquals(readSafetensors(path.join(dir, "tensors.safetensors")).keys().sort(), ["a", "idx", "lab"]);
  assertEquals(fs.readdirSync(store.tmpDir), []);
});

Deno.test("store: a second commit of the same key keeps the first entry", async () => {
  const store = new ArtifactStore(tempDir());
  await store.write(info("k"), sample());
  const other = sample();
  other.json.n = 99;
  await store.write(info("k"), other);
  assertEquals(store.read("demo", "k").artifacts.json.n, 2);
  assertEquals(fs.readdirSync(store.tmpDir), []);
});

Deno.test("store: every kind of damage is detected", async () => {
  const store = new ArtifactStore(tempDir());
  const damage: [string, (dir: string) => void, string][] = [
    ["flip", (d) => flip(path.join(d, "meta.json")), "meta.json: sha256 mismatch"],
    [
      "blob",
      (d) => fs.writeFileSync(path.join(d, "blobs", "frame.png"), "xx"),
      "blobs/frame.png: sha256 mismatch",
    ],
    ["gone", (d) => fs.rmSync(path.join(d, "tensors.safetensors")), "tensors.safetensors missing"],
    ["manifest", (d) => fs.writeFileSync(path.join(d, "manifest.json"), "{"), "manifest.json unreadable"],
  ];
  for (const [key, hurt, reason] of damage) {
    await store.write(info(key), sample());
    hurt(store.entryDir("demo", key));
    const e = assertThrows(() => store.read("demo", key), CorruptEntryError);
    assertEquals(e.message, `demo/${key}: corrupt cache entry (${reason})`);
    store.discard("demo", key);
    assert(!store.has("demo", key));
  }
});

Deno.test("store: unsafe blob names are refused and leave nothing behind", async () => {
  const store = new ArtifactStore(tempDir());
  let msg = "";
  try {
    await store.write(info("k"), { tensors: {}, json: {}, blobs: { "../x": new Uint8Array(1) } });
  } catch (e) {
    msg = (e as Error).message;
  }
  assertEquals(msg, 'stage demo: blob name "../x" is not a plain file name');
  assert(!store.has("demo", "k"));
  assertEquals(fs.readdirSync(store.tmpDir), []);
});

function flip(file: string): void {
  const b = fs.readFileSync(file);
  b[0] ^= 1;
  fs.writeFileSync(file, b);
}

Deno.test("store: streamed tensors are part of the entry, verified, and read lazily by rows", async () => {
  const store = new ArtifactStore(tempDir());
  const pending = store.begin(info("s"));
  const sink = pending.output("big", "F32", [3, 2]);
  sink.append(f32([1, 2], Float32Array.of(1, 2)));
  sink.append(f32([2, 2], Float32Array.of(3, 4, 5, 6)));
  assert(!store.has("demo", "s")); // invisible until committed
  const m = await pending.commit(sample());
  assertEquals(Object.keys(m.files).sort(), [
    "blobs/frame.png",
    "meta.json",
    "streams/big.safetensors",
    "tensors.safetensors",
  ]);
  const a = store.read("demo", "s").artifacts;
  assertEquals(a.tensorInfo!("big"), { dtype: "F32", shape: [3, 2] });
  assertEquals(Array.from(a.readRows!("big", 1, 3).data as Float32Array), [3, 4, 5, 6]);
  assertEquals(Object.keys(a.tensors).sort(), ["a", "big", "idx", "lab"]);
  assertEquals(Array.from(a.tensors.big.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  flip(path.join(store.entryDir("demo", "s"), "streams", "big.safetensors"));
  assertThrows(() => store.read("demo", "s"), CorruptEntryError, "streams/big.safetensors: sha256 mismatch");
  assertEquals(fs.readdirSync(store.tmpDir), []);
});

Deno.test("store: an aborted or incomplete stream leaves nothing behind", async () => {
  const store = new ArtifactStore(tempDir());
  const p1 = store.begin(info("a"));
  p1.output("x", "U8", [2]).append(u8([1]));
  p1.abort();
  assertEquals(fs.readdirSync(store.tmpDir), []);
  const p2 = store.begin(info("b"));
  p2.output("x", "U8", [2]).append(u8([1]));
  let msg = "";
  try {
    await p2.commit({ tensors: {}, json: {} });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes(`"x" got 1 of its 2 rows`), msg);
  assert(!store.has("demo", "b"));
  assertEquals(fs.readdirSync(store.tmpDir), []);
});
