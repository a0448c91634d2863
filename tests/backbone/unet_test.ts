/**
 * The SD-family UNet against the diffusers conformance vectors (tests/fixtures/conformance): outputs and
 * intermediates, attention taps, modulation, injection; plus variant invariants (zero modulation, self
 * injection, truncation, external data, fp16, graph cache).
 * Tolerance (conformance README): max|diff| ≤ 1e-4·max(1, max|ref|) per tensor.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { attentionPositions, availableTaps, tapName, UNet } from "../../pipeline/backbone/sd/unet.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import { LazySafetensors } from "../../pipeline/backbone/weights/lazy_safetensors.ts";
import { f32, maxAbs, maxAbsDiff, type Tensor } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { assertTruncatedTaps, loadF32Tensors, tempGraphCache } from "./conformance_io.ts";

const CONF = path.join(FIXTURES, "conformance");
const CACHE = tempGraphCache("vidseg-unet-graphs-");

/** All tensors of a conformance file, as F32. */
const load = (name: string) => loadF32Tensors(path.join(CONF, name));

/** Assert the conformance tolerance and return the max diff (for the report). */
function close(got: Tensor<"F32"> | undefined, ref: Tensor<"F32">, what: string): number {
  assert(got, `${what}: missing output`);
  const d = maxAbsDiff(got, ref);
  assertLess(d, 1e-4 * Math.max(1, maxAbs(ref)), `${what}: max|diff| ${d}`);
  return d;
}

/** Modulation input [B, tokens, 1] = lambda · mask_tokens for every batch item. */
function modulation(B: number, lambda: number, maskTokens: Tensor<"F32">): Tensor<"F32"> {
  const n = maskTokens.data.length, out = new Float32Array(B * n);
  for (let b = 0; b < B; b++) for (let i = 0; i < n; i++) out[b * n + i] = lambda * maskTokens.data[i];
  return f32([B, n, 1], out);
}

/** The set's UNet config, read as diffusers wrote it (positions and shapes below come from it, not the graph). */
const config = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
const perLevel = config.layers_per_block + 1;
/** Up-path positions with a transformer: CrossAttnUpBlock2D levels × (layers_per_block + 1). */
const configAttentionPositions = (config.up_block_types as string[]).flatMap((t, j) =>
  t.startsWith("CrossAttn") ? Array.from({ length: perLevel }, (_, k) => j * perLevel + k) : []
);
/** The single position whose tap `${prefix}up.posNN.${kind}` a file stores (the generator's choice). */
function storedPosition(v: Record<string, unknown>, prefix: string, kind: string): number {
  const found = Object.keys(v).map((k) =>
    new RegExp(`^${prefix.replace(".", "\\.")}up\\.pos(\\d+)\\.${kind}$`).exec(k)
  )
    .filter((m) => m).map((m) => Number(m![1]));
  assertEquals(found.length, 1, `one ${prefix}*.${kind} tensor`);
  return found[0];
}

const io = load("unet_io.safetensors");
const att = load("unet_attention.safetensors");
const modv = load("unet_modulation.safetensors");
const inj = load("unet_injection.safetensors");
const inputs = (v: Record<string, Tensor<"F32">>, sample = "input.sample") => ({
  sample: v[sample],
  timestep: v["input.timestep"].data,
  context: v["input.encoder_hidden_states"],
});
const report: Record<string, number> = {};
const worst = (file: string, d: number) => (report[file] = Math.max(report[file] ?? 0, d));

Deno.test("unet_io + unet_attention: output and every exposed intermediate", async () => {
  const probe = await UNet.load(CONF, { cacheDir: CACHE, taps: ["debug.conv_in"], truncate: true });
  const all = availableTaps(probe.layout);
  await probe.release();
  const unet = await UNet.load(CONF, { cacheDir: CACHE, taps: all });
  assertEquals(unet.predictionType, "epsilon");
  const r = await unet.run(inputs(io));
  worst("unet_io", close(r.eps, io["output.noise_pred"], "output.noise_pred"));
  const checked = new Set<string>();
  for (const k of Object.keys(io)) {
    if (k.startsWith("input.") || k.startsWith("output.")) continue;
    worst("unet_io", close(r.taps[k], io[k], k));
    checked.add(k);
  }
  // The file holds every up-path position's resnet and block output (README conventions), all checked.
  const positions = config.up_block_types.length * perLevel;
  for (let i = 0; i < positions; i++) {
    for (const kind of ["resnet", "out"] as const) {
      assert(checked.has(tapName(i, kind)), `${tapName(i, kind)} stored`);
    }
  }
  const ra = await unet.run(inputs(att));
  for (const k of Object.keys(att)) {
    if (k.startsWith("input.")) continue;
    worst("unet_attention", close(ra.taps[k], att[k], k));
  }
  assertEquals(attentionPositions(unet.layout), configAttentionPositions);
  // The portable plain-ops attention kernel gives the same function.
  const plainOps = await UNet.load(CONF, {
    cacheDir: CACHE,
    attention: "matmul",
    taps: ["up.pos07.attn2_out"],
  });
  const rp = await plainOps.run(inputs(io));
  worst("unet_io", close(rp.eps, io["output.noise_pred"], "matmul-attention output"));
  await plainOps.release();
  await unet.release();
});

Deno.test("unet_modulation: lambda·mask on the stored position's attn2 output; zero modulation is exact", async () => {
  const at = storedPosition(modv, "mod.", "attn2_out");
  const taps = [tapName(at, "attn2_out"), tapName(at, "out"), tapName(at + 1, "out")].filter((k) =>
    `mod.${k}` in modv
  );
  assert(taps.length >= 2, "modulation taps stored");
  const unet = await UNet.load(CONF, { cacheDir: CACHE, modulationPosition: at, taps });
  const B = modv["input.sample"].shape[0];
  const m = modulation(B, modv["mod.lambda"].data[0], modv["mod.mask_tokens"]);
  const r = await unet.run({ ...inputs(modv), modulation: m });
  worst("unet_modulation", close(r.eps, modv["mod.output.noise_pred"], "mod.output.noise_pred"));
  for (const k of taps) worst("unet_modulation", close(r.taps[k], modv[`mod.${k}`], `mod.${k}`));
  const zero = await unet.run({ ...inputs(modv), modulation: f32(m.shape) });
  worst("unet_modulation", close(zero.eps, modv["ref.output.noise_pred"], "ref.output.noise_pred"));
  worst(
    "unet_modulation",
    close(zero.taps[tapName(at, "attn2_out")], modv[`ref.${tapName(at, "attn2_out")}`], "ref attn2_out"),
  );
  const plain = await UNet.load(CONF, { cacheDir: CACHE, taps });
  const p = await plain.run(inputs(modv));
  assertEquals(maxAbsDiff(zero.eps!, p.eps!), 0, "zero modulation reproduces the plain graph exactly");
  await unet.release();
  await plain.release();
});

Deno.test("unet_injection: stored run-A q/k/attn2_out injected into run B, with and without modulation", async () => {
  // Injected at every transformer position; the file's modulation sits where its inj_mod taps say.
  const positions = configAttentionPositions;
  const at = storedPosition(inj, "inj_mod.", "attn2_out");
  const taps = positions.flatMap((i) => [tapName(i, "out")]).concat([tapName(at, "attn2_out")]);
  const injected: Record<string, Tensor<"F32">> = {};
  for (const i of positions) {
    for (const k of ["attn1_q", "attn1_k", "attn2_out"] as const) {
      injected[tapName(i, k)] = att[tapName(i, k)];
    }
  }
  const feed = { ...inputs(inj, "inputB.sample"), injected };
  const unet = await UNet.load(CONF, { cacheDir: CACHE, injectPositions: positions, taps });
  const r = await unet.run(feed);
  worst("unet_injection", close(r.eps, inj["inj.output.noise_pred"], "inj.output.noise_pred"));
  for (const k of taps) worst("unet_injection", close(r.taps[k], inj[`inj.${k}`], `inj.${k}`));
  const both = await UNet.load(CONF, {
    cacheDir: CACHE,
    injectPositions: positions,
    modulationPosition: at,
    taps,
  });
  const m = modulation(inj["inputB.sample"].shape[0], inj["mod.lambda"].data[0], inj["mod.mask_tokens"]);
  const rm = await both.run({ ...feed, modulation: m });
  worst("unet_injection", close(rm.eps, inj["inj_mod.output.noise_pred"], "inj_mod.output.noise_pred"));
  for (const k of taps) worst("unet_injection", close(rm.taps[k], inj[`inj_mod.${k}`], `inj_mod.${k}`));
  const plain = await UNet.load(CONF, { cacheDir: CACHE, taps });
  const rb = await plain.run(inputs(inj, "inputB.sample"));
  worst("unet_injection", close(rb.eps, inj["refB.output.noise_pred"], "refB.output.noise_pred"));
  for (const u of [unet, both, plain]) await u.release();
});

Deno.test("self-injection reproduces the plain pass; truncated taps equal full-variant taps", async () => {
  const positions = attentionPositions(await probeLayout());
  const store = positions.flatMap((
    i,
  ) => [tapName(i, "attn1_q"), tapName(i, "attn1_k"), tapName(i, "attn2_out")]);
  const plain = await UNet.load(CONF, { cacheDir: CACHE, taps: store });
  const a = await plain.run(inputs(io));
  const injv = await UNet.load(CONF, { cacheDir: CACHE, injectPositions: positions });
  const b = await injv.run({ ...inputs(io), injected: a.taps });
  const dSelf = maxAbsDiff(a.eps!, b.eps!);
  assertLess(dSelf, 1e-6, `self-injection max|diff| ${dSelf}`);
  const feat = ["up.pos06.attn1_q", "up.pos07.attn1_q", "up.pos08.attn1_q"];
  const trunc = await UNet.load(CONF, { cacheDir: CACHE, taps: feat, truncate: true });
  const t = await trunc.run(inputs(io));
  assertTruncatedTaps(trunc, plain, t, a, feat, t.eps);
  assertEquals(evaluations.samples(trunc.variantName), io["input.sample"].shape[0]);
  for (const u of [plain, injv, trunc]) await u.release();
});

async function probeLayout() {
  const u = await UNet.load(CONF, { cacheDir: CACHE, taps: ["debug.conv_in"], truncate: true });
  await u.release();
  return u.layout;
}

Deno.test("external data, fp16 weights, graph cache and dynamic batch", async () => {
  const ext = await UNet.load(CONF, { cacheDir: CACHE, externalThreshold: 0 });
  assert(ext.graph.external && fs.existsSync(ext.graph.dataPath), "weights in a side file");
  const r = await ext.run(inputs(io));
  worst("unet_io", close(r.eps, io["output.noise_pred"], "external-data output"));
  const again = await UNet.load(CONF, { cacheDir: CACHE, externalThreshold: 0 });
  assertEquals(again.graph.built, false);
  assertEquals(again.graph.path, ext.graph.path);
  // Batch 1 through the same graph (dynamic batch): the last sample alone.
  const last = <T extends Tensor<"F32">>(t: T) => {
    const [b, ...rest] = t.shape, n = t.data.length / b;
    return f32([1, ...rest], t.data.slice((b - 1) * n));
  };
  const one = await again.run({
    sample: last(io["input.sample"]),
    timestep: [io["input.timestep"].data[io["input.timestep"].data.length - 1]],
    context: last(io["input.encoder_hidden_states"]),
  });
  const ref1 = last(io["output.noise_pred"]);
  close(one.eps, ref1, "batch-1 output");
  const half = await UNet.load(CONF, { cacheDir: CACHE, dtype: "fp16" });
  const rh = await half.run(inputs(io));
  const dh = maxAbsDiff(rh.eps!, io["output.noise_pred"]);
  assertLess(dh, 2e-2, `fp16 max|diff| ${dh}`);
  console.log(
    `fp16 output max|diff| ${dh.toExponential(2)}; conformance max|diff| per file: ${JSON.stringify(report)}`,
  );
  for (const u of [ext, again, half]) await u.release();
});

Deno.test("use_linear_projection false (1×1 conv proj_in/proj_out) gives the same function", async () => {
  // The conformance Linear projections reshaped to [C, C, 1, 1] convs must reproduce unet_io exactly.
  const { encodeSafetensors } = await import("../../pipeline/tensor/safetensors.ts");
  const src = new LazySafetensors(path.join(CONF, "unet", "unet.safetensors"));
  const tensors: Record<string, Tensor> = {};
  for (const k of src.headers.keys()) {
    const t = src.read(k);
    tensors[k] = /proj_(in|out)\.weight$/.test(k) ? { ...t, shape: [...t.shape, 1, 1] } as Tensor : t;
  }
  src.close();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-convproj-"));
  try {
    fs.mkdirSync(path.join(root, "unet"));
    const cfg = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
    fs.writeFileSync(
      path.join(root, "unet", "config.json"),
      JSON.stringify({ ...cfg, use_linear_projection: false }),
    );
    fs.writeFileSync(
      path.join(root, "unet", "diffusion_pytorch_model.safetensors"),
      encodeSafetensors(tensors),
    );
    const u = await UNet.load(root, { cacheDir: CACHE, taps: ["up.pos07.attn1_q"] });
    assertEquals(u.layout.linearProjection, false);
    const r = await u.run(inputs(io));
    close(r.eps, io["output.noise_pred"], "conv-projection output");
    close(r.taps["up.pos07.attn1_q"], att["up.pos07.attn1_q"], "conv-projection attn1_q");
    await u.release();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

Deno.test("micro-batches: batch 2 run as 2×1 equals the single call; counters count samples", async () => {
  const whole = await UNet.load(CONF, { cacheDir: CACHE, variantName: "mb-whole" });
  const split = await UNet.load(CONF, { cacheDir: CACHE, microBatch: 1, variantName: "mb-split" });
  const a = await whole.run(inputs(io)), b = await split.run(inputs(io));
  assertLess(maxAbsDiff(a.eps!, b.eps!), 1e-6);
  assertEquals(evaluations.snapshot()["mb-split"].calls, 2);
  assertEquals(evaluations.samples("mb-split"), 2);
  await whole.release();
  await split.release();
});

Deno.test("config semantics: SD 1.5 / SD 2.1 heads and the known parameter counts", async () => {
  const { parseUNetConfig } = await import("../../pipeline/backbone/sd/config.ts");
  const { specParams, unetSpec } = await import("../../pipeline/backbone/sd/spec.ts");
  const { SD21_BASE_UNET } = await import("../../pipeline/bench/sd_unet.ts");
  const sd21 = parseUNetConfig(SD21_BASE_UNET, "sd21.json");
  assertEquals(sd21.down.map((d) => d.outCh / d.heads), [64, 64, 64, 64]);
  assertEquals(sd21.up.map((u) => u.heads), [20, 20, 10, 5]);
  assertEquals(sd21.midHeads, 20);
  assertEquals(specParams(unetSpec(sd21)), 865_910_724); // stabilityai/stable-diffusion-2-1(-base) UNet
  // SD 1.5: attention_head_dim 8 (an int) = 8 heads at every level, conv projections, context 768.
  const sd15 = parseUNetConfig({
    ...SD21_BASE_UNET,
    attention_head_dim: 8,
    cross_attention_dim: 768,
    use_linear_projection: false,
  }, "sd15.json");
  assertEquals(sd15.down.map((d) => d.heads), [8, 8, 8, 8]);
  assertEquals(specParams(unetSpec(sd15)), 859_520_964); // runwayml/stable-diffusion-v1-5 UNet
  const { UserError } = await import("../../pipeline/errors.ts");
  const { assertThrows } = await import("../assert.ts");
  assertThrows(
    () => parseUNetConfig({ ...SD21_BASE_UNET, transformer_layers_per_block: [1, 2, 3, 4] }, "x.json"),
    UserError,
    "x.json: transformer_layers_per_block: only a single integer is supported",
  );
  assertThrows(
    () =>
      parseUNetConfig({
        ...SD21_BASE_UNET,
        up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "AttnUpBlock2D", "CrossAttnUpBlock2D"],
      }, "x.json"),
    UserError,
    'x.json: up_block_types: unsupported block "AttnUpBlock2D"',
  );
});
