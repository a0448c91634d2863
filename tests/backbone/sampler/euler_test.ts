import { assert, assertEquals, assertLess, assertRejects } from "../../assert.ts";
import {
  type EpsModel,
  eulerStep,
  sampleEuler,
  scaleModelInput,
  vToEps,
} from "../../../pipeline/backbone/sampler/euler.ts";
import { guided } from "../../../pipeline/backbone/sampler/cfg.ts";
import {
  diffusersEulerSchedule,
  legacyDdpmSchedule,
  type Schedule,
} from "../../../pipeline/backbone/sampler/schedule.ts";
import { parseSafetensors } from "../../../pipeline/tensor/safetensors.ts";
import { concat0, f32, maxAbs, maxAbsDiff, rows, type Tensor } from "../../../pipeline/tensor/tensor.ts";
import { FIXTURES } from "../../paths.ts";

const P = `${FIXTURES}/conformance/trajectory.safetensors`;
const traj = parseSafetensors(Deno.readFileSync(P), P);
const get = (k: string) => traj.getF32(k);
/** Steps of the stored trajectories. */
const N = get("euler.timesteps").data.length;
const scale = (t: Tensor<"F32">, s: number) => f32(t.shape, t.data.map((v) => v * s));

/** README rule for the 5-step trajectories: max |diff| ≤ 2e-5·max|ref|. */
function close(actual: Tensor<"F32">, ref: Tensor<"F32">, what: string, worst: Map<string, number>): void {
  const d = maxAbsDiff(actual, ref), tol = 2e-5 * Math.max(1, maxAbs(ref));
  const group = what.replace(/step\d\./, "");
  worst.set(group, Math.max(worst.get(group) ?? 0, d));
  assertLess(d, tol, `${what}: max |diff| ${d} > ${tol}`);
}

/**
 * Drive the sampler with a "model" that replays the stored UNet outputs of `prefix` (so the test does not depend
 * on the UNet) and check every model input, every latent after a step, and the final latent.
 */
async function replay(prefix: "sgm_euler" | "euler" | "euler_cfg", schedule: Schedule, useCfg: boolean) {
  const worst = new Map<string, number>();
  const x0 = scale(get("input.noise"), schedule.initNoiseScale);
  close(x0, get(`${prefix}.latents_init`), `${prefix}.latents_init`, worst);
  let calls = 0;
  const model: EpsModel = (input, info) => {
    calls++;
    const i = info.step;
    const ref = get(`${prefix}.step${i}.model_input`);
    if (prefix === "sgm_euler") assertEquals(info.timestep, get(`sgm_euler.step${i}.timestep`).data[0]);
    else assertEquals(info.timestep, get(`${prefix}.timesteps`).data[i]);
    if (useCfg) {
      assertEquals(input.shape[0], 2 * get("input.noise").shape[0], "doubled batch");
      close(rows(input, 0, 1), ref, `${prefix}.step${i}.model_input(uncond half)`, worst);
      close(rows(input, 1, 2), ref, `${prefix}.step${i}.model_input(cond half)`, worst);
      return concat0([
        get(`${prefix}.step${i}.noise_pred_uncond`),
        get(`${prefix}.step${i}.noise_pred_cond`),
      ]);
    }
    close(input, ref, `${prefix}.step${i}.model_input`, worst);
    return get(`${prefix}.step${i}.noise_pred`);
  };
  const wrapped: EpsModel = useCfg
    ? (() => {
      const g = guided(model, get("cfg.guidance_scale").data[0]);
      return async (input, info) => {
        const eps = await g(input, info);
        close(
          eps,
          get(`${prefix}.step${info.step}.noise_pred`),
          `${prefix}.step${info.step}.noise_pred(guided)`,
          worst,
        );
        return eps;
      };
    })()
    : model;
  const seen: number[] = [];
  const final = await sampleEuler(wrapped, x0, schedule, {
    callback: (i, x) => {
      seen.push(i);
      close(x, get(`${prefix}.step${i}.latents`), `${prefix}.step${i}.latents`, worst);
    },
  });
  close(final, get(`${prefix}.latents_final`), `${prefix}.latents_final`, worst);
  assertEquals(seen, [...Array(N).keys()]);
  assertEquals(calls, N);
  console.log(prefix, Object.fromEntries([...worst].map(([k, v]) => [k, v.toExponential(2)])));
}

Deno.test("sgm EulerEDM trajectory (LegacyDDPM, eps, no CFG) replays within 2e-5·max|ref| per step", async () => {
  await replay("sgm_euler", legacyDdpmSchedule(N), false);
});

Deno.test("diffusers Euler trajectory (leading, offset 1) replays within tolerance", async () => {
  await replay("euler", diffusersEulerSchedule(N, "leading", 1), false);
});

Deno.test("diffusers Euler + CFG (stored scale) trajectory: doubled batch, guided eps and latents per step", async () => {
  await replay("euler_cfg", diffusersEulerSchedule(N, "leading", 1), true);
});

Deno.test("partial range from a stored latent reaches the stored later latents (start at t_m)", async () => {
  const s = legacyDdpmSchedule(N);
  const model: EpsModel = (_x, info) => get(`sgm_euler.step${info.step}.noise_pred`);
  const out = await sampleEuler(model, get("sgm_euler.step1.latents"), s, { startIndex: 2, endIndex: 4 });
  assertLess(maxAbsDiff(out, get("sgm_euler.step3.latents")), 1e-3);
  const same = await sampleEuler(model, get("input.noise"), s, { startIndex: 3, endIndex: 3 });
  assertEquals([...same.data], [...get("input.noise").data]);
  await assertRejects(
    () => sampleEuler(model, get("input.noise"), s, { startIndex: N - 1, endIndex: N + 1 }),
    RangeError,
  );
});

Deno.test("callback replacement feeds the next step (constant-eps model, hand-computed)", async () => {
  const s: Schedule = {
    sigmas: new Float64Array([4, 2, 1, 0]),
    timesteps: new Float64Array([30, 20, 10]),
    initNoiseScale: 1,
  };
  const inputs: number[] = [];
  const ones: EpsModel = (x) => {
    inputs.push(x.data[0]);
    return f32(x.shape, new Float32Array(x.data.length).fill(1));
  };
  const x = f32([1, 2], new Float32Array([10, 20]));
  // no callback: x + (0 − 4)·1
  assertEquals([...(await sampleEuler(ones, x, s)).data], [6, 16]);
  const expectedInputs = [10 / Math.sqrt(17), 8 / Math.sqrt(5), 7 / Math.sqrt(2)]; // x_i/√(σ_i²+1)
  inputs.forEach((v, i) => assertLess(Math.abs(v - expectedInputs[i]), 1e-6));
  // replace x by 100 after step 0 → 100 + (1 − 2) + (0 − 1) = 98
  const out = await sampleEuler(ones, x, s, {
    callback: (i, cur) => (i === 0 ? f32(cur.shape, new Float32Array([100, 100])) : undefined),
  });
  assertEquals([...out.data], [98, 98]);
  assertEquals([...x.data], [10, 20], "input untouched");
});

Deno.test("vToEps: Euler with the converted v equals Euler on the EDM denoiser D = c_skip·x + c_out·v", () => {
  const x = f32([3], new Float32Array([1.5, -2, 0.25])), v = f32([3], new Float32Array([0.3, 0.7, -1.1]));
  for (const sigma of [700, 1.27318, 0.002]) {
    const eps = vToEps(scaleModelInput(x, sigma), v, sigma);
    const next = eulerStep(x, eps, sigma, sigma / 2);
    for (let j = 0; j < 3; j++) {
      const D = x.data[j] / (sigma * sigma + 1) - (sigma / Math.sqrt(sigma * sigma + 1)) * v.data[j];
      const ref = x.data[j] + (sigma / 2 - sigma) * (x.data[j] - D) / sigma;
      assertLess(Math.abs(next.data[j] - ref), 2e-5 * Math.max(1, Math.abs(ref)));
    }
  }
  const si = scaleModelInput(x, 3);
  assert(Math.abs(si.data[0] - 1.5 / Math.sqrt(10)) < 1e-7);
});
