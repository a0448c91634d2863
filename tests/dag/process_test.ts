/** Multi-process behaviour of the runner: crash atomicity, lock contention, stale locks. */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { testConfig, testStages } from "./fixtures/stages.ts";
import { quietRunner, spawnChild, tempDir, waitForFile } from "./fixtures/util.ts";
import { materialize } from "../../pipeline/dag/stage.ts";
import { isProcessAlive, isStale, type LockInfo, processStartTime } from "../../pipeline/dag/lock.ts";

const rowsFor = (units: string) => [{ name: "A", config: testConfig(), units: units.split(",") }];

async function output(
  child: Deno.ChildProcess,
): Promise<{ json: Record<string, any>; stderr: string; code: number }> {
  const o = await child.output();
  const stderr = new TextDecoder().decode(o.stderr);
  const stdout = new TextDecoder().decode(o.stdout);
  if (o.code !== 0) throw new Error(`child failed (${o.code}):\n${stderr}`);
  return { json: JSON.parse(stdout.trim().split("\n").pop()!), stderr, code: o.code };
}

/** A pid that certainly belonged to a process which has exited. */
async function deadPid(): Promise<number> {
  const p = new Deno.Command(Deno.execPath(), { args: ["--version"], stdout: "null" }).spawn();
  await p.status;
  assert(!isProcessAlive(p.pid), "pid should be dead");
  return p.pid;
}

Deno.test("runner: SIGKILL in the middle of writing an entry leaves nothing visible; the next run recomputes it", async () => {
  const cache = tempDir();
  const marker = path.join(tempDir("marker"), "writing");
  const child = spawnChild([cache, "u1", "hang-after-first-file", marker]);
  await waitForFile(marker);
  child.kill("SIGKILL");
  const st = await child.status;
  assertEquals(st.signal, "SIGKILL");
  // The half-written entry exists only under .tmp; no entry directory is visible.
  const tmp = fs.readdirSync(path.join(cache, ".tmp"));
  assertEquals(tmp.length, 1);
  assert(
    fs.readdirSync(path.join(cache, ".tmp", tmp[0])).includes("tensors.safetensors"),
    "partial file written",
  );
  assert(!fs.existsSync(path.join(cache, "source")), "no visible entry");
  const { runner } = quietRunner(cache);
  const plan = await runner.plan(testStages, rowsFor("u1"));
  assertEquals([...runner.status(plan).values()].filter((s) => s === "run").length, 5);
  // The dead child's lock is stale and its temp dir is swept; everything is computed correctly.
  const s = await runner.execute(plan);
  assertEquals(s.line, "5 run, 0 cached");
  assertEquals(fs.readdirSync(path.join(cache, ".tmp")), []);
  const clean = quietRunner(tempDir()).runner;
  const cleanPlan = await clean.plan(testStages, rowsFor("u1"));
  for (const inst of plan.instances.values()) {
    assertEquals(
      materialize(runner.store.read(inst.stage.name, inst.key).artifacts),
      materialize(await clean.load(cleanPlan, inst.key)),
    );
  }
});

Deno.test("runner: two processes on one config — one computes, the other waits and reuses", async () => {
  const cache = tempDir();
  const gate = path.join(tempDir("gate"), "open");
  // A computes `source` and holds its lock until the gate opens; B starts meanwhile and must wait.
  const a = spawnChild([cache, "u1"], { VIDSEG_TEST_GATE: gate });
  await waitForLock(cache);
  const b = spawnChild([cache, "u1"]);
  const bErr = readUntil(b.stderr, "waiting: source A/u1 is being computed by pid");
  await bErr.seen;
  fs.writeFileSync(gate, "");
  const [ra, rb] = await Promise.all([output(a), outputWithStderr(b, bErr.text)]);
  assertEquals([ra.json.run, ra.json.cached], [5, 0]);
  assertEquals([rb.json.run, rb.json.cached, rb.json.calls], [0, 5, {}]);
  assertEquals(fs.readdirSync(path.join(cache, ".locks")).filter((f) => f.endsWith(".lock")), []);
});

/** Wait until some lock file exists in the cache. */
async function waitForLock(cache: string): Promise<void> {
  const dir = path.join(cache, ".locks");
  for (let i = 0; i < 3000; i++) {
    if (fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith(".lock"))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no lock appeared");
}

/** Read a stream until `needle` appears (`seen` resolves), and keep collecting it to the end (`text`). */
function readUntil(
  stream: ReadableStream<Uint8Array>,
  needle: string,
): { seen: Promise<void>; text: Promise<string> } {
  let found!: () => void;
  const seen = new Promise<void>((r) => (found = r));
  const text = (async () => {
    let acc = "";
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      acc += dec.decode(chunk, { stream: true });
      if (acc.includes(needle)) found();
    }
    return acc;
  })();
  const ended = text.then((t) =>
    Promise.reject(new Error(`child ended without printing "${needle}":\n${t}`))
  );
  return { seen: Promise.race([seen, ended]), text };
}

async function outputWithStderr(
  child: Deno.ChildProcess,
  stderr: Promise<string>,
): Promise<{ json: Record<string, any> }> {
  const [status, out, err] = await Promise.all([child.status, new Response(child.stdout).text(), stderr]);
  if (status.code !== 0) throw new Error(`child failed (${status.code}):\n${err}`);
  return { json: JSON.parse(out.trim().split("\n").pop()!) };
}

Deno.test("runner: a stale lock (dead pid) is broken and the stage computed", async () => {
  const cache = tempDir();
  const { runner, out } = quietRunner(cache);
  const plan = await runner.plan(testStages, rowsFor("u1"));
  const src = plan.rows[0].slots[0];
  const stale: LockInfo = {
    pid: await deadPid(),
    host: Deno.hostname(),
    started: new Date().toISOString(),
    procStart: null,
    nonce: "x",
  };
  fs.writeFileSync(path.join(cache, ".locks", `${src.key}.lock`), JSON.stringify(stale));
  const s = await runner.execute(plan);
  assertEquals(s.line, "5 run, 0 cached");
  assert(!out.text.includes("waiting"), out.text);
  assertEquals(fs.readdirSync(path.join(cache, ".locks")), []);
});

Deno.test("lock: staleness rules", async () => {
  const me = {
    pid: Deno.pid,
    host: Deno.hostname(),
    started: "",
    procStart: processStartTime(Deno.pid),
    nonce: "n",
  };
  assert(!isStale(me), "own live lock is not stale");
  assert(isStale({ ...me, pid: await deadPid() }), "dead pid is stale");
  assert(isStale({ ...me, procStart: "1" }), "reused pid (other start time) is stale");
  assert(!isStale({ ...me, pid: await deadPid(), host: "other-host" }), "cannot judge other hosts");
});
