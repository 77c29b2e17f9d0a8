// The slashd chat page, wired together: log in, sessions, the live conversation, presence
// and typing, and the socket's frames, each handed to what it is about. The session list,
// who is who, the drawer, what the composer offers for commands, the buttons under replies
// and progress lines live in their own modules; they get what they need (state getters, a
// send function) from here and never import this file.

import {
  Api, ApiError, login,
  type CommandInfo, type Message, type Role, type ServerFrame, type Session, type User,
} from "./api";
import { SlashdClient, type Request } from "../../clients/ts/src/client";
import { ReplyActions } from "./actions";
import { CommandComposer } from "./composer";
import { ConfirmDialog } from "./confirm";
import { PendingFrames, type Pending } from "./pending";
import { ProgressLines } from "./progress";
import { dataTable, el, markdown } from "./render";
import { Drawer } from "./drawer";
import { People } from "./people";
import { SessionList } from "./sessions";
import { stamp } from "./when";

const PAGE = 50;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface Auth { token: string; user: User; expires_at: string }

const state = {
  auth: null as Auth | null,
  api: null as Api | null,
  socket: null as SlashdClient | null,
  current: null as Session | null,
  /** The session whose history is on screen (re-joins after a drop ask for `since_seq`). */
  loaded: null as string | null,
  maxSeq: 0,
  minSeq: 0,
  typing: new Map<string, number>(),
  commands: [] as CommandInfo[],
  typingSent: 0,
  typingTimer: undefined as number | undefined,
  /** The user's role (the login answer, then each `ready`): what buttons are enabled for. */
  role: "viewer" as Role,
  /** Ids of messages this user posted (from `ack`s): whose progress they may cancel. */
  mine: new Set<string>(),
  /** The session list was shown since logging in (the drawer opens for it only once). */
  listShown: false,
};

const pendingFrames = new PendingFrames();

const people = new People({
  me: () => state.auth?.user,
  participantsList: $("participants"),
  memberList: $("member-list"),
  memberSummary: $("people-summary"),
});

const sessionList = new SessionList({
  list: $("sessions"),
  me: () => state.auth?.user,
  current: () => state.current,
  open: (s) => openSession(s),
});

const drawer = new Drawer($("app"), $("sidebar"), $<HTMLButtonElement>("menu"), $("scrim"));

/** Send a frame and remember what its answer will be about (null: offline, not sent). */
function sendAwaitingAnswer(frame: Record<string, unknown>, about: Pending): string | null {
  const id = state.socket?.send(frame as Request);
  if (id == null) return null;
  pendingFrames.remember(id, about);
  return id;
}

const confirmDialog = new ConfirmDialog(
  (c, accept) => sendAwaitingAnswer({ type: "confirm", confirmation_id: c.id, accept }, { kind: "confirm" }) != null,
  (text) => notice(text),
);

const composer = new CommandComposer({
  session: () => state.current,
  commands: () => state.commands,
  send: sendAwaitingAnswer,
});

const actions = new ReplyActions({
  role: () => state.role,
  session: () => state.current,
  send: sendAwaitingAnswer,
  notice: (text) => notice(text),
});

const progress = new ProgressLines({
  send: sendAwaitingAnswer,
  notice: (text) => notice(text),
  role: () => state.role,
  userId: () => state.auth?.user.id,
  posted: (messageId) => state.mine.has(messageId),
  isAtBottom: () => isAtBottom(),
  scrollDown: () => scrollDown(),
});

// ---------- log in / out ----------

function loadAuth(): Auth | null {
  try {
    const a = JSON.parse(sessionStorage.getItem("slashd.auth") ?? "null") as Auth | null;
    if (a && Date.parse(a.expires_at) > Date.now()) return a;
  } catch { /* ignore */ }
  return null;
}

function showLogin(message = "") {
  state.socket?.stop();
  state.socket = null;
  state.auth = null;
  state.api = null;
  state.current = null;
  state.loaded = null;
  sessionList.set([]);
  state.listShown = false;
  people.clear();
  state.commands = [];
  state.mine.clear();
  pendingFrames.clear();
  actions.clear();
  progress.clear();
  confirmDialog.clear();
  composer.close();
  sessionStorage.removeItem("slashd.auth");
  history.replaceState(null, "", location.pathname);
  $("message-list").replaceChildren();
  $("chat").hidden = true;
  $("no-session").hidden = false;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $<HTMLInputElement>("login-username").focus();
}

async function onLogin(ev: SubmitEvent) {
  ev.preventDefault();
  const user = $<HTMLInputElement>("login-username").value.trim();
  const pass = $<HTMLInputElement>("login-password").value;
  $("login-error").textContent = "";
  try {
    const res = await login(user, pass);
    sessionStorage.setItem("slashd.auth", JSON.stringify(res));
    $<HTMLInputElement>("login-password").value = "";
    start(res);
  } catch (e) {
    $("login-error").textContent = e instanceof ApiError && e.status === 401
      ? "Wrong user name or password." : `Cannot log in: ${(e as Error).message}`;
  }
}

function start(auth: Auth) {
  state.auth = auth;
  state.role = auth.user.role;
  people.remember(auth.user.id, auth.user.name);
  state.api = new Api(auth.token, () => showLogin("Your session expired; log in again."));
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = `${auth.user.name} · ${auth.user.role}`;
  // The socket is the typed client (clients/ts): it authenticates with the auth frame,
  // reconnects with backoff, re-joins the open session with since_seq and drops messages
  // it already delivered.
  const socket = new SlashdClient({
    url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`,
    token: () => state.auth?.token ?? "",
  });
  socket.onAny((f) => onFrame(f as unknown as ServerFrame));
  socket.onState((s) => {
    if (s === "closed") return;
    const c = $("conn");
    c.textContent = s === "connected" ? "connected" : s === "connecting" ? "connecting…" : "offline — reconnecting…";
    c.dataset.state = s;
    updateComposer();
  });
  socket.onUnauthorized(() => showLogin("Your session expired; log in again."));
  state.socket = socket;
  socket.start();
  void refreshSessions();
  void loadCommands();
}

async function loadCommands() {
  try { state.commands = (await state.api!.commands()).commands; } catch { state.commands = []; }
}

// ---------- sessions ----------

async function refreshSessions() {
  if (!state.api) return;
  let sessions: Session[];
  try {
    sessions = (await state.api.sessions()).sessions;
  } catch (e) { notice(`Cannot list sessions: ${(e as Error).message}`); return; }
  if (state.current) {
    const i = sessions.findIndex((x) => x.id === state.current!.id);
    // The open session keeps its object: what is on screen was read into it.
    if (i >= 0) sessions[i] = Object.assign(state.current, sessions[i]);
  }
  sessionList.set(sessions);
  if (state.current) {
    renderHeader();
    updateComposer();
  }
  if (!state.current) {
    const want = location.hash.slice(1);
    const s = sessionList.find(want);
    if (s) openSession(s);
    // On a phone, the list is what there is to see first — once, not at every refresh.
    else if (!state.listShown) drawer.open();
  }
  state.listShown = true;
}

async function onCreateSession(ev: SubmitEvent) {
  ev.preventDefault();
  const input = $<HTMLInputElement>("new-session-title");
  const title = input.value.trim();
  if (!title) return;
  try {
    const s = await state.api!.createSession(title);
    input.value = "";
    sessionList.add(s);
    openSession(s);
  } catch (e) { notice(`Cannot create the session: ${(e as Error).message}`); }
}

function openSession(s: Session) {
  const socket = state.socket!;
  if (state.current && state.current.id !== s.id) socket.leave(state.current.id).catch(() => { /* gone or offline */ });
  state.current = s;
  state.loaded = null;
  state.maxSeq = 0;
  state.minSeq = 0;
  people.clear();
  state.typing.clear();
  history.replaceState(null, "", `#${s.id}`);
  progress.clear();
  actions.clear();
  composer.close();
  $("message-list").replaceChildren();
  $("chat").hidden = false;
  $("no-session").hidden = true;
  renderHeader();
  sessionList.render();
  renderTyping();
  void loadMembers(s.id);
  if (s.status === "ended") void loadEnded(s.id);
  else join();
  updateComposer();
  drawer.close(false);
  $<HTMLTextAreaElement>("input").focus();
}

/** Who is in the session, with names and roles (presence and typing carry only ids). */
async function loadMembers(id: string) {
  try {
    const { members } = await state.api!.members(id);
    if (state.current?.id === id) people.setMembers(members);
  } catch (e) { if (state.current?.id === id) notice(`Cannot list the members: ${(e as Error).message}`); }
}

/** An ended session cannot be joined: read its history (up to 2000 messages) over REST. */
async function loadEnded(id: string) {
  state.loaded = id;
  try {
    for (let i = 0; i < 4; i++) {
      const page = await state.api!.messages(id, state.maxSeq, 500);
      if (state.current?.id !== id) return;
      for (const m of page.messages) putMessage(m, false);
      if (!page.has_more || page.messages.length === 0) break;
    }
    scrollDown();
  } catch (e) { notice(`Cannot load history: ${(e as Error).message}`); }
}

/** Join the open session; the client re-joins it after a drop, asking for what was missed
 * (a refusal arrives as an `error` frame, shown like any other). */
function join() {
  const s = state.current;
  if (!s || s.status === "ended" || !state.socket) return;
  state.socket.join(s.id).catch(() => { /* offline: joined on reconnect */ });
}

function renderHeader() {
  const s = state.current;
  if (!s) return;
  $("session-title").textContent = s.title;
  $("topbar-title").textContent = s.title;
  const ended = s.status === "ended";
  $("session-status").textContent = ended ? "ended" : "";
  const mine = s.owner_id === state.auth?.user.id;
  $("rename").hidden = ended || !mine;
  $("end").hidden = ended || !mine;
  $("member-form").hidden = ended || !mine;
}

function onRename() {
  const s = state.current;
  if (!s) return;
  const h = $("session-title");
  const input = el("input", "rename-input");
  input.id = "rename-input";
  input.value = s.title;
  input.maxLength = 200;
  h.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save: boolean) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== s.title) {
      try {
        const updated = await state.api!.renameSession(s.id, title);
        Object.assign(s, updated);
      } catch (e) { notice(`Cannot rename: ${(e as Error).message}`); }
    }
    renderHeader();
    sessionList.render();
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); void finish(true); }
    if (ev.key === "Escape") void finish(false);
  });
  input.addEventListener("blur", () => void finish(true));
}

let endArmed: number | undefined;
async function onEnd() {
  const s = state.current;
  const b = $<HTMLButtonElement>("end");
  if (!s) return;
  if (endArmed === undefined) {
    b.textContent = "Really end it?";
    b.classList.add("armed");
    endArmed = window.setTimeout(() => { endArmed = undefined; b.textContent = "End session"; b.classList.remove("armed"); }, 4000);
    return;
  }
  window.clearTimeout(endArmed);
  endArmed = undefined;
  b.textContent = "End session";
  b.classList.remove("armed");
  try {
    Object.assign(s, await state.api!.endSession(s.id));
    markEnded();
  } catch (e) { notice(`Cannot end the session: ${(e as Error).message}`); }
}

function markEnded() {
  if (state.current) state.current.status = "ended";
  renderHeader();
  sessionList.render();
  updateComposer();
  actions.refresh();
}

async function onAddMember(ev: SubmitEvent) {
  ev.preventDefault();
  const s = state.current;
  const input = $<HTMLInputElement>("member-name");
  const name = input.value.trim();
  if (!s || !name) return;
  try {
    const res = await state.api!.addMember(s.id, name);
    people.remember(res.user.id, res.user.name);
    input.value = "";
    notice(`${res.user.name} can now join this session.`);
    void loadMembers(s.id);
  } catch (e) { notice(`Cannot add ${name}: ${(e as Error).message}`); }
}

// ---------- the socket ----------

function onFrame(f: ServerFrame) {
  const s = state.current;
  // What a direct answer answers (its frame was sent with this id).
  const pending = f.id !== undefined && f.id !== null ? pendingFrames.take(f.id) : undefined;
  switch (f.type) {
    case "ready": {
      const u = f.user as User | undefined;
      if (u && state.auth) {
        state.auth.user = u;
        state.role = u.role;
        $("me").textContent = `${u.name} · ${u.role}`;
        actions.refresh();
      }
      return;
    }
    case "ack":
      if (typeof f.message_id === "string") state.mine.add(f.message_id);
      if (pending?.kind === "action") actions.done(pending.button);
      return;
    case "completions":
      composer.onCompletions(f);
      return;
    case "confirm_required": {
      if (pending?.kind === "action") actions.done(pending.button);
      const what = pending?.kind === "message" ? clip(pending.content, 120)
        : pending?.kind === "action" ? `The button “${pending.label}”` : "";
      const at = Date.parse(String(f.expires_at));
      confirmDialog.ask({
        id: String(f.confirmation_id),
        prompt: String(f.prompt ?? ""),
        expiresAt: Number.isNaN(at) ? Date.now() + 60_000 : at,
        what,
      });
      return;
    }
    case "cancelled":
      confirmDialog.cancelled(String(f.confirmation_id));
      return;
    case "command_progress":
      if (s && f.session_id === s.id) progress.update(f);
      return;
    case "joined": {
      if (!s || f.session_id !== s.id) return;
      const here = f.participants as string[];
      people.setHere(here);
      if (here.some((id) => !people.knows(id))) void loadMembers(s.id);
      const missed = (f.missed ?? []) as Message[];
      if (state.loaded === s.id) {
        for (const m of missed) putMessage(m);
        if (f.has_more) void catchUp(s.id);
      } else {
        state.loaded = s.id;
        const last = Number(f.last_seq) || 0;
        void loadPage(s.id, Math.max(0, last - PAGE), PAGE, true);
      }
      return;
    }
    case "message":
      if (s && f.session_id === s.id) {
        const m = f.message as Message;
        if (m.user_id) stopTyping(m.user_id);
        putMessage(m);
        sessionList.posted(s.id, m, m.user_id && people.knows(m.user_id) ? people.nameOf(m.user_id) : null);
      }
      return;
    case "message_delta":
      if (s && f.session_id === s.id) putDelta(String(f.message_id), String(f.delta));
      return;
    case "typing":
      if (s && f.session_id === s.id && f.user_id !== state.auth?.user.id) {
        if (f.state) startTyping(String(f.user_id)); else stopTyping(String(f.user_id));
      }
      return;
    case "presence":
      if (s && f.session_id === s.id) {
        const who = String(f.user_id);
        if (f.state === "joined") {
          people.arrived(who);
          if (!people.knows(who)) void loadMembers(s.id);
        } else { people.left(who); stopTyping(who); }
      }
      return;
    case "session_ended":
      if (s && f.session_id === s.id) { markEnded(); notice("This session has ended."); }
      else { const x = sessionList.find(String(f.session_id)); if (x) { x.status = "ended"; sessionList.render(); } }
      return;
    case "error":
      // Completion is a convenience: a refused one (rate_limited, …) is not worth a word.
      if (pending?.kind === "complete") return;
      if (pending?.kind === "action") actions.done(pending.button);
      if (pending?.kind === "cancel") progress.cancelRefused(pending.button);
      // A refused message keeps its text: shown with the error, and back in the box when
      // the box is empty, to fix and send again.
      if (pending?.kind === "message") {
        const input = $<HTMLTextAreaElement>("input");
        if (!input.value && !input.disabled) input.value = pending.content;
      }
      showError(String(f.code), String(f.message), pending?.kind === "message" ? pending.content : undefined);
      return;
  }
}

/** After a long drop: page through everything after what we have. */
async function catchUp(id: string) {
  for (;;) {
    const page = await state.api!.messages(id, state.maxSeq, 500);
    if (state.current?.id !== id) return;
    for (const m of page.messages) putMessage(m);
    if (!page.has_more || page.messages.length === 0) return;
  }
}

async function loadPage(id: string, afterSeq: number, limit: number, scroll: boolean) {
  try {
    const page = await state.api!.messages(id, afterSeq, limit);
    if (state.current?.id !== id) return;
    const list = $("messages");
    const before = list.scrollHeight - list.scrollTop;
    for (const m of page.messages) putMessage(m, false);
    if (afterSeq === 0 && page.messages.length === 0) state.minSeq = 1;
    if (scroll) list.scrollTop = list.scrollHeight;
    else list.scrollTop = list.scrollHeight - before;
    updateOlder();
  } catch (e) { notice(`Cannot load history: ${(e as Error).message}`); }
}

function onLoadOlder() {
  const s = state.current;
  if (!s || state.minSeq <= 1) return;
  const after = Math.max(0, state.minSeq - 1 - PAGE);
  void loadPage(s.id, after, state.minSeq - 1 - after, false);
}

function updateOlder() {
  $("load-older").hidden = !(state.minSeq > 1);
}

// ---------- messages ----------

const nameOf = (userId: string | null) => people.nameOf(userId);

function putMessage(m: Message, follow = true) {
  const list = $("message-list");
  const atBottom = isAtBottom();
  const meta = m.metadata ?? {};
  if (typeof meta.reply_to === "string" && typeof meta.action === "string") actions.markUsed(meta.reply_to, meta.action);
  if (typeof meta.pressed_by === "string" && typeof meta.pressed_by_name === "string") {
    people.remember(meta.pressed_by, meta.pressed_by_name);
  }
  const node = renderMessage(m);
  const existing = list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(m.id)}"]`);
  if (existing) existing.replaceWith(node);
  else if (m.seq === null) list.appendChild(node);
  else {
    let after: Element | null = null;
    for (const li of Array.from(list.children) as HTMLElement[]) {
      const seq = Number(li.dataset.seq);
      if (li.dataset.seq && seq > m.seq) { after = li; break; }
    }
    list.insertBefore(node, after);
  }
  progress.attach(m.id);
  if (m.seq !== null) {
    state.maxSeq = Math.max(state.maxSeq, m.seq);
    state.minSeq = state.minSeq === 0 ? m.seq : Math.min(state.minSeq, m.seq);
  }
  updateOlder();
  if (state.current && m.session_id === state.current.id) sessionList.seen(m.session_id, state.maxSeq);
  if (follow && atBottom) scrollDown();
}

function isAtBottom() {
  const l = $("messages");
  return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
}
function scrollDown() {
  const l = $("messages");
  l.scrollTop = l.scrollHeight;
}

function renderMessage(m: Message): HTMLElement {
  const li = el("li", `message role-${m.role}`);
  li.dataset.id = m.id;
  if (m.seq !== null) li.dataset.seq = String(m.seq);
  if (m.user_id) li.dataset.userId = m.user_id;
  const meta = (m.metadata ?? {}) as Record<string, unknown>;
  const head = el("div", "meta");
  const who = m.role === "user" ? nameOf(m.user_id)
    : m.role === "command" ? `/${String(meta.command ?? "command")}`
    : m.role === "assistant" ? "assistant" : "system";
  head.appendChild(el("span", "author", who));
  if (m.role === "command") {
    const bits = [String(meta.plugin ?? ""), meta.duration_ms !== undefined ? `${meta.duration_ms} ms` : ""];
    if (typeof meta.action === "string") {
      const by = typeof meta.pressed_by_name === "string" ? meta.pressed_by_name
        : typeof meta.pressed_by === "string" ? nameOf(meta.pressed_by) : "";
      bits.push(by ? `“${meta.action}” pressed by ${by}` : `“${meta.action}” pressed`);
    }
    if (meta.ephemeral) bits.push("only you see this");
    head.appendChild(el("span", "cmd-meta", bits.filter(Boolean).join(" · ")));
  }
  const t = new Date(m.created_at);
  if (!Number.isNaN(t.getTime())) {
    const time = el("time", "time", stamp(t));
    time.dateTime = m.created_at;
    time.title = t.toLocaleString();
    head.appendChild(time);
  }
  li.appendChild(head);

  const body = el("div", "body");
  const format = m.role === "command" ? String(meta.format ?? "plain") : "markdown";
  if (format === "markdown") {
    body.classList.add("markdown");
    body.appendChild(markdown(m.content));
  } else if (format === "json") {
    let text = m.content;
    try { text = JSON.stringify(JSON.parse(m.content), null, 2); } catch { /* as sent */ }
    body.appendChild(el("pre", undefined, text));
  } else {
    body.appendChild(el("pre", "plain", m.content));
  }
  li.appendChild(body);

  const buttons = m.role === "command" ? actions.render(m.id, meta.actions) : null;
  if (buttons) li.appendChild(buttons);
  if (m.role === "command" && meta.data !== undefined && meta.data !== null) {
    const details = el("details", "data");
    details.appendChild(el("summary", undefined, "data"));
    details.appendChild(dataTable(meta.data));
    li.appendChild(details);
  }
  return li;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function putDelta(id: string, delta: string) {
  const list = $("message-list");
  let li = list.querySelector<HTMLElement>(`li[data-id="${CSS.escape(id)}"]`);
  if (li && !li.classList.contains("streaming")) return; // the stored message is already here
  const atBottom = isAtBottom();
  if (!li) {
    li = el("li", "message role-assistant streaming");
    li.dataset.id = id;
    const head = el("div", "meta");
    head.appendChild(el("span", "author", "assistant"));
    head.appendChild(el("span", "cmd-meta", "typing…"));
    li.append(head, el("div", "body streaming-text"));
    list.appendChild(li);
  }
  const body = li.querySelector(".body")!;
  body.textContent = (body.textContent ?? "") + delta;
  if (atBottom) scrollDown();
}

/** An error card in the conversation; with the refused text when a message was refused. */
function showError(code: string, message: string, refused?: string) {
  if (!state.current) { notice(message); return; }
  const li = el("li", "message role-error");
  li.appendChild(el("div", "meta")).appendChild(el("span", "author", code.replace(/_/g, " ")));
  const body = li.appendChild(el("div", "body"));
  if (refused !== undefined) body.appendChild(el("pre", "refused", refused));
  body.appendChild(el("pre", "plain", message));
  $("message-list").appendChild(li);
  scrollDown();
}

function notice(text: string) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
  window.clearTimeout(Number(n.dataset.timer));
  n.dataset.timer = String(window.setTimeout(() => { n.hidden = true; }, 5000));
}

// ---------- presence and typing ----------

function startTyping(userId: string) {
  window.clearTimeout(state.typing.get(userId));
  state.typing.set(userId, window.setTimeout(() => stopTyping(userId), 6000));
  renderTyping();
}
function stopTyping(userId: string) {
  if (!state.typing.has(userId)) return;
  window.clearTimeout(state.typing.get(userId));
  state.typing.delete(userId);
  renderTyping();
}
function renderTyping() {
  const names = [...state.typing.keys()].map(nameOf);
  $("typing").textContent = names.length === 0 ? ""
    : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function sendTyping(on: boolean) {
  const s = state.current;
  if (!s || s.status === "ended") return;
  if (on) {
    if (Date.now() - state.typingSent > 3000) {
      state.socket?.send({ type: "typing", session_id: s.id, state: true });
      state.typingSent = Date.now();
    }
    window.clearTimeout(state.typingTimer);
    state.typingTimer = window.setTimeout(() => sendTyping(false), 4000);
  } else if (state.typingSent) {
    window.clearTimeout(state.typingTimer);
    state.typingSent = 0;
    state.socket?.send({ type: "typing", session_id: s.id, state: false });
  }
}

// ---------- the message box (what it offers for commands: composer.ts) ----------

function updateComposer() {
  const s = state.current;
  const input = $<HTMLTextAreaElement>("input");
  const ended = s?.status === "ended";
  input.disabled = !s || ended;
  input.placeholder = ended ? "This session has ended."
    : state.socket?.connected ? "Message, or / for commands" : "Offline — reconnecting…";
  $<HTMLButtonElement>("send").disabled = !s || ended;
}

function send() {
  const s = state.current;
  const input = $<HTMLTextAreaElement>("input");
  const content = input.value.trim();
  if (!s || !content) return;
  const id = sendAwaitingAnswer({ type: "message", session_id: s.id, content }, { kind: "message", content });
  if (id == null) {
    notice("Offline — the message was not sent; it is still in the box.");
    return;
  }
  sendTyping(false);
  input.value = "";
  composer.sent();
  scrollDown();
}

// ---------- wiring ----------

function init() {
  $("login-form").addEventListener("submit", (ev) => void onLogin(ev as SubmitEvent));
  $("logout").addEventListener("click", () => showLogin());
  $("new-session").addEventListener("submit", (ev) => void onCreateSession(ev as SubmitEvent));
  $("refresh").addEventListener("click", () => void refreshSessions());
  $("rename").addEventListener("click", onRename);
  $("end").addEventListener("click", () => void onEnd());
  $("member-form").addEventListener("submit", (ev) => void onAddMember(ev as SubmitEvent));
  $("load-older").addEventListener("click", onLoadOlder);
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
  const input = $<HTMLTextAreaElement>("input");
  input.addEventListener("keydown", (ev) => {
    if (composer.onKey(ev)) return;
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => {
    composer.typed();
    if (input.value) sendTyping(true);
  });
  // The caret moved (arrows, Home/End, a click): the hint follows it.
  input.addEventListener("keyup", (ev) => {
    if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(ev.key)) composer.change();
  });
  input.addEventListener("click", () => composer.change());
  input.addEventListener("blur", () => composer.blurred());
  input.addEventListener("focus", () => composer.focused());
  window.addEventListener("online", () => state.socket?.reconnectNow());
  window.addEventListener("focus", () => { if (state.auth) void refreshSessions(); });
  // Other sessions' activity and unread counts: the socket only follows the open session.
  window.setInterval(() => { if (state.auth && document.visibilityState === "visible") void refreshSessions(); }, 30_000);
  const auth = loadAuth();
  if (auth) start(auth); else showLogin();
}

init();
