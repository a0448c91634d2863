/**
 * The diffusion models as a library exposes them: loaders for the UNets (SD family, including the embedded
 * tiny model, and SVD) behind small documented interfaces, plus the VAE loader and the empty-prompt embedding.
 * Graphs are built from a diffusers folder (`config.json` + `.safetensors`) on first use and cached.
 * @module
 */
import { UNet, type UNetRunInput, type UNetRunOutput } from "../backbone/sd/unet.ts";
import { SvdUNet, type SvdUNetRunInput, type SvdUNetRunOutput } from "../backbone/svd/unet.ts";
import type { Provider } from "../backbone/runtime.ts";

export type { SvdUNetRunInput, SvdUNetRunOutput, UNetRunInput, UNetRunOutput };

/** Options of {@link loadUNet} and {@link loadSvdUNet}. */
export interface UNetOptions {
  /** onnxruntime execution provider (default cpu). */
  provider?: Provider;
  /** Weight/compute precision of the graph; inputs and outputs stay float32 (default fp32). */
  dtype?: "fp32" | "fp16";
  /**
   * Intermediate tensors to output beside the prediction, by tap name, e.g. `up.pos07.attn1_q` (the
   * self-attention query of decoder block 7, the method's feature; docs/method.md §2).
   */
  taps?: readonly string[];
  /** Decoder block whose attention output receives the run's `modulation` input (docs/method.md §8.2). */
  modulationPosition?: number | null;
  /** Decoder blocks whose attention q/k are run inputs (`injected`, docs/method.md §8.3). */
  injectPositions?: readonly number[];
  /** Output only the taps and skip everything after the deepest one (no prediction). */
  truncate?: boolean;
  /** Graph cache folder (default `$VIDSEG_GRAPH_CACHE`, else `results/cache/graphs`). */
  cacheDir?: string;
  /** onnxruntime intra-op threads (default `$VIDSEG_THREADS` or onnxruntime's choice). */
  threads?: number;
}

/** A loaded Stable Diffusion-family UNet (SD 2.1, the embedded tiny model). */
export interface SdUNetModel {
  /** "epsilon" or "v_prediction", from the folder's scheduler config. */
  readonly predictionType: string;
  /** One evaluation of a batch: prediction `eps` and the requested taps. */
  run(input: UNetRunInput): Promise<UNetRunOutput>;
  /** Free the onnxruntime session. */
  release(): Promise<void>;
}

/** A loaded Stable Video Diffusion UNet. */
export interface SvdUNetModel {
  /** One evaluation of B videos: v-prediction `v` and the requested taps. */
  run(input: SvdUNetRunInput): Promise<SvdUNetRunOutput>;
  /** Free the onnxruntime session. */
  release(): Promise<void>;
}

/**
 * Load the UNet of a Stable Diffusion-family diffusers folder (e.g. `data/models/tiny-ldm`, or an SD 2.1-base
 * download), building its ONNX graph with the requested taps and hooks on first use.
 */
export function loadUNet(folder: string, opts: UNetOptions = {}): Promise<SdUNetModel> {
  return UNet.load(folder, { ...opts });
}

/** Load the UNet of a diffusers `stable-video-diffusion-img2vid` folder. */
export function loadSvdUNet(folder: string, opts: UNetOptions = {}): Promise<SvdUNetModel> {
  return SvdUNet.load(folder, { ...opts });
}
