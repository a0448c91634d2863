/**
 * Locks as leases on a cache shared by several hosts: a dead node's lock (another host name, a heartbeat older
 * than the lease) is broken; a live holder's heartbeat keeps its lock; two or more breakers never both win.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { testConfig, testStages } from "../dag/fixtures/stages.ts";
import { quietRunner, tempDir } from "../dag/fixtures/util.ts";
import {
  acquireLock,
  breakStale,
  heartbeatAge,
  isStale,
  type LockInfo,
  readLock,
  tryLock,
} from "../../pipeline/dag/lock.ts";

const DEAD_NODE: LockInfo = {
  pid: 4242,
  host: "node-17-that-died",
  started: "2026-01-01T00:00:00Z",
  procStart: null,
  nonce: "dead",
};

/** Write a lock as another host would, with its heartbeat `ageMs` old. */
function foreignLock(file: string, ageMs: number, info: LockInfo = DEAD_NODE): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(info));
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
}

Deno.test("lease: another host's lock is judged by its heartbeat alone", () => {
  assert(!isStale(DEAD_NODE, 1_000, 60_000), "fresh heartbeat: live");
  assert(isStale(DEAD_NODE, 61_000, 60_000), "heartbeat older than the lease: stale");
  assert(!isStale(DEAD_NODE), "no heartbeat known: cannot judge another host");
});

Deno.test("lease: a dead node's lock (old heartbeat) is broken and the stage computed", async () => {
  const cache = tempDir("lease");
  const { runner, out } = quietRunner(cache, { leaseMs: 2_000 });
  const plan = await runner.plan(testStages, [{ name: "A", config: testConfig(), units: ["u1"] }]);
  const src = plan.rows[0].slots[0];
  const lockFile = path.join(cache, ".locks", `${src.key}.lock`);
  foreignLock(lockFile, 3_600_000);
  const s = await runner.execute(plan);
  assertEquals(s.line, "5 run, 0 cached");
  assert(!out.text.includes("waiting"), out.text);
  assertEquals(fs.readdirSync(path.join(cache, ".locks")), []);
});

Deno.test("lease: a lock whose holder stops renewing is waited for, then broken once the lease has passed", async () => {
  const cache = tempDir("lease");
  const lease = 1_500;
  const { runner, out } = quietRunner(cache, { leaseMs: lease });
  const plan = await runner.plan(testStages, [{ name: "A", config: testConfig(), units: ["u1"] }]);
  const lockFile = path.join(cache, ".locks", `${plan.rows[0].slots[0].key}.lock`);
  foreignLock(lockFile, 0); // the node dies right after its last heartbeat
  const beat = fs.statSync(lockFile).mtimeMs;
  const s = await runner.execute(plan);
  assertEquals(s.line, "5 run, 0 cached");
  assert(
    out.text.includes("waiting: source A/u1 is being computed by pid 4242 on node-17-that-died"),
    out.text,
  );
  // It ran only after the heartbeat had become older than the lease (the entry's manifest says when).
  const created = Date.parse(runner.store.read("source", plan.rows[0].slots[0].key).manifest.createdAt);
  assert(created - beat > lease, `computed ${created - beat} ms after the last heartbeat`);
});

Deno.test("lease: the holder renews its heartbeat, so a waiter never breaks a live lock", async () => {
  const file = path.join(tempDir("lease"), "k.lock");
  const lease = 400;
  const first = await acquireLock(file, { leaseMs: lease, pollMs: 20 });
  let secondIn = false;
  let released = false;
  const second = acquireLock(file, { leaseMs: lease, pollMs: 20 }).then((l) => {
    secondIn = true;
    assert(released, "second holder entered while the first still held the lock");
    return l;
  });
  // Hold for 4 leases; the heartbeat keeps the file young throughout.
  for (let i = 0; i < 16; i++) {
    await new Promise((r) => setTimeout(r, lease / 4));
    assert((heartbeatAge(file) ?? Infinity) < lease, "heartbeat not renewed");
    assert(!secondIn, "lock broken while renewed");
  }
  released = true;
  first.release();
  (await second).release();
  assertEquals(fs.readdirSync(path.dirname(file)), []);
});

Deno.test("lease: a breaker that judged an old lock never removes the fresh lock a faster breaker took", () => {
  const dir = tempDir("lease");
  const file = path.join(dir, "k.lock");
  foreignLock(file, 3_600_000);
  const seen = readLock(file)!; // breaker 1 judges the lock stale…
  // …breaker 2 breaks it first and takes the lock.
  assert(breakStale(file, readLock(file)!, 60_000), "breaker 2 breaks the stale lock");
  const fresh = tryLock(file)!;
  assert(fresh !== null, "breaker 2 takes the lock");
  // Breaker 1 now acts on what it saw: it moves the fresh lock aside, sees it is not the stale one, restores it.
  assertEquals(breakStale(file, seen, 60_000), false);
  assertEquals(readLock(file)?.nonce, fresh.nonce);
  assertEquals(fs.readdirSync(dir), ["k.lock"]);
  // The same when the fresh lock happens to carry the stale pid: its heartbeat is young, so it stays.
  assertEquals(breakStale(file, { ...seen, nonce: fresh.nonce, pid: fresh.pid }, 60_000), false);
  assertEquals(readLock(file)?.nonce, fresh.nonce);
});

Deno.test("lease: four processes breaking one dead node's lock at once take it one at a time", async () => {
  const dir = tempDir("lease");
  const file = path.join(dir, "k.lock"), record = path.join(dir, "record"), go = path.join(dir, "go");
  foreignLock(file, 3_600_000);
  const child = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "lock_child.ts");
  const kids = Array.from({ length: 4 }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", child, file, record, go, "150", "60000"],
      stdout: "null",
      stderr: "piped",
    }).spawn());
  await new Promise((r) => setTimeout(r, 1500)); // let all four start polling for the go file
  fs.writeFileSync(go, "");
  for (const k of kids) {
    const o = await k.output();
    assertEquals(o.code, 0, new TextDecoder().decode(o.stderr));
  }
  const spans = fs.readFileSync(record, "utf8").trim().split("\n").map((l) => l.split(" ").map(Number));
  assertEquals(spans.length, 4);
  spans.sort((a, b) => a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    assert(spans[i][1] >= spans[i - 1][2], `holders overlap: ${JSON.stringify(spans)}`);
  }
  assertEquals(fs.readdirSync(dir).sort(), ["go", "record"]);
});
