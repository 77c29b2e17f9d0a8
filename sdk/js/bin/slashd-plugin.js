#!/usr/bin/env node
// slashd-plugin build ENTRY.js [-o OUT.wasm] [--bundle FILE] [--minify]
import { parseArgs } from "node:util";
import { BuildError, build, version } from "../src/build.js";

const HELP = `slashd-plugin — build a slashd command plugin written in JavaScript

usage:
  slashd-plugin build ENTRY.js [-o OUT.wasm] [--bundle FILE] [--minify]
  slashd-plugin --version

build   bundle ENTRY.js with what it imports (esbuild) and make a WebAssembly component
        of it (componentize-js 0.23.0, world slashd:plugin/plugin@0.2.0)
  -o, --out FILE     the component (default: ENTRY with .wasm)
  --bundle FILE      also write the bundled JavaScript to FILE
  --minify           minify the bundle

Then: slashd plugin check OUT.wasm, slashd plugin run OUT.wasm "/cmd args".`;

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      bundle: { type: "string" },
      minify: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean", short: "V" },
    },
  });
  if (values.version) {
    console.log(await version());
    return 0;
  }
  const [command, entry, ...extra] = positionals;
  if (values.help || command === "help" || command === undefined) {
    console.log(HELP);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (command !== "build") {
    console.error(`slashd-plugin: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return 2;
  }
  if (!entry || extra.length) {
    console.error(`slashd-plugin: build takes one ENTRY.js\n\n${HELP}`);
    return 2;
  }
  await build(entry, { out: values.out, keepBundle: values.bundle, minify: values.minify });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof BuildError || e?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      console.error(`slashd-plugin: ${e.message}`);
    } else {
      console.error(e);
    }
    process.exit(1);
  },
);
