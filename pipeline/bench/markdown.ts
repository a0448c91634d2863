/**
 * `bench.md`: the bench report as Markdown tables (what the README's Performance section shows).
 * @module
 */
import type { BenchResult } from "./report.ts";

const fx = (
  v: number | null | undefined,
  d = 2,
) => (v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(d));
const pct = (
  v: number | null | undefined,
  d = 1,
) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(d)}%`);

function table(head: string[], rows: (string | number)[][]): string {
  const line = (r: (string | number)[]) => `| ${r.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function metricsLine(m: Record<string, { mIoU: number | null }>): string {
  const e = Object.entries(m);
  return e.length ? e.map(([row, v]) => `${row} ${fx(v.mIoU, 1)}`).join(", ") : "–";
}

/** Render the report. */
export function benchMarkdown(r: BenchResult): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# vidseg bench${r.quick ? " (--quick)" : ""}`, "");
  out.push(
    `${r.created} · ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB · deno ${m.deno}, onnxruntime-node ${m.onnxruntime}`,
    "",
    `Config \`${r.config}\`${r.set.length ? ` with ${r.set.map((s) => `\`--set ${s}\``).join(" ")}` : ""}` +
      `${r.rows?.length ? `, rows ${r.rows.join(", ")}` : ""}.`,
    "",
  );
  if (r.matmul) {
    out.push(
      `**fp32 MatMul probe** (onnxruntime, ${r.matmul.n}³, best of ${r.matmul.runs}): ${
        fx(r.matmul.gflops, 1)
      } GFLOP/s.`,
      "",
    );
  }
  if (r.full) {
    const f = r.full;
    out.push(
      `## Full run (every row, cold cache): ${fx(f.wallS, 1)} s, peak RSS ${fx(f.peakRssMiB, 0)} MiB`,
      "",
      table(
        [
          "stage",
          "instances",
          "wall s",
          "ms/frame",
          "peak RSS MiB",
          "UNet evals/frame",
          "FLOP-weighted",
          "VAE decodes/frame",
          "UNet GFLOP/s",
          "of MatMul",
        ],
        f.stages.map((s) => [
          s.stage,
          s.instances,
          fx(s.wallS, 1),
          fx(s.msPerFrame, 0),
          fx(s.peakRssMiB, 0),
          fx(s.unetSamplesPerFrame),
          fx(s.unetFullPerFrame),
          fx(s.vaeDecodesPerFrame),
          fx(s.unetGflops, 1),
          pct(s.unetFractionOfMatmul),
        ]),
      ),
      "",
      "UNet evaluations count samples (a CFG pair is 2); FLOP-weighted = Σ samples × MACs(variant) / MACs(full UNet).",
      "",
      table(
        ["graph variant", "samples", "GMAC/sample", "ms/sample", "GFLOP/s", "of MatMul"],
        f.variants.map((
          v,
        ) => [
          `\`${v.variant}\``,
          v.samples,
          fx(v.gmacsPerSample, 3),
          fx(v.msPerSample, 1),
          fx(v.gflops, 1),
          pct(v.fractionOfMatmul),
        ]),
      ),
      "",
      `mIoU: ${metricsLine(f.metrics)}`,
      "",
    );
  }
  out.push("## Ratios", "");
  const rows: string[][] = [];
  if (r.schedule) {
    const s = r.schedule;
    rows.push([
      `modulate, FLOP-weighted UNet evals/frame: optimized ablate / literal reference${
        s.set?.length ? ` (both ${s.set.join(" ")})` : ""
      } (target ≤ 0.5)`,
      `${fx(s.optimized.modulateFullPerFrame)} / ${fx(s.reference.modulateFullPerFrame)}`,
      `**${fx(s.ratio, 3)}×**`,
    ]);
    rows.push([
      "features + modulate, FLOP-weighted UNet evals/frame",
      `${fx(s.optimized.pipelineFullPerFrame)} / ${fx(s.reference.pipelineFullPerFrame)}`,
      `${fx(s.pipelineRatio, 3)}×`,
    ]);
    rows.push([
      "modulate wall time",
      `${fx(s.optimized.modulateWallS, 1)} s / ${fx(s.reference.modulateWallS, 1)} s`,
      `${fx(s.wallRatio, 3)}×`,
    ]);
  }
  if (r.schedule && r.ablate?.rowsAloneModulateFullPerFrame !== undefined) {
    // The full run shares (frame, mask) samples between rows; a row alone cannot.
    const alone = r.ablate.rowsAloneModulateFullPerFrame;
    rows.push([
      "modulate, FLOP-weighted UNet evals/frame, rows run alone (no sharing, the config's own plan) / reference",
      `${fx(alone)} / ${fx(r.schedule.reference.modulateFullPerFrame)}`,
      `${fx(alone / r.schedule.reference.modulateFullPerFrame, 3)}×`,
    ]);
  }
  if (r.ablate) {
    rows.push([
      "full ablate vs Σ rows alone (cold caches), wall",
      `${fx(r.ablate.fullS, 1)} s / ${fx(r.ablate.sumS, 1)} s`,
      `**${fx(r.ablate.ratio, 3)}×**`,
    ]);
  }
  if (r.rss) {
    rows.push([
      `peak RSS, ${r.rss.large.frames}-frame vs ${r.rss.small.frames}-frame synthetic clip`,
      `${fx(r.rss.large.peakMiB, 0)} MiB / ${fx(r.rss.small.peakMiB, 0)} MiB`,
      `**${fx(r.rss.ratio, 2)}×**`,
    ]);
  }
  out.push(table(["ratio", "values", "ratio"], rows), "");
  if (r.schedule?.labels) {
    const { equal, differ } = r.schedule.labels;
    out.push(
      `Label maps, optimized vs reference schedule: byte-identical in ${equal.length} of ${
        equal.length + differ.length
      } rows${differ.length ? ` (differ: ${differ.join(", ")})` : ""}.`,
      "",
    );
  }
  if (r.schedule) {
    out.push(
      `mIoU reference schedule: ${metricsLine(r.schedule.reference.metrics)}; optimized: ${
        metricsLine(r.schedule.optimized.metrics)
      }.`,
      "",
    );
  }
  if (r.ablate) {
    out.push(
      `Rows alone: ${Object.entries(r.ablate.rowsAloneS).map(([k, v]) => `${k} ${fx(v, 1)} s`).join(", ")}.`,
      "",
    );
  }
  if (r.breakdown) {
    const b = r.breakdown;
    out.push(
      `## What each optimization saves (modulate stage, row ${b.row}, clip ${b.clip}: ${b.frames} frames, ${b.labels} labels)`,
      "",
      table(
        [
          "variant",
          "wall s",
          "UNet evals/frame",
          "FLOP-weighted",
          "VAE decodes/frame",
          "diff maps = ref",
          "labels = ref",
        ],
        b.rows.map((x) => [
          x.name,
          fx(x.wallMs / 1000, 1),
          fx(x.unetSamplesPerFrame),
          fx(x.unetFullEquivalentsPerFrame),
          fx(x.vaeDecodesPerFrame),
          pct(x.diffEqual, 3),
          pct(x.labelsEqual, 3),
        ]),
      ),
      "",
    );
  }
  if (r.taesd) {
    const t = r.taesd;
    out.push(
      "## TAESD decoder for the difference maps (`modulation.decoder: taesd`, optimized schedule)",
      "",
      `mIoU with the model's VAE: ${metricsLine(t.vae)}; with TAESD: ${metricsLine(t.taesd)}. ` +
        `Decode: ${fx(t.decodeMsPerSample.vae, 1)} ms/sample (VAE) vs ${
          fx(t.decodeMsPerSample.taesd, 1)
        } ms/sample (TAESD).`,
      "",
      t.note,
      "",
    );
  }
  if (r.sd21) out.push(...sd21Markdown(r.sd21));
  return out.join("\n");
}

/** The SD 2.1-sized phase: one row per graph variant, then disk, decoders and memory. */
function sd21Markdown(s: NonNullable<BenchResult["sd21"]>): string[] {
  const gib = (b: number | null) => (b === null ? "–" : `${(b / 2 ** 30).toFixed(2)} GiB`);
  const rows = Object.keys(s.unet_s_per_sample).map((v) => [
    v,
    fx(s.graph_build_s[v], 1),
    fx(s.session_cold_s[v], 1),
    fx(s.session_cached_s[v], 1),
    ...s.batches.map((b) => fx(s.unet_s_per_sample[v][b], 2)),
    fx(s.unet_gflops[v], 1),
  ]);
  return [
    `## SD 2.1-base-sized model (random weights, ${s.image[0]}×${s.image[1]}, latent ${s.latent[0]}×${
      s.latent[1]
    })`,
    "",
    table(
      [
        "variant",
        "build s",
        "session cold s",
        "session cached s",
        ...s.batches.map((b) => `s/sample @${b}`),
        "GFLOP/s",
      ],
      rows,
    ),
    "",
    `Weights ${gib(s.weights_bytes)} (fp32); on disk for all variants ${gib(s.variants_disk_bytes)} ` +
    `(= ${fx(s.variants_disk_bytes / s.weights_bytes, 2)}× the weights; shared store ${
      gib(s.store_bytes)
    }). ` +
    `Peak RSS of the modulate step (recording pass + modulated suffix open): ${gib(s.peak_rss_bytes)}. ` +
    `Decode: KL-VAE ${fx(s.decode_s_per_frame.vae, 2)} s/frame, TAESD ${
      fx(s.decode_s_per_frame.taesd, 3)
    } s/frame. ` +
    `MatMul probe ${fx(s.matmul_gflops, 1)} GFLOP/s.`,
    "",
  ];
}
