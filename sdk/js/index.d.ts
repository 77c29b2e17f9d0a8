// Types of the slashd plugin SDK for JavaScript (`slashd-plugin`, plugin API 0.2.0).

/** The plugin API version this SDK builds against (`slashd:plugin@0.2.0`). */
export const API_VERSION: "0.2.0";

/** viewer < analyst < admin. */
export type Role = "viewer" | "analyst" | "admin";
export const ROLES: readonly Role[];

/** What a manifest may ask the admin to grant (`log` needs no grant). */
export type Capability = "commands" | "stats" | "sessions" | "kv" | "config" | "http" | "secrets" | "progress" | "jobs";
export const CAPABILITIES: readonly Capability[];

export type ArgKind = "text" | "integer" | "number" | "boolean" | "duration" | "choice" | "user" | "session";
export type Format = "plain" | "markdown" | "json";
export type ButtonStyle = "primary" | "secondary" | "danger";

// ---- errors -------------------------------------------------------------------------

/** Base of the errors whose message the user sees as it is. */
export class PluginError extends Error {
  constructor(message: string);
}
/** Bad arguments: the host answers `usage` with this text. */
export class Usage extends PluginError {}
/** The command could not do its job. Any other thrown value is reported the same way, as
 * `"TypeError: message"` (or the thrown string). */
export class Failed extends PluginError {}
/** A host call returned an error; `message` is the host's text. */
export class HostError extends Failed {
  constructor(operation: string, message: string);
  /** The call, e.g. `"kv.get"`. */
  readonly operation: string;
}

// ---- what handlers receive ----------------------------------------------------------

export interface User {
  id: string;
  name: string;
  role: Role;
}
export type Caller = User;
export interface SessionRef {
  id: string;
  title: string;
}

/** A typed argument's value: text and choice → string; integer → number (a bigint beyond
 * ±2^53); number → number; boolean; duration → milliseconds; user; session. */
export type Value = string | number | bigint | boolean | User | SessionRef;

export interface Call {
  /** The invocation message's id (what `jobs.cancel` names). */
  id: string;
  /** The canonical command name (aliases resolved), without `/`. */
  command: string;
  /** Arguments split shell-style. */
  args: string[];
  /** Everything after the command name, as typed. */
  rawArgs: string;
  /** Typed values by argument name; an absent optional argument is `undefined`. */
  values: Record<string, Value | undefined>;
  caller: Caller;
  session: SessionRef;
  connectionId: string;
}

export interface CompletionRequest {
  command: string;
  arg: string;
  /** What the user has typed of the argument so far. */
  partial: string;
  values: Record<string, Value | undefined>;
  caller: Caller;
  session: SessionRef;
}

export interface ActionEvent {
  command: string;
  /** The button's id. */
  action: string;
  /** The message that carries the button. */
  messageId: string;
  /** That reply's `data`, parsed (undefined when it had none). */
  data: any;
  /** The same, as JSON text. */
  rawData: string | undefined;
  caller: Caller;
  session: SessionRef;
}

// ---- arguments ----------------------------------------------------------------------

export interface ArgOptions {
  required?: boolean;
  /** The value when absent, as typed (a number or boolean is written out). */
  default?: string | number | boolean;
  /** The last (text) argument takes the rest of the line. */
  rest?: boolean;
  /** The plugin suggests values (implied by a completer for this argument). */
  completes?: boolean;
  /** Bounds of integers, numbers and durations (durations: seconds, or "5m"). */
  min?: number | string;
  max?: number | string;
}

export class Arg {
  readonly kind: ArgKind;
  readonly name: string;
  readonly summary: string;
  readonly required: boolean;
  readonly default: string | undefined;
  readonly rest: boolean;
  readonly completes: boolean;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly choices: string[] | undefined;
  /** The WIT `arg-spec`. */
  toWit(completes?: boolean): object;
}

export const arg: {
  text(name: string, summary: string, options?: ArgOptions): Arg;
  integer(name: string, summary: string, options?: ArgOptions): Arg;
  number(name: string, summary: string, options?: ArgOptions): Arg;
  boolean(name: string, summary: string, options?: ArgOptions): Arg;
  duration(name: string, summary: string, options?: ArgOptions): Arg;
  choice(name: string, summary: string, choices: string[], options?: ArgOptions): Arg;
  user(name: string, summary: string, options?: ArgOptions): Arg;
  session(name: string, summary: string, options?: ArgOptions): Arg;
};

// ---- replies ------------------------------------------------------------------------

export interface ButtonOptions {
  /** Default "secondary". */
  style?: ButtonStyle;
  /** Who may press it; never below the command's own role. Default "viewer". */
  minRole?: Role;
  /** Ask the presser to confirm this prompt first. */
  confirm?: string;
  /** Pressed at most once, by anyone. */
  once?: boolean;
}

export class Reply {
  constructor(body: string, format?: Format);
  readonly body: string;
  readonly format: Format;
  readonly dataJson: string | undefined;
  readonly isEphemeral: boolean;
  /** Structured data (JSON-serialized), for clients and for the buttons' actions. */
  data(value: unknown): this;
  /** Only the invoking connection sees it, and it is not stored (buttons are dropped). */
  ephemeral(on?: boolean): this;
  /** A button; pressing it calls `actions[id]`. */
  button(id: string, label: string, options?: ButtonOptions): this;
  /** The WIT `reply` record. */
  toWit(): object;
}

export const reply: {
  plain(body: string): Reply;
  markdown(body: string): Reply;
  /** A JSON document as the body. */
  json(value: unknown): Reply;
};

// ---- the plugin ---------------------------------------------------------------------

type Awaitable<T> = T | Promise<T>;
/** What a command or an action returns: a string is a plain reply. */
export type Answer = Awaitable<string | Reply>;
export type Completion = string | { value: string; label?: string };

export interface CommandSpec {
  /** Without the leading `/`: lowercase letters, digits, `-` and `_`. */
  name: string;
  summary?: string;
  aliases?: string[];
  /** For untyped commands; the host writes the usage line of commands with `args`. */
  usage?: string;
  /** Default "viewer". */
  minRole?: Role;
  /** Typed arguments; leave out for an untyped command (read `call.args`). */
  args?: Arg[];
  /** Ask the invoker to confirm this prompt before anything runs. */
  confirm?: string;
  run(call: Call): Answer;
}

export interface PluginSpec {
  name: string;
  version: string;
  /** What the admin must grant; validated against the WIT enum. */
  capabilities?: Capability[];
  commands: CommandSpec[];
  /** Button handlers by id (or "command.id"). */
  actions?: Record<string, (event: ActionEvent) => Answer>;
  /** Completers by "command.arg"; a completer that throws yields no suggestions (logged). */
  completers?: Record<string, (request: CompletionRequest) => Awaitable<Completion[] | undefined>>;
  /** Fallback for actions without a handler of their own. */
  onAction?: (event: ActionEvent) => Answer;
  /** Fallback for arguments without a completer of their own. */
  complete?: (request: CompletionRequest) => Awaitable<Completion[] | undefined>;
}

/** The world's exports, for `export const { manifest, invoke, complete, onAction } = …`. */
export interface PluginExports {
  manifest(): object;
  invoke(invocation: object): object | Promise<object>;
  complete(request: object): object[] | Promise<object[]>;
  onAction(event: object): object | Promise<object>;
}

export function definePlugin(spec: PluginSpec): PluginExports;

// ---- host calls ---------------------------------------------------------------------
// Each but `log` needs its capability in the manifest and the admin's grant; a refused
// call throws HostError with the host's text.

export const log: {
  trace(...parts: unknown[]): void;
  debug(...parts: unknown[]): void;
  info(...parts: unknown[]): void;
  warn(...parts: unknown[]): void;
  error(...parts: unknown[]): void;
};

/** Capability `kv`: a key-value store private to the plugin. */
export const kv: {
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJson(key: string): any;
  set(key: string, value: Uint8Array | ArrayBuffer | ArrayBufferView | string): void;
  setJson(key: string, value: unknown): void;
  delete(key: string): void;
  keys(prefix?: string): string[];
};

/** Capability `config`: the plugin's `settings` table. */
export const config: {
  /** One setting, parsed JSON; undefined when unset. */
  get(key: string): any;
  /** Every setting. */
  all(): Record<string, any>;
};

/** Capability `secrets`. */
export const secrets: {
  get(name: string): string | undefined;
};

/** Capability `progress`. */
export const progress: {
  /** `fraction` is 0..1. */
  report(text: string, fraction?: number): void;
  /** True once the invoker (or an admin) cancelled this call: stop and return. */
  cancelled(): boolean;
};

export interface SessionSummary {
  id: string;
  title: string;
  status: string;
  lastActivityAt: string;
  createdAt: string;
}
export interface SessionDetail {
  id: string;
  title: string;
  status: string;
  createdAt: string;
  ownerId: string;
  messageCount: number;
  participants: string[];
}

/** Capability `sessions`. */
export const sessions: {
  current(): SessionDetail;
  listMine(limit?: number): SessionSummary[];
  endCurrent(): void;
  connection(): { id: string; connectedAt: string };
};

/** Capability `stats` (counters as numbers). */
export const stats: {
  get(): {
    uptimeSecs: number;
    connections: number;
    usersOnline: number;
    sessionsActive: number;
    sessionsTotal: number;
    messagesTotal: number;
    messagesLast24h: number;
    plugins: { name: string; calls: number; failures: number }[];
  };
};

/** Capability `commands`. */
export const commands: {
  visible(): { name: string; aliases: string[]; summary: string; usage: string; minRole: Role; plugin: string }[];
};

/** Capability `jobs`. */
export const jobs: {
  listMine(): {
    id: string;
    command: string;
    userId: string;
    userName: string;
    sessionId: string;
    startedAt: string;
    text: string;
    fraction: number | undefined;
  }[];
  cancel(id: string): void;
};

// ---- slashd-plugin/core only ----------------------------------------------------------

/** The SDK bound to a set of raw imports (fakes, in tests). `slashd-plugin/core` only. */
export function createSdk(imports: Record<string, Record<string, Function>>): {
  definePlugin: typeof definePlugin;
  log: typeof log;
  kv: typeof kv;
  config: typeof config;
  secrets: typeof secrets;
  progress: typeof progress;
  sessions: typeof sessions;
  stats: typeof stats;
  commands: typeof commands;
  jobs: typeof jobs;
};
