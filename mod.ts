/**
 * vidseg: zero-shot video semantic segmentation from the self-attention features of a pretrained diffusion
 * UNet (Wang et al., CVPR 2025), in TypeScript on onnxruntime. This module is the library API: what the CLIs
 * (`deno task ablate`, `deno task segment`) do, as calls returning data.
 *
 * - {@link segment}: label maps of every frame of a video without GT (K-Means cluster ids), in memory.
 * - {@link ablate} / {@link loadConfig}: run the rows of a config (e.g. the paper's Table 2) and get their metrics.
 * - Datasets ({@link loadDataset} and the layout loaders), metrics ({@link ConfusionMatrix}, {@link vcWindows},
 *   {@link Evaluator}), the diffusion backbone ({@link openBackbone}: encode, features, modulated re-denoising),
 *   model loaders ({@link loadVae}, {@link loadUNet}, {@link loadSvdUNet}, {@link emptyPromptEmbedding}) and the
 *   {@link Tensor} type.
 *
 * The method, stage by stage, is described in `docs/method.md`; every config key in `docs/configs.md`.
 *
 * @example Segment a folder of frames with the embedded model
 * ```ts
 * import { segment } from "./mod.ts";
 *
 * const { clips } = await segment("data/swan/images", { k: 4, resolution: [128, 64], progress: null });
 * for (const f of clips[0].frames) console.log(f.name, f.labels.shape);
 * ```
 * @module
 */

// --- running the method ---------------------------------------------------------------------------------------
export {
  segment,
  SEGMENT_CONFIG,
  type SegmentedClip,
  type SegmentedFrame,
  type SegmentOptions,
  type SegmentResult,
} from "./pipeline/api/segment.ts";
export {
  ablate,
  type AblateOptions,
  ablatePlan,
  type AblateResult,
  ablateShard,
  DEFAULT_STAGES,
  defaultCacheDir,
} from "./pipeline/api/ablate.ts";
export type { AblateOutput } from "./pipeline/report/collect.ts";
export type { RowMetrics, RowResult } from "./pipeline/report/tables.ts";
export type { ResultFiles } from "./pipeline/report/results.ts";
export type { RunSummary } from "./pipeline/dag/runner.ts";
export { parseShard, type ShardSpec } from "./pipeline/dag/shard.ts";
export type { ShardRun } from "./pipeline/cluster/shard_cli.ts";
export type { TextSink } from "./pipeline/dag/progress.ts";

// --- configs --------------------------------------------------------------------------------------------------
export {
  type ConfigRow,
  loadConfig,
  type LoadedConfig,
  type LoadOptions,
  type PaperNumbers,
  parseConfig,
  selectRows,
} from "./pipeline/config/load.ts";
export type { VidsegConfig } from "./pipeline/config/schema.ts";
export { UserError } from "./pipeline/errors.ts";

// --- datasets -------------------------------------------------------------------------------------------------
export {
  type DatasetKind,
  type DatasetSpec,
  datasetSpecFromConfig,
  loadDataset,
  readFrame,
  readGt,
} from "./pipeline/data/dataset.ts";
export { loadCamvid } from "./pipeline/data/camvid.ts";
export { loadVspw } from "./pipeline/data/vspw.ts";
export { loadCityscapes } from "./pipeline/data/cityscapes.ts";
export { loadFrames } from "./pipeline/data/frames.ts";
export { type ClassInfo, type ClipFrame, type ClipSelection, type VideoClip } from "./pipeline/data/clip.ts";

// --- metrics --------------------------------------------------------------------------------------------------
export { ConfusionMatrix, type IouResult } from "./pipeline/metrics/miou.ts";
export { meanVideoConsistency, nanmean, vcWindows } from "./pipeline/metrics/vc.ts";
export { type EvalResult, evaluateVideos, Evaluator, type EvalVideo } from "./pipeline/metrics/evaluate.ts";

// --- models ---------------------------------------------------------------------------------------------------
export {
  type EncodeOptions,
  loadVae,
  type LoadVaeOptions,
  type Vae,
} from "./pipeline/backbone/vae/autoencoder.ts";
export {
  loadSvdUNet,
  loadUNet,
  type SdUNetModel,
  type SvdUNetModel,
  type SvdUNetRunInput,
  type SvdUNetRunOutput,
  type UNetOptions,
  type UNetRunInput,
  type UNetRunOutput,
} from "./pipeline/api/models.ts";
export { emptyPromptEmbedding, type PromptOptions } from "./pipeline/backbone/clip/prompt_embedding.ts";
export type { Provider } from "./pipeline/backbone/runtime.ts";
export {
  type Backbone,
  type BackboneParams,
  type BatchInput,
  checkPipelineKind,
  type GroupOptions,
  type ModSample,
  type ModulationParams,
  type ModulationSetup,
  openBackbone,
  type PassRecord,
  releaseModels,
  type SamplerParams,
} from "./pipeline/backbone/backbone.ts";

// --- tensors and images ---------------------------------------------------------------------------------------
export { type DType, f32, i32, numel, type Tensor, type TypedArrayOf, u8 } from "./pipeline/tensor/tensor.ts";
export { readImage, readLabelImage, type Rgb, writeImage, writeLabelImage } from "./pipeline/tensor/image.ts";
