// `slashd-plugin build ENTRY.js [-o OUT.wasm]`: bundle the entry and everything it imports
// (this SDK included) into one ES module with esbuild, then make a WebAssembly component of
// it with componentize-js against the WIT shipped in this package (world `plugin`).

import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The package's own directory. */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** The WIT folder shipped in the package: a copy of plugin-api/wit/since_v0.2.0. */
export const WIT_DIR = join(PACKAGE_DIR, "wit");
export const WORLD = "plugin";

/**
 * componentize-js features turned off. Its defaults are stdio, random, clocks, http and
 * fetch-event. `http` is what makes `fetch()` work, over the `wasi:http/outgoing-handler`
 * the world imports: kept. `fetch-event` is StarlingMonkey's built-in
 * `wasi:http/incoming-handler` (a service worker style `addEventListener("fetch")`); a
 * plugin serves no requests and the host accepts no such export, so it is turned off —
 * the engine's handler is removed rather than merely left unexported.
 */
export const DISABLED_FEATURES = Object.freeze(["fetch-event"]);

/** The world's exports, as the JS module must name them. */
export const EXPORTS = Object.freeze(["manifest", "invoke", "complete", "onAction"]);

/** Modules the component model provides: left as imports for componentize-js. */
export const EXTERNAL = Object.freeze(["slashd:*", "wasi:*"]);

export class BuildError extends Error {}

/** The toolchain packages and their entry modules. */
const TOOLS = {
  esbuild: "lib/main.js",
  "@bytecodealliance/componentize-js": "src/componentize.js",
};

/**
 * Import a toolchain package: the SDK's own dependency, or else the project's (walking up
 * from the working directory). `npm install ./path/to/sdk/js` links the SDK without
 * installing its dependencies (npm ≥ 9); `--install-links` (or `install-links=true` in
 * the project's .npmrc, as the template has) copies it and installs them.
 */
async function tool(name) {
  try {
    return await import(name);
  } catch (e) {
    if (e?.code !== "ERR_MODULE_NOT_FOUND") throw e;
  }
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    const entry = join(dir, "node_modules", name, TOOLS[name]);
    if (existsSync(entry)) return import(pathToFileURL(entry).href);
    if (dirname(dir) === dir) break;
  }
  throw new BuildError(
    `cannot find ${name}, a dependency of slashd-plugin. npm links a file: dependency ` +
      `without installing its dependencies: install the SDK with\n` +
      `  npm install --install-links /path/to/slashd/sdk/js\n` +
      `(or put install-links=true in the project's .npmrc and run npm install again)`,
  );
}

/** `slashd-plugin` is always this package (the SDK that builds is the SDK bundled), even
 * where the entry's own node_modules has none (in-repo tests, a global install). */
const SDK_MODULES = {
  "slashd-plugin": join(PACKAGE_DIR, "src", "index.js"),
  "slashd-plugin/core": join(PACKAGE_DIR, "src", "core.js"),
};
const thisSdk = {
  name: "slashd-plugin",
  setup(b) {
    b.onResolve({ filter: /^slashd-plugin(\/core)?$/ }, (args) => ({ path: SDK_MODULES[args.path] }));
  },
};

/**
 * Bundle `entry` into one ES module (the text). When the entry has a default export and no
 * named world exports, a wrapper re-exports the default's functions.
 */
export async function bundle(entry, { minify = false } = {}) {
  const esbuild = await tool("esbuild");
  const entryPath = resolve(entry);
  const common = {
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    external: [...EXTERNAL],
    metafile: true,
    minify,
    legalComments: "none",
    logLevel: "silent",
    plugins: [thisSdk],
  };
  const run = async (options) => {
    try {
      return await esbuild.build({ ...common, ...options });
    } catch (e) {
      const messages = (e.errors ?? []).map((m) => {
        const where = m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : "";
        return `${where}${m.text}`;
      });
      throw new BuildError(messages.length ? messages.join("\n") : String(e.message ?? e));
    }
  };
  let result = await run({ entryPoints: [entryPath] });
  let exports = Object.values(result.metafile.outputs)[0]?.exports ?? [];
  if (!EXPORTS.every((e) => exports.includes(e)) && exports.includes("default")) {
    result = await run({
      stdin: {
        contents:
          `import plugin from ${JSON.stringify(entryPath)};\n` +
          `export const { ${EXPORTS.join(", ")} } = plugin;\n`,
        resolveDir: dirname(entryPath),
        sourcefile: "slashd-plugin-entry.js",
        loader: "js",
      },
    });
    exports = Object.values(result.metafile.outputs)[0]?.exports ?? [];
  }
  const lacking = EXPORTS.filter((e) => !exports.includes(e));
  if (lacking.length) {
    throw new BuildError(
      `${entry} does not export ${lacking.join(", ")}: write\n` +
        `  export const { manifest, invoke, complete, onAction } = definePlugin({ … });`,
    );
  }
  return result.outputFiles[0].text;
}

/**
 * Build `entry` into a component at `out` (default: the entry's name with `.wasm`).
 * Returns `{ out, bytes, bundleBytes, seconds }`.
 */
export async function build(entry, { out, keepBundle, minify = false, quiet = false } = {}) {
  const started = Date.now();
  const entryPath = resolve(entry);
  try {
    await stat(entryPath);
  } catch {
    throw new BuildError(`no such file: ${entry}`);
  }
  const output = resolve(out ?? join(dirname(entryPath), `${basename(entryPath, extname(entryPath))}.wasm`));
  const source = await bundle(entryPath, { minify });
  if (keepBundle) await writeFile(resolve(keepBundle), source);

  const work = await mkdtemp(join(tmpdir(), "slashd-plugin-"));
  try {
    const sourcePath = join(work, "plugin.js");
    await writeFile(sourcePath, source);
    const { componentize } = await tool("@bytecodealliance/componentize-js");
    let component;
    try {
      ({ component } = await componentize({
        sourcePath,
        witPath: WIT_DIR,
        worldName: WORLD,
        disableFeatures: [...DISABLED_FEATURES],
      }));
    } catch (e) {
      throw new BuildError(`componentize-js: ${String(e?.message ?? e).trim()}`);
    }
    await writeFile(output, component);
    const result = {
      out: output,
      bytes: component.byteLength,
      bundleBytes: Buffer.byteLength(source),
      seconds: (Date.now() - started) / 1000,
    };
    if (!quiet) {
      const mb = (result.bytes / 1e6).toFixed(1);
      console.error(`slashd-plugin: built ${output} (${mb} MB) in ${result.seconds.toFixed(1)} s`);
    }
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The package's version (= the plugin API version). */
export async function version() {
  return JSON.parse(await readFile(join(PACKAGE_DIR, "package.json"), "utf8")).version;
}
