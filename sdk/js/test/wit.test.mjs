// The WIT shipped in this package is a copy of the plugin API's, one source of truth:
// inside a slashd checkout it must match plugin-api/wit/since_v0.2.0 file for file (run
// `npm run sync-wit` after changing the WIT). The SDK's enums must match the WIT's.
import test from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { API_VERSION, CAPABILITIES, FORMATS, KINDS, ROLES, STYLES } from "../src/core.js";
import { WIT_DIR } from "../src/build.js";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const upstream = resolve(pkg, "../../plugin-api/wit", `since_v${API_VERSION}`);

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

test("wit/ is the plugin API's WIT, unchanged", { skip: existsSync(upstream) ? false : "not inside a slashd checkout" }, () => {
  assert.equal(WIT_DIR, join(pkg, "wit"));
  const ours = files(WIT_DIR);
  const theirs = files(upstream);
  assert.deepEqual(ours, theirs, `the file lists differ: run npm run sync-wit (in ${pkg})`);
  for (const f of theirs) {
    assert.ok(readFileSync(join(WIT_DIR, f)).equals(readFileSync(join(upstream, f))), `wit/${f} differs from ${join(upstream, f)}: run npm run sync-wit`);
  }
});

const wit = readFileSync(join(WIT_DIR, "plugin.wit"), "utf8");

/** The cases of `enum NAME { … }` or `variant NAME { … }`, doc comments dropped. */
function cases(keyword, name) {
  const m = wit.match(new RegExp(`${keyword} ${name} \\{([^}]*)\\}`));
  assert.ok(m, `${keyword} ${name} in plugin.wit`);
  return m[1]
    .split("\n")
    .map((l) => l.replace(/\/\/.*$/, "").trim())
    .join(" ")
    .split(",")
    .map((c) => c.trim().replace(/\(.*\)$/, ""))
    .filter(Boolean);
}

test("the SDK's enums are the WIT's", () => {
  assert.match(wit, new RegExp(`package slashd:plugin@${API_VERSION.replace(/\./g, "\\.")};`));
  assert.deepEqual([...CAPABILITIES], cases("enum", "capability"));
  assert.deepEqual([...ROLES], cases("enum", "role"));
  assert.deepEqual([...FORMATS], cases("enum", "format"));
  assert.deepEqual([...STYLES], cases("enum", "action-style"));
  assert.deepEqual([...KINDS], cases("variant", "arg-kind"));
});

test("the package version is the plugin API version", () => {
  const { version } = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
  assert.equal(version, API_VERSION);
});
