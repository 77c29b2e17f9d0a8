// Builds web/dist from web/src: deterministic (same sources and package versions, same
// bytes), so CI can rebuild and `git diff --exit-code web/dist` to check it is current.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  legalComments: "eof",
  outdir: "dist",
  absWorkingDir: new URL(".", import.meta.url).pathname,
  logLevel: "info",
});
await build({
  entryPoints: { app: "src/style.css" },
  bundle: true,
  minify: true,
  outdir: "dist",
  absWorkingDir: new URL(".", import.meta.url).pathname,
  logLevel: "info",
});
await copyFile(new URL("./index.html", import.meta.url), new URL("index.html", dist));
await copyFile(new URL("./src/icon.svg", import.meta.url), new URL("icon.svg", dist));
