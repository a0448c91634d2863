/**
 * The module graph of pipeline/ has no cycle: every relative `import`/`export … from` of every module (type-only
 * ones too) is an edge, and a depth-first search must never meet a module still on its stack.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assertEquals } from "../assert.ts";
import { ROOT } from "../paths.ts";

const PIPELINE = path.join(ROOT, "pipeline");

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? modules(p) : e.name.endsWith(".ts") ? [p] : [];
  });
}

/** Relative specifiers of static imports and re-exports (comments stripped first). */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const re =
    /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|(?:^|\n)\s*import\s*["'](\.{1,2}\/[^"']+)["']/g;
  return [...code.matchAll(re)].map((m) => m[1] ?? m[2]);
}

/** Every cycle found by a DFS (each as the list of modules on it, relative to pipeline/). */
export function cyclesOf(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (m: string) => {
    state.set(m, "active");
    stack.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === "active") cycles.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(m, "done");
  };
  for (const m of [...graph.keys()].sort()) if (!state.has(m)) visit(m);
  return cycles;
}

Deno.test("import graph: the cycle finder finds a planted cycle and accepts a DAG", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]);
  assertEquals(cyclesOf(g), [["a", "b", "c", "a"]]);
  assertEquals(cyclesOf(new Map([["a", ["b", "c"]], ["b", ["c"]], ["c", []]])), []);
  assertEquals(
    importsOf(
      'import { x } from "./x.ts";\nimport type {\n  Y,\n} from "../y.ts";\nexport * from "./z.ts";\n// import "./no.ts"\nimport "./side.ts";',
    ),
    ["./x.ts", "../y.ts", "./z.ts", "./side.ts"],
  );
});

Deno.test("import graph: no module of pipeline/ imports itself through others", () => {
  const graph = new Map<string, string[]>();
  for (const file of modules(PIPELINE)) {
    const rel = (f: string) => path.relative(PIPELINE, f);
    const deps = importsOf(fs.readFileSync(file, "utf8")).map((s) =>
      rel(path.resolve(path.dirname(file), s))
    );
    graph.set(rel(file), deps);
  }
  assertEquals(graph.size > 100, true, `only ${graph.size} modules found`);
  assertEquals(cyclesOf(graph).map((c) => c.join(" → ")), []);
});
