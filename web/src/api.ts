// REST (docs/api.md), as the page uses it; the WebSocket is the typed client in clients/ts.

export type Role = "viewer" | "analyst" | "admin";
export interface User { id: string; name: string; role: Role }
export interface Session {
  id: string; title: string; owner_id: string; status: "active" | "ended";
  created_at: string; updated_at: string; ended_at: string | null;
  last_activity_at: string; metadata: unknown;
  /** The seq of the newest message (0 while there is none). */
  last_seq: number;
  /** In a session list: the newest message, cut to 160 characters. */
  last_message?: LastMessage | null;
}
export interface LastMessage {
  seq: number; role: Message["role"]; user_id: string | null; user_name: string | null;
  preview: string; truncated: boolean; created_at: string;
}
/** Someone in a session: its owner or a member. */
export interface Member { id: string; name: string; role: Role; relation: "owner" | "member" }
export interface Message {
  id: string; session_id: string; seq: number | null;
  role: "user" | "assistant" | "command" | "system";
  user_id: string | null; content: string;
  metadata: Record<string, unknown> | null; created_at: string;
}
export type ArgKind = "text" | "integer" | "number" | "boolean" | "duration" | "choice" | "user" | "session";
/** A typed argument of a command (plugin API 0.2.0); absent `args` means untyped. */
export interface ArgSpec {
  name: string; kind: ArgKind; choices?: string[]; summary: string; required: boolean;
  default: string | null; rest: boolean; completes: boolean; min?: number | null; max?: number | null;
}
export interface CommandInfo {
  name: string; aliases: string[]; summary: string; usage: string; min_role: Role; plugin: string;
  args?: ArgSpec[] | null; confirm?: string | null;
}
/** A button under a command's reply (`metadata.actions`). */
export interface Action {
  id: string; label: string; style: "primary" | "secondary" | "danger"; min_role: Role;
  confirm: string | null; once: boolean; used?: boolean;
}

const RANK: Record<Role, number> = { viewer: 0, analyst: 1, admin: 2 };
/** Whether `role` is at least `min` (an unknown role of the user counts as the lowest, an unknown `min` as the highest). */
export const roleAtLeast = (role: Role, min: Role) => (RANK[role] ?? 0) >= (RANK[min] ?? 2);

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) { super(message); }
}

export class Api {
  constructor(public token: string, private onUnauthorized: () => void) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return parse<T>(res, res.status === 401 ? this.onUnauthorized : undefined);
  }

  sessions() { return this.call<{ sessions: Session[]; total: number }>("GET", "/chat/sessions?limit=100"); }
  createSession(title: string) { return this.call<Session>("POST", "/chat/sessions", { title }); }
  renameSession(id: string, title: string) {
    return this.call<Session>("PUT", `/chat/sessions/${encodeURIComponent(id)}`, { title });
  }
  endSession(id: string) { return this.call<Session>("DELETE", `/chat/sessions/${encodeURIComponent(id)}`); }
  addMember(id: string, username: string) {
    return this.call<{ user: User }>("POST", `/chat/sessions/${encodeURIComponent(id)}/members`, { username });
  }
  members(id: string) {
    return this.call<{ members: Member[]; total: number }>("GET", `/chat/sessions/${encodeURIComponent(id)}/members`);
  }
  messages(id: string, afterSeq: number, limit: number) {
    const q = new URLSearchParams({ after_seq: String(afterSeq), limit: String(limit) });
    return this.call<{ messages: Message[]; has_more: boolean }>(
      "GET", `/chat/sessions/${encodeURIComponent(id)}/messages?${q}`);
  }
  commands() { return this.call<{ commands: CommandInfo[] }>("GET", "/commands"); }
}

export async function login(username: string, password: string) {
  const res = await fetch("/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  return parse<{ token: string; expires_at: string; user: User }>(res);
}

async function parse<T>(res: Response, onUnauthorized?: () => void): Promise<T> {
  const text = await res.text();
  let json: any = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    if (onUnauthorized) onUnauthorized();
    const err = json?.error;
    throw new ApiError(res.status, err?.code ?? "internal", err?.message ?? `HTTP ${res.status}`);
  }
  return json as T;
}

/** A server frame as the page reads it: by `type`, fields read loosely (`clients/ts/src/frames.ts` has the exact types). */
export type ServerFrame = { type: string; id?: number | string; [k: string]: any };
