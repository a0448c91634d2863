/**
 * The conditional context of the method: the text embedding of the empty prompt "" (docs/method.md §1.1; the
 * unconditional context is all zeros and is not computed here).
 *
 * SD 2.x tokenizes "" to [BOS, EOS, pad ×75] with pad = "!" = 0 (SD 1.x pads with EOS instead). BOS/EOS/pad come
 * from the model's `tokenizer/` folder when present (`vocab.json` + `special_tokens_map.json`), otherwise the
 * CLIP convention BOS = vocab_size − 2, EOS = vocab_size − 1, pad = 0 is used.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fail } from "../../errors.ts";
import { type Tensor, toF32 } from "../../tensor/tensor.ts";
import type { Provider } from "../runtime.ts";
import { SafetensorsWeights } from "../weights/weight_map.ts";
import { type ClipTextConfig, ClipTextModel } from "./text.ts";
import { readJsonConfig } from "../model_files.ts";

/** Token ids used to build the empty prompt. */
export interface PromptTokens {
  bos: number;
  eos: number;
  pad: number;
  /** Sequence length (77). */
  length: number;
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/** BOS/EOS/pad ids for a model folder (see module doc). */
export function promptTokens(modelFolder: string, cfg: ClipTextConfig): PromptTokens {
  const tokDir = path.join(modelFolder, "tokenizer");
  const vocabPath = path.join(tokDir, "vocab.json");
  if (!fs.existsSync(vocabPath)) {
    return { bos: cfg.vocabSize - 2, eos: cfg.vocabSize - 1, pad: 0, length: cfg.maxPositions };
  }
  const vocab = readJsonConfig(vocabPath);
  const id = (tok: string, what: string): number => {
    const v = vocab.json[tok];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= cfg.vocabSize) {
      fail(vocabPath, `${what} token ${JSON.stringify(tok)} has no id below vocab_size ${cfg.vocabSize}`);
    }
    return v;
  };
  let special: Record<string, unknown> = {};
  for (const f of ["special_tokens_map.json", "tokenizer_config.json"]) {
    const p = path.join(tokDir, f);
    if (fs.existsSync(p)) {
      special = { ...readJsonConfig(p).json, ...special };
    }
  }
  const bos = tokenName(special.bos_token) ?? "<|startoftext|>";
  const eos = tokenName(special.eos_token) ?? "<|endoftext|>";
  const pad = tokenName(special.pad_token) ?? "!";
  return { bos: id(bos, "bos"), eos: id(eos, "eos"), pad: id(pad, "pad"), length: cfg.maxPositions };
}

/** Token ids of "" as [1, length] int64: [BOS, EOS, pad, …]. */
export function emptyPromptIds(t: PromptTokens): Tensor<"I64"> {
  const data = new BigInt64Array(t.length).fill(BigInt(t.pad));
  data[0] = BigInt(t.bos);
  data[1] = BigInt(t.eos);
  return { dtype: "I64", shape: [1, t.length], data };
}

/** Options of {@link emptyPromptEmbedding}. */
export interface PromptOptions {
  /** onnxruntime execution provider for the text encoder (default cpu). */
  provider?: Provider;
  /** onnxruntime intra-op threads. */
  threads?: number;
}

/**
 * The embedding of "" [1, 77, D] for a diffusers model folder: computed with `text_encoder/` when present, else
 * read from the file named by `vidseg_prompt_embedding` in `model_index.json` (tensor `empty_prompt`). Nothing
 * is cached here.
 */
export async function emptyPromptEmbedding(
  modelFolder: string,
  opts: PromptOptions = {},
): Promise<Tensor<"F32">> {
  const teDir = path.join(modelFolder, "text_encoder");
  if (fs.existsSync(path.join(teDir, "config.json"))) {
    const te = await ClipTextModel.load(teDir, opts);
    try {
      return await te.encode(emptyPromptIds(promptTokens(modelFolder, te.cfg)));
    } finally {
      await te.release();
    }
  }
  const indexPath = path.join(modelFolder, "model_index.json");
  if (!fs.existsSync(indexPath)) {
    fail(
      modelFolder,
      "no text_encoder/ folder and no model_index.json naming a vidseg_prompt_embedding file",
    );
  }
  const index = readJsonConfig(indexPath);
  const entry = index.json.vidseg_prompt_embedding;
  const name = typeof entry === "string"
    ? entry
    : Array.isArray(entry) && typeof entry.at(-1) === "string"
    ? entry.at(-1) as string
    : undefined;
  if (!name) {
    fail(
      indexPath,
      `no text_encoder/ folder and "vidseg_prompt_embedding" is ${
        JSON.stringify(entry)
      } (expected a file name)`,
    );
  }
  const file = path.join(modelFolder, name);
  const st = new SafetensorsWeights(file); // UserErrors name the file
  let t: Tensor<"F32">;
  try {
    const shape = st.shapeOf("empty_prompt");
    if (!shape) fail(file, `missing tensor "empty_prompt" (expected [1, 77, D]; named by ${indexPath})`);
    if (shape.length !== 3 || shape[0] !== 1 || shape[1] !== 77) {
      fail(file, `tensor "empty_prompt" has shape [${shape.join(", ")}], expected [1, 77, D]`);
    }
    t = toF32(st.take("empty_prompt"));
  } finally {
    st.close();
  }
  const unetCfg = path.join(modelFolder, "unet", "config.json");
  if (fs.existsSync(unetCfg)) {
    const D = readJsonConfig(unetCfg).json.cross_attention_dim;
    if (typeof D === "number" && D !== t.shape[2]) {
      fail(file, `tensor "empty_prompt" has width ${t.shape[2]} but ${unetCfg} has cross_attention_dim ${D}`);
    }
  }
  return t;
}
