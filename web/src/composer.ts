// What the composer offers while a command is typed. While the first word is typed, a popup
// above the message box lists the commands that fit; after it, the usage hint marks and
// describes the argument the caret is in, and the popup lists the server's answers to
// `complete` for it. Completion values and labels come from plugins: they become DOM only
// through `el()` (textContent), never as markup.

import type { CommandInfo, ServerFrame, Session } from "./api";
import { argContext, commandOf, cpPrefix, cpSuffix, describeArg, usageParts } from "./args";
import type { SendAwaitingAnswer } from "./pending";
import { el } from "./render";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** One entry of the popup: a command name, or a completion value. */
type PopupItem =
  | { kind: "command"; command: CommandInfo }
  | { kind: "value"; value: string; label: string };

/** A `completions` answer: the line it was for, where its values go, what they are. */
interface Completions { line: string; from: number; items: { value: string; label: string }[] }

export interface ComposerDeps {
  /** The session on screen, if any: nothing is offered without one, or for an ended one. */
  session: () => Session | null;
  /** The commands the user may run (`GET /api/commands`). */
  commands: () => CommandInfo[];
  send: SendAwaitingAnswer;
}

/** A value with spaces or quotes is quoted, as the server splits words shell-style. */
const quoteIfNeeded = (v: string) => (/[\s"'\\]/.test(v) ? `"${v.replace(/["\\]/g, "\\$&")}"` : v);

export class CommandComposer {
  private popup = { items: [] as PopupItem[], active: -1, dismissed: false };
  private completion = {
    /** The id of the latest `complete` sent: only its answer counts. */
    lastId: null as string | null,
    sentLine: null as string | null,
    sentAt: 0,
    timer: undefined as number | undefined,
    answer: null as Completions | null,
  };
  /** What the hint shows (command, argument, flag?): it is rebuilt only when that changes. */
  private hintKey = "";

  constructor(private deps: ComposerDeps) {}

  private get input() { return $<HTMLTextAreaElement>("input"); }
  private get box() { return $("suggestions"); }

  /**
   * The text (or the caret) changed: the popup offers command names while the first word is
   * typed, then the argument hint shows and completions are asked for (`complete`).
   */
  change() {
    const s = this.deps.session();
    const { before } = this.caretLine();
    if (!s || s.status === "ended" || !before.startsWith("/")) { this.close(); return; }
    const name = /^\/(\S*)$/.exec(before);
    if (name) {
      this.renderHint(null);
      this.completion.answer = null;
      this.showItems(this.matches(name[1]).map((command) => ({ kind: "command", command })));
      return;
    }
    const found = commandOf(before, this.deps.commands());
    if (!found) { this.close(); return; }
    this.renderHint(found);
    this.showItems(this.completionItems(before));
    this.requestCompletions();
  }

  /** Something was typed: nothing is picked until the arrows pick it (Tab completes the first, Enter sends). */
  typed() {
    this.popup.active = -1;
    this.popup.dismissed = false;
    this.change();
  }

  /** Hide the popup and the hint and forget the last answer (another session, logging out). */
  close() {
    this.renderHint(null);
    window.clearTimeout(this.completion.timer);
    this.completion.timer = undefined;
    this.completion.answer = null;
    this.completion.sentLine = null;
    this.completion.lastId = null;
    this.showItems([]);
  }

  /** The line was sent: start afresh (a popup dismissed with Escape may show again). */
  sent() {
    this.popup.dismissed = false;
    this.close();
  }

  /** The box lost focus: hide the popup (its entries stay, for when focus comes back). */
  blurred() {
    this.box.hidden = true;
  }

  focused() {
    if (this.popup.items.length && !this.popup.dismissed) this.box.hidden = false;
  }

  /**
   * A key in the box, while the popup is open: arrows move, Tab (or Enter on a picked entry)
   * accepts, Escape dismisses. True when the key was the popup's (the caller leaves it be).
   */
  onKey(ev: KeyboardEvent): boolean {
    const open = !this.box.hidden;
    const p = this.popup;
    const items = p.items.length;
    if (open && (ev.key === "ArrowDown" || ev.key === "ArrowUp")) {
      ev.preventDefault();
      const d = ev.key === "ArrowDown" ? 1 : -1;
      p.active = p.active < 0 ? (d > 0 ? 0 : items - 1) : (p.active + d + items) % items;
      this.highlight();
      return true;
    }
    if (open && (ev.key === "Tab" || (ev.key === "Enter" && !ev.shiftKey && p.active >= 0))) {
      ev.preventDefault();
      this.accept(Math.max(0, p.active));
      return true;
    }
    if (open && ev.key === "Escape") {
      ev.preventDefault();
      p.dismissed = true;
      this.showItems([]);
      return true;
    }
    return false;
  }

  /** The server's `completions` (its `id` already taken off the pending frames). */
  onCompletions(f: ServerFrame) {
    const c = this.completion;
    if (f.id !== c.lastId || c.sentLine === null) return; // an older question's answer
    const items = (Array.isArray(f.items) ? f.items : [])
      .filter((i: any) => typeof i?.value === "string" && i.value !== "")
      .slice(0, 100)
      .map((i: any) => ({ value: String(i.value), label: typeof i.label === "string" ? i.label : "" }));
    const from = Number.isInteger(f.from) && f.from >= 0 ? Number(f.from) : Array.from(c.sentLine).length;
    c.answer = { line: c.sentLine, from, items };
    const { before } = this.caretLine();
    if (commandOf(before, this.deps.commands())) this.showItems(this.completionItems(before));
  }

  /** The composer's text before and after the caret. */
  private caretLine() {
    const input = this.input;
    const at = input.selectionStart ?? input.value.length;
    return { before: input.value.slice(0, at), after: input.value.slice(at) };
  }

  private matches(prefix: string): CommandInfo[] {
    return this.deps.commands().filter((c) =>
      c.name.startsWith(prefix) || c.aliases.some((a) => a.startsWith(prefix)));
  }

  /**
   * Ask the server what could come next: at most one `complete` per 150 ms while typing (the
   * last line typed is sent when the time is up), none for a line already asked about.
   */
  private requestCompletions() {
    const c = this.completion;
    if (c.timer !== undefined) return;
    const wait = c.sentAt + 150 - Date.now();
    if (wait > 0) {
      c.timer = window.setTimeout(() => { c.timer = undefined; this.requestCompletions(); }, wait);
      return;
    }
    const s = this.deps.session();
    const { before } = this.caretLine();
    if (!s || s.status === "ended" || before === c.sentLine || !commandOf(before, this.deps.commands())) return;
    const id = this.deps.send({ type: "complete", session_id: s.id, line: before }, { kind: "complete" });
    if (id == null) return;
    c.lastId = id;
    c.sentLine = before;
    c.sentAt = Date.now();
  }

  /**
   * The last answer's items that still fit what is typed: all of them for the line they
   * answer; for a line typed since (in the same word), those that start with the word so far.
   */
  private completionItems(before: string): PopupItem[] {
    const a = this.completion.answer;
    if (!a) return [];
    const toItem = (i: { value: string; label: string }): PopupItem => ({ kind: "value", ...i });
    if (before === a.line) return a.items.map(toItem);
    if (cpPrefix(before, a.from) !== cpPrefix(a.line, a.from)) return [];
    const word = cpSuffix(before, a.from);
    if (/\s/.test(word)) return [];
    return a.items.filter((i) => i.value.toLowerCase().startsWith(word.toLowerCase())).map(toItem);
  }

  private showItems(items: PopupItem[]) {
    const input = this.input;
    const box = this.box;
    const p = this.popup;
    p.items = items;
    if (items.length === 0 || p.dismissed) {
      box.hidden = true;
      box.replaceChildren();
      p.active = -1;
      input.removeAttribute("aria-activedescendant");
      return;
    }
    if (p.active >= items.length) p.active = items.length - 1;
    box.replaceChildren(...items.map((it, i) => {
      const li = el("li", "suggestion");
      li.id = `suggestion-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      if (it.kind === "command") {
        const c = it.command;
        li.dataset.command = c.name;
        li.appendChild(el("span", "usage", c.usage || `/${c.name}`));
        li.appendChild(el("span", "summary", c.summary));
        if (c.min_role !== "viewer") li.appendChild(el("span", "badge", c.min_role));
      } else {
        li.classList.add("value");
        li.dataset.value = it.value;
        li.appendChild(el("span", "usage", it.value));
        li.appendChild(el("span", "summary", it.label));
      }
      // On mousedown, default prevented: the box keeps focus (a blur would hide the popup
      // before a click could land).
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); this.accept(i); });
      return li;
    }));
    box.hidden = false;
    this.highlight();
  }

  /** Mark the active entry (and scroll it into view) without rebuilding the list. */
  private highlight() {
    const input = this.input;
    const box = this.box;
    const active = this.popup.active;
    Array.from(box.children).forEach((li, i) => {
      li.classList.toggle("selected", i === active);
      li.setAttribute("aria-selected", String(i === active));
    });
    const li = active >= 0 ? box.children[active] as HTMLElement | undefined : undefined;
    if (li) {
      input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
      box.scrollTop = 0;
    }
  }

  /** Put the chosen entry into the composer: a command name, or a value at `from`. */
  private accept(i: number) {
    const it = this.popup.items[i];
    const input = this.input;
    if (!it) return;
    const { before, after } = this.caretLine();
    let head: string;
    if (it.kind === "command") head = `/${it.command.name}`;
    else {
      const a = this.completion.answer;
      const from = a ? a.from : Array.from(before).length;
      head = cpPrefix(before, from) + quoteIfNeeded(it.value);
    }
    const tail = /^\s/.test(after) ? after : ` ${after}`;
    input.value = head + tail;
    input.selectionStart = input.selectionEnd = head.length + 1;
    this.popup.active = -1;
    this.popup.dismissed = false;
    input.focus();
    this.change();
  }

  /** The usage line above the composer, with the argument being typed marked and described. */
  private renderHint(found: { command: CommandInfo; rest: string } | null) {
    const box = $("arg-hint");
    if (!found) {
      if (this.hintKey) { box.hidden = true; box.replaceChildren(); this.hintKey = ""; }
      return;
    }
    const { command, rest } = found;
    const args = command.args ?? [];
    const ctx = args.length > 0 ? argContext(args, rest) : { arg: null, flag: false };
    const key = `${command.name}\u0000${ctx.arg?.name ?? ""}\u0000${ctx.flag}`;
    if (key === this.hintKey) return;
    this.hintKey = key;
    box.dataset.command = command.name;
    const usage = el("code", "hint-usage");
    usageParts(command).forEach((part, i) => {
      if (i > 0) usage.append(" ");
      const span = el("span", "hint-part", part.text);
      if (part.arg) span.dataset.arg = part.arg.name;
      if (ctx.arg && part.arg === ctx.arg) { span.classList.add("active"); span.setAttribute("aria-current", "true"); }
      usage.appendChild(span);
    });
    const about = ctx.arg ? describeArg(ctx.arg)
      : ctx.flag ? `options: ${args.map((a) => `--${a.name}`).join(" ")}`
      : args.length > 0 ? "no more arguments" : command.summary;
    box.replaceChildren(usage, el("span", "hint-about", about));
    if (command.confirm) box.appendChild(el("span", "badge hint-confirm", "asks to confirm"));
    box.hidden = false;
  }
}
