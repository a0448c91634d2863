/**
 * Results tables (arquero): one line per row with our mIoU/mVC8/mVC16 beside the paper's, and per-class
 * IoU as a second table; rendered as CSV and Markdown.
 * @module
 */
import * as aq from "arquero";

/** Metrics of one row, in percent (what a stage with role "metrics" puts in json.metrics). */
export interface RowMetrics {
  /** Dataset-level mIoU (percent). */
  mIoU: number | null;
  /** Video consistency over 8 frames (percent). */
  mVC8: number | null;
  /** Video consistency over 16 frames (percent). */
  mVC16: number | null;
  /** Class name → IoU (percent), null for classes absent from the GT. */
  classIoU?: Record<string, number | null>;
}

/** What the report knows about a row. */
export interface RowResult {
  /** Row name. */
  row: string;
  /** Row title from the config. */
  title: string | null;
  /** Ours (null when no metrics stage ran). */
  ours: RowMetrics | null;
  /** The paper's numbers for this row (percent), when the config gives them. */
  paper: { mIoU: number | null; mVC8: number | null; mVC16: number | null } | null;
}

/** The three headline metrics, in report order. */
export const METRICS = ["mIoU", "mVC8", "mVC16"] as const;

// deno-lint-ignore no-explicit-any
type Table = any;

/** row, title, then each metric followed by the paper's value (`paper_<metric>`). */
export function metricsTable(rows: readonly RowResult[]): Table {
  const cols: Record<string, unknown[]> = {
    row: rows.map((r) => r.row),
    title: rows.map((r) => r.title ?? ""),
  };
  for (const m of METRICS) {
    cols[m] = rows.map((r) => r.ours?.[m] ?? null);
    cols[`paper_${m}`] = rows.map((r) => r.paper?.[m] ?? null);
  }
  return aq.table(cols);
}

/** row, then one column per class (union over rows, in first-seen order). */
export function classTable(rows: readonly RowResult[]): Table {
  const classes: string[] = [];
  for (const r of rows) {
    for (const c of Object.keys(r.ours?.classIoU ?? {})) if (!classes.includes(c)) classes.push(c);
  }
  const cols: Record<string, unknown[]> = { row: rows.map((r) => r.row) };
  for (const c of classes) cols[c] = rows.map((r) => r.ours?.classIoU?.[c] ?? null);
  return aq.table(cols);
}

/** CSV text (numbers rounded to 4 decimals, nulls empty). */
export function toCsv(table: Table): string {
  const format: Record<string, (v: unknown) => unknown> = {};
  for (const name of table.columnNames()) {
    format[name] = (v: unknown) => (typeof v === "number" ? Number(v.toFixed(4)) : v ?? "");
  }
  return table.toCSV({ format });
}

/** Markdown table (numbers with `digits` decimals, nulls "–", paper columns headed "<metric> (paper)"). */
export function toMarkdown(table: Table, digits = 1): string {
  const format: Record<string, (v: unknown) => string> = {};
  for (const name of table.columnNames()) {
    format[name] = (
      v: unknown,
    ) => (v === null || v === undefined || v === ""
      ? "–"
      : typeof v === "number"
      ? v.toFixed(digits)
      : String(v)); // arquero escapes "|" itself
  }
  const header = Object.fromEntries(
    table.columnNames().map((n: string) => [n, n.startsWith("paper_") ? `${n.slice(6)} (paper)` : n]),
  );
  return table.rename(header).toMarkdown({
    format: Object.fromEntries(Object.entries(format).map(([k, f]) => [header[k], f])),
  });
}
