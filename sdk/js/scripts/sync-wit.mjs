#!/usr/bin/env node
// Copy the plugin API's WIT (plugin-api/wit/since_v0.2.0 of the slashd checkout) into
// this package's wit/, which `slashd-plugin build` uses. test/wit.test.mjs fails when the
// two differ: run this after changing the WIT.
import { cpSync, existsSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = resolve(pkg, "../../plugin-api/wit/since_v0.2.0");
if (!existsSync(join(source, "plugin.wit"))) {
  console.error(`sync-wit: no ${source}: run this inside a slashd checkout`);
  process.exit(1);
}
const target = join(pkg, "wit");
rmSync(target, { recursive: true, force: true });
cpSync(source, target, { recursive: true });
console.log(`sync-wit: copied ${source} to ${target}`);
