// Who is who: user names for ids (presence, typing and messages carry ids), the open
// session's member list with roles, and who of them is here now.

import type { Member, Role, User } from "./api";
import { el } from "./render";

const NAMES_KEY = "slashd.names";
/** Names kept across visits, so history shows names before the member list arrives. */
const MAX_KEPT_NAMES = 1000;

export interface PeopleHost {
  /** The signed-in user. */
  me: () => User | undefined;
  participantsList: HTMLElement;
  memberList: HTMLElement;
  memberSummary: HTMLElement;
}

export class People {
  private names = new Map<string, string>();
  private members: Member[] = [];
  private here = new Set<string>();

  constructor(private host: PeopleHost) {
    try {
      const kept = JSON.parse(localStorage.getItem(NAMES_KEY) ?? "{}") as Record<string, unknown>;
      for (const [id, name] of Object.entries(kept)) if (typeof name === "string") this.names.set(id, name);
    } catch { /* a damaged cache is no cache */ }
  }

  /** A user's name; "(you)" for the signed-in user; a short id when no name is known. */
  nameOf(userId: string | null): string {
    if (!userId) return "";
    const me = this.host.me();
    if (userId === me?.id) return `${me.name} (you)`;
    return this.names.get(userId) ?? `user …${userId.slice(-6)}`;
  }

  knows(userId: string) { return this.names.has(userId); }

  remember(id: string, name: string) {
    if (!this.learn(id, name)) return;
    this.keep();
    this.render();
  }

  /** The open session's members (owner first), from `GET …/members`. */
  setMembers(members: Member[]) {
    this.members = members;
    let learned = false;
    for (const m of members) learned = this.learn(m.id, m.name) || learned;
    if (learned) this.keep();
    this.render();
  }

  /** Note a name; whether it was new. */
  private learn(id: string, name: string): boolean {
    if (this.names.get(id) === name) return false;
    this.names.delete(id); // the newest last: the oldest go first when over the bound
    this.names.set(id, name);
    while (this.names.size > MAX_KEPT_NAMES) this.names.delete(this.names.keys().next().value as string);
    return true;
  }

  private keep() {
    try { localStorage.setItem(NAMES_KEY, JSON.stringify(Object.fromEntries(this.names))); } catch { /* full or off */ }
  }

  roleOf(userId: string): Role | undefined { return this.members.find((m) => m.id === userId)?.role; }

  setHere(ids: Iterable<string>) { this.here = new Set(ids); this.render(); }
  arrived(id: string) { this.here.add(id); this.render(); }
  left(id: string) { this.here.delete(id); this.render(); }

  clear() { this.members = []; this.here.clear(); this.render(); }

  private render() {
    const { participantsList, memberList, memberSummary } = this.host;
    const ids = [...this.here].sort((a, b) => this.nameOf(a).localeCompare(this.nameOf(b)));
    participantsList.replaceChildren(...ids.map((id) => {
      const li = el("li", "participant", this.nameOf(id));
      li.dataset.userId = id;
      return li;
    }));
    memberSummary.textContent = this.members.length ? `People (${this.members.length})` : "People";
    memberList.replaceChildren(...this.members.map((m) => {
      const li = el("li", "member");
      li.dataset.userId = m.id;
      li.dataset.here = String(this.here.has(m.id));
      li.appendChild(el("span", "member-name", this.nameOf(m.id)));
      li.appendChild(el("span", "member-role", m.role));
      if (m.relation === "owner") li.appendChild(el("span", "member-owner", "owner"));
      li.appendChild(el("span", "member-here", this.here.has(m.id) ? "here now" : ""));
      return li;
    }));
  }
}
