// The session list in the sidebar: each session's title, when it was last active, the start
// of its newest message and how many messages this browser has not shown yet.
//
// Unread counts are kept per browser (`localStorage`, per user): the highest seq shown of each
// session, against the session's `last_seq` from the server.

import type { Message, Session, User } from "./api";
import { el } from "./render";
import { brief } from "./when";

/** Sessions whose read mark is kept; older marks go first. */
const MAX_MARKS = 500;

/** A preview as one line of plain text: markdown's emphasis, code marks, headings and
 * table rules dropped, whitespace folded. (Shown with `textContent`: nothing is parsed.) */
export function plain(text: string): string {
  return text
    .replace(/\*\*|__|`/g, "")
    .replace(/^#+\s*/gm, "")
    .replace(/\|?\s*:?-{3,}:?\s*/g, " ")
    .replace(/\|/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

export interface SessionListHost {
  list: HTMLElement;
  me: () => User | undefined;
  current: () => Session | null;
  open: (s: Session) => void;
}

export class SessionList {
  private sessions: Session[] = [];
  private seenSeq = new Map<string, number>();
  private markFor = "";
  /** A save of the marks is due (at most one a second: `seen` runs for every message). */
  private saveTimer: number | undefined;

  constructor(private host: SessionListHost) {}

  get all(): Session[] { return this.sessions; }

  set(sessions: Session[]) { this.sessions = sessions; this.render(); }

  add(s: Session) { this.sessions.unshift(s); this.render(); }

  find(id: string) { return this.sessions.find((s) => s.id === id); }

  /** A new message arrived in `id` (the open session): it moves to the top, with its preview. */
  posted(id: string, m: Message, authorName: string | null) {
    const s = this.find(id);
    if (!s || m.seq === null) return;
    s.last_seq = Math.max(s.last_seq ?? 0, m.seq);
    s.last_activity_at = m.created_at;
    const chars = [...m.content];
    s.last_message = {
      seq: m.seq, role: m.role, user_id: m.user_id, user_name: authorName,
      preview: chars.slice(0, 160).join(""), truncated: chars.length > 160, created_at: m.created_at,
    };
    this.sessions = [s, ...this.sessions.filter((x) => x !== s)];
    this.render();
  }

  /** Messages up to `seq` of `id` are on screen. */
  seen(id: string, seq: number) {
    this.loadMarks();
    if ((this.seenSeq.get(id) ?? 0) >= seq) return;
    this.seenSeq.delete(id);
    this.seenSeq.set(id, seq);
    while (this.seenSeq.size > MAX_MARKS) this.seenSeq.delete(this.seenSeq.keys().next().value as string);
    // (No render: what is being read is the open session, which shows no count.)
    if (this.saveTimer !== undefined) return;
    const key = this.markKey();
    this.saveTimer = window.setTimeout(() => {
      this.saveTimer = undefined;
      if (key !== this.markKey()) return; // someone else logged in meanwhile
      try { localStorage.setItem(key, JSON.stringify(Object.fromEntries(this.seenSeq))); } catch { /* full or off */ }
    }, 1000);
  }

  /** Messages after the highest seq shown here; none when the user wrote the last one
   * (they were there, on some device). */
  unread(s: Session): number {
    this.loadMarks();
    const me = this.host.me()?.id;
    if (me && s.last_message?.user_id === me) return 0;
    return Math.max(0, (s.last_seq ?? 0) - (this.seenSeq.get(s.id) ?? 0));
  }

  private markKey() { return `slashd.seen.${this.host.me()?.id ?? ""}`; }

  /** The marks of whoever is signed in (read again when that changes). */
  private loadMarks() {
    const key = this.markKey();
    if (key === this.markFor) return;
    this.markFor = key;
    this.seenSeq.clear();
    try {
      const kept = JSON.parse(localStorage.getItem(key) ?? "{}") as Record<string, unknown>;
      for (const [id, seq] of Object.entries(kept)) if (typeof seq === "number") this.seenSeq.set(id, seq);
    } catch { /* a damaged mark is no mark */ }
  }

  render() {
    const ul = this.host.list;
    const current = this.host.current();
    const me = this.host.me();
    ul.replaceChildren(...this.sessions.map((s) => {
      const li = el("li", "session");
      li.dataset.id = s.id;
      li.dataset.status = s.status;
      const isCurrent = current?.id === s.id;
      if (isCurrent) li.classList.add("current");
      const b = el("button", "session-link");
      b.type = "button";
      if (isCurrent) b.setAttribute("aria-current", "true");
      const top = el("span", "session-top");
      top.appendChild(el("span", "title", s.title));
      if (s.status === "ended") top.appendChild(el("span", "badge", "ended"));
      const at = new Date(s.last_activity_at);
      if (!Number.isNaN(at.getTime())) {
        const time = el("time", "session-time", brief(at));
        time.dateTime = s.last_activity_at;
        top.appendChild(time);
      }
      b.appendChild(top);
      const last = s.last_message;
      const bottom = el("span", "session-bottom");
      if (last) {
        const who = last.user_id && last.user_id === me?.id ? "You"
          : last.role === "user" ? (last.user_name ?? "someone")
          : last.role === "command" ? "command" : last.role;
        const preview = el("span", "preview");
        preview.appendChild(el("span", "preview-who", `${who}: `));
        preview.appendChild(document.createTextNode(plain(last.preview) + (last.truncated ? "…" : "")));
        bottom.appendChild(preview);
      } else {
        bottom.appendChild(el("span", "preview", "No messages yet"));
      }
      const unread = isCurrent ? 0 : this.unread(s);
      if (unread > 0) {
        const badge = el("span", "unread", unread > 99 ? "99+" : String(unread));
        badge.appendChild(el("span", "sr-only", " unread"));
        bottom.appendChild(badge);
      }
      b.appendChild(bottom);
      b.addEventListener("click", () => this.host.open(s));
      li.appendChild(b);
      return li;
    }));
    if (this.sessions.length === 0) ul.appendChild(el("li", "empty", "No sessions yet — create one above."));
  }
}
