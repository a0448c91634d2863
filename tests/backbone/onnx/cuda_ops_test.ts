/**
 * GPU readiness without a GPU: every graph variant the pipeline builds (UNet: plain, fp16, plain-ops attention,
 * truncated, prefix-exposing, resumed suffix with modulation and injection; KL-VAE encoder/decoder; TAESD; CLIP
 * text encoder) uses only operator types with a kernel in onnxruntime's CUDA provider (pipeline/backbone/onnx/
 * cuda_ops.ts), read from the encoded graphs; and the check does flag an op the CUDA provider lacks.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { buildClipText, clipTextSpec, parseClipTextConfig } from "../../../pipeline/backbone/clip/text.ts";
import { readJsonConfig } from "../../../pipeline/backbone/model_files.ts";
import { buildTinyGraph, locateTiny, openTinyWeights } from "../../../pipeline/backbone/vae/taesd.ts";
import { UNet } from "../../../pipeline/backbone/sd/unet.ts";
import {
  buildKlDecoder,
  buildKlEncoder,
  openKlWeights,
  parseKlConfig,
} from "../../../pipeline/backbone/vae/kl.ts";
import { GraphBuilder } from "../../../pipeline/backbone/onnx/builder.ts";
import { hasCudaKernel, opsWithoutCudaKernel } from "../../../pipeline/backbone/onnx/cuda_ops.ts";
import { modelOpTypes } from "../../../pipeline/backbone/onnx/op_list.ts";
import { SafetensorsWeights } from "../../../pipeline/backbone/weights/weight_map.ts";
import { f32 } from "../../../pipeline/tensor/tensor.ts";
import { assert, assertEquals } from "../../assert.ts";
import { DATA, FIXTURES } from "../../paths.ts";
import { tempGraphCache } from "../conformance_io.ts";

const CONF = path.join(FIXTURES, "conformance");

Deno.test("every UNet graph variant uses only ops with CUDA kernels", async () => {
  const cacheDir = tempGraphCache("vidseg-cuda-ops-");
  const variants = [
    {},
    { dtype: "fp16" as const },
    { attention: "matmul" as const },
    { taps: ["up.pos07.attn1_q"], truncate: true },
    { taps: ["up.pos07.attn1_q"], exposePrefixAt: 7 },
    { resumeAt: 7, modulationPosition: 7, injectPositions: [7, 8, 9] },
  ];
  const seen = new Set<string>();
  try {
    for (const v of variants) {
      // The graph as built (shareWeights false keeps it: on CPU the shared path keeps only the optimised form).
      const u = await UNet.load(CONF, { cacheDir, shareWeights: false, ...v });
      const bytes = fs.readFileSync(u.graph.path);
      await u.release();
      assertEquals(opsWithoutCudaKernel(bytes), [], `variant ${JSON.stringify(v)}`);
      for (const o of modelOpTypes(bytes)) seen.add(`${o.domain}:${o.opType}`);
    }
    // The fused attention and the normalisations are among the checked ops (the check saw real graphs).
    for (
      const op of [
        ":Conv",
        ":InstanceNormalization",
        ":LayerNormalization",
        "com.microsoft:MultiHeadAttention",
      ]
    ) {
      assert(seen.has(op), `${op} in the UNet graphs`);
    }
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

Deno.test("VAE, TAESD and CLIP text graphs use only ops with CUDA kernels", () => {
  const vaeDir = path.join(CONF, "vae");
  const cfgPath = path.join(vaeDir, "config.json");
  const kl = parseKlConfig(readJsonConfig(cfgPath));
  const weightsFile = path.join(vaeDir, fs.readdirSync(vaeDir).find((f) => f.endsWith(".safetensors"))!);
  const graphs: Record<string, Uint8Array> = {};
  for (const [name, build] of [["kl encoder", buildKlEncoder], ["kl decoder", buildKlDecoder]] as const) {
    const w = openKlWeights(weightsFile, kl, cfgPath);
    try {
      graphs[name] = build(kl, w);
    } finally {
      w.close();
    }
  }
  const tiny = locateTiny(path.join(DATA, "models", "tiny-ldm", "vae"));
  for (const half of ["encoder", "decoder"] as const) {
    const w = openTinyWeights(tiny, half);
    try {
      graphs[`taesd ${half}`] = buildTinyGraph(tiny.cfg, half, tiny.layout, w);
    } finally {
      w.close();
    }
  }
  const te = path.join(CONF, "text_encoder");
  const clip = parseClipTextConfig(readJsonConfig(path.join(te, "config.json")));
  const cw = new SafetensorsWeights(path.join(te, "model.safetensors"));
  try {
    cw.validate(clipTextSpec(clip), {
      configPath: path.join(te, "config.json"),
      ignore: (k) => k.endsWith("position_ids"),
    });
    graphs["clip text"] = buildClipText(clip, cw);
  } finally {
    cw.close();
  }
  for (const [name, bytes] of Object.entries(graphs)) {
    assert(modelOpTypes(bytes).length > 3, `${name}: ops read from the graph`);
    assertEquals(opsWithoutCudaKernel(bytes), [], name);
  }
});

Deno.test("the check flags ops the CUDA provider lacks", () => {
  const g = new GraphBuilder({ name: "cpu_only" });
  const x = g.input("x", "F32", [1, 8, 4, 4]);
  const w = g.initializer(f32([8, 8, 1, 1], new Float32Array(64).fill(0.1)));
  // NchwcConv: the CPU-only blocked-layout convolution onnxruntime's CPU optimiser emits.
  const y = g.opN("NchwcConv", [x, w], 1, {}, "nchwc", "com.microsoft.nchwc")[0];
  const z = g.op("Mish", [g.op("Relu", [y])]);
  g.output("y", z);
  assertEquals(opsWithoutCudaKernel(g.toBytes()), [":Mish", "com.microsoft.nchwc:NchwcConv"]);
  assert(hasCudaKernel({ domain: "", opType: "Relu" }), "Relu has a CUDA kernel");
});
