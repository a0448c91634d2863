/**
 * Writing the results of a finished `ablate`: `results/<config>/metrics.csv`, `metrics.md`,
 * `class_iou.csv`, `metrics.svg` and `metrics.png` (ours next to the paper's), and the per-row predicted
 * label maps `results/<config>/<row>/<clip>/<frame>.png`.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Artifacts } from "../dag/stage.ts";
import {
  classTable,
  METRICS,
  metricsTable,
  type RowMetrics,
  type RowResult,
  toCsv,
  toMarkdown,
} from "./tables.ts";
import { comparisonChart, type MetricPoint, writeFigure } from "./plot.ts";
import { type Rgb, writeLabelMaps } from "./labels_png.ts";

/** Files written by `writeResults`. */
export interface ResultFiles {
  /** `metrics.csv` */
  csv: string;
  /** `metrics.md` */
  md: string;
  /** `class_iou.csv` */
  classCsv: string;
  /** `metrics.svg` (ours beside the paper) */
  svg: string;
  /** `metrics.png` (the same chart) */
  png: string;
}

/** Metrics from the artifacts of a "metrics" stage (json.metrics), or null if absent/malformed. */
export function metricsFromArtifacts(a: Artifacts | null): RowMetrics | null {
  const m = a?.json?.metrics as Record<string, unknown> | undefined;
  if (!m || typeof m !== "object") return null;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const classIoU: Record<string, number | null> = {};
  for (const [k, v] of Object.entries((m.classIoU ?? {}) as Record<string, unknown>)) classIoU[k] = num(v);
  return { mIoU: num(m.mIoU), mVC8: num(m.mVC8), mVC16: num(m.mVC16), classIoU };
}

/** Bars of the comparison chart (missing values are left out). */
export function chartPoints(rows: readonly RowResult[]): MetricPoint[] {
  const pts: MetricPoint[] = [];
  for (const r of rows) {
    for (const metric of METRICS) {
      const ours = r.ours?.[metric], paper = r.paper?.[metric];
      if (typeof ours === "number") pts.push({ row: r.row, metric, source: "ours", value: ours });
      if (typeof paper === "number") pts.push({ row: r.row, metric, source: "paper", value: paper });
    }
  }
  return pts;
}

/** Write the tables and the chart of a config's rows into `outDir`. */
export async function writeResults(
  outDir: string,
  rows: readonly RowResult[],
  info: { title?: string | null; config?: string } = {},
): Promise<ResultFiles> {
  fs.mkdirSync(outDir, { recursive: true });
  const files: ResultFiles = {
    csv: path.join(outDir, "metrics.csv"),
    md: path.join(outDir, "metrics.md"),
    classCsv: path.join(outDir, "class_iou.csv"),
    svg: path.join(outDir, "metrics.svg"),
    png: path.join(outDir, "metrics.png"),
  };
  const metrics = metricsTable(rows);
  const classes = classTable(rows);
  fs.writeFileSync(files.csv, withNewline(toCsv(metrics)));
  fs.writeFileSync(files.classCsv, withNewline(toCsv(classes)));
  const md = [
    `# ${info.title ?? "Results"}`,
    "",
    ...(info.config
      ? [
        `Config: \`${info.config}\`. Values in percent; "(paper)" = published numbers stored in the config.`,
        "",
      ]
      : []),
    "## mIoU and video consistency",
    "",
    toMarkdown(metrics).trimEnd(),
    "",
    "## Per-class IoU",
    "",
    classes.numCols() > 1 ? toMarkdown(classes).trimEnd() : "(no per-class IoU available)",
    "",
  ];
  fs.writeFileSync(files.md, md.join("\n"));
  await writeFigure(path.join(outDir, "metrics"), comparisonChart(chartPoints(rows), [...METRICS]));
  return files;
}

const withNewline = (s: string) => (s.endsWith("\n") ? s : s + "\n");

/**
 * Write a labels-stage artifact (tensors.labels [F, H, W], json.frames, optional json.palette) as palette
 * PNGs under `<outDir>/<row>/<clip>/`. Returns the files written.
 */
export function writeRowLabels(outDir: string, row: string, clip: string, a: Artifacts): string[] {
  const labels = a.tensors.labels;
  if (!labels) throw new Error(`labels artifact of ${row}/${clip} has no "labels" tensor`);
  const frames = Array.isArray(a.json.frames) ? (a.json.frames as string[]) : undefined;
  const palette = Array.isArray(a.json.palette) ? (a.json.palette as unknown as Rgb[]) : undefined;
  return writeLabelMaps(path.join(outDir, row, clip), labels, frames, palette);
}
