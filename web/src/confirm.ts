// The confirmation dialog: a command (or a button) that asks first gets `confirm_required`;
// the page shows its prompt in a modal <dialog> and answers with `confirm`. One at a time
// (more wait in a queue); each closes by itself at its `expires_at`. The prompt comes from a
// plugin: it is set with textContent only.

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

export interface Confirmation {
  id: string;
  prompt: string;
  expiresAt: number;
  /** What is being confirmed, as the page knows it ("/clear", "the button “Rollback”"). */
  what: string;
}

export class ConfirmDialog {
  private queue: Confirmation[] = [];
  private current: Confirmation | null = null;
  private answered = false;
  private expiry: number | undefined;
  private ticker: number | undefined;
  private returnFocus: HTMLElement | null = null;

  constructor(
    /** Send the answer; false when it could not be sent. */
    private answer: (c: Confirmation, accept: boolean) => boolean,
    private notice: (text: string) => void,
  ) {
    const dialog = this.dialog;
    $("confirm-ok").addEventListener("click", () => this.resolve(true));
    $("confirm-cancel").addEventListener("click", () => this.resolve(false));
    dialog.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.isComposing && ev.target !== $("confirm-cancel")) {
        ev.preventDefault();
        // A held Enter (the one that sent the command) does not confirm by repeating.
        if (!ev.repeat) this.resolve(true);
      }
    });
    // Escape (the dialog's `cancel`) closes it; however it closed, an open question is declined.
    dialog.addEventListener("close", () => {
      if (this.current && !this.answered) this.resolve(false);
    });
  }

  private get dialog() { return $<HTMLDialogElement>("confirm-dialog"); }

  ask(c: Confirmation) {
    if (this.current?.id === c.id || this.queue.some((q) => q.id === c.id)) return;
    this.queue.push(c);
    if (!this.current) this.next();
  }

  /** The server's `cancelled`: declined (by us) or expired. */
  cancelled(id: string) {
    const queued = this.queue.findIndex((q) => q.id === id);
    if (queued >= 0) { this.queue.splice(queued, 1); this.notice("A confirmation expired; nothing was done."); return; }
    if (this.current?.id === id) {
      this.finish();
      this.notice("The confirmation expired; nothing was done.");
    }
  }

  /** Forget everything (logging out). */
  clear() {
    this.queue = [];
    if (this.current) { this.answered = true; this.finish(); }
  }

  private next() {
    const c = this.queue.shift();
    if (!c) return;
    this.current = c;
    this.answered = false;
    $("confirm-what").textContent = c.what;
    $("confirm-prompt").textContent = c.prompt;
    const dialog = this.dialog;
    if (!dialog.open) {
      const active = document.activeElement;
      this.returnFocus = active instanceof HTMLElement && active !== document.body ? active : null;
      dialog.showModal();
    }
    $("confirm-ok").focus();
    const left = Math.max(1000, c.expiresAt - Date.now());
    this.expiry = window.setTimeout(() => {
      if (this.current !== c) return;
      this.answered = true;
      this.finish();
      this.notice("The confirmation expired; nothing was done.");
    }, left);
    this.tick();
    this.ticker = window.setInterval(() => this.tick(), 1000);
  }

  private tick() {
    const c = this.current;
    if (!c) return;
    const s = Math.max(0, Math.round((c.expiresAt - Date.now()) / 1000));
    $("confirm-expiry").textContent = `Expires in ${s} s.`;
  }

  private resolve(accept: boolean) {
    const c = this.current;
    if (!c || this.answered) return;
    this.answered = true;
    const sent = this.answer(c, accept);
    if (!sent) this.notice("Offline — the answer was not sent; nothing was done.");
    else if (!accept) this.notice(`Cancelled${c.what ? `: ${c.what}` : ""}.`);
    this.finish();
  }

  /** Close the current one and show the next, if any. */
  private finish() {
    window.clearTimeout(this.expiry);
    window.clearInterval(this.ticker);
    this.current = null;
    if (this.queue.length > 0) { this.next(); return; }
    const dialog = this.dialog;
    if (dialog.open) dialog.close();
    const back = this.returnFocus;
    this.returnFocus = null;
    if (back?.isConnected && !(back as HTMLInputElement).disabled) back.focus();
  }
}
