/**
 * Display helpers for the Deno Jupyter notebooks (notebooks/*.ipynb): SVG, HTML, Markdown and arquero
 * tables as rich outputs through `Deno.jupyter.display`. Outside a Jupyter kernel they print a one-line
 * summary instead, so notebook code can also run as a plain script.
 * @module
 */
import type { ImageGridSpec } from "./grid.ts";
import { imageGrid } from "./grid.ts";

/** A MIME bundle ("image/svg+xml" → text, …). */
export type MimeBundle = Record<string, string>;

// deno-lint-ignore no-explicit-any
const jupyter = () =>
  (Deno as any).jupyter as { display(obj: unknown, opts?: { raw?: boolean }): Promise<void> } | undefined;

/** True inside a Deno Jupyter kernel. */
export function inJupyter(): boolean {
  return typeof jupyter()?.display === "function";
}

/**
 * Pause after each display. The Deno kernel publishes display_data from the JS thread and the cell's "idle"
 * status from its server thread; now and then (≈1 % of cells, measured with nbclient) the display arrives
 * after "idle" and a headless client drops it. A short pause before the cell can finish avoids that
 * (0 lost in 360 cells).
 */
const FLUSH_MS = 50;

/** Display a raw MIME bundle (outside Jupyter: print its text/plain part or its MIME types). */
export async function display(bundle: MimeBundle): Promise<void> {
  const j = jupyter();
  if (j && typeof j.display === "function") {
    await j.display(bundle, { raw: true });
    await new Promise((r) => setTimeout(r, FLUSH_MS));
    return;
  }
  console.log(bundle["text/plain"] ?? `[${Object.keys(bundle).join(", ")}]`);
}

/** Display SVG text (e.g. from plot.ts or imageGrid). */
export function showSvg(svg: string): Promise<void> {
  // The XML declaration is valid in a file but not inside an HTML page.
  return display({ "image/svg+xml": svg.replace(/^<\?xml[^>]*>\s*/, ""), "text/plain": "[svg figure]" });
}

/** Display an image grid (see grid.ts); embedded images at 1× to keep notebooks small. */
export async function showGrid(spec: ImageGridSpec): Promise<void> {
  return await showSvg(await imageGrid({ scale: 1, ...spec }));
}

/** Display HTML. */
export function showHtml(html: string, plain = "[html]"): Promise<void> {
  return display({ "text/html": html, "text/plain": plain });
}

/** Display Markdown. */
export function showMarkdown(md: string): Promise<void> {
  return display({ "text/markdown": md, "text/plain": md });
}

// deno-lint-ignore no-explicit-any
type Table = any;

/** Display an arquero table as HTML (numbers with `digits` decimals, nulls "–"). */
export function showTable(table: Table, opts: { digits?: number; title?: string } = {}): Promise<void> {
  const digits = opts.digits ?? 1;
  const format: Record<string, (v: unknown) => string> = {};
  for (const name of table.columnNames()) {
    format[name] = (
      v,
    ) => (v === null || v === undefined ? "–" : typeof v === "number" ? v.toFixed(digits) : String(v));
  }
  const html = (opts.title ? `<h4>${opts.title}</h4>` : "") + table.toHTML({ format });
  return showHtml(html, `${opts.title ?? "table"}: ${table.numRows()} rows × ${table.numCols()} columns`);
}
