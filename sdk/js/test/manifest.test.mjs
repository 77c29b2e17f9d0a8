// The manifest definePlugin builds: the WIT `manifest` record, arg kinds and the checks.
import test from "node:test";
import assert from "node:assert/strict";

import { arg, createSdk, CAPABILITIES } from "../src/core.js";
import { fakeImports } from "../testdata/fake-host.mjs";

const { definePlugin } = createSdk(fakeImports().imports);
const run = () => "ok";

const noBounds = { required: false, default: undefined, rest: false, completes: false, min: undefined, max: undefined };

test("arg kinds become WIT arg-spec records", () => {
  const cases = [
    [arg.text("name", "Who"), { name: "name", kind: { tag: "text" }, summary: "Who", ...noBounds }],
    [arg.integer("n", "How many", { min: 1, max: 10 }), { name: "n", kind: { tag: "integer" }, summary: "How many", ...noBounds, min: 1, max: 10 }],
    [arg.number("x", "X", { default: 1.5 }), { name: "x", kind: { tag: "number" }, summary: "X", ...noBounds, default: "1.5" }],
    [arg.boolean("dry-run", "Only pretend", { default: false }), { name: "dry-run", kind: { tag: "boolean" }, summary: "Only pretend", ...noBounds, default: "false" }],
    [arg.duration("wait", "How long", { default: "30s", max: "5m" }), { name: "wait", kind: { tag: "duration" }, summary: "How long", ...noBounds, default: "30s", max: 300 }],
    [arg.duration("t", "T", { min: 1, max: "1h30m" }), { name: "t", kind: { tag: "duration" }, summary: "T", ...noBounds, min: 1, max: 5400 }],
    [arg.choice("env", "Where", ["staging", "prod"], { required: true }), { name: "env", kind: { tag: "choice", val: ["staging", "prod"] }, summary: "Where", ...noBounds, required: true }],
    [arg.user("who", "A user"), { name: "who", kind: { tag: "user" }, summary: "A user", ...noBounds }],
    [arg.session("s", "A session"), { name: "s", kind: { tag: "session" }, summary: "A session", ...noBounds }],
    [arg.text("rest", "Words", { rest: true, completes: true }), { name: "rest", kind: { tag: "text" }, summary: "Words", ...noBounds, rest: true, completes: true }],
  ];
  for (const [a, expected] of cases) assert.deepEqual(a.toWit(), expected, a.name);
});

test("bad arguments are refused when declared", () => {
  const cases = [
    [() => arg.text("Name", "x"), /invalid argument name "Name"/],
    [() => arg.text("", "x"), /invalid argument name/],
    [() => arg.integer("n", "x", { rest: true }), /only a text argument may take the rest/],
    [() => arg.text("t", "x", { min: 1 }), /min and max apply to integers/],
    [() => arg.integer("n", "x", { min: 5, max: 1 }), /min 5 is above max 1/],
    [() => arg.integer("n", "x", { min: Infinity }), /finite number/],
    [() => arg.duration("d", "x", { max: "soon" }), /"soon" is not a duration/],
    [() => arg.choice("c", "x", []), /non-empty list of choices/],
    [() => arg.choice("c", "x", ["two words"]), /one word/],
    [() => arg.text("t", "x", { required: true, default: "a" }), /required and has a default/],
    [() => arg.text("t", "x", { requried: true }), /unknown option "requried"/],
  ];
  for (const [f, message] of cases) assert.throws(f, message);
});

test("definePlugin builds the WIT manifest", () => {
  const plugin = definePlugin({
    name: "hello",
    version: "0.1.0",
    capabilities: ["kv", "http"],
    commands: [
      { name: "hello", summary: "Say hello", args: [arg.text("name", "Who")], run },
      { name: "raw", summary: "Untyped", aliases: ["r"], usage: "/raw [x]", minRole: "admin", confirm: "Sure?", run },
      { name: "none", summary: "No args at all", args: [], run },
    ],
    completers: { "hello.name": () => [] },
  });
  assert.deepEqual(plugin.manifest(), {
    name: "hello",
    version: "0.1.0",
    commands: [
      {
        name: "hello",
        aliases: [],
        summary: "Say hello",
        usage: "/hello",
        minRole: "viewer",
        // A completer for hello.name turns `completes` on.
        args: [{ name: "name", kind: { tag: "text" }, summary: "Who", ...noBounds, completes: true }],
        confirm: undefined,
      },
      { name: "raw", aliases: ["r"], summary: "Untyped", usage: "/raw [x]", minRole: "admin", args: undefined, confirm: "Sure?" },
      { name: "none", aliases: [], summary: "No args at all", usage: "/none", minRole: "viewer", args: [], confirm: undefined },
    ],
    capabilities: ["kv", "http"],
  });
  assert.equal(typeof plugin.invoke, "function");
  assert.equal(typeof plugin.complete, "function");
  assert.equal(typeof plugin.onAction, "function");
});

test("every WIT capability is accepted", () => {
  const m = definePlugin({ name: "p", version: "1", capabilities: [...CAPABILITIES], commands: [{ name: "p", run }] }).manifest();
  assert.deepEqual(m.capabilities, ["commands", "stats", "sessions", "kv", "config", "http", "secrets", "progress", "jobs"]);
});

test("bad plugin specs throw at definition (that is, at build time)", () => {
  const ok = { name: "p", version: "1", commands: [{ name: "p", run }] };
  const cases = [
    [{ ...ok, capabilities: ["kv", "network"] }, /unknown capability "network" \(expected one of "commands", .*"jobs"\)/],
    [{ ...ok, capabilities: ["log"] }, /"log" is always available/],
    [{ ...ok, capabilities: "kv" }, /capabilities is a list/],
    [{ ...ok, name: "" }, /needs a name/],
    [{ ...ok, version: undefined }, /needs a version/],
    [{ ...ok, commands: [] }, /declares no command/],
    [{ ...ok, commands: [{ name: "/p", run }] }, /without "\/"/],
    [{ ...ok, commands: [{ name: "Hello", run }] }, /invalid command name "Hello"/],
    [{ ...ok, commands: [{ name: "p" }] }, /needs a run\(call\) function/],
    [{ ...ok, commands: [{ name: "p", run, minRole: "root" }] }, /unknown role "root"/],
    [{ ...ok, commands: [{ name: "p", run, aliases: ["P"] }] }, /aliases is a list of command names/],
    [{ ...ok, commands: [{ name: "p", run }, { name: "q", aliases: ["p"], run }] }, /\/p is declared twice/],
    [{ ...ok, commands: [{ name: "p", run, args: [{ name: "x" }] }] }, /args\[0\] is not built with arg.text/],
    [{ ...ok, commands: [{ name: "p", run, args: [arg.text("x", ""), arg.text("x", "")] }] }, /argument "x" is declared twice/],
    [{ ...ok, commands: [{ name: "p", run, args: [arg.text("x", "", { rest: true }), arg.text("y", "")] }] }, /only the last argument/],
    [{ ...ok, commands: [{ name: "p", run, confirm: " " }] }, /confirm is a non-empty prompt/],
    [{ ...ok, commands: [{ name: "p", run, min_role: "admin" }] }, /unknown key "min_role"/],
    [{ ...ok, capabilites: ["kv"] }, /unknown key "capabilites"/],
    [{ ...ok, completers: { "q.x": () => [] } }, /completer "q.x": no command "q"/],
    [{ ...ok, completers: { "p.x": () => [] } }, /\/p declares no argument "x"/],
    [{ ...ok, completers: { p: () => [] } }, /completer "p"/],
    [{ ...ok, actions: { wave: "hi" } }, /action "wave" is not a function/],
  ];
  for (const [spec, message] of cases) assert.throws(() => definePlugin(spec), message, JSON.stringify(spec));
});
