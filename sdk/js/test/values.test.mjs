// WIT values, invocations, completion requests and action events as plain JS.
import test from "node:test";
import assert from "node:assert/strict";

import { fromWitValue, fromWitValues, parseDuration, plain, toActionEvent, toCall, toCompletionRequest, toJson } from "../src/core.js";
import { caller, invocation, session } from "../testdata/fake-host.mjs";

test("typed values become plain JS values", () => {
  const cases = [
    [{ tag: "text", val: "hi" }, "hi"],
    [{ tag: "choice", val: "prod" }, "prod"],
    [{ tag: "integer", val: 42n }, 42],
    [{ tag: "integer", val: -7n }, -7],
    [{ tag: "integer", val: 9007199254740991n }, 9007199254740991],
    // Beyond 2^53 a Number would lie: the BigInt stays.
    [{ tag: "integer", val: 9007199254740993n }, 9007199254740993n],
    [{ tag: "integer", val: -(2n ** 63n) }, -(2n ** 63n)],
    [{ tag: "number", val: 1.5 }, 1.5],
    [{ tag: "boolean", val: false }, false],
    [{ tag: "duration-ms", val: 90000n }, 90000],
    [{ tag: "duration-ms", val: 0n }, 0],
    [{ tag: "user", val: { id: "u2", name: "bob", role: "viewer" } }, { id: "u2", name: "bob", role: "viewer" }],
    [{ tag: "session", val: { id: "s2", title: "Incident" } }, { id: "s2", title: "Incident" }],
  ];
  for (const [wit, expected] of cases) assert.deepEqual(fromWitValue(wit), expected, JSON.stringify(wit, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)));
  assert.throws(() => fromWitValue({ tag: "colour", val: "red" }), /unknown value kind "colour"/);
});

test("values are an object by name; absent ones are undefined", () => {
  const values = fromWitValues([
    { name: "name", value: { tag: "text", val: "world" } },
    { name: "count", value: { tag: "integer", val: 3n } },
  ]);
  assert.deepEqual(values, { name: "world", count: 3 });
  assert.equal(values.missing, undefined);
  assert.deepEqual(fromWitValues([]), {});
});

test("an invocation becomes a call", () => {
  const call = toCall(invocation("hello", [{ name: "wait", value: { tag: "duration-ms", val: 1500n } }], { args: ["--wait", "1.5s"], rawArgs: "--wait 1.5s" }));
  assert.deepEqual(call, {
    id: "m1",
    command: "hello",
    args: ["--wait", "1.5s"],
    rawArgs: "--wait 1.5s",
    values: { wait: 1500 },
    caller: { id: "u1", name: "ada", role: "analyst" },
    session: { id: "s1", title: "Ops" },
    connectionId: "c1",
  });
});

test("a completion request and an action event", () => {
  const req = toCompletionRequest({ command: "deploy", arg: "service", partial: "we", values: [{ name: "env", value: { tag: "choice", val: "prod" } }], caller, session });
  assert.deepEqual(req, { command: "deploy", arg: "service", partial: "we", values: { env: "prod" }, caller, session });

  const cases = [
    ['{"name":"world"}', { name: "world" }],
    ["[1,2]", [1, 2]],
    [undefined, undefined],
    ["not json", undefined],
  ];
  for (const [data, parsed] of cases) {
    const ev = toActionEvent({ command: "hello", action: "wave", messageId: "m9", data, caller, session });
    assert.deepEqual(ev, { command: "hello", action: "wave", messageId: "m9", data: parsed, rawData: data, caller, session }, String(data));
  }
});

test("host records lose their BigInts where a Number is exact", () => {
  assert.deepEqual(plain({ a: 1n, b: [2n, { c: 2n ** 60n }], d: "x", e: undefined }), { a: 1, b: [2, { c: 2n ** 60n }], d: "x", e: undefined });
  const bytes = new Uint8Array([1, 2]);
  assert.equal(plain(bytes), bytes);
});

test("JSON of values with BigInts", () => {
  assert.equal(toJson({ n: 5n, big: 2n ** 60n }), '{"n":5,"big":"1152921504606846976"}');
  assert.throws(() => toJson(undefined), /cannot serialize undefined/);
});

test("durations as typed", () => {
  const cases = [
    ["90s", 90],
    ["1h30m", 5400],
    ["250ms", 0.25],
    ["2d", 172800],
    ["1.5h", 5400],
    ["", undefined],
    ["5", undefined],
    ["5 m", undefined],
    ["soon", undefined],
  ];
  for (const [text, seconds] of cases) assert.equal(parseDuration(text), seconds, text);
});
