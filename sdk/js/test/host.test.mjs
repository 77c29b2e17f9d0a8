// The typed host calls over fake imports: conversions, and refusals as HostError.
import test from "node:test";
import assert from "node:assert/strict";

import { Failed, HostError, createHost, createSdk } from "../src/core.js";
import { ComponentError, fakeImports, invocation } from "../testdata/fake-host.mjs";

test("kv: bytes, text, JSON, keys, delete", () => {
  const { imports, store } = fakeImports();
  const { kv } = createHost(imports);
  assert.equal(kv.get("nope"), undefined);
  assert.equal(kv.getText("nope"), undefined);
  assert.equal(kv.getJson("nope"), undefined);

  kv.set("bytes", new Uint8Array([1, 2, 3]));
  assert.deepEqual(kv.get("bytes"), new Uint8Array([1, 2, 3]));
  kv.set("text", "héllo");
  assert.deepEqual(store.get("text"), new TextEncoder().encode("héllo"));
  assert.equal(kv.getText("text"), "héllo");
  kv.setJson("json", { n: 1, big: 5n });
  assert.deepEqual(kv.getJson("json"), { n: 1, big: 5 });
  kv.set("view", new DataView(new Uint8Array([9, 8]).buffer));
  assert.deepEqual(kv.get("view"), new Uint8Array([9, 8]));
  assert.deepEqual(kv.keys(), ["bytes", "json", "text", "view"]);
  assert.deepEqual(kv.keys("t"), ["text"]);
  kv.delete("text");
  assert.deepEqual(kv.keys("t"), []);

  // A host that hands back a plain array still gives a Uint8Array.
  const arrays = createHost({ kv: { get: () => [104, 105] } }).kv;
  assert.deepEqual(arrays.get("k"), new Uint8Array([104, 105]));
  assert.equal(arrays.getText("k"), "hi");

  assert.throws(() => kv.set("k", { a: 1 }), /kv.set stores a string or a Uint8Array/);
  kv.set("bad", "{not json");
  assert.throws(() => kv.getJson("bad"), (e) => e instanceof Failed && /kv key "bad" does not hold JSON/.test(e.message));
});

test("config, secrets, progress", () => {
  const { imports, reports } = fakeImports({ settings: { greeting: "hi", limits: { max: 3 } }, secrets: { token: "s3cret" } });
  const host = createHost(imports);
  assert.equal(host.config.get("greeting"), "hi");
  assert.deepEqual(host.config.get("limits"), { max: 3 });
  assert.equal(host.config.get("missing"), undefined);
  assert.deepEqual(host.config.all(), { greeting: "hi", limits: { max: 3 } });
  assert.equal(host.secrets.get("token"), "s3cret");
  assert.equal(host.secrets.get("missing"), undefined);
  host.progress.report("half", 0.5);
  host.progress.report("no fraction");
  assert.deepEqual(reports, [
    ["half", 0.5],
    ["no fraction", undefined],
  ]);
  assert.equal(host.progress.cancelled(), false);
  assert.throws(() => host.progress.report("x", "lots"), /fraction must be a number/);
});

test("sessions, stats, commands, jobs: BigInts become numbers where exact", () => {
  const host = createHost(fakeImports().imports);
  assert.equal(host.sessions.current().messageCount, 7);
  assert.equal(host.sessions.listMine(5)[0].title, "limit 5");
  assert.equal(host.sessions.endCurrent(), undefined);
  assert.deepEqual(host.sessions.connection(), { id: "c1", connectedAt: "z" });
  const stats = host.stats.get();
  assert.equal(stats.uptimeSecs, 60);
  assert.equal(stats.plugins[0].calls, 2n ** 60n);
  assert.equal(host.commands.visible()[0].minRole, "viewer");
  assert.deepEqual(host.jobs.listMine(), []);
});

test("a refused host call throws HostError with the host's words", () => {
  const host = createHost(fakeImports({ granted: [] }).imports);
  const calls = [
    ["kv.get", () => host.kv.get("k"), "kv"],
    ["kv.get", () => host.kv.getJson("k"), "kv"],
    ["kv.set", () => host.kv.set("k", "v"), "kv"],
    ["kv.set", () => host.kv.setJson("k", 1), "kv"],
    ["kv.delete", () => host.kv.delete("k"), "kv"],
    ["kv.keys", () => host.kv.keys(), "kv"],
    ["config.get", () => host.config.get("k"), "config"],
    ["config.all", () => host.config.all(), "config"],
    ["secrets.get", () => host.secrets.get("k"), "secrets"],
    ["progress.report", () => host.progress.report("x", 0.1), "progress"],
    ["progress.cancelled", () => host.progress.cancelled(), "progress"],
    ["sessions.current", () => host.sessions.current(), "sessions"],
    ["sessions.listMine", () => host.sessions.listMine(), "sessions"],
    ["sessions.endCurrent", () => host.sessions.endCurrent(), "sessions"],
    ["sessions.connection", () => host.sessions.connection(), "sessions"],
    ["stats.get", () => host.stats.get(), "stats"],
    ["commands.visible", () => host.commands.visible(), "commands"],
    ["jobs.listMine", () => host.jobs.listMine(), "jobs"],
    ["jobs.cancel", () => host.jobs.cancel("m1"), "jobs"],
  ];
  for (const [operation, call, capability] of calls) {
    assert.throws(
      call,
      (e) =>
        e instanceof HostError &&
        e instanceof Failed &&
        e.operation === operation &&
        e.message === `capability \`${capability}\` is not granted to plugin test`,
      operation,
    );
  }
});

test("the host's error text is taken from whatever shape the bindings throw", () => {
  const cases = [
    [new ComponentError("from payload"), "from payload"],
    [{ tag: "err", val: "from val" }, "from val"],
    [new Error("from message"), "from message"],
    ["a string", "a string"],
  ];
  for (const [thrown, message] of cases) {
    const host = createHost({
      jobs: {
        cancel: () => {
          throw thrown;
        },
      },
    });
    assert.throws(() => host.jobs.cancel("x"), (e) => e instanceof HostError && e.message === message, message);
  }
  // An import the host does not provide (a test's fake lacks it) is a HostError too.
  assert.throws(() => createHost({}).kv.get("k"), (e) => e instanceof HostError && /does not provide kv.get/.test(e.message));
});

test("log: levels, non-string parts, never throws", () => {
  const { imports, logs } = fakeImports();
  const { log } = createHost(imports);
  log.info("hello", { a: 1 }, 2, 3n);
  log.warn("w");
  log.error("e", new TypeError("bad"));
  log.debug("d");
  log.trace("t");
  assert.deepEqual(logs.slice(0, 2), [
    ["info", 'hello {"a":1} 2 3'],
    ["warn", "w"],
  ]);
  assert.equal(logs[2][0], "error");
  assert.match(logs[2][1], /^e TypeError: bad\n/);
  assert.deepEqual(logs.slice(3).map(([l]) => l), ["debug", "trace"]);
  const broken = createHost({
    log: {
      log: () => {
        throw new Error("no log");
      },
    },
  });
  assert.doesNotThrow(() => broken.log.info("x"));
});

test("host calls at the top level (build time) fail with a reason; log is silent there", () => {
  const { imports, logs } = fakeImports();
  const sdk = createSdk(imports);
  assert.throws(() => sdk.kv.get("k"), /kv.get called at the module's top level: the top level runs once, at build time/);
  assert.throws(() => sdk.config.all(), /config.all called at the module's top level/);
  sdk.log.info("at the top level");
  assert.deepEqual(logs, []);
  const p = sdk.definePlugin({ name: "p", version: "1", capabilities: ["kv"], commands: [{ name: "p", run: () => String(sdk.kv.getText("k")) }] });
  assert.equal(p.invoke(invocation("p")).body, "undefined");
  sdk.log.info("in a handler");
  assert.deepEqual(logs, [["info", "in a handler"]]);
});
