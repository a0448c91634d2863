/**
 * The paper's figures from a cached run (`deno task figures`; the notebooks show the same views
 * interactively). Each builder reads artifacts through a `RunView` and returns standalone SVG:
 *
 * - `qualitative`: frames | frame-by-frame baseline (row A) | full model (row F) | GT, several frames.
 * - `ablation`: mIoU / mVC8 / mVC16 per row next to the paper's numbers (evaluate stage).
 * - `features_pca`: top-3 PCA components of decoder blocks 6, 7, 8 and their mean as RGB.
 * - `k_effect`: frame-0 K-Means clusters and assigned labels for K = 5, 10, 20, 30 (computes the cheap
 *   kmeans stage for each K from the cached features).
 * - `difference_maps`: one frame's per-label difference maps without / with latent blending (rows B, C).
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import { blendingPair, comparisonRows, MissingArtifactError, type RunView } from "./artifacts.ts";
import { type GridCell, imageGrid } from "./grid.ts";
import { colorizeLabels, heatmap, labelLegend, overlayLabels, planeOf, presentLabels } from "./images.ts";
import { comparisonChart } from "./plot.ts";
import { chartPoints, metricsFromArtifacts } from "./results.ts";
import { METRICS, type RowResult } from "./tables.ts";
import { featurePca } from "./feature_pca.ts";
import {
  checkFrames,
  clipInfo,
  datasetClip,
  differenceView,
  evenFrames,
  frameImage,
  gtImage,
  kmeansWithK,
  predictedLabels,
} from "./views.ts";

/** Names of the figures, in output order. */
export const FIGURE_NAMES = [
  "qualitative",
  "ablation",
  "features_pca",
  "k_effect",
  "difference_maps",
] as const;
/** One of FIGURE_NAMES. */
export type FigureName = (typeof FIGURE_NAMES)[number];

/** What to show (every field has a default derived from the config). */
export interface FigureSettings {
  /** Clip (default: the config's first clip). */
  clip?: string;
  /** Frame indices (default: `frameCount` frames spread over the clip). */
  frames?: number[];
  frameCount?: number;
  /** [baseline, full] rows of the qualitative figure (default A, F; else first and last row). */
  compare?: [string, string];
  /** [without, with] latent blending (default: the closest such pair, B and C in Table 2). */
  blend?: [string, string];
  /** Row whose features / K-Means are shown (default: the full row). */
  featureRow?: string;
  /** K values of the K figure (default 5, 10, 20, 30). */
  ks?: number[];
  /** Frame of the difference-map figure (default: the first shown frame). */
  diffFrame?: number;
  /** At most this many label columns in the difference-map figure (default 6). */
  maxLabels?: number;
  /** Cell width in px (default 180). */
  cellWidth?: number;
}

/** A rendered figure. */
export interface Figure {
  name: FigureName;
  svg: string;
}

interface Resolved {
  clip: string;
  frames: number[];
  compare: [string, string];
  featureRow: string;
  cw: number;
}

async function resolve(run: RunView, s: FigureSettings): Promise<Resolved> {
  const clip = s.clip ?? run.clips[0];
  const compare = s.compare ?? comparisonRows(run);
  const N = (await clipInfo(run, compare[1], clip)).frames.length;
  const frames = s.frames ? checkFrames(s.frames, N, clip) : evenFrames(N, s.frameCount ?? 4);
  return { clip, frames, compare, featureRow: s.featureRow ?? compare[1], cw: s.cellWidth ?? 180 };
}

const rowLabel = (row: string, what: string) => `${what}\n(row ${row})`;

/** frames | baseline | full | GT for several frames, labels in the dataset palette. */
export async function qualitativeFigure(run: RunView, s: FigureSettings = {}): Promise<Figure> {
  const r = await resolve(run, s);
  const [base, full] = r.compare;
  const info = await clipInfo(run, full, r.clip);
  const [H0, W0] = info.size0;
  const preds = [await predictedLabels(run, base, r.clip), await predictedLabels(run, full, r.clip)];
  const present: ArrayLike<number>[] = [];
  const cells: (GridCell | null)[][] = [];
  for (const f of r.frames) {
    const row: (GridCell | null)[] = [{ image: await frameImage(run, full, r.clip, f) }];
    for (const p of preds) {
      const lab = planeOf(p, f);
      present.push(lab);
      row.push({ image: colorizeLabels(lab, H0, W0, info.palette), blocky: true });
    }
    const gt = gtImage(run, full, r.clip, f);
    if (gt) present.push(gt.data);
    row.push(
      gt ? { image: colorizeLabels(gt.data, gt.shape[0], gt.shape[1], info.palette), blocky: true } : null,
    );
    cells.push(row);
  }
  const svg = await imageGrid({
    title: `Qualitative comparison — ${r.clip}`,
    columns: [
      "frame",
      rowLabel(base, "frame-by-frame baseline"),
      rowLabel(full, "full model"),
      "ground truth",
    ],
    rows: r.frames.map((f) => `#${f}\n${info.frames[f]}`),
    cells,
    cellWidth: r.cw,
    cellHeight: Math.round((r.cw * H0) / W0),
    legend: labelLegend(
      presentLabels(...present),
      info.classes,
      info.palette,
      datasetClip(run, full, r.clip).ignoreIds,
    ),
    note: `${run.config.name}: ${run.row(base).title ?? base} vs ${run.row(full).title ?? full}`,
  });
  return { name: "qualitative", svg };
}

/** mIoU / mVC8 / mVC16 of every row with cached metrics, next to the paper's numbers. */
export async function ablationFigure(run: RunView): Promise<Figure> {
  const rows: RowResult[] = [];
  for (const r of run.config.rows) {
    const ours = run.has("evaluate", r.name)
      ? metricsFromArtifacts(await run.load("evaluate", r.name))
      : null;
    rows.push({ row: r.name, title: r.title, ours, paper: r.paper });
  }
  if (!rows.some((r) => r.ours)) {
    throw new MissingArtifactError(
      `no row of ${run.config.file} has cached metrics (produce them with: ${run.ablateCommand()})`,
    );
  }
  const points = chartPoints(rows);
  // A metric nobody has (e.g. mVC16 on clips shorter than 16 frames) would be an empty panel.
  return {
    name: "ablation",
    svg: comparisonChart(points, METRICS.filter((m) => points.some((p) => p.metric === m))),
  };
}

/** PCA of the features of blocks 6, 7, 8 and their mean, beside the frames. */
export async function featuresPcaFigure(run: RunView, s: FigureSettings = {}): Promise<Figure> {
  const r = await resolve(run, s);
  const pca = await featurePca(run, r.featureRow, r.clip, r.frames);
  const info = await clipInfo(run, r.featureRow, r.clip);
  const cells: GridCell[][] = [];
  for (const [j, f] of r.frames.entries()) {
    cells.push([
      { image: await frameImage(run, r.featureRow, r.clip, f) },
      ...pca.panels.map((p) => ({ image: p.images[j], blocky: true })),
    ]);
  }
  const svg = await imageGrid({
    title: `Diffusion features, top-3 PCA components as RGB — ${r.clip}, row ${r.featureRow}`,
    columns: ["frame", ...pca.panels.map((p) => `${p.name}\n(${pct(p.explained)} of variance)`)],
    rows: r.frames.map((f) => `#${f}\n${info.frames[f]}`),
    cells,
    cellWidth: r.cw,
    note: `one PCA basis per column, fitted over all ${r.frames.length} frames shown; grid ${pca.grid[0]}×${
      pca.grid[1]
    }`,
  });
  return { name: "features_pca", svg };
}

const pct = (xs: number[]) => `${Math.round(100 * xs.reduce((a, b) => a + b, 0))}%`;

/** Frame-0 K-Means clusters and assigned labels for several K. */
export async function kEffectFigure(run: RunView, s: FigureSettings = {}): Promise<Figure> {
  const r = await resolve(run, s);
  const ks = s.ks ?? [5, 10, 20, 30];
  const info = await clipInfo(run, r.featureRow, r.clip);
  const frames = await run.load("frames", r.featureRow, r.clip);
  const gtGrid = frames.tensors.gt_grid as Tensor<"U8"> | undefined;
  const results = [];
  for (const k of ks) results.push(await kmeansWithK(run, r.featureRow, r.clip, k));
  const [h, w] = results[0].grid;
  const top: (GridCell | null)[] = [{ image: await frameImage(run, r.featureRow, r.clip, 0) }];
  const bottom: (GridCell | null)[] = [
    gtGrid ? { image: colorizeLabels(gtGrid.data, h, w, info.palette), blocky: true } : null,
  ];
  for (const res of results) {
    top.push({
      image: colorizeLabels(res.clusters, h, w),
      blocky: true,
      caption: `${new Set(res.clusters).size} clusters`,
    });
    bottom.push({
      image: colorizeLabels(res.refLabels, h, w, info.palette),
      blocky: true,
      caption: `${res.labels.length} labels`,
    });
  }
  const svg = await imageGrid({
    title: `Effect of K on the frame-0 K-Means — ${r.clip}, row ${r.featureRow}`,
    columns: ["frame 0 / GT (grid)", ...ks.map((k) => `K = ${k}`)],
    rows: ["clusters", "assigned\nlabels"],
    cells: [top, bottom],
    cellWidth: r.cw,
    legend: labelLegend(
      presentLabels(...results.map((x) => x.refLabels), gtGrid?.data ?? []),
      info.classes,
      info.palette,
    ),
    note: `kmeans stage with kmeans.k overridden, on the cached features; clusters in arbitrary colours`,
  });
  return { name: "k_effect", svg };
}

/** One frame's normalised difference maps per label, without and with latent blending, and the labels. */
export async function differenceFigure(run: RunView, s: FigureSettings = {}): Promise<Figure> {
  const r = await resolve(run, s);
  const rows = s.blend ?? blendingPair(run);
  const frame = s.diffFrame ?? r.frames[0];
  const info = await clipInfo(run, rows[1], r.clip);
  const views = [
    await differenceView(run, rows[0], r.clip, frame),
    await differenceView(run, rows[1], r.clip, frame),
  ];
  const shown = [...new Set([...views[1].present, ...views[0].present])].slice(0, s.maxLabels ?? 6);
  const name = (l: number) => info.classes.find((c) => c.id === l)?.name ?? `label ${l}`;
  const img = await frameImage(run, rows[1], r.clip, frame);
  const [H0, W0] = views[0].size0;
  const cells = views.map((v) => {
    const row: (GridCell | null)[] = [{
      image: overlayLabels(img, v.coarse, v.grid[0], v.grid[1], info.palette, 0.45),
    }];
    // Rows may have different label sets (their K-Means differ): a label outside a row's set has no map.
    for (const l of shown) {
      const i = v.labels.indexOf(l);
      row.push(i < 0 ? null : { image: heatmap(v.diffs[i].data, H0, W0) });
    }
    row.push({ image: colorizeLabels(v.final, H0, W0, info.palette), blocky: true });
    return row;
  });
  const svg = await imageGrid({
    title: `Difference maps, frame #${frame} (${info.frames[frame]}) — ${r.clip}`,
    columns: ["frame + coarse map", ...shown.map(name), "labels"],
    rows: [rowLabel(rows[0], "no latent blending"), rowLabel(rows[1], "latent blending")],
    cells,
    cellWidth: r.cw,
    cellHeight: Math.round((r.cw * H0) / W0),
    legend: labelLegend(
      presentLabels(...views.map((v) => v.coarse), ...views.map((v) => v.final)),
      info.classes,
      info.palette,
    ),
    note:
      `difference map of each label normalised to its maximum (viridis); labels = the labels stage's output`,
  });
  return { name: "difference_maps", svg };
}

/** Build one figure by name. */
export function buildFigure(name: FigureName, run: RunView, s: FigureSettings = {}): Promise<Figure> {
  switch (name) {
    case "qualitative":
      return qualitativeFigure(run, s);
    case "ablation":
      return ablationFigure(run);
    case "features_pca":
      return featuresPcaFigure(run, s);
    case "k_effect":
      return kEffectFigure(run, s);
    case "difference_maps":
      return differenceFigure(run, s);
  }
}
