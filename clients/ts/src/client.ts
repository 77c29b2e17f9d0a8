// A slashd WebSocket client (protocol v1): one logical connection that survives drops.
//
// - authenticates with `Authorization: Bearer` on the upgrade (`auth: "header"`, for
//   WebSocket implementations that take headers, like node's `ws`) or with an `auth` frame
//   first (`auth: "frame"`, the default; what a browser can do);
// - reconnects with exponential backoff and full jitter, re-joins the sessions it was in
//   with `since_seq` (the highest seq it delivered), and delivers what was missed;
// - delivers each stored message once: a `message` whose seq it already delivered for that
//   session is dropped (ephemeral replies, `seq: null`, always pass);
// - `request()` sends a frame with a fresh `id` and resolves on its direct answer (`ack`,
//   `joined`, `pong`, …), or rejects with a `SlashdError` when the answer is `error`.
//
// Types come from the server's AsyncAPI document (frames.ts, generated).

import type {
  ClientFrame, Message, ServerFrame, ServerFrameOf, ServerFrameType, UserInfo,
} from "./frames.js";

/** What `WebSocket` constructors this client works with: the browser's, or node's `ws`. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketFactory = (url: string, headers?: Record<string, string>) => WebSocketLike;

export type ConnectionState = "connecting" | "connected" | "offline" | "closed";

export interface ClientOptions {
  /** The socket's address, e.g. `ws://127.0.0.1:8080/ws`. */
  url: string;
  /** The JWT, or a function that returns the current one (read on every connect). */
  token: string | (() => string);
  /** How to present the token. Default `"frame"`. */
  auth?: "frame" | "header";
  /** Makes sockets. Default: the global `WebSocket` (headers are then not possible). */
  connect?: WebSocketFactory;
  /** Reconnect delays: from `initialMs` (500), times `factor` (2) per try, at most `maxMs` (15 000); each jittered down to a random share of itself. */
  backoff?: { initialMs?: number; maxMs?: number; factor?: number };
  /** How long `request()` waits for an answer. Default 15 000 ms. */
  answerTimeoutMs?: number;
  /** A ping when nothing was heard for this long (default 20 000 ms); after twice that, the link counts as dead and is reconnected. */
  keepaliveMs?: number;
}

/** The `error` frame that answered a request, as an exception. */
export class SlashdError extends Error {
  constructor(public code: string, message: string, public frame?: ServerFrameOf<"error">) {
    super(message);
    this.name = "SlashdError";
  }
}

/** A client frame without its `id` (the client adds one). */
export type Request = ClientFrame extends infer F ? F extends { id?: unknown } ? Omit<F, "id"> : F : never;

type Handler<T extends ServerFrameType> = (frame: ServerFrameOf<T>) => void;
type Waiting = { resolve: (f: ServerFrame) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> };

const OPEN = 1;
/** Closed with 4001: the token is refused; reconnecting with it again is pointless. */
const UNAUTHORIZED = 4001;

export class SlashdClient {
  private ws: WebSocketLike | null = null;
  private state: ConnectionState = "closed";
  private nextId = 1;
  private tries = 0;
  private stopped = true;
  private lastHeard = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  private waiting = new Map<string, Waiting>();
  private handlers = new Map<string, Set<(f: ServerFrame) => void>>();
  private stateHandlers = new Set<(s: ConnectionState) => void>();
  private rejectedHandlers = new Set<(code: number, reason: string) => void>();
  /** Sessions joined, with the highest seq delivered from each (0: nothing yet). */
  private sessions = new Map<string, number>();
  private me: UserInfo | null = null;

  constructor(private options: ClientOptions) {}

  /** The signed-in user, from the latest `ready`. */
  get user(): UserInfo | null { return this.me; }
  get connection(): ConnectionState { return this.state; }
  get connected(): boolean { return this.state === "connected"; }

  /** Every server frame of one type (after de-duplication). Returns an unsubscribe. */
  on<T extends ServerFrameType>(type: T, handler: Handler<T>): () => void {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    const h = handler as (f: ServerFrame) => void;
    set.add(h);
    return () => set!.delete(h);
  }

  /** Every server frame (after de-duplication). */
  onAny(handler: (f: ServerFrame) => void): () => void {
    return this.on("*" as ServerFrameType, handler as Handler<ServerFrameType>);
  }

  onState(handler: (s: ConnectionState) => void): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** The server refused the token (close 4001): the client stops; get a new token and `start()`. */
  onUnauthorized(handler: (code: number, reason: string) => void): () => void {
    this.rejectedHandlers.add(handler);
    return () => this.rejectedHandlers.delete(handler);
  }

  /** Connect, and keep reconnecting until `stop()`. */
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.tries = 0;
    this.open();
    this.keepaliveTimer = setInterval(() => this.keepalive(), this.keepaliveMs() / 2);
  }

  /** Close for good; pending requests reject. */
  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.keepaliveTimer);
    this.drop();
    this.failWaiting(new SlashdError("offline", "the client was stopped"));
    this.setState("closed");
  }

  /** Reconnect now instead of waiting out the backoff (e.g. the network came back). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.reconnectTimer);
    this.tries = 0;
    this.open();
  }

  /**
   * Send a frame and wait for its direct answer: resolves with it, or rejects with a
   * `SlashdError` (`code` from an `error` answer; `offline` when not connected or the
   * connection dropped first; `timeout`).
   */
  request<T extends ServerFrame = ServerFrame>(frame: Request): Promise<T> {
    const id = this.send(frame);
    if (id === null) return Promise.reject(new SlashdError("offline", "not connected"));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new SlashdError("timeout", `no answer within ${this.answerTimeoutMs()} ms`));
      }, this.answerTimeoutMs());
      this.waiting.set(id, { resolve: resolve as (f: ServerFrame) => void, reject, timer });
    });
  }

  /** Send a frame without waiting; returns the `id` it was sent with, or null when offline. */
  send(frame: Request): string | null {
    if (!this.ws || this.ws.readyState !== OPEN || this.state !== "connected") return null;
    const id = `c${this.nextId++}`;
    this.ws.send(JSON.stringify({ ...frame, id }));
    return id;
  }

  /**
   * Join a session (and re-join it after every reconnect, asking for what was missed).
   * `sinceSeq`: the highest seq the caller already has, if it has history already.
   */
  async join(sessionId: string, sinceSeq?: number): Promise<ServerFrameOf<"joined">> {
    const known = Math.max(this.sessions.get(sessionId) ?? 0, sinceSeq ?? 0);
    this.sessions.set(sessionId, known);
    try {
      return await this.joinNow(sessionId, known > 0 ? known : undefined);
    } catch (e) {
      if (!(e instanceof SlashdError && e.code === "offline")) this.sessions.delete(sessionId);
      throw e;
    }
  }

  /** Leave a session; it is not re-joined after a reconnect. */
  async leave(sessionId: string): Promise<ServerFrameOf<"left">> {
    this.sessions.delete(sessionId);
    return this.request<ServerFrameOf<"left">>({ type: "leave", session_id: sessionId });
  }

  /** Stop following a session without telling the server (it ended, or the caller was
   * removed): it is not re-joined after a reconnect. */
  forget(sessionId: string) { this.sessions.delete(sessionId); }

  /** Post to a joined session; resolves with the `ack` (its `message_id` and `seq`). */
  post(sessionId: string, content: string): Promise<ServerFrameOf<"ack">> {
    return this.request<ServerFrameOf<"ack">>({ type: "message", session_id: sessionId, content });
  }

  /** The highest seq delivered from a session (0 when none). */
  delivered(sessionId: string): number { return this.sessions.get(sessionId) ?? 0; }

  private async joinNow(sessionId: string, since: number | undefined) {
    const frame: Request = since === undefined
      ? { type: "join", session_id: sessionId }
      : { type: "join", session_id: sessionId, since_seq: since };
    return this.request<ServerFrameOf<"joined">>(frame);
  }

  private open() {
    this.setState("connecting");
    const token = typeof this.options.token === "function" ? this.options.token() : this.options.token;
    const header = this.options.auth === "header";
    const make: WebSocketFactory = this.options.connect
      ?? ((url) => new (globalThis as unknown as { WebSocket: new (u: string) => WebSocketLike }).WebSocket(url));
    let ws: WebSocketLike;
    try {
      ws = make(this.options.url, header ? { authorization: `Bearer ${token}` } : undefined);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      if (!header) ws.send(JSON.stringify({ type: "auth", token }));
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      let frame: ServerFrame;
      try { frame = JSON.parse(String(ev.data)) as ServerFrame; } catch { return; }
      this.receive(frame);
    };
    ws.onerror = () => { /* onclose follows */ };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failWaiting(new SlashdError("offline", "the connection dropped before the answer"));
      if (ev.code === UNAUTHORIZED) {
        this.stopped = true;
        clearInterval(this.keepaliveTimer);
        this.setState("closed");
        for (const h of this.rejectedHandlers) h(ev.code, ev.reason);
        return;
      }
      this.scheduleReconnect();
    };
  }

  private receive(frame: ServerFrame) {
    if (frame.type === "ready") {
      this.me = frame.user;
      this.tries = 0;
      this.setState("connected");
      this.rejoin();
    }
    // A direct answer settles its request.
    const id = "id" in frame && typeof frame.id === "string" ? frame.id : undefined;
    const waiter = id !== undefined ? this.waiting.get(id) : undefined;
    if (waiter && id !== undefined) {
      this.waiting.delete(id);
      clearTimeout(waiter.timer);
      if (frame.type === "error") waiter.reject(new SlashdError(frame.code, frame.message, frame));
      else waiter.resolve(frame);
    }
    if (frame.type === "joined") {
      // What was missed, then the joined frame itself, each stored message once.
      const missed = frame.missed.filter((m) => this.fresh(frame.session_id, m));
      // Caught up to `last_seq` — unless `has_more` says part of it is still to be paged
      // over REST: then only what was delivered counts, so a later re-join asks again.
      const caughtUp = frame.has_more ? 0 : frame.last_seq;
      this.sessions.set(frame.session_id, Math.max(this.delivered(frame.session_id), caughtUp, ...missed.map((m) => m.seq ?? 0)));
      this.emit({ ...frame, missed });
      return;
    }
    if (frame.type === "message" && !this.fresh(frame.session_id, frame.message)) return;
    if (frame.type === "session_ended") this.forget(frame.session_id);
    this.emit(frame);
  }

  /** Whether a message was not delivered yet (and, if it is stored, remember it was now). */
  private fresh(sessionId: string, m: Message): boolean {
    if (m.seq === null) return true;
    if (!this.sessions.has(sessionId)) return true;
    const last = this.sessions.get(sessionId) ?? 0;
    if (m.seq <= last) return false;
    this.sessions.set(sessionId, m.seq);
    return true;
  }

  private emit(frame: ServerFrame) {
    for (const key of [frame.type, "*"]) {
      for (const h of this.handlers.get(key) ?? []) {
        try { h(frame); } catch (e) { queueMicrotask(() => { throw e; }); }
      }
    }
  }

  /** After a reconnect: every joined session again, from what was delivered. */
  private rejoin() {
    for (const [sessionId, last] of this.sessions) {
      this.joinNow(sessionId, last > 0 ? last : undefined).catch((e: unknown) => {
        // A session that is gone or ended is no longer followed; a drop retries later.
        if (e instanceof SlashdError && e.code !== "offline" && e.code !== "timeout") this.sessions.delete(sessionId);
      });
    }
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    this.setState("offline");
    const { initialMs = 500, maxMs = 15_000, factor = 2 } = this.options.backoff ?? {};
    const ceiling = Math.min(maxMs, initialMs * factor ** Math.min(this.tries, 30));
    this.tries += 1;
    // Full jitter: clients dropped together do not come back together.
    const delay = Math.max(initialMs / 2, Math.random() * ceiling);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private keepalive() {
    if (!this.ws || this.state !== "connected") return;
    const quiet = Date.now() - this.lastHeard;
    if (quiet > 2 * this.keepaliveMs()) {
      // Nothing heard despite pings: the link is dead without having said so.
      this.drop();
      this.failWaiting(new SlashdError("offline", "the connection went quiet"));
      this.scheduleReconnect();
    } else if (quiet > this.keepaliveMs() / 2) {
      this.send({ type: "ping" });
    }
  }

  /** Forget the socket without waiting for a close handshake. */
  private drop() {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch { /* already closed */ }
  }

  private failWaiting(error: Error) {
    for (const w of this.waiting.values()) { clearTimeout(w.timer); w.reject(error); }
    this.waiting.clear();
  }

  private setState(s: ConnectionState) {
    if (this.state === s) return;
    this.state = s;
    for (const h of this.stateHandlers) h(s);
  }

  private answerTimeoutMs() { return this.options.answerTimeoutMs ?? 15_000; }
  private keepaliveMs() { return this.options.keepaliveMs ?? 20_000; }
}
