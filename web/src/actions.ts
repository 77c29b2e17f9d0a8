// Buttons under a command's reply (`metadata.actions`). A button is enabled only while the
// user may press it: a `once` button already used, a role below its `min_role` or an ended
// session disable it, and the reason is written under it (and linked with
// aria-describedby). Pressing sends `action`; the answer is the reply (broadcast like any
// command's), an error or a confirmation. Labels come from plugins: they become DOM only
// through `el()` (textContent), never as markup.

import { roleAtLeast, type Action, type Role, type Session } from "./api";
import type { SendAwaitingAnswer } from "./pending";
import { el } from "./render";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export interface ActionDeps {
  /** The user's role now (it can change with each `ready`). */
  role: () => Role;
  /** The session on screen: nothing can be pressed in an ended one. */
  session: () => Session | null;
  send: SendAwaitingAnswer;
  notice: (text: string) => void;
}

const isAction = (a: unknown): a is Action => {
  const x = a as Action;
  return typeof x === "object" && x !== null && typeof x.id === "string" && typeof x.label === "string";
};
/** An action as sent, with the defaults filled in (a plugin may leave fields out). */
const toAction = (a: Action): Action => ({
  ...a,
  min_role: typeof a.min_role === "string" ? a.min_role : "viewer",
  confirm: typeof a.confirm === "string" && a.confirm !== "" ? a.confirm : null,
  once: a.once === true,
  used: a.used === true,
});

const usedKey = (messageId: string, actionId: string) => `${messageId}\u0000${actionId}`;

export class ReplyActions {
  /** What each button on screen stands for. */
  private buttons = new WeakMap<HTMLButtonElement, { messageId: string; action: Action; reason: HTMLElement }>();
  private reasonIds = 0;
  /**
   * `message id \u0000 action id` of `once` buttons seen used live: a reply read again (REST
   * history, `joined.missed`) says `used` itself; one already on screen learns it here.
   */
  private used = new Set<string>();

  constructor(private deps: ActionDeps) {}

  /** The buttons for a reply's `metadata.actions` (those well-formed), or null when none. */
  render(messageId: string, raw: unknown): HTMLElement | null {
    const actions = Array.isArray(raw) ? raw.filter(isAction).map(toAction) : [];
    if (actions.length === 0) return null;
    const box = el("div", "actions");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Actions");
    for (const a of actions) {
      const style = ["primary", "secondary", "danger"].includes(a.style) ? a.style : "secondary";
      const wrap = el("span", "action");
      const b = el("button", `action-button style-${style}`, a.label);
      b.type = "button";
      b.dataset.actionId = a.id;
      if (a.confirm) b.setAttribute("aria-haspopup", "dialog");
      const reason = el("small", "action-reason");
      reason.id = `action-reason-${++this.reasonIds}`;
      b.setAttribute("aria-describedby", reason.id);
      this.buttons.set(b, { messageId, action: a, reason });
      b.addEventListener("click", () => this.press(b));
      wrap.append(b, reason);
      box.appendChild(wrap);
      this.apply(b);
    }
    return box;
  }

  /** The role or the session's state changed: re-decide every button on screen. */
  refresh() {
    for (const b of $("message-list").querySelectorAll<HTMLButtonElement>("button.action-button")) this.apply(b);
  }

  /** A press was answered (ack, error, confirmation): the button is no longer busy. */
  done(b: HTMLButtonElement) {
    if (b.getAttribute("aria-busy") !== "true") return;
    b.removeAttribute("aria-busy");
    this.apply(b);
  }

  /** A reply to a button arrived: a `once` button is used now, and a pressed one free again. */
  markUsed(messageId: string, actionId: string) {
    this.used.add(usedKey(messageId, actionId));
    const li = $("message-list").querySelector(`li[data-id="${CSS.escape(messageId)}"]`);
    const b = li?.querySelector<HTMLButtonElement>(`button.action-button[data-action-id="${CSS.escape(actionId)}"]`);
    if (b) { b.removeAttribute("aria-busy"); this.apply(b); }
  }

  /** Another session (or logging out): forget which buttons were seen used. */
  clear() {
    this.used.clear();
  }

  /** Why a button cannot be pressed now, or null. */
  private blocked(messageId: string, a: Action): string | null {
    if (a.once && (a.used || this.used.has(usedKey(messageId, a.id)))) return "already used";
    if (!roleAtLeast(this.deps.role(), a.min_role)) return `needs the ${a.min_role} role`;
    if (this.deps.session()?.status === "ended") return "the session has ended";
    return null;
  }

  private apply(b: HTMLButtonElement) {
    const info = this.buttons.get(b);
    if (!info) return;
    const why = this.blocked(info.messageId, info.action);
    b.disabled = why !== null || b.getAttribute("aria-busy") === "true";
    b.dataset.state = why === "already used" ? "used" : why ? "blocked" : "ready";
    b.title = why ? `Not available: ${why}` : info.action.confirm ? "Asks for confirmation first" : "";
    info.reason.textContent = why ?? "";
    info.reason.hidden = why === null;
  }

  private press(b: HTMLButtonElement) {
    const info = this.buttons.get(b);
    const s = this.deps.session();
    if (!info || !s || this.blocked(info.messageId, info.action)) return;
    const frame = { type: "action", session_id: s.id, message_id: info.messageId, action_id: info.action.id };
    const id = this.deps.send(frame, { kind: "action", button: b, label: info.action.label });
    if (id == null) { this.deps.notice("Offline — the button press was not sent."); return; }
    b.setAttribute("aria-busy", "true");
    this.apply(b);
    // The answer is a broadcast reply, an error or a confirmation; never wait forever.
    window.setTimeout(() => this.done(b), 15_000);
  }
}
