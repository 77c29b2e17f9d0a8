// The slashd plugin SDK for JavaScript: everything but the `slashd:plugin/…` imports.
//
// `createSdk(imports)` binds the host calls and `definePlugin` to a set of imports (the
// real ones in `index.js`, fakes in the tests), so this module runs in plain Node. What
// crosses the WIT boundary here is the shape componentize-js 0.23.0 gives and expects:
// records as camelCase objects, enums as lowercase strings, variants as `{ tag, val }`,
// `option` as a value or `undefined`, `s64`/`u64` as BigInt, a `result` error thrown as
// `{ tag: "failed", val }` by an export and caught as a `ComponentError` (`.payload`) from
// an import.

/** The plugin API version this SDK builds against (`slashd:plugin@0.2.0`). */
export const API_VERSION = "0.2.0";

/** The WIT `capability` enum, in its order. `log` needs no grant and is not one. */
export const CAPABILITIES = Object.freeze([
  "commands",
  "stats",
  "sessions",
  "kv",
  "config",
  "http",
  "secrets",
  "progress",
  "jobs",
]);

/** The WIT `role` enum: viewer < analyst < admin. */
export const ROLES = Object.freeze(["viewer", "analyst", "admin"]);

/** The WIT `arg-kind` variant's cases. */
export const KINDS = Object.freeze([
  "text",
  "integer",
  "number",
  "boolean",
  "duration",
  "choice",
  "user",
  "session",
]);

export const FORMATS = Object.freeze(["plain", "markdown", "json"]);
export const STYLES = Object.freeze(["primary", "secondary", "danger"]);

const NAME = /^[a-z0-9_-]{1,32}$/;

function oneOf(what, value, allowed) {
  if (!allowed.includes(value)) {
    const list = allowed.map((a) => JSON.stringify(a)).join(", ");
    throw new TypeError(`unknown ${what} ${JSON.stringify(value)} (expected one of ${list})`);
  }
  return value;
}

// ---- errors ------------------------------------------------------------------------

/** Base of the errors whose message the user sees as it is. */
export class PluginError extends Error {
  constructor(message) {
    super(String(message));
  }
}

/** Bad arguments: the host answers `usage` with this text (`plugin-error.usage`). */
export class Usage extends PluginError {}

/**
 * The command could not do its job (`plugin-error.failed`). Any other value a handler
 * throws is reported the same way, as `"TypeError: message"` (or the thrown string).
 */
export class Failed extends PluginError {}

/**
 * A host call returned an error; `message` is the host's own text, e.g. "capability
 * `kv` is not granted to plugin hello". Uncaught, it is the failed reply, word for word.
 * `operation` names the call (`"kv.get"`).
 */
export class HostError extends Failed {
  constructor(operation, message) {
    super(message);
    this.operation = operation;
  }
}

// Names set by hand: a bundler may rename the classes.
for (const [cls, name] of [
  [PluginError, "PluginError"],
  [Usage, "Usage"],
  [Failed, "Failed"],
  [HostError, "HostError"],
]) {
  Object.defineProperty(cls.prototype, "name", { value: name, writable: true, configurable: true });
}

/** The text of a `failed` error for a value a handler threw. */
export function describe(error) {
  if (error instanceof PluginError) return error.message;
  if (typeof error === "string") return error;
  // A raw import's error (componentize-js `ComponentError`): the host's words.
  if (error instanceof Error && typeof error.payload === "string") return error.payload;
  if (error instanceof Error) {
    const name = error.name || error.constructor?.name || "Error";
    return error.message ? `${name}: ${error.message}` : name;
  }
  if (error && typeof error === "object" && typeof error.message === "string") {
    return error.message;
  }
  try {
    const text = JSON.stringify(error, jsonReplacer);
    if (text !== undefined) return `thrown: ${text}`;
  } catch {
    // fall through
  }
  return `thrown: ${String(error)}`;
}

/**
 * A thrown value as a WIT `plugin-error` (`{ tag: "usage" | "failed", val }`), and whether
 * it was expected (a `Usage`/`Failed`, or a raw `plugin-error` thrown by bindings code).
 */
export function toPluginError(error) {
  if (error instanceof Usage) return { error: { tag: "usage", val: error.message }, expected: true };
  if (error instanceof Failed) return { error: { tag: "failed", val: error.message }, expected: true };
  if (
    error &&
    typeof error === "object" &&
    (error.tag === "usage" || error.tag === "failed") &&
    typeof error.val === "string"
  ) {
    return { error: { tag: error.tag, val: error.val }, expected: true };
  }
  return { error: { tag: "failed", val: describe(error) }, expected: false };
}

// ---- values ------------------------------------------------------------------------

/** A BigInt as a Number when that is exact, else the BigInt. */
export function toNumber(value) {
  if (typeof value !== "bigint") return value;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
}

/** Every BigInt in a host record as a Number when exact (u64 counters and the like). */
export function plain(value) {
  if (typeof value === "bigint") return toNumber(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object" && !ArrayBuffer.isView(value)) {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function jsonReplacer(_key, value) {
  if (typeof value !== "bigint") return value;
  const n = toNumber(value);
  return typeof n === "bigint" ? n.toString() : n;
}

/** JSON text of a value; BigInts become numbers (or strings when too large). */
export function toJson(value) {
  const text = JSON.stringify(value, jsonReplacer);
  if (text === undefined) throw new TypeError(`cannot serialize ${typeof value} as JSON`);
  return text;
}

function user(u) {
  return { id: u.id, name: u.name, role: u.role };
}

function session(s) {
  return { id: s.id, title: s.title };
}

/**
 * A WIT `value` as plain JS: text/choice → string, integer → number (a BigInt beyond
 * 2^53), number → number, boolean → boolean, duration-ms → milliseconds (number),
 * user → `{ id, name, role }`, session → `{ id, title }`.
 */
export function fromWitValue(value) {
  switch (value.tag) {
    case "text":
    case "choice":
    case "number":
    case "boolean":
      return value.val;
    case "integer":
    case "duration-ms":
      return toNumber(typeof value.val === "number" ? BigInt(value.val) : value.val);
    case "user":
      return user(value.val);
    case "session":
      return session(value.val);
    default:
      throw new TypeError(`unknown value kind ${JSON.stringify(value.tag)}`);
  }
}

/** A WIT `list<named-value>` as an object by name. */
export function fromWitValues(values) {
  const out = {};
  for (const { name, value } of values ?? []) out[name] = fromWitValue(value);
  return out;
}

/** A WIT `invocation` as the `call` a command's `run` receives. */
export function toCall(invocation) {
  return {
    id: invocation.id,
    command: invocation.command,
    args: [...invocation.args],
    rawArgs: invocation.rawArgs,
    values: fromWitValues(invocation.values),
    caller: user(invocation.caller),
    session: session(invocation.session),
    connectionId: invocation.connectionId,
  };
}

/** A WIT `completion-request` as the `request` a completer receives. */
export function toCompletionRequest(request) {
  return {
    command: request.command,
    arg: request.arg,
    partial: request.partial,
    values: fromWitValues(request.values),
    caller: user(request.caller),
    session: session(request.session),
  };
}

/** A WIT `action-event` as the `event` an action receives; `data` is parsed JSON. */
export function toActionEvent(event) {
  let data;
  if (event.data !== undefined && event.data !== null) {
    try {
      data = JSON.parse(event.data);
    } catch {
      data = undefined;
    }
  }
  return {
    command: event.command,
    action: event.action,
    messageId: event.messageId,
    data,
    rawData: event.data ?? undefined,
    caller: user(event.caller),
    session: session(event.session),
  };
}

// ---- arguments ---------------------------------------------------------------------

/** A bound: a number, or for durations also a string such as "5m" (seconds otherwise). */
function bound(name, which, value, kind) {
  if (value === undefined || value === null) return undefined;
  if (kind === "duration" && typeof value === "string") {
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      throw new TypeError(`argument ${JSON.stringify(name)}: ${which} ${JSON.stringify(value)} is not a duration`);
    }
    return seconds;
  }
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    throw new TypeError(`argument ${JSON.stringify(name)}: ${which} must be a finite number, not ${String(value)}`);
  }
  return n;
}

const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** "1h30m" / "90s" / "250ms" → seconds, or undefined. */
export function parseDuration(text) {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNITS[m[2]];
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

/** A default as it would be typed. */
function typed(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "boolean") return value ? "true" : "false";
  return String(value);
}

/**
 * One declared argument. Build it with `arg.text(…)` and friends. `toWit()` is the
 * WIT `arg-spec`.
 */
export class Arg {
  constructor(kind, name, summary, options = {}, choices = undefined) {
    oneOf("argument kind", kind, KINDS);
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new TypeError(
        `invalid argument name ${JSON.stringify(name)} (1–32 lowercase letters, digits, - and _)`,
      );
    }
    if (options === null || typeof options !== "object") {
      throw new TypeError(`argument ${JSON.stringify(name)}: options must be an object`);
    }
    const known = ["required", "default", "rest", "completes", "min", "max"];
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) {
        throw new TypeError(
          `argument ${JSON.stringify(name)}: unknown option ${JSON.stringify(key)} (expected ${known.join(", ")})`,
        );
      }
    }
    this.kind = kind;
    this.name = name;
    this.summary = String(summary ?? "");
    this.required = Boolean(options.required);
    this.default = typed(options.default);
    this.rest = Boolean(options.rest);
    this.completes = Boolean(options.completes);
    this.min = bound(name, "min", options.min, kind);
    this.max = bound(name, "max", options.max, kind);
    this.choices = choices;
    if (this.rest && kind !== "text") {
      throw new TypeError(`argument ${JSON.stringify(name)}: only a text argument may take the rest of the line`);
    }
    if (this.required && this.default !== undefined) {
      throw new TypeError(`argument ${JSON.stringify(name)} is required and has a default`);
    }
    const bounded = kind === "integer" || kind === "number" || kind === "duration";
    if (!bounded && (this.min !== undefined || this.max !== undefined)) {
      throw new TypeError(`argument ${JSON.stringify(name)}: min and max apply to integers, numbers and durations`);
    }
    if (this.min !== undefined && this.max !== undefined && this.min > this.max) {
      throw new TypeError(`argument ${JSON.stringify(name)}: min ${this.min} is above max ${this.max}`);
    }
    if (kind === "choice") {
      if (!Array.isArray(choices) || choices.length === 0) {
        throw new TypeError(`argument ${JSON.stringify(name)}: choice needs a non-empty list of choices`);
      }
      this.choices = choices.map(String);
      for (const c of this.choices) {
        if (c === "" || /\s/.test(c)) {
          throw new TypeError(`argument ${JSON.stringify(name)}: a choice is one word, not ${JSON.stringify(c)}`);
        }
      }
    }
    Object.freeze(this);
  }

  /** The WIT `arg-kind`: `{ tag: "text" }`, `{ tag: "choice", val: [...] }`, … */
  witKind() {
    return this.kind === "choice" ? { tag: "choice", val: [...this.choices] } : { tag: this.kind };
  }

  /** The WIT `arg-spec`; `completes` is forced on when the plugin has a completer for it. */
  toWit(completes = false) {
    return {
      name: this.name,
      kind: this.witKind(),
      summary: this.summary,
      required: this.required,
      default: this.default,
      rest: this.rest,
      completes: this.completes || completes,
      min: this.min,
      max: this.max,
    };
  }
}

/**
 * Typed arguments: the host parses and checks them before the plugin runs, and writes
 * the usage line from them. Options: `{ required, default, rest, completes, min, max }`.
 */
export const arg = Object.freeze({
  /** Any text; the value is a string. */
  text: (name, summary, options) => new Arg("text", name, summary, options),
  /** A whole number; the value is a number (a BigInt beyond ±2^53). */
  integer: (name, summary, options) => new Arg("integer", name, summary, options),
  /** A number; the value is a number. */
  number: (name, summary, options) => new Arg("number", name, summary, options),
  /** true/false (yes/no, on/off); the value is a boolean. */
  boolean: (name, summary, options) => new Arg("boolean", name, summary, options),
  /** "90s", "1h30m"; the value is milliseconds (a number). min/max: seconds or "5m". */
  duration: (name, summary, options) => new Arg("duration", name, summary, options),
  /** One of `choices`; the value is the chosen string. */
  choice: (name, summary, choices, options) => new Arg("choice", name, summary, options, choices),
  /** A known user's name; the value is `{ id, name, role }`. */
  user: (name, summary, options) => new Arg("user", name, summary, options),
  /** A session id the caller can see; the value is `{ id, title }`. */
  session: (name, summary, options) => new Arg("session", name, summary, options),
});

// ---- replies -----------------------------------------------------------------------

/** A command's answer. Build it with `reply.plain/markdown/json` and chain. */
export class Reply {
  constructor(body, format = "plain") {
    this.body = String(body);
    this.format = oneOf("reply format", format, FORMATS);
    /** JSON text of the structured data, or undefined. */
    this.dataJson = undefined;
    this.isEphemeral = false;
    /** The buttons, as WIT `action` records. */
    this.buttons = [];
  }

  /** Attach structured data (JSON-serialized): clients may render it, and a button's
   * action receives it as `event.data`. `data(undefined)` removes it. */
  data(value) {
    this.dataJson = value === undefined ? undefined : toJson(value);
    return this;
  }

  /** Only the invoking connection sees it, and it is not stored (buttons are dropped). */
  ephemeral(on = true) {
    this.isEphemeral = Boolean(on);
    return this;
  }

  /**
   * Add a button. Pressing it calls the plugin's `actions[id]`. Options: `style`
   * ("primary" | "secondary" | "danger", default "secondary"), `minRole` (raised to the
   * command's own by the host), `confirm` (a prompt), `once` (pressed at most once).
   */
  button(id, label, options = {}) {
    if (typeof id !== "string" || id === "") throw new TypeError("a button needs an id");
    const { style = "secondary", minRole = "viewer", confirm = undefined, once = false, ...rest } = options;
    const extra = Object.keys(rest);
    if (extra.length) {
      throw new TypeError(`button ${JSON.stringify(id)}: unknown option ${JSON.stringify(extra[0])}`);
    }
    this.buttons.push({
      id,
      label: String(label ?? id),
      style: oneOf("button style", style, STYLES),
      minRole: oneOf("role", minRole, ROLES),
      confirm: confirm === undefined || confirm === null ? undefined : String(confirm),
      once: Boolean(once),
    });
    return this;
  }

  /** The WIT `reply` record. */
  toWit() {
    return {
      body: this.body,
      format: this.format,
      data: this.dataJson,
      ephemeral: this.isEphemeral,
      actions: this.buttons.map((b) => ({ ...b })),
    };
  }
}

export const reply = Object.freeze({
  /** Plain text. */
  plain: (body) => new Reply(body, "plain"),
  /** Markdown, rendered by the clients. */
  markdown: (body) => new Reply(body, "markdown"),
  /** A JSON document as the body. */
  json: (value) => new Reply(toJson(value), "json"),
});

/** What a handler returned, as a `Reply`: a string is a plain reply. */
export function toReply(result) {
  if (result instanceof Reply) return result;
  if (typeof result === "string") return new Reply(result, "plain");
  const what = result === null ? "null" : Array.isArray(result) ? "an array" : typeof result;
  throw new TypeError(`a handler must return a string or a reply, not ${what}`);
}

// ---- the host ----------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The message of an error a host import threw (componentize-js: `ComponentError`). */
function hostMessage(error) {
  if (error && typeof error === "object") {
    if (typeof error.payload === "string") return error.payload;
    if (typeof error.val === "string") return error.val;
    if (typeof error.message === "string") return error.message;
  }
  return String(error);
}

function missing(name) {
  return () => {
    throw new Error(`the host does not provide ${name}`);
  };
}

/**
 * The typed host calls over a set of raw imports, each a module namespace as
 * componentize-js gives it: `{ log: { log }, kv: { get, set, delete, listKeys }, config:
 * { get, all }, secrets: { get }, progress: { report, cancelled }, sessions: { current,
 * listMine, endCurrent, connection }, stats: { get }, commands: { visible }, jobs: {
 * listMine, cancel } }`. A refused call throws `HostError`.
 */
export function createHost(imports = {}, state = { live: true }) {
  const fn = (iface, name) => {
    const f = imports[iface]?.[name];
    return typeof f === "function" ? f : missing(`${iface}.${name}`);
  };
  const call = (operation, f, ...args) => {
    if (!state.live) {
      // At the top level, at build time, an import would trap the build with no word why.
      throw new Error(
        `${operation} called at the module's top level: the top level runs once, at build ` +
          `time, where there is no host; call it in a command, action or completer`,
      );
    }
    try {
      return f(...args);
    } catch (e) {
      throw new HostError(operation, hostMessage(e));
    }
  };
  const rawLog = fn("log", "log");
  const say = (level, parts) => {
    if (!state.live) return; // no host at build time
    const text = parts.map((p) => (typeof p === "string" ? p : describeForLog(p))).join(" ");
    try {
      rawLog(level, text);
    } catch {
      // Logging never fails a command.
    }
  };

  const log = Object.freeze({
    trace: (...parts) => say("trace", parts),
    debug: (...parts) => say("debug", parts),
    info: (...parts) => say("info", parts),
    warn: (...parts) => say("warn", parts),
    error: (...parts) => say("error", parts),
  });

  const bytes = (v) => (v === undefined || v === null ? undefined : v instanceof Uint8Array ? v : Uint8Array.from(v));

  const kv = Object.freeze({
    /** The bytes under `key`, or undefined. */
    get: (key) => bytes(call("kv.get", fn("kv", "get"), String(key))),
    /** The UTF-8 text under `key`, or undefined. */
    getText(key) {
      const b = kv.get(key);
      return b === undefined ? undefined : decoder.decode(b);
    },
    /** The JSON value under `key`, or undefined. */
    getJson(key) {
      const text = kv.getText(key);
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new Failed(`kv key ${JSON.stringify(String(key))} does not hold JSON: ${e.message}`);
      }
    },
    /** Store bytes, or a string as UTF-8. */
    set(key, value) {
      let b;
      if (typeof value === "string") b = encoder.encode(value);
      else if (value instanceof Uint8Array) b = value;
      else if (ArrayBuffer.isView(value)) b = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      else if (value instanceof ArrayBuffer) b = new Uint8Array(value);
      else throw new TypeError("kv.set stores a string or a Uint8Array (use kv.setJson for other values)");
      call("kv.set", fn("kv", "set"), String(key), b);
    },
    /** Store a value as JSON. */
    setJson: (key, value) => kv.set(key, toJson(value)),
    delete: (key) => void call("kv.delete", fn("kv", "delete"), String(key)),
    /** The keys that start with `prefix`. */
    keys: (prefix = "") => [...call("kv.keys", fn("kv", "listKeys"), String(prefix))],
  });

  const config = Object.freeze({
    /** One setting (parsed JSON), or undefined. */
    get(key) {
      const text = call("config.get", fn("config", "get"), String(key));
      if (text === undefined || text === null) return undefined;
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    },
    /** Every setting, as an object. */
    all() {
      const text = call("config.all", fn("config", "all"));
      try {
        return JSON.parse(text);
      } catch (e) {
        throw new HostError("config.all", `the settings are not JSON: ${e.message}`);
      }
    },
  });

  const secrets = Object.freeze({
    /** The secret named `name`, or undefined when the config names no such secret. */
    get(name) {
      const v = call("secrets.get", fn("secrets", "get"), String(name));
      return v === null ? undefined : v;
    },
  });

  const progress = Object.freeze({
    /** Tell the session how it is going; `fraction` is 0..1 (optional). */
    report(text, fraction = undefined) {
      const f = fraction === undefined || fraction === null ? undefined : Number(fraction);
      if (f !== undefined && !Number.isFinite(f)) throw new TypeError("progress fraction must be a number");
      call("progress.report", fn("progress", "report"), String(text), f);
    },
    /** True once the invoker (or an admin) cancelled this call: stop and return. */
    cancelled: () => Boolean(call("progress.cancelled", fn("progress", "cancelled"))),
  });

  const sessions = Object.freeze({
    /** The session the command runs in. */
    current: () => plain(call("sessions.current", fn("sessions", "current"))),
    /** The caller's sessions, newest activity first. */
    listMine: (limit = 20) => plain(call("sessions.listMine", fn("sessions", "listMine"), limit >>> 0)),
    /** End the current session; every participant is told. */
    endCurrent: () => void call("sessions.endCurrent", fn("sessions", "endCurrent")),
    /** The connection the command came from. */
    connection: () => plain(call("sessions.connection", fn("sessions", "connection"))),
  });

  const stats = Object.freeze({
    /** Server statistics (counters as numbers). */
    get: () => plain(call("stats.get", fn("stats", "get"))),
  });

  const commands = Object.freeze({
    /** The commands the caller's role may run. */
    visible: () => plain(call("commands.visible", fn("commands", "visible"))),
  });

  const jobs = Object.freeze({
    /** The caller's running commands (everyone's, for an admin). */
    listMine: () => plain(call("jobs.listMine", fn("jobs", "listMine"))),
    /** Cancel a running command by its invocation id. */
    cancel: (id) => void call("jobs.cancel", fn("jobs", "cancel"), String(id)),
  });

  return { log, kv, config, secrets, progress, sessions, stats, commands, jobs };
}

function describeForLog(value) {
  if (value instanceof Error) return value.stack ? `${describe(value)}\n${value.stack}` : describe(value);
  try {
    return toJson(value);
  } catch {
    return String(value);
  }
}

// ---- the plugin --------------------------------------------------------------------

function isThenable(v) {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof v.then === "function";
}

/** Run `f`, then `ok` on its result or `fail` on what it threw — synchronously when `f`
 * returns a plain value, as a Promise when it returns one (componentize-js drives the
 * event loop until an export's Promise settles). */
function settle(f, ok, fail) {
  let result;
  try {
    result = f();
  } catch (e) {
    return fail(e);
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then((value) => {
      try {
        return ok(value);
      } catch (e) {
        return fail(e);
      }
    }, fail);
  }
  try {
    return ok(result);
  } catch (e) {
    return fail(e);
  }
}

function checkCommand(c, i) {
  if (!c || typeof c !== "object") throw new TypeError(`commands[${i}] must be an object`);
  const known = ["name", "summary", "aliases", "usage", "minRole", "args", "confirm", "run"];
  for (const key of Object.keys(c)) {
    if (!known.includes(key)) {
      throw new TypeError(`command ${JSON.stringify(c.name)}: unknown key ${JSON.stringify(key)} (expected ${known.join(", ")})`);
    }
  }
  if (typeof c.name !== "string" || c.name.startsWith("/")) {
    throw new TypeError(`a command name is a string without "/", not ${JSON.stringify(c.name)}`);
  }
  if (!NAME.test(c.name)) {
    throw new TypeError(`invalid command name ${JSON.stringify(c.name)} (1–32 lowercase letters, digits, - and _)`);
  }
  if (typeof c.run !== "function") throw new TypeError(`/${c.name} needs a run(call) function`);
  const aliases = c.aliases ?? [];
  if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== "string" || !NAME.test(a))) {
    throw new TypeError(`/${c.name}: aliases is a list of command names`);
  }
  oneOf("role", c.minRole ?? "viewer", ROLES);
  if (c.args !== undefined) {
    if (!Array.isArray(c.args)) throw new TypeError(`/${c.name}: args is a list of arg.text(…) and friends`);
    c.args.forEach((a, j) => {
      if (!(a instanceof Arg)) {
        throw new TypeError(`/${c.name}: args[${j}] is not built with arg.text(…) and friends`);
      }
      if (c.args.findIndex((b) => b.name === a.name) !== j) {
        throw new TypeError(`/${c.name}: argument ${JSON.stringify(a.name)} is declared twice`);
      }
      if (a.rest && j !== c.args.length - 1) {
        throw new TypeError(`/${c.name}: only the last argument may take the rest of the line (${JSON.stringify(a.name)})`);
      }
    });
  }
  if (c.confirm !== undefined && (typeof c.confirm !== "string" || c.confirm.trim() === "")) {
    throw new TypeError(`/${c.name}: confirm is a non-empty prompt`);
  }
}

/**
 * Bind `definePlugin` to a host (from `createHost`). See `index.d.ts` for the spec.
 */
export function makeDefinePlugin(host, state = { live: true }) {
  return function definePlugin(spec) {
    if (!spec || typeof spec !== "object") throw new TypeError("definePlugin takes a plugin spec object");
    const known = ["name", "version", "capabilities", "commands", "actions", "completers", "onAction", "complete"];
    for (const key of Object.keys(spec)) {
      if (!known.includes(key)) {
        throw new TypeError(`definePlugin: unknown key ${JSON.stringify(key)} (expected ${known.join(", ")})`);
      }
    }
    const { name, version, capabilities = [], commands = [], actions = {}, completers = {} } = spec;
    if (typeof name !== "string" || name === "" || name.length > 64) {
      throw new TypeError("a plugin needs a name (1–64 characters)");
    }
    if (typeof version !== "string" || version === "" || version.length > 64) {
      throw new TypeError(`plugin ${name} needs a version string, e.g. "0.1.0"`);
    }
    if (!Array.isArray(capabilities)) throw new TypeError('capabilities is a list of names, e.g. ["kv"]');
    for (const c of capabilities) {
      if (c === "log") throw new TypeError('"log" is always available: it is not a capability to ask for');
      oneOf("capability", c, CAPABILITIES);
    }
    if (!Array.isArray(commands) || commands.length === 0) {
      throw new TypeError(`plugin ${name} declares no command`);
    }
    commands.forEach(checkCommand);
    const byName = new Map();
    for (const c of commands) {
      for (const n of [c.name, ...(c.aliases ?? [])]) {
        if (byName.has(n)) throw new TypeError(`/${n} is declared twice in plugin ${name}`);
        byName.set(n, c);
      }
    }
    if (!actions || typeof actions !== "object") throw new TypeError("actions is an object of handlers by id");
    for (const [id, f] of Object.entries(actions)) {
      if (typeof f !== "function") throw new TypeError(`action ${JSON.stringify(id)} is not a function`);
    }
    if (!completers || typeof completers !== "object") {
      throw new TypeError('completers is an object of functions by "command.arg"');
    }
    for (const [key, f] of Object.entries(completers)) {
      if (typeof f !== "function") throw new TypeError(`completer ${JSON.stringify(key)} is not a function`);
      const dot = key.indexOf(".");
      const command = byName.get(key.slice(0, dot));
      if (dot < 0 || !command || command.name !== key.slice(0, dot)) {
        throw new TypeError(`completer ${JSON.stringify(key)}: no command ${JSON.stringify(key.slice(0, dot))} ("command.arg")`);
      }
      if (!(command.args ?? []).some((a) => a.name === key.slice(dot + 1))) {
        throw new TypeError(`completer ${JSON.stringify(key)}: /${command.name} declares no argument ${JSON.stringify(key.slice(dot + 1))}`);
      }
    }
    for (const f of ["onAction", "complete"]) {
      if (spec[f] !== undefined && typeof spec[f] !== "function") throw new TypeError(`${f} must be a function`);
    }

    // Built once (at build time, when componentize-js runs the module).
    const witManifest = Object.freeze({
      name,
      version,
      commands: commands.map((c) => ({
        name: c.name,
        aliases: [...(c.aliases ?? [])],
        summary: String(c.summary ?? ""),
        // The host writes the usage line of a command with typed args.
        usage: c.usage ?? `/${c.name}`,
        minRole: c.minRole ?? "viewer",
        args: c.args === undefined ? undefined : c.args.map((a) => a.toWit(`${c.name}.${a.name}` in completers)),
        confirm: c.confirm,
      })),
      capabilities: [...capabilities],
    });

    const answer = (what) => ({
      ok: (result) => toReply(result).toWit(),
      fail: (error) => {
        const { error: pluginError, expected } = toPluginError(error);
        if (!expected) host.log.error(`${what} failed:`, error instanceof Error ? error : describe(error));
        throw pluginError;
      },
    });

    function manifest() {
      return witManifest;
    }

    function invoke(invocation) {
      state.live = true;
      const { ok, fail } = answer(`/${invocation.command}`);
      return settle(
        () => {
          const command = byName.get(invocation.command);
          if (!command) throw new Failed(`no such command /${invocation.command}`);
          return command.run(toCall(invocation));
        },
        ok,
        fail,
      );
    }

    function onAction(event) {
      state.live = true;
      const { ok, fail } = answer(`action ${event.action} of /${event.command}`);
      return settle(
        () => {
          const ev = toActionEvent(event);
          const handler = actions[`${ev.command}.${ev.action}`] ?? actions[ev.action] ?? spec.onAction;
          if (typeof handler !== "function") throw new Failed(`no such action ${ev.action}`);
          return handler(ev);
        },
        ok,
        fail,
      );
    }

    function complete(request) {
      state.live = true;
      const what = `completing /${request.command} ${request.arg}`;
      return settle(
        () => {
          const req = toCompletionRequest(request);
          const handler = completers[`${req.command}.${req.arg}`] ?? spec.complete;
          return handler ? handler(req) : [];
        },
        (items) => toCompletions(items),
        (error) => {
          host.log.error(`${what} failed:`, error instanceof Error ? error : describe(error));
          return [];
        },
      );
    }

    return { manifest, invoke, complete, onAction };
  };
}

/** What a completer returned as WIT `completion`s: strings or `{ value, label }`. */
export function toCompletions(items) {
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) throw new TypeError("a completer returns a list of strings or { value, label }");
  return items.map((item) => {
    if (typeof item === "string") return { value: item, label: undefined };
    if (item && typeof item === "object" && item.value !== undefined) {
      return { value: String(item.value), label: item.label === undefined || item.label === null ? undefined : String(item.label) };
    }
    throw new TypeError(`a completion is a string or { value, label }, not ${JSON.stringify(item)}`);
  });
}

/**
 * The whole SDK bound to a set of imports (see `createHost`).
 */
export function createSdk(imports = {}) {
  // Host calls work once an export runs; before, the module is being evaluated at build
  // time (componentize-js snapshots its top level), where the host is not there.
  const state = { live: false };
  const host = createHost(imports, state);
  return { ...host, definePlugin: makeDefinePlugin(host, state) };
}
