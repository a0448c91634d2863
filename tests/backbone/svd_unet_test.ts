/**
 * The SVD UNet (UNetSpatioTemporalConditionModel) against the diffusers conformance vectors
 * (tests/fixtures/conformance-svd): output and every exposed intermediate (unet_io), spatial and temporal attention
 * q/k/outputs, block outputs and mixing α (unet_attention), the position-8 modulation of the spatial and temporal
 * attn1 outputs (unet_modulation), temporal q/k injection at positions 3..11 (unet_injection); plus variant
 * invariants (zero modulation, self-injection, truncation, micro-batches, fp16).
 * Tolerance (conformance README): max|diff| ≤ 1e-4·max(1, max|ref|) per tensor.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { svdAvailableTaps, SvdUNet, type SvdUNetLoadOptions } from "../../pipeline/backbone/svd/unet.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import { f32, maxAbs, maxAbsDiff, type Tensor } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../assert.ts";
import { FIXTURES } from "../paths.ts";
import { assertTruncatedTaps, loadF32Tensors, tempGraphCache } from "./conformance_io.ts";

const CONF = path.join(FIXTURES, "conformance-svd");
const CACHE = tempGraphCache("vidseg-svd-graphs-");

/** All tensors of a conformance file, as F32. */
const load = (name: string) => loadF32Tensors(path.join(CONF, name));

const report: Record<string, number> = {};
/** Assert the conformance tolerance; keep the worst relative diff per group for the report. */
function close(got: Tensor<"F32"> | undefined, ref: Tensor<"F32">, what: string, group: string): void {
  assert(got, `${what}: missing output`);
  const d = maxAbsDiff(got, ref), scale = Math.max(1, maxAbs(ref));
  assertLess(d, 1e-4 * scale, `${what}: max|diff| ${d}`);
  report[group] = Math.max(report[group] ?? 0, d);
}

const io = load("unet_io.safetensors");
const att = load("unet_attention.safetensors");
const modv = load("unet_modulation.safetensors");
const inj = load("unet_injection.safetensors");
const inputs = (sample = io["input.sample"]) => ({
  sample,
  timestep: io["input.timestep"].data,
  context: io["input.encoder_hidden_states"],
  addedTimeIds: io["input.added_time_ids"],
});
/** Variants are shared between tests: an SVD session takes seconds to create (ORT init of ~3.5k nodes). */
const loaded = new Map<string, Promise<SvdUNet>>();
function unet(o: SvdUNetLoadOptions): Promise<SvdUNet> {
  const key = JSON.stringify(o);
  if (!loaded.has(key)) loaded.set(key, SvdUNet.load(CONF, { cacheDir: CACHE, ...o }));
  return loaded.get(key)!;
}
/** The set's UNet config, as diffusers wrote it: positions come from it, not from the parsed layout. */
const config = JSON.parse(fs.readFileSync(path.join(CONF, "unet", "config.json"), "utf8"));
const perLevel = config.layers_per_block + 1;
const UP_POSITIONS = config.up_block_types.length * perLevel;
/** Up-path positions with transformers (CrossAttn… up blocks): where run A's temporal q/k are injected. */
const POSITIONS = (config.up_block_types as string[]).flatMap((t, j) =>
  t.startsWith("CrossAttn") ? Array.from({ length: perLevel }, (_, k) => j * perLevel + k) : []
);
const pos = (i: number) => `up.pos${String(i).padStart(2, "0")}`;
/** The modulated position: the one whose block output unet_modulation stores. */
const MOD = (() => {
  const found = Object.keys(modv).map((k) => /^mod\.up\.pos(\d+)\.out$/.exec(k)).filter((m) => m);
  assertEquals(found.length, 1, "one mod.up.posNN.out tensor");
  return Number(found[0]![1]);
})();
/** Frames per video and videos of the stored inputs ([B, F, C, h, w]). */
const [VIDEOS, FRAMES] = io["input.sample"].shape;
const ALL_TAPS = svdAvailableTaps(
  (await SvdUNet.load(CONF, { cacheDir: CACHE, taps: ["debug.conv_in"], truncate: true })).layout,
);
const plainAll = () => unet({ taps: ALL_TAPS, variantName: "svd-all-taps" });
/** The taps unet_injection stores for the injection-only run. */
const injTaps = Object.keys(inj).filter((k) => k.startsWith("inj.") && !k.startsWith("inj.output.")).map((
  k,
) => k.slice(4));
const injected: Record<string, Tensor<"F32">> = {};
for (const i of POSITIONS) {
  for (const k of ["attn1_q", "attn1_k"]) {
    const name = `up.pos${String(i).padStart(2, "0")}.temporal.${k}`;
    injected[name] = att[name];
  }
}

Deno.test("unet_io + unet_attention: output, every intermediate, spatial/temporal attention tensors and α", async () => {
  const u = await plainAll();
  assertEquals(u.layout.numAddedIds, io["input.added_time_ids"].shape[1]);
  const r = await u.run(inputs());
  close(r.v, io["output.noise_pred"], "output.noise_pred", "noise_pred");
  const checked = new Set<string>();
  for (const k of Object.keys(io)) {
    if (k.startsWith("input.") || k.startsWith("output.")) continue;
    close(
      r.taps[k],
      io[k],
      k,
      k.startsWith("debug.")
        ? "debug (time/add embeddings, down/mid, resblock parts)"
        : "up positions resnet/out",
    );
    checked.add(k);
  }
  // Every up-path position's block output is stored (README conventions) and was checked.
  for (let i = 0; i < UP_POSITIONS; i++) assert(checked.has(`${pos(i)}.out`), `${pos(i)}.out stored`);
  for (const k of Object.keys(att)) {
    const group = k.includes(".spatial.")
      ? "spatial attention q/k/out"
      : k.includes(".temporal.")
      ? "temporal attention q/k/out"
      : "block outputs / α";
    close(r.taps[k], att[k], k, group);
    checked.add(k);
  }
  // …and every transformer position's spatial and temporal attn1 q/k/out.
  for (const i of POSITIONS) {
    for (const kind of ["spatial.attn1_q", "spatial.attn1_k", "temporal.attn1_q", "temporal.attn1_out"]) {
      assert(checked.has(`${pos(i)}.${kind}`), `${pos(i)}.${kind} stored`);
    }
  }
  // The portable plain-ops attention kernel computes the same function (truncated variant: cheap to build).
  const t = [`${pos(POSITIONS[0])}.spatial.attn1_out`, `${pos(POSITIONS[0])}.temporal.attn1_out`];
  const plainOps = await SvdUNet.load(CONF, {
    cacheDir: CACHE,
    attention: "matmul",
    taps: t,
    truncate: true,
  });
  const rp = await plainOps.run(inputs());
  for (const k of t) {
    close(
      rp.taps[k],
      att[k],
      `matmul-attention ${k}`,
      k.includes("temporal") ? "temporal attention q/k/out" : "spatial attention q/k/out",
    );
  }
  await plainOps.release();
});

Deno.test("unet_modulation: λ·mask on the stored position's attn1 outputs (spatial, temporal, both); layouts; zero is exact", async () => {
  // The modulation input is λ·m_f in the spatial token layout [B·F, h8·w8, 1]; build it from mask and λ.
  const [F, h8, w8] = modv["mod.mask"].shape, lambda = modv["mod.lambda"].data[0];
  const m = f32([F, h8 * w8, 1], modv["mod.mask"].data.map((x) => lambda * x));
  assertEquals(maxAbsDiff(m, modv["mod.add_spatial"]), 0);
  const taps = [`${pos(MOD)}.out`, `${pos(MOD)}.spatial.attn1_out`, `${pos(MOD)}.temporal.attn1_out`];
  const both = await unet({ modulationPosition: MOD, taps });
  const r = await both.run({ ...inputs(), modulation: m });
  close(r.v, modv["mod.output.noise_pred"], "mod.output.noise_pred", "modulation");
  for (const k of taps) close(r.taps[k], modv[`mod.${k}`], `mod.${k}`, "modulation");
  // The temporal layout derived in the graph is the reference's [B·h8·w8, F, 1] one: attn1_out(mod) − attn1_out(ref).
  const tRef = att[`${pos(MOD)}.temporal.attn1_out`], tMod = r.taps[`${pos(MOD)}.temporal.attn1_out`];
  const C = tRef.shape[2], added = modv["mod.add_temporal"];
  let dl = 0;
  for (let i = 0; i < tRef.data.length; i++) {
    dl = Math.max(dl, Math.abs(tMod.data[i] - tRef.data[i] - added.data[Math.floor(i / C)]));
  }
  assertLess(dl, 1e-4 * lambda, `temporal modulation layout: ${dl}`);
  for (const only of ["spatial", "temporal"] as const) {
    // (the spatial-only variant also exercises external-data weights)
    const u = await unet({
      modulationPosition: MOD,
      modulationTargets: [only],
      externalThreshold: only === "spatial" ? 0 : undefined,
    });
    if (only === "spatial") {
      assert(u.graph.external && fs.existsSync(u.graph.dataPath), "weights in a side file");
    }
    const ro = await u.run({ ...inputs(), modulation: m });
    close(ro.v, modv[`mod_${only}_only.output.noise_pred`], `mod_${only}_only`, "modulation");
    const zero = await u.run({ ...inputs(), modulation: f32(m.shape) });
    close(zero.v, modv["ref.output.noise_pred"], "ref.output.noise_pred", "modulation");
  }
  // A zero modulation adds exact zeros: bit-identical to the unmodulated graph.
  const zb = await both.run({ ...inputs(), modulation: f32(m.shape) });
  const pb = await (await plainAll()).run(inputs());
  assertEquals(maxAbsDiff(zb.v!, pb.v!), 0, "zero modulation reproduces the unmodulated graph exactly");
});

Deno.test("unet_injection: run A's temporal attn1 q/k at every transformer position in run B, with and without modulation", async () => {
  const feed = { ...inputs(inj["inputB.sample"]), injected };
  const u = await unet({ injectPositions: POSITIONS, taps: injTaps });
  const r = await u.run(feed);
  close(r.v, inj["inj.output.noise_pred"], "inj.output.noise_pred", "injection");
  for (const k of injTaps) close(r.taps[k], inj[`inj.${k}`], `inj.${k}`, "injection");
  const taps = [`${pos(MOD)}.out`, `${pos(MOD)}.spatial.attn1_out`, `${pos(MOD)}.temporal.attn1_out`];
  const withMod = await unet({
    modulationPosition: MOD,
    injectPositions: POSITIONS,
    taps: [...injTaps, ...taps],
  });
  const rm = await withMod.run({ ...feed, modulation: modv["mod.add_spatial"] });
  close(rm.v, inj["inj_mod.output.noise_pred"], "inj_mod.output.noise_pred", "injection");
  close(rm.taps[`${pos(MOD)}.out`], inj[`inj_mod.${pos(MOD)}.out`], `inj_mod.${pos(MOD)}.out`, "injection");
  const rb = await (await plainAll()).run(inputs(inj["inputB.sample"]));
  close(rb.v, inj["refB.output.noise_pred"], "refB.output.noise_pred", "injection");
  // Self-injection: run A's own q/k reproduce run A.
  const ra = await u.run({ ...inputs(), injected });
  close(ra.v, io["output.noise_pred"], "self-injection", "injection");
});

Deno.test("truncated feature taps equal the full variant's; micro-batches of whole videos; counters count frames", async () => {
  const feat = ["up.pos06.spatial.attn1_q", "up.pos07.spatial.attn1_q", "up.pos08.spatial.attn1_q"];
  const full = await plainAll();
  const trunc = await unet({ taps: feat, truncate: true, variantName: "svd-trunc" });
  const a = await full.run(inputs()), t = await trunc.run(inputs());
  assertTruncatedTaps(trunc, full, t, a, feat, t.v);
  assertEquals(evaluations.samples("svd-trunc"), VIDEOS * FRAMES); // samples = frames of all videos
  // Two videos (the second with another sample, timestep and context) in one call vs one video per call.
  const s = io["input.sample"], s2 = f32(s.shape, s.data.map((x, i) => x * (i % 3 === 0 ? -1 : 0.5)));
  const two = f32([2, ...s.shape.slice(1)], new Float32Array([...s.data, ...s2.data]));
  const ctx = io["input.encoder_hidden_states"];
  const ctx2 = f32([2, 1, ctx.shape[2]], new Float32Array([...ctx.data, ...ctx.data.map((x) => -x)]));
  const feed2 = {
    sample: two,
    timestep: [io["input.timestep"].data[0], -1.2],
    context: ctx2,
    addedTimeIds: io["input.added_time_ids"].data,
  };
  const before = evaluations.snapshot()["svd-all-taps"];
  const w = await full.run(feed2), p = await full.run(feed2, { microBatch: 1 });
  assertLess(maxAbsDiff(w.v!, p.v!), 1e-5);
  for (const k of [`${pos(MOD)}.temporal.attn1_q`, `${pos(MOD)}.spatial.attn1_q`, "debug.time_embedding"]) {
    assertEquals(w.taps[k].shape, p.taps[k].shape);
    assertLess(maxAbsDiff(w.taps[k], p.taps[k]), 1e-5, k);
  }
  assertEquals(p.taps[`${pos(MOD)}.time_mixer_alpha`].shape, [1]);
  const after = evaluations.snapshot()["svd-all-taps"];
  assertEquals(after.calls - before.calls, 3);
  assertEquals(after.samples - before.samples, 2 * 2 * FRAMES); // the 2-video feed twice
  // Video 0 of the pair equals the single-video run (videos do not interact).
  const ref = io["output.noise_pred"];
  close(f32(ref.shape, w.v!.data.slice(0, ref.data.length)), ref, "video 0 of a batch of 2", "noise_pred");
});

Deno.test("fp16 weights/compute stay close to the float32 reference (truncated at position 5: cheap to build)", async () => {
  const half = await unet({ dtype: "fp16", taps: ["up.pos05.out"], truncate: true });
  const ref = io["up.pos05.out"];
  const dh = maxAbsDiff((await half.run(inputs())).taps["up.pos05.out"], ref);
  assertLess(dh, 2e-2 * Math.max(1, maxAbs(ref)), `fp16 max|diff| ${dh}`);
  console.log(
    `fp16 up.pos05.out max|diff| ${dh.toExponential(2)}; worst max|diff| per group: ${
      JSON.stringify(report)
    }`,
  );
  for (const p of loaded.values()) await (await p).release();
});
