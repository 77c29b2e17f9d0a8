// REST (DESIGN §4) and the WebSocket protocol v1 (DESIGN §3), as the page uses them.

export type Role = "viewer" | "analyst" | "admin";
export interface User { id: string; name: string; role: Role }
export interface Session {
  id: string; title: string; owner_id: string; status: "active" | "ended";
  created_at: string; updated_at: string; ended_at: string | null;
  last_activity_at: string; metadata: unknown;
}
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

export type ServerFrame = { type: string; id?: number | string; [k: string]: any };

/**
 * One logical connection that survives network drops: it reconnects with backoff, sends
 * the `auth` frame first, and tells the page (`onReady`) so it can re-join with `since_seq`.
 * A ping every 20 s detects a dead link that never reported closing.
 */
export class Socket {
  private ws: WebSocket | null = null;
  private nextId = 1;
  private backoff = 500;
  private stopped = false;
  private lastFrame = 0;
  private timer: number | undefined;
  private reconnectTimer: number | undefined;

  constructor(
    private token: () => string,
    private onFrame: (f: ServerFrame) => void,
    private onState: (state: "connecting" | "connected" | "offline") => void,
    private onReady: () => void,
    private onUnauthorized: () => void,
  ) {}

  start() {
    this.stopped = false;
    this.connect();
    this.timer = window.setInterval(() => this.keepalive(), 10_000);
  }

  stop() {
    this.stopped = true;
    window.clearInterval(this.timer);
    window.clearTimeout(this.reconnectTimer);
    this.drop();
  }

  /** Send a frame if connected; returns its id, or null when offline. */
  send(frame: Record<string, unknown>): number | null {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ ...frame, id }));
    return id;
  }

  /** Try again now (the browser says the network is back). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    window.clearTimeout(this.reconnectTimer);
    this.backoff = 500;
    this.connect();
  }

  get connected() { return this.ws?.readyState === WebSocket.OPEN; }

  private connect() {
    this.onState("connecting");
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.lastFrame = Date.now();
      ws.send(JSON.stringify({ type: "auth", token: this.token() }));
    };
    ws.onmessage = (ev) => {
      this.lastFrame = Date.now();
      let frame: ServerFrame;
      try { frame = JSON.parse(String(ev.data)); } catch { return; }
      if (frame.type === "ready") {
        this.backoff = 500;
        this.onState("connected");
        this.onReady();
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4001) { this.onUnauthorized(); return; }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    this.onState("offline");
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = window.setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10_000);
  }

  /** Forget the current socket without waiting for a close handshake. */
  private drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
    }
  }

  private keepalive() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastFrame > 30_000) {
      // Nothing heard for 30 s despite pings: the link is dead.
      this.drop();
      this.scheduleReconnect();
      return;
    }
    this.send({ type: "ping" });
  }
}
