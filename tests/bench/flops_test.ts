/**
 * MAC counts per UNet variant against independent references: a hand count of one decoder block of a small
 * SD-2.1-structured UNet built here, and whole-UNet totals from tools/count_macs.py (forward hooks on the torch
 * re-implementation tools/unet2d.py, counting the same things: Conv2d/Linear weights × outputs and the two
 * attention matmuls). Also the memory-budget sizing of the optimized schedule, by hand.
 * The UNet is this file's own (widths 16/32/32/32, heads 2/4/4/1, context 32), not a fixture's, so the counts
 * stay valid whatever conformance set the tests read.
 */
import { assertEquals } from "../assert.ts";
import { parseUNetConfig } from "../../pipeline/backbone/sd/config.ts";
import { encodeSafetensors } from "../../pipeline/tensor/safetensors.ts";
import {
  resnetMacs,
  totalMacs,
  transformerMacs,
  unetMacs,
  variantShapeOf,
} from "../../pipeline/bench/flops.ts";
import { MICRO_BATCH, unetRowBytes } from "../../pipeline/backbone/sd/models.ts";
import { INJECT_POSITIONS, sdGroupOptions as optimizedOptions } from "../../pipeline/backbone/sd/backbone.ts";

/** A diffusers UNet2DConditionModel config (SD 2.1 block structure, tiny widths); counted by hand below. */
const SMALL_UNET = {
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "addition_embed_type": null,
  "addition_embed_type_num_heads": 64,
  "addition_time_embed_dim": null,
  "attention_head_dim": [2, 4, 4, 1],
  "attention_type": "default",
  "block_out_channels": [16, 32, 32, 32],
  "center_input_sample": false,
  "class_embed_type": null,
  "class_embeddings_concat": false,
  "conv_in_kernel": 3,
  "conv_out_kernel": 3,
  "cross_attention_dim": 32,
  "cross_attention_norm": null,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1,
  "dropout": 0.0,
  "dual_cross_attention": false,
  "encoder_hid_dim": null,
  "encoder_hid_dim_type": null,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_only_cross_attention": null,
  "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn",
  "norm_eps": 1e-05,
  "norm_num_groups": 8,
  "num_attention_heads": null,
  "num_class_embeds": null,
  "only_cross_attention": false,
  "out_channels": 4,
  "projection_class_embeddings_input_dim": null,
  "resnet_out_scale_factor": 1.0,
  "resnet_skip_time_act": false,
  "resnet_time_scale_shift": "default",
  "reverse_transformer_layers_per_block": null,
  "sample_size": 16,
  "time_cond_proj_dim": null,
  "time_embedding_act_fn": null,
  "time_embedding_dim": null,
  "time_embedding_type": "positional",
  "timestep_post_act": null,
  "transformer_layers_per_block": 1,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "upcast_attention": false,
  "use_linear_projection": true,
};
const layout = parseUNetConfig(SMALL_UNET, "small-unet.json");

Deno.test("flops: up position 7 of the small UNet at latent 16×16, counted by hand", () => {
  // Position 7 = up_blocks[2].resnets[1] + attentions[1], at down level 1's grid: 8×8 = 64 tokens, C = 32.
  // Resnet 64 → 32 channels (32 hidden + 32 skip from down_blocks[1]), time embedding 4·16 = 64:
  //   conv1 64·32·64·9 = 1 179 648, conv2 64·32·32·9 = 589 824, 1×1 shortcut 64·32·64 = 131 072,
  //   time_emb_proj 64·32 = 2 048.
  const res = resnetMacs(64, 32, 64, 8, 8);
  assertEquals(res, { conv: 1_179_648 + 589_824 + 131_072, linear: 2_048, attention: 0 });
  // Transformer (C 32, N 64, context 77 × 32): proj_in + proj_out 2·64·32·32 = 131 072;
  //   attn1 q,k,v,out 4·64·32·32 = 262 144, scores + probs·v 2·64·64·32 = 262 144;
  //   attn2 q,out 2·64·32·32 = 131 072, k,v 2·77·32·32 = 157 696, matmuls 2·64·77·32 = 315 392;
  //   GEGLU 64·256·32 = 524 288 + 64·32·128 = 262 144.
  const tr = transformerMacs(32, 64, 1, 77, 32);
  assertEquals(tr, {
    conv: 0,
    linear: 131_072 + 262_144 + 131_072 + 157_696 + 524_288 + 262_144,
    attention: 262_144 + 315_392,
  });
  // The same block inside the whole-UNet walk: truncating after 7 minus truncating after 6.
  const block = totalMacs(unetMacs(layout, 16, 16, { truncateAfter: 7 })) -
    totalMacs(unetMacs(layout, 16, 16, { truncateAfter: 6 }));
  assertEquals(block, 3_948_544);
  assertEquals(totalMacs(res) + totalMacs(tr), 3_948_544);
  // Injected position 7: attn1 q,k (2·64·32·32) and all of attn2 are inputs, not computed.
  const inj = transformerMacs(32, 64, 1, 77, 32, { injected: true });
  assertEquals(totalMacs(tr) - totalMacs(inj), 131_072 + 131_072 + 157_696 + 315_392);
});

Deno.test("flops: whole small UNet = tools/count_macs.py", () => {
  // SMALL_UNET written to small.json: /usr/bin/python3 tools/count_macs.py small.json --latent W H (exact integers).
  const ref: [number, number, { conv: number; linear: number; attention: number }][] = [
    [16, 16, { conv: 22_577_152, linear: 17_001_472, attention: 17_024_256 }],
    [40, 32, { conv: 112_885_760, linear: 76_311_552, attention: 322_709_760 }],
    [24, 16, { conv: 33_865_728, linear: 24_415_232, attention: 34_445_952 }],
  ];
  for (const [w, h, m] of ref) assertEquals(unetMacs(layout, h, w), m, `${w}×${h}`);
});

Deno.test("flops: variants partition the full UNet (prefix + suffix, truncation, injection)", () => {
  const [h, w] = [32, 40];
  const full = totalMacs(unetMacs(layout, h, w));
  const temb = 16 * 64 + 64 * 64; // time_embedding linear_1 + linear_2, computed by both halves of a split
  // A split at the first position of up level j runs level j−1's upsampler in the prefix (the hidden state
  // crosses the split after it), while truncating after position p−1 stops before it: 3×3 conv, C = 32 at the
  // upsampled grid (8×10, 16×20, 32×40 for j = 1, 2, 3).
  const upsampler: Record<number, number> = {
    3: 80 * 32 * 32 * 9,
    6: 320 * 32 * 32 * 9,
    9: 1280 * 32 * 32 * 9,
  };
  for (const p of [1, 3, 6, 7, 9, 11]) {
    const prefix = totalMacs(unetMacs(layout, h, w, { truncateAfter: p - 1 })) + (upsampler[p] ?? 0);
    const suffix = totalMacs(unetMacs(layout, h, w, { resumeAt: p }));
    assertEquals(prefix + suffix - temb, full, `split at ${p}`);
  }
  // The variant shapes the pipeline builds, from their build options.
  assertEquals(
    variantShapeOf({ taps: ["up.pos06.attn1_q", "up.pos08.attn1_q"], truncate: true }, layout).truncateAfter,
    8,
  );
  assertEquals(variantShapeOf({ resumeAt: 7, injectPositions: [7, 8] }, layout), {
    truncateAfter: null,
    injectPositions: [7, 8],
    resumeAt: 7,
  });
});

Deno.test("memory budget: bytes per UNet row and the optimized schedule's group sizes, by hand", () => {
  // Latent 16×16: up level 1 (C 32) at 4×4 = 16 tokens, level 2 (C 32) at 8×8 = 64, level 3 (C 16) at 16×16 = 256.
  const r = unetRowBytes(layout, 16, 16, INJECT_POSITIONS, 7);
  // attn1 q, attn1 k, attn2 out at 3 positions per level, fp32.
  assertEquals(r.injected, 3 * 3 * 4 * (16 * 32 + 64 * 32 + 256 * 16));
  // Entering position 7: hidden [32, 8×8]; skips [32, 8×8], [16, 8×8], 3 × [16, 16×16] (tests/bench/optimized_test).
  assertEquals(r.prefix, 4 * (2048 + 2048 + 1024 + 3 * 4096));
  // 4 × the largest GEGLU hidden: level 3, 256 tokens × 8·16 channels.
  assertEquals(r.activations, 4 * 256 * 128 * 4);
  // optimizedOptions reads the UNet config from the weights folder: a folder holding SMALL_UNET's.
  const weights = Deno.makeTempDirSync({ prefix: "vidseg-small-unet-" });
  Deno.mkdirSync(`${weights}/unet`);
  Deno.writeTextFileSync(`${weights}/unet/config.json`, JSON.stringify(SMALL_UNET));
  Deno.writeFileSync(`${weights}/unet/diffusion_pytorch_model.safetensors`, encodeSafetensors({})); // not read
  const b = { kind: "sd" as const, weights, provider: "cpu" as const, dtype: "fp32" as const };
  const perSample = 2 * (r.injected + r.prefix) + 128 * 128 * 3 * 5;
  const o = optimizedOptions(b, [16, 16], [128, 128], INJECT_POSITIONS, 7, 2 ** 30);
  assertEquals(o.groupSamples, Math.floor(2 ** 29 / perSample));
  assertEquals(o.microBatch, MICRO_BATCH); // half the budget / 0.5 MiB = 1024 rows, capped on CPU
  assertEquals(
    optimizedOptions({ ...b, provider: "cuda" }, [16, 16], [128, 128], INJECT_POSITIONS, 7, 2 ** 30)
      .microBatch,
    1024,
  );
  const tight = optimizedOptions(b, [16, 16], [128, 128], INJECT_POSITIONS, 7, 4 * 2 ** 20);
  assertEquals([tight.groupSamples, tight.microBatch], [Math.floor(2 ** 21 / perSample), 4]);
  Deno.removeSync(weights, { recursive: true });
});
