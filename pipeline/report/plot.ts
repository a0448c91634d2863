/**
 * Shared plotting helpers (the one place that knows how to render Observable Plot without a browser):
 * Plot.plot() on a linkedom document → standalone SVG text → PNG through sharp. Notebooks and
 * `deno task figures` reuse these.
 * @module
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import sharp from "sharp";

const SVG_NS = "http://www.w3.org/2000/svg";

/** Colours of "ours" vs "paper" in every comparison chart. */
export const SOURCE_COLORS = { ours: "#1f77b4", paper: "#bdbdbd" } as const;

/** A server-side DOM document (linkedom; typed loosely because Deno has no DOM lib). */
// deno-lint-ignore no-explicit-any
export type PlotDocument = any;

/** A fresh server-side DOM document for Plot. */
export function plotDocument(): PlotDocument {
  // deno-lint-ignore no-explicit-any
  return (parseHTML("<!DOCTYPE html><html><head></head><body></body></html>") as any).document;
}

/**
 * Render Plot options to standalone SVG text (xmlns added, white background). Plot options that make
 * Plot return an HTML <figure> (a title, subtitle, caption or an HTML color legend) are rejected: a
 * figure is not an SVG file.
 */
export function renderSvg(options: Plot.PlotOptions): string {
  const node = Plot.plot(
    { ...options, document: plotDocument() } as unknown as Plot.PlotOptions,
  ) as unknown as {
    tagName: string;
    outerHTML: string;
    getAttribute(n: string): string | null;
    setAttribute(n: string, v: string): void;
  };
  if (node.tagName.toLowerCase() !== "svg") {
    throw new Error(
      "renderSvg: Plot returned a <figure>; drop title/subtitle/caption/legend options and draw them as marks",
    );
  }
  if (!node.getAttribute("xmlns")) node.setAttribute("xmlns", SVG_NS);
  const style = node.getAttribute("style");
  node.setAttribute("style", `${style ? style + ";" : ""}background:white`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${node.outerHTML}\n`;
}

/** Rasterise SVG text to PNG bytes on a white background (`density` 144 dpi = 2× for crisp text). */
export async function svgToPng(svg: string, density = 144): Promise<Uint8Array> {
  const buf = await sharp(new TextEncoder().encode(svg), { density }).flatten({ background: "#ffffff" }).png()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Write `<base>.svg` and `<base>.png`; returns both paths. */
export async function writeFigure(base: string, svg: string): Promise<{ svg: string; png: string }> {
  fs.mkdirSync(path.dirname(base), { recursive: true });
  const out = { svg: `${base}.svg`, png: `${base}.png` };
  fs.writeFileSync(out.svg, svg);
  fs.writeFileSync(out.png, await svgToPng(svg));
  return out;
}

/** One bar of a comparison chart. */
export interface MetricPoint {
  row: string;
  metric: string;
  source: "ours" | "paper";
  value: number;
}

/**
 * Grouped bars, ours next to the paper's: one panel per metric (stacked vertically), one group per row,
 * values labelled on the bars. `metrics` fixes the panel order.
 */
export function comparisonChart(
  points: MetricPoint[],
  metrics: string[],
  opts: { width?: number; yLabel?: string } = {},
): string {
  const rows = [...new Set(points.map((p) => p.row))];
  const width = opts.width ?? Math.max(480, 90 * rows.length + 120);
  return renderSvg({
    width,
    height: 170 * metrics.length + 60,
    marginLeft: 56,
    marginRight: 64,
    fx: { domain: rows, label: "row", padding: 0.15 },
    fy: { domain: metrics, label: null },
    x: { domain: ["ours", "paper"], label: null, padding: 0.1 },
    y: { domain: [0, 100], label: opts.yLabel ?? "%", grid: true },
    color: { domain: ["ours", "paper"], range: [SOURCE_COLORS.ours, SOURCE_COLORS.paper] },
    marks: [
      Plot.barY(points, { fx: "row", fy: "metric", x: "source", y: "value", fill: "source" }),
      Plot.text(points, {
        fx: "row",
        fy: "metric",
        x: "source",
        y: "value",
        text: (d: MetricPoint) => d.value.toFixed(1),
        dy: -6,
        fontSize: 9,
      }),
      Plot.ruleY([0]),
    ],
  } as Plot.PlotOptions);
}

/** One point of a series chart. */
export interface SeriesPoint {
  series: string;
  x: number;
  y: number;
}

/**
 * Lines over x, one per series, with the series named in the right margin in their colours (marks, not an
 * HTML legend, so it stays an SVG), e.g. per-frame IoU over time for every ablation row.
 */
export function seriesChart(
  points: SeriesPoint[],
  opts: { xLabel?: string; yLabel?: string; yDomain?: [number, number]; width?: number; height?: number } =
    {},
): string {
  const series = [...new Set(points.map((p) => p.series))];
  return renderSvg({
    width: opts.width ?? 640,
    height: opts.height ?? 300,
    marginRight: 24 + 7 * Math.max(4, ...series.map((s) => s.length)),
    x: { label: opts.xLabel ?? "x", grid: true },
    y: { label: opts.yLabel ?? "y", grid: true, ...(opts.yDomain ? { domain: opts.yDomain } : {}) },
    color: { domain: series, type: "categorical" },
    marks: [
      Plot.line(points, { x: "x", y: "y", stroke: "series", strokeWidth: 1.5 }),
      Plot.dot(points, { x: "x", y: "y", fill: "series", r: 2 }),
      ...series.map((name, i) =>
        Plot.text([name], {
          frameAnchor: "top-right",
          dx: 12,
          dy: 14 * i,
          text: (d: string) => `■ ${d}`,
          fill: (d: string) => d,
          textAnchor: "start",
        })
      ),
    ],
  } as Plot.PlotOptions);
}

/** One bar of a grouped bar chart. */
export interface BarPoint {
  group: string;
  series: string;
  value: number;
}

/** Bars grouped by `group` (e.g. class), one bar per series (e.g. row) inside each group, series named below. */
export function groupedBarChart(
  points: BarPoint[],
  opts: { yLabel?: string; yDomain?: [number, number]; width?: number; height?: number } = {},
): string {
  const groups = [...new Set(points.map((p) => p.group))];
  const series = [...new Set(points.map((p) => p.series))];
  const rotate = groups.length > 6; // long class lists: slanted group names need room above the panels
  return renderSvg({
    width: opts.width ?? Math.max(480, groups.length * (series.length * 16 + 24) + 100),
    height: opts.height ?? 340,
    marginTop: rotate ? 70 : 30,
    marginBottom: 40,
    fx: { domain: groups, label: null, padding: 0.1, tickRotate: rotate ? -35 : 0 },
    x: {
      domain: series,
      label: null,
      padding: 0.1,
      axis: series.length * groups.length > 40 ? null : "bottom",
    },
    y: { label: opts.yLabel ?? "%", grid: true, ...(opts.yDomain ? { domain: opts.yDomain } : {}) },
    color: { domain: series, type: "categorical" },
    marks: [Plot.barY(points, { fx: "group", x: "series", y: "value", fill: "series" }), Plot.ruleY([0])],
  } as Plot.PlotOptions);
}
