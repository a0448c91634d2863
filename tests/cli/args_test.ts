import { assertEquals, assertThrows } from "../assert.ts";
import { helpText, type OptionSpec, parseArgs } from "../../pipeline/cli/args.ts";
import { UserError } from "../../pipeline/errors.ts";

const SPEC: Record<string, OptionSpec> = {
  plan: { type: "boolean", doc: "p" },
  set: { type: "list", value: "K=V", doc: "s" },
  cache: { type: "string", value: "DIR", doc: "c" },
  help: { type: "boolean", short: "h", doc: "h" },
};

Deno.test("args: flags, values, repeatable lists, --, aliases", () => {
  const r = parseArgs([
    "--plan",
    "--set",
    "a=1",
    "--set=b=2",
    "--cache=/x",
    "cfg.yaml",
    "-h",
    "--",
    "--not-an-option",
  ], SPEC);
  assertEquals(r.options, { plan: true, set: ["a=1", "b=2"], cache: "/x", help: true });
  assertEquals(r.positionals, ["cfg.yaml", "--not-an-option"]);
  assertEquals(parseArgs([], SPEC).options, { plan: false, set: [], cache: undefined, help: false });
});

Deno.test("args: mistakes are UserErrors", () => {
  const msg = (argv: string[]) => assertThrows(() => parseArgs(argv, SPEC), UserError).message;
  assertEquals(msg(["--cahce", "x"]), "unknown option --cahce (did you mean --cache?)");
  assertEquals(msg(["--zzz"]), "unknown option --zzz");
  assertEquals(msg(["--cache"]), "--cache: expected a value (DIR)");
  assertEquals(msg(["--plan=yes"]), "--plan takes no value");
});

Deno.test("args: help text lists every option", () => {
  const h = helpText("tool [opts] X", SPEC).split("\n");
  assertEquals(h[0], "usage: tool [opts] X");
  assertEquals(h.filter((l) => l.startsWith("  ")).length, 4);
  assertEquals(h[h.length - 1].trim().split(/\s+/), ["-h,", "--help", "h"]);
});
