/** CLIPTextModel graph against tests/fixtures/conformance/text_encoder_vectors.safetensors (transformers 4.57.6). */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { assert, assertEquals, assertLess, assertRejects } from "../assert.ts";
import { type ClipTextConfig, ClipTextModel } from "../../pipeline/backbone/clip/text.ts";
import {
  emptyPromptEmbedding,
  emptyPromptIds,
  promptTokens,
} from "../../pipeline/backbone/clip/prompt_embedding.ts";
import { UserError } from "../../pipeline/errors.ts";
import { encodeSafetensors, parseSafetensors } from "../../pipeline/tensor/safetensors.ts";
import { f32, maxAbs, maxAbsDiff, rows, type Tensor, toF32 } from "../../pipeline/tensor/tensor.ts";
import { FIXTURES } from "../paths.ts";
import { closeTo } from "./conformance_io.ts";

const TE = `${FIXTURES}/conformance/text_encoder`;
const P = `${FIXTURES}/conformance/text_encoder_vectors.safetensors`;
const ref = parseSafetensors(Deno.readFileSync(P), P);
const R = (k: string) => ref.getF32(k);
const ids = R("input.input_ids");
const idsI64: Tensor<"I64"> = {
  dtype: "I64",
  shape: ids.shape,
  data: BigInt64Array.from(ids.data, (v) => BigInt(v)),
};

const close = closeTo;
/** The set's text-encoder config and what the stored ids say: row 0 = the tokenized empty prompt [BOS, EOS, pad…]. */
const config = JSON.parse(fs.readFileSync(path.join(TE, "config.json"), "utf8"));
const [, L] = ids.shape, C = R("output.last_hidden_state").shape[2];
const [BOS, EOS, PAD] = [ids.data[0], ids.data[1], ids.data[2]];

Deno.test("CLIPTextModel: last_hidden_state, layer outputs and pooled token of all 4 rows", async () => {
  const t0 = performance.now();
  const te = await ClipTextModel.load(TE, { threads: 1, taps: true });
  const tLoad = performance.now() - t0;
  const out = await te.session.run({ input_ids: idsI64 });
  const report: Record<string, string> = {};
  close(out.last_hidden_state, R("output.last_hidden_state"), "output.last_hidden_state", report);
  for (const k of ["debug.embeddings.out", "debug.encoder.layer0.out", "debug.encoder.layer1.out"]) {
    close(out[k], R(k), k, report);
  }
  // pooler_output (legacy eos_token_id = 2 rule): the hidden state at argmax(ids) = first EOS
  const B = ids.shape[0], lhs = toF32(out.last_hidden_state), pooled = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    let arg = 0;
    for (let j = 1; j < L; j++) if (ids.data[b * L + j] > ids.data[b * L + arg]) arg = j;
    pooled.set(lhs.data.subarray((b * L + arg) * C, (b * L + arg + 1) * C), b * C);
  }
  close(f32([B, C], pooled), R("output.pooler_output"), "output.pooler_output", report);
  // encode() with I32 ids gives the same
  const i32 = { dtype: "I32" as const, shape: ids.shape, data: Int32Array.from(ids.data) };
  close(await te.encode(i32), R("output.last_hidden_state"), "encode(I32)", report);
  await assertRejects(
    () => te.encode({ dtype: "I32", shape: [1, 2], data: Int32Array.of(BOS, config.vocab_size) }),
    RangeError,
    `token id ${config.vocab_size}`,
  );
  console.log(report, `load ${tLoad.toFixed(0)} ms`);
  await te.release();
});

const tinyCfg = {
  vocabSize: config.vocab_size,
  maxPositions: config.max_position_embeddings,
} as ClipTextConfig;

Deno.test("empty-prompt ids: derived BOS/EOS without a tokenizer, from vocab.json with one", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "prompt-"));
  try {
    const t = promptTokens(tmp, tinyCfg);
    assertEquals(t, { bos: BOS, eos: EOS, pad: PAD, length: L });
    const row0 = [...rows(ids, 0, 1).data];
    assertEquals([...emptyPromptIds(t).data].map(Number), row0, 'conformance row 0 = tokenized ""');
    // real SD 2.x vocabulary: pad "!" = 0
    fs.mkdirSync(path.join(tmp, "tokenizer"));
    const vocab = { "!": 0, "<|startoftext|>": 49406, "<|endoftext|>": 49407 };
    fs.writeFileSync(path.join(tmp, "tokenizer", "vocab.json"), JSON.stringify(vocab));
    fs.writeFileSync(
      path.join(tmp, "tokenizer", "special_tokens_map.json"),
      JSON.stringify({ pad_token: "!", bos_token: { content: "<|startoftext|>" } }),
    );
    const real = { vocabSize: 49408, maxPositions: 77 } as ClipTextConfig;
    const sd2 = [...emptyPromptIds(promptTokens(tmp, real)).data].map(Number);
    assertEquals(sd2.slice(0, 3), [49406, 49407, 0]);
    assertEquals(sd2.length, 77);
    // SD 1.x pads with EOS
    fs.writeFileSync(
      path.join(tmp, "tokenizer", "special_tokens_map.json"),
      JSON.stringify({ pad_token: "<|endoftext|>" }),
    );
    assertEquals(promptTokens(tmp, real).pad, 49407);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

Deno.test("emptyPromptEmbedding: from text_encoder/, else from model_index.json's vidseg_prompt_embedding", async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "prompt-model-"));
  try {
    await assertRejects(
      () => emptyPromptEmbedding(tmp),
      UserError,
      "no text_encoder/ folder and no model_index.json",
    );
    fs.mkdirSync(path.join(tmp, "text_encoder"));
    for (const f of ["config.json", "model.safetensors"]) {
      fs.copyFileSync(path.join(TE, f), path.join(tmp, "text_encoder", f));
    }
    const e = await emptyPromptEmbedding(tmp, { threads: 1 });
    assertEquals(e.shape, [1, L, C]);
    const row0 = f32([1, L, C], rows(R("output.last_hidden_state"), 0, 1).data.slice());
    assertLess(maxAbsDiff(e, row0), 1e-4 * maxAbs(row0));
    // no text encoder: the stored embedding
    fs.rmSync(path.join(tmp, "text_encoder"), { recursive: true });
    fs.writeFileSync(
      path.join(tmp, "model_index.json"),
      JSON.stringify({
        _class_name: "StableDiffusionPipeline",
        vidseg_prompt_embedding: "prompt_embedding.safetensors",
      }),
    );
    await assertRejects(
      () => emptyPromptEmbedding(tmp),
      UserError,
      "prompt_embedding.safetensors: cannot open",
    );
    fs.writeFileSync(
      path.join(tmp, "prompt_embedding.safetensors"),
      encodeSafetensors({ empty_prompt: row0 }),
    );
    const stored = await emptyPromptEmbedding(tmp);
    assertEquals([...stored.data], [...row0.data]);
    fs.writeFileSync(
      path.join(tmp, "prompt_embedding.safetensors"),
      encodeSafetensors({ empty_prompt: f32([1, L - 1, C]) }),
    );
    await assertRejects(
      () => emptyPromptEmbedding(tmp),
      UserError,
      `tensor "empty_prompt" has shape [1, ${L - 1}, ${C}], expected [1, ${L}, D]`,
    );
    fs.mkdirSync(path.join(tmp, "unet"));
    fs.writeFileSync(path.join(tmp, "unet", "config.json"), JSON.stringify({ cross_attention_dim: 2 * C }));
    fs.writeFileSync(
      path.join(tmp, "prompt_embedding.safetensors"),
      encodeSafetensors({ empty_prompt: row0 }),
    );
    const err = await assertRejects(() => emptyPromptEmbedding(tmp), UserError, `has width ${C} but`);
    assert(err.message.includes(`cross_attention_dim ${2 * C}`));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
