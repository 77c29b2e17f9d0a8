// `slashd-plugin build`: the bundle (always), and the component end to end with the
// server's own runtime when SLASHD_BIN names a slashd binary (`slashd plugin check` and
// `slashd plugin run`; ~15 s a component).
import test from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { BuildError, DISABLED_FEATURES, EXPORTS, bundle } from "../src/build.js";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const template = join(pkg, "template", "app.js");
const probe = join(pkg, "testdata", "sdkprobe.js");
const scratch = mkdtempSync(join(tmpdir(), "slashd-plugin-test-"));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

function write(name, text) {
  const p = join(scratch, name);
  writeFileSync(p, text);
  return p;
}

test("the bundle keeps slashd: imports and exports the world's functions", async () => {
  const js = await bundle(template);
  for (const iface of ["log", "kv", "config", "secrets", "progress", "sessions", "stats", "commands", "jobs"]) {
    assert.match(js, new RegExp(`from "slashd:plugin/${iface}@0\\.2\\.0"`), iface);
  }
  assert.match(js, /export \{[^}]*\bmanifest\b[^}]*\}/s);
  for (const e of EXPORTS) assert.match(js, new RegExp(`\\b${e}\\b`));
  assert.doesNotMatch(js, /from "slashd-plugin"/, "the SDK is bundled in");
});

test("a default export is re-exported as the world's functions", async () => {
  const entry = write(
    "default.js",
    'import { definePlugin } from "slashd-plugin";\nexport default definePlugin({ name: "d", version: "1", commands: [{ name: "d", run: () => "d" }] });\n',
  );
  const js = await bundle(entry);
  assert.match(js, /export \{[^}]*\bonAction\b[^}]*\}/s);
});

test("build errors say what is wrong", async () => {
  const cases = [
    ["noexports.js", 'import { reply } from "slashd-plugin";\nexport const x = reply;\n', /does not export manifest, invoke, complete, onAction/],
    ["partial.js", "export function manifest() {}\nexport function invoke() {}\n", /does not export complete, onAction/],
    ["syntax.js", "export const = 1;\n", /syntax\.js:1:\d+: /],
    ["missing.js", 'import x from "./nope.js";\nexport default x;\n', /Could not resolve "\.\/nope\.js"/],
  ];
  for (const [name, text, message] of cases) {
    await assert.rejects(bundle(write(name, text)), (e) => e instanceof BuildError && message.test(e.message), name);
  }
});

test("the toolchain loads", async () => {
  // componentize-js 0.23.0 imports @bytecodealliance/preview2-shim without depending on
  // it: the SDK pins it (0.25.0), else npm's hoisting decides whether builds work.
  assert.ok(existsSync(join(pkg, "node_modules")), `no ${join(pkg, "node_modules")}: run npm ci in ${pkg} first`);
  const { componentize } = await import("@bytecodealliance/componentize-js");
  assert.equal(typeof componentize, "function");
  const esbuild = await import("esbuild");
  assert.equal(esbuild.version, "0.28.2");
});

test("fetch-event is the one feature turned off", () => {
  assert.deepEqual([...DISABLED_FEATURES], ["fetch-event"]);
});

const slashd = process.env.SLASHD_BIN;
const e2e = { skip: slashd ? false : "set SLASHD_BIN to a slashd binary to build and run components", timeout: 180_000 };

// slashd reads SLASHD_* variables as config keys (SLASHD_BIN would be `bin`): not for it.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "SLASHD_BIN"));

/** Run a program without blocking this process (the probe's HTTP server lives here), in
 * the scratch directory (no slashd.toml). */
function exec(program, args) {
  return new Promise((done) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"], env, cwd: scratch });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => done({ code, ok: code === 0, stdout, stderr, out: stdout + stderr }));
  });
}

const cli = (args) => exec(process.execPath, [join(pkg, "bin", "slashd-plugin.js"), ...args]);
const run = (wasm, line, ...flags) => exec(slashd, ["plugin", "run", wasm, line, ...flags]);

test("the template builds, checks and runs", e2e, async () => {
  const wasm = join(scratch, "hello.wasm");
  const built = await cli(["build", template, "-o", wasm]);
  assert.equal(built.code, 0, built.out);
  const { stdout: check } = await exec(slashd, ["plugin", "check", wasm]);
  assert.match(check, /^ok: hello 0\.2\.0 \(plugin API 0\.2\.0\)/);
  assert.match(check, /grants needed: none/);
  const reply = JSON.parse((await run(wasm, "/hello world", "--json")).stdout).reply;
  assert.deepEqual(
    { body: reply.body, format: reply.format, data: reply.data, button: reply.actions[0].label },
    { body: "Hello, **world**!", format: "markdown", data: { name: "world" }, button: "Wave back" },
  );
  assert.match(JSON.parse((await run(wasm, "/hello", "--json", "--user", "grace")).stdout).reply.body, /Hello, \*\*grace\*\*!/);
});

test("the probe: host calls, typed values, errors, fetch", e2e, async () => {
  const server = createServer((req, res) => res.end(`you asked for ${req.url}`));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    const wasm = join(scratch, "probe.wasm");
    const built = await cli(["build", probe, "-o", wasm]);
    assert.equal(built.code, 0, built.out);
    const grants = ["--grant", "kv,config,secrets,progress,http", "--setting", "greeting=hi", "--secret", "token=abc123", "--http-allow", `${base}/ok`];
    const cases = [
      ["/probe values 3 90s true 2.5 the rest", true, /"n":3,"wait":90000,"flag":true,"x":2\.5,"rest":"the rest"/],
      ["/probe values --n 9007199254740993", true, /"n":"9007199254740993".*"types":\{"n":"bigint"/s],
      ["/pr kv", true, /count 1, text héllo, keys count,text, missing undefined/],
      ["/probe config", true, /greeting "hi" all \{"greeting":"hi"\}/],
      ["/probe secret", true, /token has 6 characters/],
      ["/probe progress", true, /cancelled: false/],
      ["/probe usage", false, /usage: usage: \/probe usage, on purpose/],
      ["/probe failed", false, /plugin_failed: failed on purpose/],
      ["/probe typeerror", false, /plugin_failed: TypeError: /],
      ["/probe string", false, /plugin_failed: a thrown string/],
      ["/probe async", false, /usage: async usage/],
      ["/probe nokey", false, /plugin_failed: capability `jobs` is not granted to plugin sdkprobe/],
      [`/probe fetch --rest ${base}/ok`, true, /status 200: you asked for \/ok/],
      [`/probe fetch --rest ${base}/elsewhere`, false, /plugin_failed: TypeError: NetworkError/],
    ];
    for (const [line, ok, expected] of cases) {
      const got = await run(wasm, line, ...grants);
      assert.equal(got.ok, ok, `${line}: ${got.out}`);
      assert.match(got.out, expected, line);
    }
  } finally {
    server.close();
  }
});
