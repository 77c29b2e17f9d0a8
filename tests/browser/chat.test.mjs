// End-to-end test of the chat page in a real browser (Debian's chromium, driven by
// playwright-core). scripts/browser-test.sh starts slashd and a fake model endpoint, creates
// the users, and passes them in the environment:
//   SLASHD_URL                       the server, e.g. http://127.0.0.1:41234
//   ADMIN_PASSWORD, USER_PASSWORD    `admin`; `bob` (analyst) and `vera` (viewer)
//   BROWSER_OUT                      where screenshots go (default target/browser)
//   CHROMIUM                         the browser (default /usr/bin/chromium)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.SLASHD_URL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const USER_PASSWORD = process.env.USER_PASSWORD;
const OUT = process.env.BROWSER_OUT ?? path.resolve(import.meta.dirname, "../../target/browser");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 15_000;

assert.ok(BASE && ADMIN_PASSWORD && USER_PASSWORD, "run me through scripts/browser-test.sh");

let browser;
/** Problems any page reported: script errors, CSP violations, console errors. */
const problems = [];

before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});

after(async () => {
  for (const context of browser?.contexts() ?? []) await context.close();
  await browser?.close();
});

async function open(name, password, { wsRoute } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  if (wsRoute) await context.routeWebSocket(/\/ws$/, wsRoute);
  if (process.env.BROWSER_WEB_DIST) {
    // For iterating on web/src without rebuilding slashd: /assets/* come from this folder
    // (index.html still comes from the binary: a document served by the test would lose
    // its address space, and Chrome's local network checks would block the WebSocket).
    await context.route(/\/assets\/[a-z.]+$/, async (route) => {
      const res = await route.fetch();
      const name = new URL(route.request().url()).pathname.replace(/^\/assets\//, "");
      route.fulfill({ response: res, body: readFileSync(path.join(process.env.BROWSER_WEB_DIST, name)) });
    });
  }
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    // A 401 on purpose (wrong password) is logged by the browser as a failed resource.
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(`${name}: console: ${m.text()}`);
  });
  await page.goto(`${BASE}/`);
  await page.fill("#login-username", name);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("#app:not([hidden])", { timeout: WAIT });
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: WAIT });
  return page;
}

/** Send a chat line from the composer. */
async function say(page, text) {
  await page.fill("#input", text);
  await page.press("#input", "Enter");
}

const message = (page, text) =>
  page.locator("#message-list li.message", { hasText: text });
const commandReply = (page, command) =>
  page.locator("#message-list li.role-command", {
    has: page.locator(".author", { hasText: new RegExp(`^/${command}$`) }),
  });

async function suggestions(page, typed) {
  await page.fill("#input", "");
  await page.type("#input", typed);
  await page.waitForTimeout(150);
  const names = await page.locator("#suggestions li").evaluateAll((lis) => lis.map((li) => li.dataset.command));
  await page.fill("#input", "");
  return names;
}

test("the chat page, end to end", async (t) => {
  let admin, bob, vera, sessionId;
  let bobSockets = [];
  let blockBob = false;

  await t.test("served with a strict CSP and the right content types", async () => {
    const res = await fetch(`${BASE}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    const csp = res.headers.get("content-security-policy");
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(await res.text(), /<script src="\/assets\/app.js" defer><\/script>/);
    const js = await fetch(`${BASE}/assets/app.js`);
    assert.match(js.headers.get("content-type"), /^text\/javascript/);
    await js.arrayBuffer();
    const again = await fetch(`${BASE}/assets/app.js`, { headers: { "if-none-match": js.headers.get("etag") } });
    assert.equal(again.status, 304);
    await again.arrayBuffer();
  });

  await t.test("a wrong password is refused on the page", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    await page.fill("#login-username", "admin");
    await page.fill("#login-password", "not-the-password");
    await page.click("#login-submit");
    await page.locator("#login-error", { hasText: "Wrong" }).waitFor({ timeout: WAIT });
    await context.close();
  });

  await t.test("admin logs in and creates a session; bob is added as a member", async () => {
    admin = await open("admin", ADMIN_PASSWORD);
    await page_createSession(admin, "Release planning");
    sessionId = await admin.evaluate(() => location.hash.slice(1));
    assert.ok(sessionId, "the session id is in the address");
    await admin.locator("#participants li", { hasText: "admin (you)" }).waitFor({ timeout: WAIT });
    await admin.fill("#member-name", "bob");
    await admin.press("#member-name", "Enter");
    await admin.locator("#notice", { hasText: "bob can now join" }).waitFor({ timeout: WAIT });
  });

  await t.test("bob, a member, joins in a second browser context and sees presence", async () => {
    bob = await open("bob", USER_PASSWORD, {
      wsRoute: (ws) => {
        if (blockBob) { ws.close({ code: 4000, reason: "network down (test)" }); return; }
        const server = ws.connectToServer();
        bobSockets.push({ ws, server });
      },
    });
    await bob.click(`#sessions li[data-id="${sessionId}"] button`);
    await bob.locator("#session-title", { hasText: "Release planning" }).waitFor({ timeout: WAIT });
    // The admin sees bob arrive (named, since the admin added him).
    await admin.locator("#participants li", { hasText: "bob" }).waitFor({ timeout: WAIT });
  });

  await t.test("a post appears live for the other member; the assistant streams its reply", async () => {
    await say(admin, "Hello team, shall we **ship** on Friday?");
    await message(admin, "shall we ship on Friday?").waitFor({ timeout: WAIT });
    const seen = message(bob, "shall we ship on Friday?");
    await seen.waitFor({ timeout: WAIT });
    assert.equal(await seen.locator(".body strong").textContent(), "ship", "markdown rendered");
    // The fake model streams ~2 s: the growing reply shows first, then the stored one
    // replaces it under the same id.
    const streaming = bob.locator("#message-list li.role-assistant.streaming");
    await streaming.waitFor({ timeout: WAIT });
    const id = await streaming.getAttribute("data-id");
    const final = bob.locator(`#message-list li.role-assistant[data-id="${id}"]:not(.streaming)`);
    await final.waitFor({ timeout: WAIT });
    assert.equal(await final.locator(".body strong").textContent(), "fake model");
    assert.equal(await bob.locator(`#message-list li[data-id="${id}"]`).count(), 1, "replaced, not duplicated");
  });

  await t.test("typing shows on the other side", async () => {
    await bob.type("#input", "I think");
    await admin.locator("#typing", { hasText: "is typing" }).waitFor({ timeout: WAIT });
    await say(bob, "I think Friday works.");
    await message(admin, "Friday works.").waitFor({ timeout: WAIT });
  });

  await t.test("/help renders a markdown table and its data as a table", async () => {
    // Autocomplete: Tab completes the first match.
    await admin.fill("#input", "");
    await admin.type("#input", "/hel");
    await admin.locator('#suggestions li[data-command="help"]').waitFor({ timeout: WAIT });
    await admin.press("#input", "Tab");
    assert.equal(await admin.inputValue("#input"), "/help ");
    await admin.press("#input", "Enter");
    const reply = commandReply(admin, "help");
    await reply.locator(".body table").waitFor({ timeout: WAIT });
    assert.ok(await reply.locator(".body table td code", { hasText: "/stat" }).count() > 0);
    assert.ok(await reply.locator("details.data table th", { hasText: "usage" }).count() > 0);
    // Bob sees the command reply too.
    await commandReply(bob, "help").locator(".body table").waitFor({ timeout: WAIT });
  });

  await t.test("/stat renders tables", async () => {
    await say(admin, "/stat");
    const reply = commandReply(admin, "stat");
    await reply.locator(".body table").first().waitFor({ timeout: WAIT });
    assert.ok(await reply.locator(".body table td", { hasText: "uptime" }).count() > 0);
    assert.ok(await reply.locator(".body strong", { hasText: "Server" }).count() > 0);
    await reply.locator("details.data summary").click();
    await reply.locator("details.data table th", { hasText: "server" }).waitFor({ timeout: WAIT });
    await reply.locator("details.data summary").click(); // fold it again
    await admin.evaluate(() => { const m = document.getElementById("messages"); m.scrollTop = m.scrollHeight; });
    await admin.screenshot({ path: path.join(OUT, "chat.png") });
  });

  await t.test("autocomplete offers only what the role allows", async () => {
    assert.ok((await suggestions(admin, "/re")).includes("reload"), "admin sees /reload");
    assert.ok((await suggestions(bob, "/re")).includes("reload"), "analyst sees /reload");
    vera = await open("vera", USER_PASSWORD);
    await page_createSession(vera, "Vera's notes");
    const all = await suggestions(vera, "/");
    assert.ok(all.includes("help") && all.includes("stat"), `viewer sees /help and /stat: ${all}`);
    assert.ok(!all.includes("reload"), `viewer must not see /reload: ${all}`);
    assert.deepEqual(await suggestions(vera, "/rel"), []);
  });

  await t.test("an XSS payload in a message renders inert", async () => {
    const payloads = [
      "<img src=x onerror=window.__pwned=1>",
      "[click me](javascript:window.__pwned=2)",
      "<script>window.__pwned=3</script><svg onload=window.__pwned=4>",
      "<a href=\"javascript:window.__pwned=5\">html link</a>",
    ];
    for (const p of payloads) await say(bob, p);
    for (const page of [admin, bob]) {
      // Shown as text, not parsed.
      await message(page, "onerror=window.__pwned=1").waitFor({ timeout: WAIT });
      await message(page, "html link").waitFor({ timeout: WAIT });
      const link = message(page, "click me");
      await link.waitFor({ timeout: WAIT });
      const found = await page.evaluate(() => ({
        pwned: window.__pwned,
        img: document.querySelectorAll("#message-list img, #message-list svg, #message-list script").length,
        jsLinks: [...document.querySelectorAll("#message-list a")].filter((a) => /^\s*javascript:/i.test(a.getAttribute("href") ?? "")).length,
        handlers: [...document.querySelectorAll("#message-list *")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
      }));
      assert.deepEqual(found, { pwned: undefined, img: 0, jsLinks: 0, handlers: 0 });
      await link.locator(".body", { hasText: "click me" }).click();
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
    }
  });

  await t.test("after a network drop bob reconnects and gets what he missed", async () => {
    blockBob = true;
    for (const { ws, server } of bobSockets) {
      server.close();
      ws.close({ code: 4000, reason: "network down (test)" });
    }
    await bob.locator('#conn[data-state="offline"]').waitFor({ timeout: WAIT });
    await say(admin, "Posted while bob was offline");
    await message(admin, "Posted while bob was offline").waitFor({ timeout: WAIT });
    blockBob = false;
    await bob.locator('#conn[data-state="connected"]').waitFor({ timeout: 20_000 });
    await message(bob, "Posted while bob was offline").waitFor({ timeout: WAIT });
    const ids = await bob.locator("#message-list li[data-id]").evaluateAll((lis) => lis.map((li) => li.dataset.id));
    assert.equal(new Set(ids).size, ids.length, "no message shown twice");
    // And live delivery works again.
    await say(admin, "Welcome back");
    await message(bob, "Welcome back").waitFor({ timeout: WAIT });
  });

  await t.test("history pages backwards with 'Load older messages'", async () => {
    // A session without the assistant, filled with 60 messages over a raw socket.
    const id = await admin.evaluate(async () => {
      const auth = JSON.parse(sessionStorage.getItem("slashd.auth"));
      const res = await fetch("/chat/sessions", {
        method: "POST",
        headers: { authorization: `Bearer ${auth.token}`, "content-type": "application/json" },
        body: JSON.stringify({ title: "Long history", metadata: { assistant: false } }),
      });
      const s = await res.json();
      const ws = new WebSocket(`ws://${location.host}/ws`);
      await new Promise((ok) => (ws.onopen = ok));
      let acks = 0;
      const done = new Promise((ok) => (ws.onmessage = (ev) => {
        if (JSON.parse(ev.data).type === "ack" && ++acks === 60) ok();
      }));
      ws.send(JSON.stringify({ type: "auth", token: auth.token }));
      ws.send(JSON.stringify({ type: "join", session_id: s.id }));
      for (let i = 1; i <= 60; i++) {
        ws.send(JSON.stringify({ type: "message", session_id: s.id, content: `line ${i}` }));
        await new Promise((r) => setTimeout(r, 60));
      }
      await done;
      ws.close();
      return s.id;
    });
    await admin.click("#refresh");
    await admin.click(`#sessions li[data-id="${id}"] button`);
    await message(admin, "line 60").waitFor({ timeout: WAIT });
    assert.equal(await admin.locator("#message-list li.message").count(), 50);
    await admin.click("#load-older");
    await admin.locator('#message-list li[data-seq="1"]').waitFor({ timeout: WAIT });
    assert.equal(await admin.locator("#message-list li.message").count(), 60);
    const seqs = await admin.locator("#message-list li[data-seq]").evaluateAll((lis) => lis.map((li) => Number(li.dataset.seq)));
    assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 1));
    assert.ok(await admin.locator("#load-older").isHidden());
  });

  await t.test("rename and end a session", async () => {
    await admin.click("#rename");
    await admin.fill("#rename-input", "Long history (renamed)");
    await admin.press("#rename-input", "Enter");
    await admin.locator("#session-title", { hasText: "Long history (renamed)" }).waitFor({ timeout: WAIT });
    await admin.locator("#sessions li.current", { hasText: "Long history (renamed)" }).waitFor({ timeout: WAIT });
    await admin.click("#end");
    await admin.click("#end"); // confirm
    await admin.locator("#sessions li.current[data-status=ended]").waitFor({ timeout: WAIT });
    assert.ok(await admin.locator("#input").isDisabled(), "no posting into an ended session");
  });

  await t.test("screenshot", async () => {
    await admin.click(`#sessions li[data-id="${sessionId}"] button`);
    await message(admin, "Welcome back").waitFor({ timeout: WAIT });
    await commandReply(admin, "stat").scrollIntoViewIfNeeded();
    await admin.locator("#notice").waitFor({ state: "hidden", timeout: WAIT });
    await admin.fill("#input", "/");
    await admin.locator("#suggestions li").first().waitFor({ timeout: WAIT });
    await admin.screenshot({ path: path.join(OUT, "chat-autocomplete.png") });
    await bob.screenshot({ path: path.join(OUT, "chat-member.png") });
    await vera.screenshot({ path: path.join(OUT, "chat-viewer.png") });
    console.log(`screenshots in ${OUT}`);
  });

  await t.test("no page reported a script error or a CSP violation", () => {
    assert.deepEqual(problems, []);
  });
});

async function page_createSession(page, title) {
  await page.fill("#new-session-title", title);
  await page.press("#new-session-title", "Enter");
  await page.locator("#session-title", { hasText: title }).waitFor({ timeout: WAIT });
}
