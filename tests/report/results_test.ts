import * as fs from "node:fs";
import * as path from "node:path";
import sharp from "sharp";
import { assert, assertEquals, assertGreater } from "../assert.ts";
import {
  chartPoints,
  metricsFromArtifacts,
  writeResults,
  writeRowLabels,
} from "../../pipeline/report/results.ts";
import type { RowResult } from "../../pipeline/report/tables.ts";
import { defaultPalette, fullPalette } from "../../pipeline/report/labels_png.ts";
import { SOURCE_COLORS } from "../../pipeline/report/plot.ts";
import { u8 } from "../../pipeline/tensor/tensor.ts";
import { tempDir } from "../dag/fixtures/util.ts";

const ROWS: RowResult[] = [
  {
    row: "A",
    title: "batch 1",
    ours: { mIoU: 12.345, mVC8: 70, mVC16: null, classIoU: { Sky: 90, Road: null } },
    paper: { mIoU: 33.4, mVC8: 70.6, mVC16: 60.2 },
  },
  {
    row: "B",
    title: "a | b",
    ours: { mIoU: 20, mVC8: 80.25, mVC16: 75, classIoU: { Sky: 91.5, Road: 40, Car: 3 } },
    paper: null,
  },
];

async function rgbPixels(
  file: string,
): Promise<{ data: Uint8Array; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: info.channels };
}

Deno.test("report: metrics.csv, class_iou.csv and metrics.md contents", async () => {
  const dir = tempDir("report");
  const files = await writeResults(dir, ROWS, { title: "Demo", config: "configs/demo.yaml" });
  assertEquals(
    fs.readFileSync(files.csv, "utf8"),
    [
      "row,title,mIoU,paper_mIoU,mVC8,paper_mVC8,mVC16,paper_mVC16",
      "A,batch 1,12.345,33.4,70,70.6,,60.2",
      "B,a | b,20,,80.25,,75,",
      "",
    ].join("\n"),
  );
  assertEquals(fs.readFileSync(files.classCsv, "utf8"), "row,Sky,Road,Car\nA,90,,\nB,91.5,40,3\n");
  const md = fs.readFileSync(files.md, "utf8");
  assert(md.startsWith("# Demo\n"), md);
  assert(
    md.includes([
      "|row|title|mIoU|mIoU (paper)|mVC8|mVC8 (paper)|mVC16|mVC16 (paper)|",
      "|:-|:-|-:|-:|-:|-:|-:|-:|",
      "|A|batch 1|12.3|33.4|70.0|70.6|–|60.2|",
      "|B|a \\| b|20.0|–|80.3|–|75.0|–|",
    ].join("\n")),
    md,
  );
  assert(md.includes("|row|Sky|Road|Car|\n|:-|-:|-:|-:|\n|A|90.0|–|–|\n|B|91.5|40.0|3.0|"), md);
});

Deno.test("report: metrics.svg is a standalone SVG with one bar per value; metrics.png is a real, non-blank image", async () => {
  const dir = tempDir("report");
  const files = await writeResults(dir, ROWS);
  const svg = fs.readFileSync(files.svg, "utf8");
  assert(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg'), svg.slice(0, 80));
  assert(svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  const bars = chartPoints(ROWS).length;
  assertEquals(bars, 2 + 3 + 3); // ours: A 2 of 3, B 3; paper: A only
  const rects = svg.match(/<rect /g)?.length ?? 0;
  assertEquals(rects, bars);
  const meta = await sharp(files.png).metadata();
  assertEquals(meta.format, "png");
  const px = await rgbPixels(files.png);
  assertGreater(px.width, 400);
  let nonWhite = 0, oursColour = 0;
  const [r, g, b] = [0x1f, 0x77, 0xb4];
  assertEquals(SOURCE_COLORS.ours, "#1f77b4");
  for (let i = 0; i < px.data.length; i += px.channels) {
    if (px.data[i] < 250 || px.data[i + 1] < 250 || px.data[i + 2] < 250) nonWhite++;
    if (px.data[i] === r && px.data[i + 1] === g && px.data[i + 2] === b) oursColour++;
  }
  assertGreater(nonWhite, 0.02 * px.width * px.height, "the chart has ink");
  assertGreater(oursColour, 500, "our bars are drawn in their colour");
});

Deno.test("report: metricsFromArtifacts reads json.metrics and ignores junk", () => {
  assertEquals(
    metricsFromArtifacts({
      tensors: {},
      json: { metrics: { mIoU: 1, mVC8: "x", classIoU: { Sky: 2, Road: null } } },
    }),
    {
      mIoU: 1,
      mVC8: null,
      mVC16: null,
      classIoU: { Sky: 2, Road: null },
    },
  );
  assertEquals(metricsFromArtifacts({ tensors: {}, json: {} }), null);
  assertEquals(metricsFromArtifacts(null), null);
});

Deno.test("labels png: the VOC default palette fills what a dataset palette leaves out", () => {
  const p = defaultPalette();
  assertEquals([p[0], p[1], p[2], p[3], p[4], p[15]], [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [
    0,
    0,
    128,
  ], [192, 128, 128]]);
  assertEquals(new Set(p.map((c) => c.join())).size, 256);
  const f = fullPalette([[1, 2, 3]]);
  assertEquals([f.length, f[0], f[1]], [256, [1, 2, 3], [128, 0, 0]]);
});

Deno.test("labels png: indexed PNGs decode (via sharp) to the palette colour of each label", async () => {
  const palette: [number, number, number][] = [[10, 20, 30], [200, 0, 0], [0, 200, 0]];
  const labels = u8([2, 3, 4], Uint8Array.from({ length: 24 }, (_, i) => (i * 7) % 3));
  const dir = tempDir("labels");
  const files = writeRowLabels(dir, "F", "clip1", {
    tensors: { labels },
    json: { frames: ["0001.png", "0002.png"], palette },
  });
  assertEquals(files, [path.join(dir, "F", "clip1", "0001.png"), path.join(dir, "F", "clip1", "0002.png")]);
  for (let f = 0; f < 2; f++) {
    const meta = await sharp(files[f]).metadata();
    assertEquals([meta.width, meta.height, meta.format], [4, 3, "png"]);
    assert(meta.isPalette, "stored as an indexed PNG");
    const px = await rgbPixels(files[f]);
    for (let i = 0; i < 12; i++) {
      const want = palette[labels.data[f * 12 + i]];
      assertEquals(
        [px.data[i * px.channels], px.data[i * px.channels + 1], px.data[i * px.channels + 2]],
        want,
        `pixel ${i}`,
      );
    }
  }
  // The raw bytes carry the class ids themselves: colour type 3 (indexed) in IHDR.
  assertEquals(fs.readFileSync(files[0])[25], 3);
});
