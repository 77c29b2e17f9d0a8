// A plugin that exercises the SDK end to end: built by test/build.test.mjs, run with
// `slashd plugin run` when SLASHD_BIN names a slashd binary.
import { definePlugin, arg, reply, Usage, Failed, kv, config, secrets, progress, jobs, log } from "slashd-plugin";

function show(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));
}

export const { manifest, invoke, complete, onAction } = definePlugin({
  name: "sdkprobe",
  version: "0.2.0",
  capabilities: ["kv", "config", "secrets", "progress", "http"],
  commands: [
    {
      name: "probe",
      summary: "Exercise the JS SDK",
      aliases: ["pr"],
      args: [
        arg.choice("what", "What to do", ["values", "kv", "config", "secret", "progress", "usage", "failed", "typeerror", "string", "fetch", "nokey", "async"], { required: true }),
        arg.integer("n", "A number", { min: 0 }),
        arg.duration("wait", "A duration", { max: "1h" }),
        arg.boolean("flag", "A flag"),
        arg.number("x", "A float"),
        arg.text("rest", "The rest", { rest: true }),
      ],
      async run(call) {
        const v = call.values;
        switch (v.what) {
          case "values":
            return reply.json({ ...v, big: typeof v.n === "bigint" ? String(v.n) : undefined }).data({ types: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, typeof x])) });
          case "kv": {
            const count = (kv.getJson("count") ?? 0) + 1;
            kv.setJson("count", count);
            kv.set("text", "héllo");
            return `count ${count}, text ${kv.getText("text")}, keys ${kv.keys().join(",")}, missing ${kv.get("nope")}`;
          }
          case "config":
            return `greeting ${show(config.get("greeting"))} all ${show(config.all())}`;
          case "secret":
            return `token has ${secrets.get("token")?.length ?? "no"} characters`;
          case "progress":
            progress.report("half way", 0.5);
            return `cancelled: ${progress.cancelled()}`;
          case "usage":
            throw new Usage("usage: /probe usage, on purpose");
          case "failed":
            throw new Failed("failed on purpose");
          case "typeerror":
            return undefined.x;
          case "string":
            throw "a thrown string";
          case "async":
            await new Promise((r) => setTimeout(r, 10));
            throw new Usage("async usage");
          case "fetch": {
            const res = await fetch(v.rest ?? "http://127.0.0.1:1/", { headers: { "x-probe": "1" } });
            return reply.plain(`status ${res.status}: ${await res.text()}`);
          }
          case "nokey":
            log.info("about to call jobs without its grant");
            return `jobs: ${show(jobs.listMine())}`;
        }
        return "?";
      },
    },
  ],
  actions: {
    again: (event) => `again: ${show(event.data)}`,
  },
  completers: {
    "probe.rest": (request) => ["alpha", { value: "beta", label: "Beta" }].filter((c) => (c.value ?? c).startsWith(request.partial)),
  },
});
