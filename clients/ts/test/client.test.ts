// The client against a real slashd. tests/e2e/clients.rs starts the server, makes the users
// and a session, and runs `npm test` here with:
//   SLASHD_URL   the server, e.g. http://127.0.0.1:41234
//   ANN_TOKEN    ann's token; ann owns SESSION_ID
//   BOB_TOKEN    bob's token; bob is a member of SESSION_ID

import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";

import { SlashdClient, SlashdError, type ClientOptions, type WebSocketLike } from "../src/index.js";
import type { Message, ServerFrameOf } from "../src/frames.js";

const BASE = process.env.SLASHD_URL ?? "";
const ANN = process.env.ANN_TOKEN ?? "";
const BOB = process.env.BOB_TOKEN ?? "";
const SESSION = process.env.SESSION_ID ?? "";
assert.ok(BASE && ANN && BOB && SESSION, "run me through tests/e2e/clients.rs");
const URL_WS = `${BASE.replace(/^http/, "ws")}/ws`;

/** Sockets made by node's `ws`, kept so a test can cut one. */
function factory(made: WebSocket[] = []) {
  return (url: string, headers?: Record<string, string>) => {
    const ws = new WebSocket(url, { headers });
    made.push(ws);
    return ws as unknown as WebSocketLike;
  };
}

function client(token: string, extra: Partial<ClientOptions> = {}, made: WebSocket[] = []) {
  return new SlashdClient({
    url: URL_WS, token, connect: factory(made), backoff: { initialMs: 50, maxMs: 400 }, ...extra,
  });
}

/** Resolves when `c` reports `state`. */
function reaches(c: SlashdClient, state: string, ms = 10_000): Promise<void> {
  if (c.connection === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never ${state}`)), ms);
    const off = c.onState((s) => { if (s === state) { clearTimeout(timer); off(); resolve(); } });
  });
}

/** Wait until `check` is true, polling. */
async function until(what: string, check: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("authenticates with a header or with the auth frame", async () => {
  for (const auth of ["header", "frame"] as const) {
    const c = client(ANN, { auth });
    c.start();
    await reaches(c, "connected");
    assert.equal(c.user?.name, "ann", auth);
    c.stop();
    assert.equal(c.connection, "closed");
  }
});

test("request() resolves on the answer with its id, and rejects on an error answer", async () => {
  const c = client(ANN);
  c.start();
  await reaches(c, "connected");
  const joined = await c.join(SESSION);
  assert.equal(joined.type, "joined");
  assert.equal(joined.session_id, SESSION);
  const pong = await c.request({ type: "ping" });
  assert.equal(pong.type, "pong");
  const ack = await c.post(SESSION, "hello from the typed client");
  assert.equal(ack.type, "ack");
  assert.ok(ack.seq > joined.last_seq);
  await assert.rejects(c.join("01900000-0000-7000-8000-000000000000"), (e: unknown) =>
    e instanceof SlashdError && e.code === "not_found" && e.message === "no such session");
  await assert.rejects(c.request({ type: "join", session_id: "not-a-uuid" }), (e: unknown) =>
    e instanceof SlashdError && e.code === "bad_request");
  c.stop();
  await assert.rejects(c.request({ type: "ping" }), (e: unknown) => e instanceof SlashdError && e.code === "offline");
});

test("after a drop it reconnects, re-joins with since_seq and delivers each message once", async () => {
  const made: WebSocket[] = [];
  const ann = client(ANN, {}, made);
  const seen: number[] = [];
  const take = (m: Message) => { if (m.seq !== null) seen.push(m.seq); };
  ann.on("message", (f) => take(f.message));
  ann.on("joined", (f) => f.missed.forEach(take));
  ann.start();
  await reaches(ann, "connected");
  await ann.join(SESSION);

  const bob = client(BOB, { auth: "header" });
  bob.start();
  await reaches(bob, "connected");
  await bob.join(SESSION);
  const first = await bob.post(SESSION, "before the drop");
  await until("ann sees the first post", () => seen.includes(first.seq));

  // Cut ann's socket without a close handshake; bob posts while ann is away.
  made.at(-1)?.terminate();
  await reaches(ann, "offline");
  const away: number[] = [];
  for (const text of ["while away 1", "while away 2", "while away 3"]) away.push((await bob.post(SESSION, text)).seq);
  await reaches(ann, "connected");
  await until("ann gets what she missed", () => away.every((s) => seen.includes(s)));
  assert.ok(made.length >= 2, "a new socket");
  assert.equal(ann.delivered(SESSION), away.at(-1));

  // The server sending history again (a join from seq 0) delivers nothing twice.
  const again = await ann.request<ServerFrameOf<"joined">>({ type: "join", session_id: SESSION, since_seq: 0 });
  assert.equal(again.type, "joined");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(seen, [...new Set(seen)], "no message delivered twice");
  assert.deepEqual([...seen].sort((a, b) => a - b), seen, "in seq order");
  ann.stop();
  bob.stop();
});

test("a refused token stops the client instead of retrying", async () => {
  const made: WebSocket[] = [];
  const c = client("not-a-token", {}, made);
  const refused = new Promise<number>((resolve) => c.onUnauthorized((code) => resolve(code)));
  c.start();
  assert.equal(await refused, 4001);
  assert.equal(c.connection, "closed");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(made.length, 1, "no reconnect with the same token");
});

test("with no server it keeps trying, backing off, until stopped", async () => {
  const made: WebSocket[] = [];
  const c = new SlashdClient({
    url: "ws://127.0.0.1:9/ws", token: ANN, connect: factory(made), backoff: { initialMs: 20, maxMs: 80 },
  });
  const states: string[] = [];
  c.onState((s) => states.push(s));
  c.start();
  await until("three tries", () => made.length >= 3);
  c.stop();
  const tries = made.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(made.length, tries, "no try after stop()");
  assert.deepEqual([...new Set(states)].sort(), ["closed", "connecting", "offline"]);
});
