// Test plugin `jsprobe`, built with stock componentize-js against the raw 0.2.0 bindings.
// componentize-js imports the whole world; the manifest asks for `kv` alone, so the host
// must load it with that one grant and answer its other calls with "not granted" errors.

import { log } from "slashd:plugin/log@0.2.0";
import * as kv from "slashd:plugin/kv@0.2.0";
import * as config from "slashd:plugin/config@0.2.0";

export function manifest() {
  return {
    name: "jsprobe",
    version: "0.2.0",
    commands: [
      {
        name: "jsprobe",
        aliases: [],
        summary: "A JavaScript plugin from the stock toolchain",
        usage: "/jsprobe [count|config|usage]",
        minRole: "viewer",
        args: undefined,
        confirm: undefined,
      },
    ],
    capabilities: ["kv"],
  };
}

function reply(body) {
  return { body, format: "plain", data: undefined, ephemeral: false, actions: [] };
}

export function invoke(call) {
  const what = call.args[0] ?? "count";
  if (what === "count") {
    const seen = kv.get("count");
    const count = (seen ? Number(new TextDecoder().decode(seen)) : 0) + 1;
    kv.set("count", new TextEncoder().encode(String(count)));
    log("info", `jsprobe counted ${count} for ${call.caller.name}`);
    return reply(`javascript: call ${count} by ${call.caller.name} (invocation ${call.id})`);
  }
  if (what === "config") {
    try {
      config.all();
    } catch (e) {
      throw { tag: "failed", val: `config refused: ${e.payload ?? e}` };
    }
    throw { tag: "failed", val: "config answered without a grant" };
  }
  throw { tag: "usage", val: "usage: /jsprobe [count|config]" };
}

export function complete(_request) {
  return [];
}

export function onAction(_event) {
  throw { tag: "failed", val: "no such action" };
}
