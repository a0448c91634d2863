import { assert, assertEquals, assertLess } from "../../assert.ts";
import {
  diffusersEulerSchedule,
  diffusersTrainSchedule,
  edmSchedule,
  legacyDdpmSchedule,
  legacyDdpmTimesteps,
  sgmTrainSchedule,
  sigmaToTimestep,
} from "../../../pipeline/backbone/sampler/schedule.ts";
import { parseSafetensors } from "../../../pipeline/tensor/safetensors.ts";
import { FIXTURES } from "../../paths.ts";

const load = (p: string) => parseSafetensors(Deno.readFileSync(p), p);
const sched = load(`${FIXTURES}/conformance/scheduler.safetensors`);
const traj = load(`${FIXTURES}/conformance/trajectory.safetensors`);
/** Steps of the stored schedules and of the stored trajectories. */
const STEPS = sched.getF32("sgm.timesteps").data.length,
  TRAJ_STEPS = traj.getF32("euler.timesteps").data.length;

/** Largest relative difference |a−b|/max(|b|, floor) between two equally long sequences. */
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-12): number {
  assertEquals(a.length, b.length, "length");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return m;
}

// docs/method.md §3.3, as printed (strings keep the printed precision).
const TABLE: [number, number, string, string][] = [
  [0, 999, "14.6146", "700.0"],
  [1, 959, "11.5428", "545.729"],
  [2, 919, "9.23742", "421.569"],
  [3, 879, "7.48542", "322.454"],
  [4, 839, "6.13746", "244.023"],
  [5, 799, "5.08776", "182.547"],
  [6, 759, "4.26056", "134.854"],
  [7, 719, "3.60099", "98.2671"],
  [8, 679, "3.06894", "70.5408"],
  [9, 639, "2.63480", "49.8098"],
  [10, 599, "2.27646", "34.5367"],
  [11, 559, "1.97733", "23.4675"],
  [12, 519, "1.72479", "15.5900"],
  [13, 479, "1.50919", "10.0971"],
  [14, 439, "1.32306", "6.35427"],
  [15, 399, "1.16058", "3.86970"],
  [16, 359, "1.01715", "2.26912"],
  [17, 319, "0.88909", "1.27318"],
  [18, 279, "0.77339", "0.67815"],
  [19, 239, "0.66754", "0.33938"],
  [20, 199, "0.56928", "0.15740"],
  [21, 159, "0.47645", "0.06640"],
  [22, 119, "0.38657", "0.02480"],
  [23, 79, "0.29594", "0.00788"],
  [24, 39, "0.19630", "0.00200"],
];
/** Half a unit of the last printed digit. */
const halfUlp = (s: string) => 0.5 * 10 ** -(s.split(".")[1]?.length ?? 0) + 1e-12;

Deno.test("SD LegacyDDPM and SVD EDM 25-step tables match docs/method.md §3.3 to the printed digits", () => {
  const sd = legacyDdpmSchedule(25), svd = edmSchedule(25);
  assertEquals(sd.sigmas.length, 26);
  assertEquals(sd.sigmas[25], 0);
  assertEquals(svd.sigmas[25], 0);
  for (const [i, t, sdS, svdS] of TABLE) {
    assertEquals(sd.timesteps[i], t, `t_${i}`);
    assertEquals(t, 999 - 40 * i);
    assertLess(Math.abs(sd.sigmas[i] - Number(sdS)), halfUlp(sdS), `SD σ_${i} = ${sd.sigmas[i]} vs ${sdS}`);
    assertLess(
      Math.abs(svd.sigmas[i] - Number(svdS)),
      halfUlp(svdS),
      `SVD σ_${i} = ${svd.sigmas[i]} vs ${svdS}`,
    );
    assertLess(Math.abs(svd.timesteps[i] - 0.25 * Math.log(svd.sigmas[i])), 1e-15, "c_noise");
  }
});

Deno.test("LegacyDDPM timesteps: 5 steps → 999..199, all integer and descending", () => {
  assertEquals([...legacyDdpmTimesteps(5)], [999, 799, 599, 399, 199]);
  assertEquals([...legacyDdpmTimesteps(1)], [999]);
  const t50 = legacyDdpmTimesteps(50);
  assertEquals(t50[0], 999);
  for (let i = 1; i < 50; i++) assert(t50[i] < t50[i - 1]);
});

Deno.test("sgm tables match scheduler.safetensors (sgm.*: float64 betas)", () => {
  const train = sgmTrainSchedule();
  assertLess(
    maxRel(train.alphasCumprod.map(Math.fround), sched.getF32("sgm.train.alphas_cumprod").data),
    1e-7,
  );
  assertLess(maxRel(train.sigmas, sched.getF32("sgm.train.sigmas").data), 1e-6);
  const s = legacyDdpmSchedule(STEPS, train);
  assertEquals([...s.timesteps], [...sched.getF32("sgm.timesteps").data]);
  assertLess(maxRel(s.sigmas, sched.getF32("sgm.sigmas").data), 1e-6);
  assertLess(maxRel([s.initNoiseScale], sched.getF32("sgm.init_noise_scale").data), 1e-6);
  // DiscreteDenoiser.sigma_to_idx recovers the timesteps from the sigmas
  for (let i = 0; i < STEPS; i++) assertEquals(sigmaToTimestep(s.sigmas[i], train.sigmas), s.timesteps[i]);
  // the grid of the trajectories
  const s5 = legacyDdpmSchedule(TRAJ_STEPS, train);
  assertLess(maxRel(s5.sigmas, traj.getF32("sgm_euler.sigmas").data), 1e-6);
  assertEquals([...s5.timesteps], [...traj.getF32("sgm_euler.timesteps").data]);
});

Deno.test("diffusers float32 tables and Euler spacings match scheduler.safetensors", () => {
  const train = diffusersTrainSchedule();
  assertLess(maxRel(train.betas, sched.getF32("train.betas").data), 1e-6);
  assertLess(maxRel(train.alphasCumprod, sched.getF32("train.alphas_cumprod").data), 1e-6);
  assertLess(maxRel(train.sigmas, sched.getF32("train.sigmas").data), 1e-6);
  for (const [spacing, offset] of [["leading", 1], ["linspace", 0], ["trailing", 0]] as const) {
    const s = diffusersEulerSchedule(STEPS, spacing, offset, train);
    assertEquals([...s.timesteps], [...sched.getF32(`euler_${spacing}.timesteps`).data], spacing);
    assertLess(maxRel(s.sigmas, sched.getF32(`euler_${spacing}.sigmas`).data), 1e-6, spacing);
    assertLess(
      maxRel([s.initNoiseScale], sched.getF32(`euler_${spacing}.init_noise_sigma`).data),
      1e-6,
      spacing,
    );
  }
  const e5 = diffusersEulerSchedule(TRAJ_STEPS, "leading", 1, train);
  assertEquals([...e5.timesteps], [...traj.getF32("euler.timesteps").data]);
  assertLess(maxRel(e5.sigmas, traj.getF32("euler.sigmas").data), 1e-6);
});

Deno.test("sgm float64 vs diffusers float32 sigmas agree to 1e-5 relative (trailing = LegacyDDPM for 25)", () => {
  const sgm = legacyDdpmSchedule(25), dif = diffusersEulerSchedule(25, "trailing");
  assertEquals([...sgm.timesteps], [...dif.timesteps]);
  const r = maxRel(sgm.sigmas.subarray(0, 25), dif.sigmas.subarray(0, 25));
  assertLess(r, 1e-5);
  assert(r > 0, "float64 and float32 betas should not give bit-identical sigmas");
});
