// A team's first command: copy this directory, rename it, build it. See README.md.
//
// `/hello [name]` greets someone, with a button anyone in the session may press.

import { definePlugin, arg, reply } from "slashd-plugin";

export const { manifest, invoke, complete, onAction } = definePlugin({
  name: "hello",
  version: "0.2.0",
  capabilities: [], // e.g. ["kv", "http"]: what the admin must grant
  commands: [
    {
      name: "hello",
      summary: "Say hello",
      // A typed argument: the host parses and checks it, and writes the usage line.
      args: [arg.text("name", "Who to greet (default: you)")],
      run(call) {
        const name = call.values.name ?? call.caller.name;
        return reply
          .markdown(`Hello, **${name}**!`)
          .data({ name })
          .button("wave", "Wave back");
      },
    },
  ],
  actions: {
    // The "Wave back" button; its result is a new message in the session.
    wave(event) {
      return `${event.caller.name} waves back at ${event.data?.name ?? "someone"}`;
    },
  },
});
