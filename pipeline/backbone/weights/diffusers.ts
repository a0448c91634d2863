/**
 * diffusers folder layout: recognise the pipeline kind from `model_index.json`, locate a component
 * (`unet/`, `vae/`, `text_encoder/`): its `config.json` and its weights (any single `*.safetensors`,
 * the `.fp16` variant on request, or a sharded `*.safetensors.index.json`). Pickled weights are refused.
 * Every problem is one UserError line naming the file.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";

/** Pipeline families we know. */
export type PipelineKind = "sd" | "svd";

/** A located component. */
export interface Component {
  /** Folder holding config.json and the weights. */
  folder: string;
  configPath: string;
  config: Record<string, unknown>;
  /** A .safetensors file or a .safetensors.index.json. */
  weightsPath: string;
}

const KIND_NAMES: Record<PipelineKind, string> = {
  sd: "a Stable Diffusion 1.x/2.x pipeline (StableDiffusionPipeline)",
  svd: "a Stable Video Diffusion pipeline (StableVideoDiffusionPipeline)",
};

/** Classify a diffusers pipeline `_class_name`. */
export function pipelineKindOf(className: string): PipelineKind | null {
  if (className === "StableVideoDiffusionPipeline") return "svd";
  if (/^StableDiffusion(Img2Img|Inpaint|Depth2Img|Upscale|)?Pipeline$/.test(className)) return "sd";
  return null;
}

/** Read a JSON file; errors are one line naming it. */
export function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    fail(file, `cannot read (${(e as { code?: string }).code ?? e})`);
  }
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== "object" || Array.isArray(v)) fail(file, "expected a JSON object");
    return v;
  } catch (e) {
    if ((e as Error).name === "UserError") throw e;
    fail(file, `not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
}

/**
 * Check that `root` is a pipeline of the expected kind when it has a `model_index.json` (a bare component
 * folder without one is accepted). Also recognises the kind from the component config's `_class_name`
 * (`component` = "unet" or "vae": root/component/config.json, else root/config.json).
 */
export function expectPipeline(root: string, want: PipelineKind, component = "unet"): void {
  const index = path.join(root, "model_index.json");
  if (fs.existsSync(index)) {
    const cls = String(readJson(index)._class_name ?? "");
    const kind = pipelineKindOf(cls);
    if (kind !== want) {
      fail(
        index,
        `_class_name "${cls}" is ${
          kind ? KIND_NAMES[kind] : "not a pipeline this project supports"
        }, but backbone.kind ${want} needs ${KIND_NAMES[want]}`,
      );
    }
    return;
  }
  const cfg = [path.join(root, component, "config.json"), path.join(root, "config.json")].find((f) =>
    fs.existsSync(f)
  );
  if (!cfg) return;
  const cls = String(readJson(cfg)._class_name ?? "");
  const known = COMPONENT_KINDS[component]?.[cls];
  if (known && known !== want) {
    fail(
      cfg,
      `_class_name "${cls}" is the ${COMPONENT_LABEL[component]} of ${
        KIND_NAMES[known]
      }, but backbone.kind ${want} needs ${KIND_NAMES[want]}`,
    );
  }
}

/** Component classes that identify the pipeline family (SD's VAE class is shared by other SD-family models). */
const COMPONENT_KINDS: Record<string, Record<string, PipelineKind>> = {
  unet: { UNet2DConditionModel: "sd", UNetSpatioTemporalConditionModel: "svd" },
  vae: { AutoencoderKL: "sd", AutoencoderKLTemporalDecoder: "svd" },
};
const COMPONENT_LABEL: Record<string, string> = { unet: "UNet", vae: "VAE" };

const PICKLE_EXT = /\.(bin|ckpt|pt|pth|pkl)$/;

/** Choose the weights file of a component folder. */
export function findWeights(folder: string, opts: { variant?: "fp16" } = {}): string {
  let names: string[];
  try {
    names = fs.readdirSync(folder).sort();
  } catch (e) {
    fail(folder, `cannot list the folder (${(e as { code?: string }).code ?? e})`);
  }
  const isFp16 = (n: string) => /\.fp16\./.test(n);
  const wantFp16 = opts.variant === "fp16";
  const pick = (cands: string[], what: string): string | null => {
    if (!cands.length) return null;
    const preferred = cands.filter((n) => isFp16(n) === wantFp16);
    const pool = preferred.length ? preferred : cands;
    if (pool.length === 1) return path.join(folder, pool[0]);
    const std = pool.find((n) =>
      /^(diffusion_pytorch_model|model)(\.fp16)?\.safetensors(\.index\.json)?$/.test(n)
    );
    if (std) return path.join(folder, std);
    fail(
      folder,
      `found several ${what} (${
        pool.join(", ")
      }); keep one or use the standard name diffusion_pytorch_model.safetensors`,
    );
  };
  const index = pick(names.filter((n) => n.endsWith(".safetensors.index.json")), "shard indexes");
  if (index) return index;
  const single = pick(names.filter((n) => n.endsWith(".safetensors")), "*.safetensors files");
  if (single) return single;
  const pickled = names.find((n) => PICKLE_EXT.test(n));
  if (pickled) {
    fail(
      path.join(folder, pickled),
      "pickled PyTorch weights are not loaded (refusing to unpickle); convert them to .safetensors first",
    );
  }
  fail(folder, "no *.safetensors weights found (expected e.g. diffusion_pytorch_model.safetensors)");
}

/**
 * Locate component `name` under `root` (root/name/config.json), or `root` itself when it is the component
 * folder (root/config.json and no root/name).
 */
export function findComponent(root: string, name: string, opts: { variant?: "fp16" } = {}): Component {
  if (!fs.existsSync(root)) fail(root, "weights folder does not exist");
  const sub = path.join(root, name);
  const folder = fs.existsSync(path.join(sub, "config.json"))
    ? sub
    : fs.existsSync(path.join(root, "config.json"))
    ? root
    : null;
  if (!folder) fail(root, `no ${name}/config.json (expected a diffusers folder with a ${name}/ component)`);
  const configPath = path.join(folder, "config.json");
  return { folder, configPath, config: readJson(configPath), weightsPath: findWeights(folder, opts) };
}

/** The scheduler config of a pipeline folder, if present (e.g. to read `prediction_type`). */
export function readSchedulerConfig(root: string): Record<string, unknown> | null {
  const f = path.join(root, "scheduler", "scheduler_config.json");
  return fs.existsSync(f) ? readJson(f) : null;
}
