import { assert, assertEquals } from "../assert.ts";
import { fmtDuration, Progress } from "../../pipeline/dag/progress.ts";

Deno.test("progress: plain mode prints one line per event with counts", () => {
  let text = "";
  const p = new Progress({ write: (t) => void (text += t), isTty: false });
  p.begin(new Map([["a", 2]]));
  p.start("a", "a A/u1");
  p.finishRun("a", "a A/u1", 1500, false);
  p.cached("b", 3);
  const lines = text.trim().split("\n");
  assertEquals(lines[0], "[1/2] run a A/u1");
  assertEquals(lines[1], "[1/2] done a A/u1 in 1.5s, eta 1.5s");
  assert(!text.includes("\r"), "no carriage returns when not a TTY");
  assertEquals(p.summaryLine(), "1 run, 3 cached");
  const table = p.summaryTable(["a", "b"]).split("\n");
  assertEquals(table[0].split(/\s+/), ["stage", "run", "cached", "corrupt", "wall", "mean"]);
  assertEquals(table[1].split(/\s+/), ["a", "1", "0", "0", "1.5s", "1.5s"]);
  assertEquals(table[2].split(/\s+/), ["b", "0", "3", "0", "0ms", "-"]);
});

Deno.test("progress: TTY mode repaints one status line", () => {
  let text = "";
  const p = new Progress({ write: (t) => void (text += t), isTty: true });
  p.begin(new Map([["a", 1]]));
  p.start("a", "a A/u1");
  p.sub(3, 10, "iter");
  p.finishRun("a", "a A/u1", 10, false);
  p.end();
  assert(!text.includes("\n"), "no newlines: a single repainted line");
  assert(text.includes("\r\x1b[2K[0/1] | a A/u1"), JSON.stringify(text));
});

Deno.test("progress: durations", () => {
  assertEquals([fmtDuration(850), fmtDuration(12_340), fmtDuration(245_900), fmtDuration(7_380_000)], [
    "850ms",
    "12.3s",
    "4m05s",
    "2h03m",
  ]);
});
