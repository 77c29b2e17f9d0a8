// Reading a command line as it is typed: which command, which of its typed arguments the
// caret is in (for the hint above the composer), and Unicode code point offsets (the
// server's `completions.from` counts code points, JavaScript strings count UTF-16 units).
// Pure functions: no DOM here.

import type { ArgSpec, CommandInfo } from "./api";

/** `s` cut after `n` code points. */
export const cpPrefix = (s: string, n: number) => Array.from(s).slice(0, Math.max(0, n)).join("");
/** `s` from code point `n` on. */
export const cpSuffix = (s: string, n: number) => Array.from(s).slice(Math.max(0, n)).join("");

interface Token { text: string; start: number; end: number }

/** Shell-style words (quotes and backslashes), with where each starts and ends in `s`. */
function words(s: string): { tokens: Token[]; openAtEnd: boolean } {
  const tokens: Token[] = [];
  let cur: Token | null = null;
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < s.length) cur!.text += s[++i];
      else cur!.text += c;
      cur!.end = i + 1;
      continue;
    }
    if (/\s/.test(c)) {
      if (cur) { tokens.push(cur); cur = null; }
      continue;
    }
    if (!cur) cur = { text: "", start: i, end: i };
    if (c === "'" || c === '"') quote = c;
    else if (c === "\\" && i + 1 < s.length) cur.text += s[++i];
    else cur.text += c;
    cur.end = i + 1;
  }
  const openAtEnd = cur !== null;
  if (cur) tokens.push(cur);
  return { tokens, openAtEnd };
}

/** The command a line starts with, once its name is followed by whitespace. */
export function commandOf(line: string, commands: CommandInfo[]): { command: CommandInfo; rest: string } | null {
  const m = /^\/(\S+)\s([\s\S]*)$/.exec(line);
  if (!m) return null;
  const command = commands.find((c) => c.name === m[1] || c.aliases.includes(m[1]));
  return command ? { command, rest: m[2] } : null;
}

export interface ArgContext {
  /** The argument being typed (its value, or its `--name`), if it can be told. */
  arg: ArgSpec | null;
  /** The caret is in a `--flag` name, not a value. */
  flag: boolean;
}

/**
 * Which argument `rest` (what follows the command name, up to the caret) is typing: a
 * pending `--name` takes the next word; otherwise words fill the arguments not named by a
 * flag, in declared order; a `rest` argument takes everything after it.
 */
export function argContext(args: ArgSpec[], rest: string): ArgContext {
  const { tokens, openAtEnd } = words(rest);
  const done = openAtEnd ? tokens.slice(0, -1) : tokens;
  const typing = openAtEnd ? tokens[tokens.length - 1].text : "";
  const given = new Set<ArgSpec>();
  const byName = (n: string) => args.find((a) => a.name === n) ?? null;
  const nextPositional = () => args.find((a) => !given.has(a)) ?? null;
  let pending: ArgSpec | null = null;
  for (const t of done) {
    if (pending) { given.add(pending); pending = null; continue; }
    if (t.text.startsWith("--") && t.text.length > 2) {
      const [name, ...value] = t.text.slice(2).split("=");
      const a = byName(name);
      if (a) {
        if (value.length > 0 || a.kind === "boolean") given.add(a);
        else pending = a;
      }
      continue;
    }
    const a = nextPositional();
    if (!a) continue;
    if (a.rest) return { arg: a, flag: false };
    given.add(a);
  }
  if (pending) return { arg: pending, flag: false };
  if (typing.startsWith("-") && !typing.startsWith("--") && typing.length === 1) {
    return { arg: null, flag: true };
  }
  if (typing.startsWith("--")) {
    const body = typing.slice(2);
    const eq = body.indexOf("=");
    if (eq >= 0) return { arg: byName(body.slice(0, eq)), flag: false };
    const exact = byName(body);
    const starts = args.filter((a) => a.name.startsWith(body));
    return { arg: exact ?? (starts.length === 1 ? starts[0] : null), flag: true };
  }
  return { arg: nextPositional(), flag: false };
}

/**
 * The usage line split into its words (`/deploy`, `<service>`, `[--env staging|prod]`),
 * each with the argument it stands for, if one can be recognised in it.
 */
export function usageParts(command: CommandInfo): { text: string; arg: ArgSpec | null }[] {
  const args = command.args ?? [];
  const usage = command.usage || `/${command.name}`;
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const c of usage) {
    if (c === "<" || c === "[" || c === "(" || c === "{") depth++;
    if (c === ">" || c === "]" || c === ")" || c === "}") depth = Math.max(0, depth - 1);
    if (/\s/.test(c) && depth === 0) { if (cur) parts.push(cur); cur = ""; continue; }
    cur += c;
  }
  if (cur) parts.push(cur);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const out = parts.map((text) => ({ text, arg: null as ArgSpec | null }));
  for (const a of args) {
    const re = new RegExp(`(^|[<\\[({\\s])(--)?${esc(a.name)}($|[\\]>)}\\s.=|:…])`, "i");
    const hit = out.find((p) => p.arg === null && !p.text.startsWith("/") && re.test(p.text));
    if (hit) hit.arg = a;
  }
  // Unrecognised arguments are added as the generator would write them.
  for (const a of args) {
    if (out.some((p) => p.arg === a)) continue;
    out.push({ text: argUsage(a), arg: a });
  }
  return out;
}

function argUsage(a: ArgSpec): string {
  const value = a.kind === "choice" && a.choices?.length ? a.choices.join("|") : a.name;
  if (a.kind === "boolean") return `[--${a.name}]`;
  if (a.required) return `<${value}${a.rest ? "…" : ""}>`;
  return `[--${a.name} ${value}]`;
}

/** What the hint says about one argument: "count — how many (integer 1–10, default 1)". */
export function describeArg(a: ArgSpec): string {
  const bits: string[] = [];
  const kind = a.kind === "choice" && a.choices?.length ? `one of ${a.choices.join(", ")}` : a.kind;
  const range = a.min != null && a.max != null ? ` ${a.min}–${a.max}`
    : a.min != null ? ` ≥ ${a.min}` : a.max != null ? ` ≤ ${a.max}` : "";
  bits.push(kind + range);
  if (a.required) bits.push("required");
  if (a.default != null && a.default !== "") bits.push(`default ${a.default}`);
  if (a.rest) bits.push("the rest of the line");
  const summary = a.summary ? ` — ${a.summary}` : "";
  return `${a.name}${summary} (${bits.join(", ")})`;
}
