/**
 * One copy of the weights for every graph variant of a model, and the saved optimised form of each graph:
 * two variants of the conformance UNet (plain and modulated) reference one weights store, hold the weights once
 * on disk (byte count against the safetensors file) and still match the conformance vectors; the second session
 * of a variant loads the optimised form and gives the same outputs bit for bit.
 * Tolerance (conformance README): max|diff| ≤ 1e-4·max(1, max|ref|) per tensor.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { UNet } from "../../../pipeline/backbone/sd/unet.ts";
import { LazySafetensors } from "../../../pipeline/backbone/weights/lazy_safetensors.ts";
import { f32, maxAbs, maxAbsDiff, numel, type Tensor } from "../../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../../assert.ts";
import { FIXTURES } from "../../paths.ts";
import { loadF32Tensors, tempGraphCache } from "../conformance_io.ts";

const CONF = path.join(FIXTURES, "conformance");
const io = loadF32Tensors(path.join(CONF, "unet_io.safetensors"));
const modv = loadF32Tensors(path.join(CONF, "unet_modulation.safetensors"));

function close(got: Tensor<"F32"> | undefined, ref: Tensor<"F32">, what: string): void {
  assert(got, `${what}: missing output`);
  const d = maxAbsDiff(got, ref);
  assertLess(d, 1e-4 * Math.max(1, maxAbs(ref)), `${what}: max|diff| ${d}`);
}

const inputs = (v: Record<string, Tensor<"F32">>) => ({
  sample: v["input.sample"],
  timestep: v["input.timestep"].data,
  context: v["input.encoder_hidden_states"],
});

/** Float32 bytes of the conformance UNet's parameters, from the safetensors header. */
function paramBytes(): number {
  const dir = path.join(CONF, "unet");
  const file = fs.readdirSync(dir).find((f) => f.endsWith(".safetensors"))!;
  const st = new LazySafetensors(path.join(dir, file));
  let n = 0;
  for (const h of st.headers.values()) n += numel(h.shape) * 4;
  st.close();
  return n;
}

/** The modulated position and modulation input of the fixture (position read from its tap names). */
function modulationOf(): { position: number; input: Tensor<"F32"> } {
  const key = Object.keys(modv).find((k) => /^mod\.up\.pos\d\d\.attn2_out$/.test(k))!;
  const position = Number(/pos(\d\d)/.exec(key)![1]);
  const B = modv["input.sample"].shape[0],
    tokens = modv["mod.mask_tokens"].data,
    lambda = modv["mod.lambda"].data[0];
  const out = new Float32Array(B * tokens.length);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < tokens.length; i++) out[b * tokens.length + i] = lambda * tokens[i];
  }
  return { position, input: f32([B, tokens.length, 1], out) };
}

Deno.test("two variants share one weights store: the weights once on disk, conformance outputs", async () => {
  const cacheDir = tempGraphCache("vidseg-shared-weights-");
  const { position, input } = modulationOf();
  const plain = await UNet.load(CONF, { cacheDir });
  const storeAfterOne = fs.statSync(plain.graph.dataPath).size;
  const modulated = await UNet.load(CONF, { cacheDir, modulationPosition: position });
  try {
    assert(plain.graph.shared && modulated.graph.shared, "both variants use the shared store");
    assertEquals(plain.graph.dataPath, modulated.graph.dataPath);
    assert(plain.graph.path !== modulated.graph.path, "two different graphs");
    close((await plain.run(inputs(io))).eps, io["output.noise_pred"], "plain variant");
    const r = await modulated.run({ ...inputs(modv), modulation: input });
    close(r.eps, modv["mod.output.noise_pred"], "modulated variant");

    const weights = paramBytes();
    const store = fs.statSync(plain.graph.dataPath).size;
    const files = fs.readdirSync(cacheDir).map((f) => fs.statSync(path.join(cacheDir, f)).size);
    const onDisk = files.reduce((a, b) => a + b, 0);
    // The second variant added nothing to the store: the weights are there once, for both.
    assertEquals(store, storeAfterOne);
    // The store holds each weight once in plain form, plus the MatMul weights pre-packed for the CPU kernels.
    assert(store >= 0.9 * weights && store <= 1.5 * weights, `store ${store} B vs weights ${weights} B`);
    // Each graph holds only its structure and tensors under 1 KiB; two private copies would be ≥ 2× the weights.
    for (const g of [plain.graph, modulated.graph]) assertLess(g.bytes, 0.2 * weights, `graph ${g.bytes} B`);
    assertLess(onDisk, 1.8 * weights, `cache folder ${onDisk} B vs weights ${weights} B`);
  } finally {
    await plain.release();
    await modulated.release();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("the second session of a variant loads the saved optimised graph and gives identical outputs", async () => {
  const cacheDir = tempGraphCache("vidseg-optimised-");
  try {
    const first = await UNet.load(CONF, { cacheDir });
    const a = await first.run(inputs(io));
    await first.release();
    assert(first.graph.start && !first.graph.start.fromOptimized, "first session optimises the graph");
    const opt = first.graph.start.optimizedPath;
    assert(fs.existsSync(opt), "optimised form saved");
    const storeAfterFirst = fs.statSync(first.graph.dataPath).size;

    const second = await UNet.load(CONF, { cacheDir });
    const b = await second.run(inputs(io));
    await second.release();
    assertEquals(second.graph.built, false);
    assert(second.graph.start?.fromOptimized, "second session reads the optimised form");
    assertEquals(second.graph.start.optimizedPath, opt);
    // The optimised form's initializers joined the store (no private side file beside it).
    assertEquals(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".data")), []);
    assertEquals(fs.statSync(second.graph.dataPath).size, storeAfterFirst);
    assertEquals(maxAbsDiff(a.eps!, b.eps!), 0, "identical outputs");
    close(b.eps, io["output.noise_pred"], "optimised-form output");
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("without pre-packed weights the store holds the weights once, within 1.1× their bytes", async () => {
  const cacheDir = tempGraphCache("vidseg-unpacked-");
  Deno.env.set("VIDSEG_PREPACKED", "0");
  try {
    const { position, input } = modulationOf();
    const plain = await UNet.load(CONF, { cacheDir });
    const modulated = await UNet.load(CONF, { cacheDir, modulationPosition: position });
    const r = await modulated.run({ ...inputs(modv), modulation: input });
    close(r.eps, modv["mod.output.noise_pred"], "modulated variant, unpacked store");
    for (const u of [plain, modulated]) await u.release();
    const weights = paramBytes(), store = fs.statSync(plain.graph.dataPath).size;
    assert(store >= 0.9 * weights && store <= 1.1 * weights, `store ${store} B vs weights ${weights} B`);
  } finally {
    Deno.env.delete("VIDSEG_PREPACKED");
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});
