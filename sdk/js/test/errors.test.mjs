// What a thrown value becomes: a WIT `plugin-error` thrown by the export (never a trap),
// `[]` from a completer. Sync and async handlers alike.
import test from "node:test";
import assert from "node:assert/strict";

import { Failed, HostError, Usage, arg, createSdk, describe, reply } from "../src/core.js";
import { caller, fakeImports, invocation, session } from "../testdata/fake-host.mjs";

/** The export's outcome: `{ ok }` or `{ err }` (what it threw, or the Promise rejected with). */
async function outcome(f) {
  try {
    return { ok: await f() };
  } catch (e) {
    return { err: e };
  }
}

function plugin(run, { actions = {}, completers = {}, granted } = {}) {
  const fake = fakeImports(granted ? { granted } : {});
  const sdk = createSdk(fake.imports);
  const p = sdk.definePlugin({
    name: "t",
    version: "1",
    capabilities: ["kv"],
    commands: [{ name: "t", summary: "t", args: [arg.text("x", "x")], run: (call) => run(call, sdk) }],
    actions,
    completers,
  });
  return { ...p, logs: fake.logs };
}

const thrown = [
  // [what the handler throws, the plugin-error, logged as unexpected?]
  [() => new Usage("usage: /t <x>"), { tag: "usage", val: "usage: /t <x>" }, false],
  [() => new Failed("it broke"), { tag: "failed", val: "it broke" }, false],
  [() => new HostError("kv.get", "capability `kv` is not granted to plugin t"), { tag: "failed", val: "capability `kv` is not granted to plugin t" }, false],
  [() => new TypeError("x is undefined"), { tag: "failed", val: "TypeError: x is undefined" }, true],
  [() => new RangeError("too far"), { tag: "failed", val: "RangeError: too far" }, true],
  [() => new Error(""), { tag: "failed", val: "Error" }, true],
  [() => "a thrown string", { tag: "failed", val: "a thrown string" }, true],
  [() => 42, { tag: "failed", val: "thrown: 42" }, true],
  [() => undefined, { tag: "failed", val: "thrown: undefined" }, true],
  [() => ({ code: 7 }), { tag: "failed", val: 'thrown: {"code":7}' }, true],
  // Raw bindings style passes through.
  [() => ({ tag: "usage", val: "raw usage" }), { tag: "usage", val: "raw usage" }, false],
  [() => ({ tag: "failed", val: "raw failed" }), { tag: "failed", val: "raw failed" }, false],
];

test("thrown values become plugin-errors, sync and async", async () => {
  for (const [make, expected, unexpected] of thrown) {
    for (const mode of ["sync", "async"]) {
      const p = plugin(
        mode === "sync"
          ? () => {
              throw make();
            }
          : async () => {
              await null;
              throw make();
            },
      );
      let result;
      const got = await outcome(() => (result = p.invoke(invocation("t"))));
      // A sync handler's export throws at once; an async one's returns a rejected Promise.
      assert.equal(result instanceof Promise, mode === "async", `${mode} export`);
      assert.deepEqual(got, { err: expected }, `${mode}: ${expected.val}`);
      const errors = p.logs.filter(([level]) => level === "error");
      assert.equal(errors.length, unexpected ? 1 : 0, `${mode}: logged ${JSON.stringify(p.logs)}`);
      if (unexpected) assert.match(errors[0][1], /^\/t failed: /);
    }
  }
});

test("a TypeError from real code is logged with its stack", async () => {
  const p = plugin((call) => call.values.nope.length);
  const got = await outcome(() => p.invoke(invocation("t")));
  assert.equal(got.err.tag, "failed");
  assert.match(got.err.val, /^TypeError: /);
  assert.match(p.logs[0][1], /TypeError: .*\n.*errors\.test\.mjs/s);
});

test("results: strings, replies, bad returns", async () => {
  const cases = [
    [() => "hi", { ok: { body: "hi", format: "plain", data: undefined, ephemeral: false, actions: [] } }],
    [async () => reply.markdown("*hi*"), { ok: { body: "*hi*", format: "markdown", data: undefined, ephemeral: false, actions: [] } }],
    [(call) => `x=${call.values.x}`, { ok: { body: "x=world", format: "plain", data: undefined, ephemeral: false, actions: [] } }],
    [() => undefined, { err: { tag: "failed", val: "TypeError: a handler must return a string or a reply, not undefined" } }],
    [async () => 7, { err: { tag: "failed", val: "TypeError: a handler must return a string or a reply, not number" } }],
  ];
  for (const [run, expected] of cases) {
    const p = plugin(run);
    const got = await outcome(() => p.invoke(invocation("t", [{ name: "x", value: { tag: "text", val: "world" } }])));
    assert.deepEqual(got, expected);
  }
});

test("an unknown command fails", async () => {
  const p = plugin(() => "x");
  assert.deepEqual(await outcome(() => p.invoke(invocation("nope"))), { err: { tag: "failed", val: "no such command /nope" } });
});

test("host errors reach the reply word for word", async () => {
  const p = plugin((_call, sdk) => sdk.kv.getText("k"), { granted: [] });
  assert.deepEqual(await outcome(() => p.invoke(invocation("t"))), { err: { tag: "failed", val: "capability `kv` is not granted to plugin test" } });
  assert.equal(p.logs.length, 0, "an expected error is not logged");
});

const event = (action, data) => ({ command: "t", action, messageId: "m2", data, caller, session });

test("actions: by id, by command.id, errors as for commands", async () => {
  const p = plugin(() => "x", {
    actions: {
      wave: (ev) => `${ev.caller.name} waves at ${ev.data.name}`,
      "t.ship": async () => reply.plain("shipped").ephemeral(),
      ship: () => "the wrong one",
      usage: () => {
        throw new Usage("not now");
      },
      broken: (ev) => ev.data.missing.field,
    },
  });
  const cases = [
    [event("wave", '{"name":"w"}'), { ok: { body: "ada waves at w", format: "plain", data: undefined, ephemeral: false, actions: [] } }],
    [event("ship"), { ok: { body: "shipped", format: "plain", data: undefined, ephemeral: true, actions: [] } }],
    [event("usage"), { err: { tag: "usage", val: "not now" } }],
    [event("nope"), { err: { tag: "failed", val: "no such action nope" } }],
  ];
  for (const [ev, expected] of cases) assert.deepEqual(await outcome(() => p.onAction(ev)), expected, ev.action);
  const broken = await outcome(() => p.onAction(event("broken", "{}")));
  assert.match(broken.err.val, /^TypeError: /);
  assert.match(p.logs.at(-1)[1], /^action broken of \/t failed: TypeError/);
});

test("completers: strings and { value, label }; a throwing one yields [] and logs", async () => {
  const request = (partial) => ({ command: "t", arg: "x", partial, values: [], caller, session });
  const cases = [
    // [completer, partial, completions, logged?]
    [(req) => ["alpha", "beta"].filter((s) => s.startsWith(req.partial)), "a", [{ value: "alpha", label: undefined }], false],
    [() => [{ value: "v", label: "Label" }, { value: 3 }], "", [{ value: "v", label: "Label" }, { value: "3", label: undefined }], false],
    [async () => ["later"], "", [{ value: "later", label: undefined }], false],
    [() => undefined, "", [], false],
    [() => [42], "", [], true],
    [() => "notalist", "", [], true],
    [
      () => {
        throw new TypeError("oops");
      },
      "",
      [],
      true,
    ],
    [
      async () => {
        throw new Failed("async oops");
      },
      "",
      [],
      true,
    ],
  ];
  for (const [completer, partial, expected, logged] of cases) {
    const p = plugin(() => "x", { completers: { "t.x": completer } });
    assert.deepEqual(await p.complete(request(partial)), expected, String(completer));
    assert.equal(p.logs.length, logged ? 1 : 0, String(completer));
    if (logged) assert.match(p.logs[0][1], /^completing \/t x failed: /);
  }
  const none = plugin(() => "x");
  assert.deepEqual(none.complete(request("")), [], "no completer: []");
});

test("describe", () => {
  const cases = [
    [new Usage("u"), "u"],
    [new Failed("f"), "f"],
    [new TypeError("t"), "TypeError: t"],
    [Object.assign(new Error("m"), { name: "ComponentError" }), "ComponentError: m"],
    [Object.assign(new Error("x"), { payload: "capability `kv` is not granted to plugin t" }), "capability `kv` is not granted to plugin t"],
    ["s", "s"],
    [{ message: "has a message" }, "has a message"],
    [null, "thrown: null"],
    [Symbol("x"), "thrown: Symbol(x)"],
  ];
  for (const [value, text] of cases) assert.equal(describe(value), text);
  assert.equal(new Usage("u").name, "Usage");
  assert.equal(new HostError("kv.get", "m").name, "HostError");
  assert.ok(new HostError("kv.get", "m") instanceof Failed);
});
