/**
 * Image-grid figures as standalone SVG: titled columns and rows of images (embedded PNGs), an optional
 * colour legend and a footnote. The qualitative, PCA, K and difference-map figures are all such grids;
 * they become PNG through plot.ts (`svgToPng` / `writeFigure`) like every other chart.
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import type { Rgb } from "./labels_png.ts";
import { pngAt } from "./images.ts";

/** One grid cell: an image (any size; scaled to the cell) and an optional caption under it. */
export interface GridCell {
  image: Tensor<"U8">;
  /** Nearest-neighbour scaling (label maps, feature grids) instead of Lanczos (photos). */
  blocky?: boolean;
  caption?: string;
}

/** A grid figure. Titles may contain "\n" for a second line. */
export interface ImageGridSpec {
  title?: string;
  /** Column titles (one per column). */
  columns: string[];
  /** Row titles (one per row; "" for none). */
  rows: string[];
  /** cells[row][column]; null draws an empty "n/a" cell. */
  cells: (GridCell | null)[][];
  /** Cell width in px (default 200). */
  cellWidth?: number;
  /** Cell height in px (default: the first image's aspect ratio). */
  cellHeight?: number;
  legend?: { color: Rgb; label: string }[];
  /** A footnote under the grid. */
  note?: string;
  /** Pixel density of the embedded PNGs relative to the cell size (default 2, matching svgToPng's 144 dpi). */
  scale?: number;
}

/** Where everything goes (px). */
export interface GridLayout {
  width: number;
  height: number;
  cellWidth: number;
  cellHeight: number;
  /** x of the first column, y of the first row. */
  left: number;
  top: number;
  /** Vertical space per grid row (cell + caption). */
  rowPitch: number;
  gap: number;
  /** Legend item positions. */
  legend: { x: number; y: number }[];
  noteY: number;
}

const PAD = 10, GAP = 6, FONT = 12, TITLE_FONT = 15, LINE = 15, CHAR = 0.6 * FONT;

const lines = (s: string) => s.split("\n");
const textWidth = (s: string, font = FONT) => Math.max(...lines(s).map((l) => l.length)) * 0.6 * font;

/** The layout of a grid (pure; the SVG size is `width` × `height`). */
export function gridLayout(spec: ImageGridSpec): GridLayout {
  const nCols = spec.columns.length;
  if (!spec.cells.length || spec.cells.length !== spec.rows.length) {
    throw new Error(`imageGrid: ${spec.cells.length} cell rows for ${spec.rows.length} row titles`);
  }
  spec.cells.forEach((r, i) => {
    if (r.length !== nCols) throw new Error(`imageGrid: row ${i} has ${r.length} cells for ${nCols} columns`);
  });
  const cw = spec.cellWidth ?? 200;
  const first = spec.cells.flat().find((c) => c !== null);
  const ch = spec.cellHeight ?? (first ? Math.round((cw * first.image.shape[0]) / first.image.shape[1]) : cw);
  const titleH = spec.title ? TITLE_FONT + 10 : 0;
  const headLines = Math.max(1, ...spec.columns.map((c) => lines(c).length));
  const headH = spec.columns.some((c) => c) ? headLines * LINE + 4 : 0;
  const labelW = spec.rows.some((r) => r)
    ? Math.ceil(Math.max(...spec.rows.map((r) => textWidth(r)))) + 10
    : 0;
  const captionH = spec.cells.some((r) => r.some((c) => c?.caption)) ? LINE : 0;
  const left = PAD + labelW, top = PAD + titleH + headH;
  const rowPitch = ch + captionH + GAP;
  const width = Math.ceil(left + nCols * cw + (nCols - 1) * GAP + PAD);
  let y = top + spec.rows.length * rowPitch - GAP + 6;
  const legend: { x: number; y: number }[] = [];
  if (spec.legend?.length) {
    let x = PAD;
    y += 4;
    for (const item of spec.legend) {
      const w = 14 + 5 + item.label.length * CHAR + 14;
      if (x > PAD && x + w > width - PAD) (x = PAD, y += LINE + 4);
      legend.push({ x, y });
      x += w;
    }
    y += LINE + 4;
  }
  const noteY = y + (spec.note ? LINE : 0);
  return {
    width,
    height: Math.ceil(noteY + PAD),
    cellWidth: cw,
    cellHeight: ch,
    left,
    top,
    rowPitch,
    gap: GAP,
    legend,
    noteY,
  };
}

const esc = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

/** Multi-line text as <text> with <tspan>s; `anchor` start|middle|end. */
function text(
  x: number,
  y: number,
  s: string,
  opts: { size?: number; anchor?: string; weight?: string } = {},
): string {
  const size = opts.size ?? FONT;
  const spans = lines(s).map((l, i) => `<tspan x="${x}" dy="${i === 0 ? 0 : LINE}">${esc(l)}</tspan>`).join(
    "",
  );
  return `<text x="${x}" y="${y}" font-family="DejaVu Sans, Arial, sans-serif" font-size="${size}"` +
    ` text-anchor="${opts.anchor ?? "start"}"${
      opts.weight ? ` font-weight="${opts.weight}"` : ""
    } fill="#222">${spans}</text>`;
}

const hex = (c: Rgb) => `#${c.map((v) => v.toString(16).padStart(2, "0")).join("")}`;

/** Render a grid figure to standalone SVG text (images embedded as PNG data URIs). */
export async function imageGrid(spec: ImageGridSpec): Promise<string> {
  const L = gridLayout(spec);
  const scale = spec.scale ?? 2;
  const parts: string[] = [`<rect width="${L.width}" height="${L.height}" fill="white"/>`];
  if (spec.title) parts.push(text(PAD, PAD + TITLE_FONT, spec.title, { size: TITLE_FONT, weight: "bold" }));
  spec.columns.forEach((c, j) => {
    // Bottom-aligned headers: the last line sits just above the cells.
    const x = L.left + j * (L.cellWidth + L.gap) + L.cellWidth / 2;
    const y = L.top - 6 - (lines(c).length - 1) * LINE;
    parts.push(text(x, y, c, { anchor: "middle" }));
  });
  for (const [i, row] of spec.cells.entries()) {
    const y0 = L.top + i * L.rowPitch;
    if (spec.rows[i]) {
      const n = lines(spec.rows[i]).length;
      parts.push(
        text(L.left - 8, y0 + L.cellHeight / 2 - ((n - 1) * LINE) / 2 + FONT / 3, spec.rows[i], {
          anchor: "end",
        }),
      );
    }
    for (const [j, cell] of row.entries()) {
      const x0 = L.left + j * (L.cellWidth + L.gap);
      if (!cell) {
        parts.push(
          `<rect x="${x0}" y="${y0}" width="${L.cellWidth}" height="${L.cellHeight}" fill="#f2f2f2" stroke="#ccc"/>`,
        );
        parts.push(text(x0 + L.cellWidth / 2, y0 + L.cellHeight / 2, "n/a", { anchor: "middle" }));
        continue;
      }
      const png = await pngAt(
        cell.image,
        Math.round(L.cellWidth * scale),
        Math.round(L.cellHeight * scale),
        cell.blocky,
      );
      const uri = `data:image/png;base64,${toBase64(png)}`;
      parts.push(
        `<image x="${x0}" y="${y0}" width="${L.cellWidth}" height="${L.cellHeight}" preserveAspectRatio="none" href="${uri}"/>`,
      );
      if (cell.caption) {
        parts.push(
          text(x0 + L.cellWidth / 2, y0 + L.cellHeight + FONT + 1, cell.caption, { anchor: "middle" }),
        );
      }
    }
  }
  spec.legend?.forEach((item, k) => {
    const { x, y } = L.legend[k];
    parts.push(
      `<rect x="${x}" y="${y}" width="14" height="14" fill="${
        hex(item.color)
      }" stroke="#555" stroke-width="0.5"/>`,
    );
    parts.push(text(x + 19, y + 11, item.label));
  });
  if (spec.note) parts.push(text(PAD, L.noteY - 3, spec.note, { size: 11 }));
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}"` +
    ` viewBox="0 0 ${L.width} ${L.height}">\n${parts.join("\n")}\n</svg>\n`;
}

/** Base64 of bytes (chunked: String.fromCharCode on a whole image overflows the argument limit). */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
