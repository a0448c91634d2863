/**
 * The one entry to the diffusion side: {@link openBackbone} returns the implementation of a config's model
 * family. A new family is a folder under `backbone/` implementing {@link Backbone} plus one line here.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../errors.ts";
import { expectPipeline } from "./weights/diffusers.ts";
import type { Backbone, BackboneParams } from "./types.ts";
import { SdBackbone } from "./sd/backbone.ts";
import { SvdBackbone } from "./svd/backbone.ts";

export type * from "./types.ts";
export { releaseModels } from "./pool.ts";

/** The backbone of config group `backbone`; its weights folder must exist and be of that family (one error line). */
export function openBackbone(params: BackboneParams): Backbone {
  checkPipelineKind(params);
  return params.kind === "svd" ? new SvdBackbone(params) : new SdBackbone(params);
}

/**
 * Check that the weights folder exists and is the pipeline family `backbone.kind` needs, from its
 * `model_index.json` (`_class_name` StableVideoDiffusionPipeline vs StableDiffusionPipeline) or its UNet config.
 */
export function checkPipelineKind(b: BackboneParams): void {
  if (!fs.existsSync(b.weights)) {
    const what = b.kind === "svd"
      ? "a diffusers StableVideoDiffusionPipeline folder with unet/, vae/ and image_encoder/"
      : "a diffusers Stable Diffusion folder with unet/ and vae/";
    fail(b.weights, `weights folder does not exist (backbone.weights; expected ${what})`);
  }
  expectPipeline(b.weights, b.kind === "svd" ? "svd" : "sd");
}

/** Parts of a diffusers folder the backbones read (components absent from a family's folder are skipped). */
const MODEL_PARTS = [
  "model_index.json",
  "prompt_embedding.safetensors",
  "unet",
  "vae",
  "text_encoder",
  "image_encoder",
  "scheduler",
];

/**
 * The files and folders of `weights` a backbone reads: stages list them as input files, so their cache keys follow
 * the weights' content, not the folder's name (weights replaced in place invalidate what was computed from them).
 */
export function modelFiles(weights: string): string[] {
  return MODEL_PARTS.map((p) => path.join(weights, p)).filter((p) => fs.existsSync(p));
}
