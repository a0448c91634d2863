/**
 * The SVD UNet (UNetSpatioTemporalConditionModel) against the diffusers conformance vectors
 * (../shared/conformance-svd): output and every exposed intermediate (unet_io), spatial and temporal attention
 * q/k/outputs, block outputs and mixing α (unet_attention), the position-8 modulation of the spatial and temporal
 * attn1 outputs (unet_modulation), temporal q/k injection at positions 3..11 (unet_injection); plus variant
 * invariants (zero modulation, self-injection, truncation, micro-batches, fp16).
 * Tolerance (conformance README): max|diff| ≤ 1e-4·max(1, max|ref|) per tensor.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  svdAvailableTaps,
  SvdUNet,
  type SvdUNetLoadOptions,
} from "../../pipeline/backbone/models/svd_unet.ts";
import { evaluations } from "../../pipeline/backbone/runtime.ts";
import { LazySafetensors } from "../../pipeline/backbone/weights/lazy_safetensors.ts";
import { f32, maxAbs, maxAbsDiff, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { assert, assertEquals, assertLess } from "../assert.ts";
import { SHARED } from "../shared.ts";

const CONF = path.join(SHARED, "conformance-svd");
const CACHE = fs.mkdtempSync(path.join(os.tmpdir(), "vidseg-svd-graphs-"));
globalThis.addEventListener("unload", () => fs.rmSync(CACHE, { recursive: true, force: true }));

/** All tensors of a conformance file, as F32. */
function load(name: string): Record<string, Tensor<"F32">> {
  const f = new LazySafetensors(path.join(CONF, name));
  const out: Record<string, Tensor<"F32">> = {};
  for (const k of f.headers.keys()) out[k] = toF32(f.read(k));
  f.close();
  return out;
}

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
const unet = (o: SvdUNetLoadOptions) => SvdUNet.load(CONF, { cacheDir: CACHE, ...o });

Deno.test("unet_io + unet_attention: output, every intermediate, spatial/temporal attention tensors and α", async () => {
  const probe = await unet({ taps: ["debug.conv_in"], truncate: true });
  const all = svdAvailableTaps(probe.layout);
  await probe.release();
  const u = await unet({ taps: all });
  assertEquals(u.layout.numAddedIds, 3);
  const r = await u.run(inputs());
  close(r.v, io["output.noise_pred"], "output.noise_pred", "noise_pred");
  let n = 0;
  for (const k of Object.keys(io)) {
    if (k.startsWith("input.") || k.startsWith("output.")) continue;
    close(
      r.taps[k],
      io[k],
      k,
      k.startsWith("debug.")
        ? "debug (time/add embeddings, down/mid blocks, resblock parts)"
        : "up positions resnet/out",
    );
    n++;
  }
  assertEquals(n, 36);
  for (const k of Object.keys(att)) {
    const group = k.includes(".spatial.")
      ? "spatial attention q/k/out"
      : k.includes(".temporal.")
      ? "temporal attention q/k/out"
      : "block outputs / α";
    close(r.taps[k], att[k], k, group);
    n++;
  }
  assertEquals(n, 36 + 75);
  // The portable plain-ops attention kernel computes the same function.
  const plainOps = await unet({ attention: "matmul", taps: ["up.pos08.temporal.attn1_out"] });
  const rp = await plainOps.run(inputs());
  close(rp.v, io["output.noise_pred"], "matmul-attention output", "noise_pred");
  close(
    rp.taps["up.pos08.temporal.attn1_out"],
    att["up.pos08.temporal.attn1_out"],
    "matmul temporal attn1_out",
    "temporal attention q/k/out",
  );
  await plainOps.release();
  await u.release();
});

Deno.test("unet_modulation: λ·mask on the position-8 spatial and temporal attn1 outputs; layouts; zero is exact", async () => {
  // The modulation input is λ·m_f in the spatial token layout [B·F, h8·w8, 1]; build it from mask and λ.
  const [F, h8, w8] = modv["mod.mask"].shape, lambda = modv["mod.lambda"].data[0];
  const m = f32([F, h8 * w8, 1], modv["mod.mask"].data.map((x) => lambda * x));
  assertEquals(maxAbsDiff(m, modv["mod.add_spatial"]), 0);
  const taps = ["up.pos08.out", "up.pos08.spatial.attn1_out", "up.pos08.temporal.attn1_out"];
  const both = await unet({ modulationPosition: 8, taps });
  const r = await both.run({ ...inputs(), modulation: m });
  close(r.v, modv["mod.output.noise_pred"], "mod.output.noise_pred", "modulation");
  for (const k of taps) close(r.taps[k], modv[`mod.${k}`], `mod.${k}`, "modulation");
  // The temporal layout derived in the graph is the reference's [B·h8·w8, F, 1] one: attn1_out(mod) − attn1_out(ref).
  const tRef = att["up.pos08.temporal.attn1_out"], tMod = r.taps["up.pos08.temporal.attn1_out"];
  const C = tRef.shape[2], added = modv["mod.add_temporal"];
  let dl = 0;
  for (let i = 0; i < tRef.data.length; i++) {
    dl = Math.max(dl, Math.abs(tMod.data[i] - tRef.data[i] - added.data[Math.floor(i / C)]));
  }
  assertLess(dl, 1e-4 * lambda, `temporal modulation layout: ${dl}`);
  for (const only of ["spatial", "temporal"] as const) {
    const u = await unet({ modulationPosition: 8, modulationTargets: [only] });
    const ro = await u.run({ ...inputs(), modulation: m });
    close(ro.v, modv[`mod_${only}_only.output.noise_pred`], `mod_${only}_only`, "modulation");
    await u.release();
  }
  const zero = await both.run({ ...inputs(), modulation: f32(m.shape) });
  close(zero.v, modv["ref.output.noise_pred"], "ref.output.noise_pred", "modulation");
  const plain = await unet({ taps });
  const p = await plain.run(inputs());
  assertEquals(maxAbsDiff(zero.v!, p.v!), 0, "zero modulation reproduces the plain graph exactly");
  await both.release();
  await plain.release();
});

Deno.test("unet_injection: run A's temporal attn1 q/k at positions 3..11 in run B, with and without modulation", async () => {
  const positions = [3, 4, 5, 6, 7, 8, 9, 10, 11];
  const injected: Record<string, Tensor<"F32">> = {};
  for (const i of positions) {
    for (const k of ["attn1_q", "attn1_k"]) {
      const name = `up.pos${String(i).padStart(2, "0")}.temporal.${k}`;
      injected[name] = att[name];
    }
  }
  const taps = ["up.pos03.out", "up.pos03.temporal.attn1_out", "up.pos08.out", "up.pos08.temporal.attn1_out"];
  const feed = { ...inputs(inj["inputB.sample"]), injected };
  const u = await unet({ injectPositions: positions, taps });
  const r = await u.run(feed);
  close(r.v, inj["inj.output.noise_pred"], "inj.output.noise_pred", "injection");
  for (const k of taps) close(r.taps[k], inj[`inj.${k}`], `inj.${k}`, "injection");
  const withMod = await unet({ injectPositions: positions, modulationPosition: 8, taps: ["up.pos08.out"] });
  const rm = await withMod.run({ ...feed, modulation: modv["mod.add_spatial"] });
  close(rm.v, inj["inj_mod.output.noise_pred"], "inj_mod.output.noise_pred", "injection");
  close(rm.taps["up.pos08.out"], inj["inj_mod.up.pos08.out"], "inj_mod.up.pos08.out", "injection");
  const plain = await unet({});
  const rb = await plain.run(inputs(inj["inputB.sample"]));
  close(rb.v, inj["refB.output.noise_pred"], "refB.output.noise_pred", "injection");
  // Self-injection: run A's own q/k reproduce run A.
  const ra = await u.run({ ...inputs(), injected });
  assertLess(maxAbsDiff(ra.v!, io["output.noise_pred"]), 1e-4 * Math.max(1, maxAbs(io["output.noise_pred"])));
  for (const x of [u, withMod, plain]) await x.release();
});

Deno.test("truncated feature taps equal the full variant's; micro-batches of whole videos; counters count frames", async () => {
  const feat = ["up.pos06.spatial.attn1_q", "up.pos07.spatial.attn1_q", "up.pos08.spatial.attn1_q"];
  const full = await unet({ taps: feat, variantName: "svd-full" });
  const trunc = await unet({ taps: feat, truncate: true, variantName: "svd-trunc" });
  const a = await full.run(inputs()), t = await trunc.run(inputs());
  assertEquals(t.v, undefined);
  assertEquals(Object.keys(t.taps).sort(), feat);
  for (const k of feat) assertEquals(maxAbsDiff(t.taps[k], a.taps[k]), 0, `${k} truncated vs full`);
  assert(
    fs.statSync(trunc.graph.path).size < fs.statSync(full.graph.path).size,
    "truncated graph is smaller",
  );
  assertEquals(evaluations.samples("svd-trunc"), 2); // one video of 2 frames
  // Two videos (the second with another sample) in one call vs two calls of one video.
  const s = io["input.sample"], s2 = f32(s.shape, s.data.map((x, i) => x * (i % 3 === 0 ? -1 : 0.5)));
  const two = f32([2, ...s.shape.slice(1)], new Float32Array([...s.data, ...s2.data]));
  const ctx = io["input.encoder_hidden_states"];
  const ctx2 = f32([2, 1, ctx.shape[2]], new Float32Array([...ctx.data, ...ctx.data.map((x) => -x)]));
  const feed2 = { sample: two, timestep: [0.3, -1.2], context: ctx2, addedTimeIds: [14, 127, 0.02] };
  const whole = await unet({
    taps: ["up.pos08.temporal.attn1_q", "up.pos08.time_mixer_alpha"],
    variantName: "svd-mb1",
  });
  const split = await unet({
    taps: ["up.pos08.temporal.attn1_q", "up.pos08.time_mixer_alpha"],
    microBatch: 1,
    variantName: "svd-mb2",
  });
  const w = await whole.run(feed2), p = await split.run(feed2);
  assertLess(maxAbsDiff(w.v!, p.v!), 1e-5);
  assertLess(maxAbsDiff(w.taps["up.pos08.temporal.attn1_q"], p.taps["up.pos08.temporal.attn1_q"]), 1e-5);
  assertEquals(p.taps["up.pos08.time_mixer_alpha"].shape, [1]);
  assertEquals(evaluations.snapshot()["svd-mb2"].calls, 2);
  assertEquals(evaluations.samples("svd-mb2"), 4);
  // Video 0 of the pair equals the single-video run (videos do not interact).
  close(
    f32(s.shape, w.v!.data.slice(0, s.data.length)),
    io["output.noise_pred"],
    "video 0 of a batch of 2",
    "noise_pred",
  );
  for (const x of [full, trunc, whole, split]) await x.release();
});

Deno.test("fp16 weights/compute stay close; external data and the graph cache", async () => {
  const half = await unet({ dtype: "fp16" });
  const rh = await half.run(inputs());
  const dh = maxAbsDiff(rh.v!, io["output.noise_pred"]);
  assertLess(dh, 3e-2, `fp16 max|diff| ${dh}`);
  const ext = await unet({ externalThreshold: 0 });
  assert(ext.graph.external && fs.existsSync(`${ext.graph.path}.data`), "weights in a side file");
  close((await ext.run(inputs())).v, io["output.noise_pred"], "external-data output", "noise_pred");
  const again = await unet({ externalThreshold: 0 });
  assertEquals(again.graph.built, false);
  console.log(
    `fp16 max|diff| ${dh.toExponential(2)}; conformance worst max|diff| per group: ${JSON.stringify(report)}`,
  );
  for (const x of [half, ext, again]) await x.release();
});
