// Progress lines of running commands (`command_progress`): one per invocation, under the
// invocation message when it is on screen (otherwise at the end of the list until it comes),
// with a Cancel (`cancel`) for its invoker and admins. An ended one (done, failed,
// cancelled) stays 5 s, then goes. The text comes from a plugin: it becomes DOM only through
// `el()` and textContent, never as markup.

import type { Role, ServerFrame } from "./api";
import type { SendAwaitingAnswer } from "./pending";
import { el } from "./render";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export interface ProgressDeps {
  send: SendAwaitingAnswer;
  notice: (text: string) => void;
  /** The user's role now: an admin may cancel anyone's command. */
  role: () => Role;
  /** The logged-in user's id: the author of an invocation may cancel it. */
  userId: () => string | undefined;
  /** Whether this user posted the message with this id (its `ack` said so). */
  posted: (messageId: string) => boolean;
  /** Whether the conversation is scrolled to the bottom (then it stays there). */
  isAtBottom: () => boolean;
  scrollDown: () => void;
}

interface Line { el: HTMLElement; ended: boolean; timer?: number }

/** Take a line off the screen, with the list item holding it while its message is away. */
function removeLineEl(box: HTMLElement) {
  const host = box.closest("li.progress-host");
  box.remove();
  host?.remove();
}

export class ProgressLines {
  /** By invocation id (the invocation message's id), with the timer that removes an ended one. */
  private lines = new Map<string, Line>();

  constructor(private deps: ProgressDeps) {}

  /** A `command_progress` for the session on screen. */
  update(f: ServerFrame) {
    const id = String(f.invocation_id);
    const command = String(f.command ?? "command");
    const st = ["running", "done", "failed", "cancelled"].includes(f.state) ? String(f.state) : "running";
    let p = this.lines.get(id);
    if (p?.ended) return;
    if (!p) {
      p = { el: this.create(id, command), ended: false };
      this.lines.set(id, p);
    }
    const box = p.el;
    box.dataset.state = st;
    box.querySelector(".progress-text")!.textContent = String(f.text ?? "");
    const bar = box.querySelector<HTMLProgressElement>(".progress-bar")!;
    const fraction = typeof f.fraction === "number" && Number.isFinite(f.fraction)
      ? Math.min(1, Math.max(0, f.fraction)) : null;
    if (fraction !== null) bar.value = fraction;
    if (st === "done" && bar.hasAttribute("value")) bar.value = 1;
    bar.hidden = !bar.hasAttribute("value");
    box.querySelector(".progress-state")!.textContent = st === "running"
      ? (fraction !== null ? `${Math.round(fraction * 100)}%` : "running…") : st;
    const atBottom = this.deps.isAtBottom();
    this.place(id);
    const cancel = box.querySelector<HTMLButtonElement>(".progress-cancel")!;
    cancel.hidden = st !== "running" || !this.mayCancel(id);
    if (st !== "running") {
      p.ended = true;
      cancel.remove();
      const entry = p;
      entry.timer = window.setTimeout(() => {
        if (this.lines.get(id) !== entry) return;
        this.lines.delete(id);
        removeLineEl(entry.el);
      }, 5000);
    }
    if (atBottom) this.deps.scrollDown();
  }

  /** A message was put on screen: if it is an invocation with progress, the line goes under it. */
  attach(messageId: string) {
    if (this.lines.has(messageId)) this.place(messageId);
  }

  /** The server refused a cancel (an error answered it): the button may be pressed again. */
  cancelRefused(button: HTMLButtonElement) {
    button.disabled = false;
    button.textContent = "Cancel";
  }

  /** Another session (or logging out): every line goes. */
  clear() {
    for (const p of this.lines.values()) { window.clearTimeout(p.timer); removeLineEl(p.el); }
    this.lines.clear();
  }

  private create(id: string, command: string): HTMLElement {
    const box = el("div", "progress");
    box.dataset.invocation = id;
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", `/${command} progress`);
    const bar = el("progress", "progress-bar");
    bar.max = 1;
    bar.setAttribute("aria-label", `/${command} progress`);
    const stateLabel = el("span", "progress-state");
    stateLabel.setAttribute("aria-live", "polite");
    const cancel = el("button", "progress-cancel", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", `Cancel /${command}`);
    cancel.addEventListener("click", () => {
      const sent = this.deps.send({ type: "cancel", invocation_id: id }, { kind: "cancel", button: cancel });
      if (sent == null) { this.deps.notice("Offline — the cancel was not sent."); return; }
      cancel.disabled = true;
      cancel.textContent = "Cancelling…";
    });
    box.append(el("span", "progress-command", `/${command}`), el("span", "progress-text"), bar, stateLabel, cancel);
    return box;
  }

  /** The invoker (the author of the invocation message) or an admin may cancel it. */
  private mayCancel(invocationId: string) {
    if (this.deps.role() === "admin" || this.deps.posted(invocationId)) return true;
    const li = $("message-list").querySelector<HTMLElement>(`li[data-id="${CSS.escape(invocationId)}"]`);
    return !!li && li.dataset.userId === this.deps.userId();
  }

  /** Under the invocation message when it is on screen; otherwise at the end of the list. */
  private place(id: string) {
    const p = this.lines.get(id);
    if (!p) return;
    const list = $("message-list");
    const li = list.querySelector<HTMLElement>(`li.message[data-id="${CSS.escape(id)}"]`);
    if (li) {
      if (p.el.parentElement !== li) {
        const host = p.el.closest("li.progress-host");
        li.appendChild(p.el);
        host?.remove();
      }
      return;
    }
    if (!p.el.isConnected) {
      const host = el("li", "progress-host");
      host.dataset.progressFor = id;
      host.appendChild(p.el);
      list.appendChild(host);
    }
  }
}
