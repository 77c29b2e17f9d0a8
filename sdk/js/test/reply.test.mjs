// Replies: the builders, and what a handler may return.
import test from "node:test";
import assert from "node:assert/strict";

import { Reply, reply, toReply } from "../src/core.js";

const base = { data: undefined, ephemeral: false, actions: [] };
const wave = { id: "wave", label: "Wave back", style: "secondary", minRole: "viewer", confirm: undefined, once: false };

test("replies become WIT reply records", () => {
  const cases = [
    [reply.plain("hi"), { body: "hi", format: "plain", ...base }],
    [reply.markdown("**hi**"), { body: "**hi**", format: "markdown", ...base }],
    [reply.json({ a: [1, 2] }), { body: '{"a":[1,2]}', format: "json", ...base }],
    [reply.json({ n: 2n }), { body: '{"n":2}', format: "json", ...base }],
    [reply.plain("x").data({ name: "world" }), { body: "x", format: "plain", ...base, data: '{"name":"world"}' }],
    [reply.plain("x").data({ a: 1 }).data(undefined), { body: "x", format: "plain", ...base }],
    [reply.plain("x").data(null), { body: "x", format: "plain", ...base, data: "null" }],
    [reply.plain("x").ephemeral(), { body: "x", format: "plain", ...base, ephemeral: true }],
    [reply.plain("x").ephemeral().ephemeral(false), { body: "x", format: "plain", ...base }],
    [reply.markdown("Hello").data({ name: "w" }).button("wave", "Wave back"), { body: "Hello", format: "markdown", ...base, data: '{"name":"w"}', actions: [wave] }],
    [
      reply.plain("x").button("ship", "Ship it", { style: "danger", minRole: "admin", confirm: "Really?", once: true }).button("wave", "Wave back"),
      { body: "x", format: "plain", ...base, actions: [{ id: "ship", label: "Ship it", style: "danger", minRole: "admin", confirm: "Really?", once: true }, wave] },
    ],
    [reply.plain(42), { body: "42", format: "plain", ...base }],
  ];
  for (const [r, expected] of cases) assert.deepEqual(r.toWit(), expected, expected.body);
});

test("bad buttons and formats throw", () => {
  const cases = [
    [() => reply.plain("x").button("", "x"), /a button needs an id/],
    [() => reply.plain("x").button("a", "A", { style: "red" }), /unknown button style "red"/],
    [() => reply.plain("x").button("a", "A", { minRole: "root" }), /unknown role "root"/],
    [() => reply.plain("x").button("a", "A", { min_role: "admin" }), /unknown option "min_role"/],
    [() => new Reply("x", "html"), /unknown reply format "html"/],
    [() => reply.json(undefined), /cannot serialize/],
  ];
  for (const [f, message] of cases) assert.throws(f, message);
});

test("a handler returns a string or a reply", () => {
  assert.deepEqual(toReply("hi").toWit(), { body: "hi", format: "plain", ...base });
  const r = reply.markdown("x");
  assert.equal(toReply(r), r);
  const cases = [
    [undefined, /not undefined/],
    [null, /not null/],
    [42, /not number/],
    [[], /not an array/],
    [{ body: "x" }, /not object/],
  ];
  for (const [value, message] of cases) assert.throws(() => toReply(value), message);
});
