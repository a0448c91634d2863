/**
 * Stage `invert` (docs/method.md §3.1): encode the frames of a clip into latents and draw the noise every batch
 * receives.
 *
 * Artifacts: tensors `z0` [N, 4, H/8, W/8] (UNet-scaled latents, posterior mean — docs/method.md §13.12), `eps`
 * [F, 4, H/8, W/8] (the reference re-seeds at every batch, so batch b's in-batch frame j gets eps[j]) and the
 * backbone's extra noise (SVD: `cond_noise` [1, 3, H, W], the conditioning frame's augmentation).
 * @module
 */
import { rowsOf, shapeOf, type Stage, type TensorOutput, tensorOutput } from "../dag/stage.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { modelFiles, openBackbone } from "../backbone/backbone.ts";
import { backboneOf, ENCODER_FIELDS, keysOf } from "./params.ts";

type P = Record<string, unknown>;

export const invertStage: Stage<P> = {
  name: "invert",
  version: 1,
  params: [...keysOf("backbone", ENCODER_FIELDS), "seed", "batch_size"],
  upstream: ["frames"],
  inputFiles: (p) => modelFiles(p["backbone.weights"] as string),
  async run(inputs, p, ctx) {
    const [N, H, W] = shapeOf(inputs.frames, "frames")!.shape; // U8 [N, H, W, 3]
    if (H % 64 || W % 64) throw new Error(`invert: frames ${W}×${H} are not multiples of 64`);
    const backbone = openBackbone(backboneOf(p, ENCODER_FIELDS));
    const chunk = 7;
    let z0: TensorOutput<"F32"> | null = null;
    let latentShape: readonly number[] = [];
    // Frames stream in and latents stream out, a chunk at a time.
    for (let i = 0; i < N; i += chunk) {
      const frames = rowsOf(inputs.frames, "frames", i, Math.min(N, i + chunk)) as Tensor<"U8">;
      const z = await backbone.encode(frames);
      latentShape = z.shape.slice(1);
      z0 ??= tensorOutput(ctx, "z0", "F32", [N, ...latentShape]);
      z0.append(z);
      ctx.progress(Math.min(N, i + chunk), N, "frames encoded");
    }
    const F = Math.min(p.batch_size as number, N);
    return {
      tensors: { ...z0!.result(), ...backbone.noise(p.seed as number, F, latentShape, [H, W]) },
      json: {},
    };
  },
};
