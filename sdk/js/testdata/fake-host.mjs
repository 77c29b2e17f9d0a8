// Fake `slashd:plugin/…` imports for the unit tests, shaped as componentize-js gives
// them: a refused call throws an Error with the host's text in `payload` (ComponentError).

export class ComponentError extends Error {
  constructor(payload) {
    super(payload);
    this.payload = payload;
  }
}

/** Imports over an in-memory kv; `granted` lists the capabilities that answer. */
export function fakeImports({ granted = ["kv", "config", "secrets", "progress", "sessions", "stats", "commands", "jobs"], settings = {}, secrets = {}, plugin = "test" } = {}) {
  const logs = [];
  const store = new Map();
  const reports = [];
  const gate = (cap, f) => (...args) => {
    if (!granted.includes(cap)) throw new ComponentError(`capability \`${cap}\` is not granted to plugin ${plugin}`);
    return f(...args);
  };
  const imports = {
    log: { log: (level, message) => logs.push([level, message]) },
    kv: {
      get: gate("kv", (k) => store.get(k)),
      set: gate("kv", (k, v) => {
        if (!(v instanceof Uint8Array)) throw new Error("kv.set wants a Uint8Array");
        store.set(k, v);
      }),
      delete: gate("kv", (k) => void store.delete(k)),
      listKeys: gate("kv", (p) => [...store.keys()].filter((k) => k.startsWith(p)).sort()),
    },
    config: {
      get: gate("config", (k) => (k in settings ? JSON.stringify(settings[k]) : undefined)),
      all: gate("config", () => JSON.stringify(settings)),
    },
    secrets: { get: gate("secrets", (n) => secrets[n]) },
    progress: {
      report: gate("progress", (text, fraction) => void reports.push([text, fraction])),
      cancelled: gate("progress", () => false),
    },
    sessions: {
      current: gate("sessions", () => ({ id: "s1", title: "T", status: "active", createdAt: "2026-01-01T00:00:00Z", ownerId: "u1", messageCount: 7n, participants: ["u1"] })),
      listMine: gate("sessions", (limit) => [{ id: "s1", title: `limit ${limit}`, status: "active", lastActivityAt: "x", createdAt: "y" }]),
      endCurrent: gate("sessions", () => undefined),
      connection: gate("sessions", () => ({ id: "c1", connectedAt: "z" })),
    },
    stats: { get: gate("stats", () => ({ uptimeSecs: 60n, connections: 1n, usersOnline: 1n, sessionsActive: 1n, sessionsTotal: 2n, messagesTotal: 3n, messagesLast24h: 3n, plugins: [{ name: "p", calls: 2n ** 60n, failures: 0n }] })) },
    commands: { visible: gate("commands", () => [{ name: "hello", aliases: [], summary: "s", usage: "/hello", minRole: "viewer", plugin: "hello" }]) },
    jobs: {
      listMine: gate("jobs", () => []),
      cancel: gate("jobs", (id) => {
        throw new ComponentError(`no running command ${id}`);
      }),
    },
  };
  return { imports, logs, store, reports };
}

export const caller = { id: "u1", name: "ada", role: "analyst" };
export const session = { id: "s1", title: "Ops" };

/** A WIT invocation. */
export function invocation(command, values = [], extra = {}) {
  return { id: "m1", command, args: [], rawArgs: "", values, caller, session, connectionId: "c1", ...extra };
}
