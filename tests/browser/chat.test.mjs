// End-to-end test of the chat page in a real browser (Debian's chromium, driven by
// playwright-core). scripts/browser-test.sh starts slashd and a fake model endpoint, creates
// the users, and passes them in the environment:
//   SLASHD_URL                       the server, e.g. http://127.0.0.1:41234
//   ADMIN_PASSWORD, USER_PASSWORD    `admin`; `bob` (analyst) and `vera` (viewer)
//   DEPLOY_API                       the fake deploy API (fake-deploy.mjs) the deploy plugin uses
//   BROWSER_OUT                      where screenshots go (default target/browser)
//   CHROMIUM                         the browser (default /usr/bin/chromium)

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const AXE = readFileSync(path.resolve(import.meta.dirname, "node_modules/axe-core/axe.min.js"), "utf8");

const BASE = process.env.SLASHD_URL;
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD;
const USER_PASSWORD = process.env.USER_PASSWORD;
const OUT = process.env.BROWSER_OUT ?? path.resolve(import.meta.dirname, "../../target/browser");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const DEPLOY_API = process.env.DEPLOY_API;
const WAIT = 15_000;
/** What the probe plugin puts in labels, prompts and completions. */
const XSS = '<img src=x onerror="window.__xss=1">';

assert.ok(BASE && ADMIN_PASSWORD && USER_PASSWORD && DEPLOY_API, "run me through scripts/browser-test.sh");

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

async function open(name, password, { wsRoute, viewport = { width: 1280, height: 860 }, colorScheme = "light", clock } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
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
  // The browser's idea of now (the server keeps its own).
  if (clock) await page.clock.setFixedTime(clock);
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

  await t.test("people are names: presence, and the member list with roles", async () => {
    // Bob never met the admin on this browser: the name comes from the member list.
    await bob.locator("#participants li", { hasText: /^admin$/ }).waitFor({ timeout: WAIT });
    assert.equal(await bob.locator("#participants li", { hasText: "user …" }).count(), 0);
    await bob.click("#people-summary");
    await bob.locator("#member-list li").nth(1).waitFor({ timeout: WAIT });
    const rows = await bob.locator("#member-list li").evaluateAll((lis) => lis.map((li) => ({
      name: li.querySelector(".member-name").textContent,
      role: li.querySelector(".member-role").textContent,
      owner: li.querySelector(".member-owner") !== null,
      here: li.dataset.here,
    })));
    assert.deepEqual(rows, [
      { name: "admin", role: "admin", owner: true, here: "true" },
      { name: "bob (you)", role: "analyst", owner: false, here: "true" },
    ]);
    assert.equal(await bob.textContent("#people-summary"), "People (2)");
    await bob.click("#people-summary"); // fold it again
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

  await t.test("the session list shows last activity, a preview and unread counts", async () => {
    // Bob has "Release planning" open; the admin posts in a second session bob is in.
    await bob.click(`#sessions li[data-id="${sessionId}"] button`);
    await page_createSession(admin, "Second room");
    const second = await admin.evaluate(() => location.hash.slice(1));
    await admin.fill("#member-name", "bob");
    await admin.press("#member-name", "Enter");
    await admin.locator("#notice", { hasText: "bob can now join" }).waitFor({ timeout: WAIT });
    await say(admin, "Fresh news in the second room");
    await message(admin, "Fresh news in the second room").waitFor({ timeout: WAIT });
    await say(admin, "and a second line");
    await message(admin, "and a second line").waitFor({ timeout: WAIT });
    await bob.click("#refresh");
    const entry = bob.locator(`#sessions li[data-id="${second}"]`);
    await entry.locator(".unread", { hasText: "2" }).waitFor({ timeout: WAIT });
    assert.equal(await entry.locator(".preview").textContent(), "admin: and a second line");
    assert.match(await entry.locator(".session-time").textContent(), /\d/);
    assert.equal(await entry.locator(".unread").textContent(), "2 unread");
    // Newest activity first.
    assert.equal(await bob.locator("#sessions li").first().getAttribute("data-id"), second);
    // The open session counts nothing as unread; opening the other one reads it.
    assert.equal(await bob.locator(`#sessions li[data-id="${sessionId}"] .unread`).count(), 0);
    await entry.locator("button").click();
    await message(bob, "and a second line").waitFor({ timeout: WAIT });
    await bob.click(`#sessions li[data-id="${sessionId}"] button`);
    await bob.click("#refresh");
    await bob.locator(`#sessions li[data-id="${second}"] .preview`, { hasText: "and a second line" }).waitFor({ timeout: WAIT });
    assert.equal(await bob.locator(`#sessions li[data-id="${second}"] .unread`).count(), 0, "read");
    // The admin's own list follows its posts live, without a refresh.
    assert.equal(await admin.locator(`#sessions li[data-id="${second}"] .preview`).textContent(), "You: and a second line");
  });

  await t.test("a refused command keeps its text with the error", async () => {
    await vera.click(`#sessions li:has-text("Vera's notes") button`);
    await say(vera, "A note for later");
    await message(vera, "A note for later").waitFor({ timeout: WAIT });
    await say(vera, "/reload now");
    const card = vera.locator("#message-list li.role-error").last();
    await card.waitFor({ timeout: WAIT });
    assert.equal(await card.locator(".refused").textContent(), "/reload now");
    assert.equal(await card.locator(".plain").textContent(), "/reload needs the analyst role");
    assert.equal(await vera.inputValue("#input"), "/reload now", "back in the box to fix");
    await vera.fill("#input", "");
  });

  await t.test("timestamps carry the date when not today", async () => {
    const today = vera.locator("#message-list li.message", { hasText: "A note for later" }).locator("time");
    assert.match(await today.textContent(), /^\d{1,2}:\d{2}/, "today: the time of day only");
    // Three days on (the browser's clock), the same message shows its date.
    const later = await open("vera", USER_PASSWORD, { clock: new Date(Date.now() + 3 * 86_400_000) });
    await later.click(`#sessions li:has-text("Vera's notes") button`);
    const stamp = later.locator("#message-list li.message", { hasText: "A note for later" }).locator("time");
    await stamp.waitFor({ timeout: WAIT });
    const { text, month } = await stamp.evaluate((t) => ({
      text: t.textContent,
      month: new Date(t.dateTime).toLocaleDateString([], { month: "short" }),
    }));
    assert.ok(text.includes(month) && /\d{1,2}:\d{2}/.test(text), `a date and a time: ${text}`);
    await later.context().close();
  });

  await t.test("on a phone (390×844, and 360 wide) the sessions are a drawer", async () => {
    for (const width of [390, 360]) {
      const phone = await open("vera", USER_PASSWORD, { viewport: { width, height: 844 } });
      // Nothing open yet: the drawer is, with the whole brand and the list in reach.
      await phone.locator("#app.drawer-open").waitFor({ timeout: WAIT });
      const notes = phone.locator(`#sessions li:has-text("Vera's notes") button`);
      await notes.waitFor({ timeout: WAIT });
      await phone.waitForTimeout(300); // the slide-in
      const box = await phone.evaluate(() => {
        const r = (s) => document.querySelector(s).getBoundingClientRect().toJSON();
        return { brand: r(".brand h1"), sidebar: r("#sidebar"), entry: r("#sessions li button") };
      });
      assert.ok(box.sidebar.left >= 0 && box.sidebar.width >= 280, `the drawer is open and wide: ${JSON.stringify(box.sidebar)}`);
      assert.ok(box.brand.left >= box.sidebar.left && box.brand.right <= box.sidebar.right, "the logo is not clipped");
      assert.ok(box.entry.bottom <= 844 && box.entry.right <= width, "a session is in reach");
      if (width === 390) {
        assert.deepEqual(await axe(phone), [], "the open drawer: axe found violations");
        await phone.screenshot({ path: path.join(OUT, "phone-drawer.png") });
      }
      // Picking a session closes it; the conversation has the whole screen.
      await notes.click();
      await phone.locator("#app:not(.drawer-open)").waitFor({ timeout: WAIT });
      await message(phone, "A note for later").waitFor({ timeout: WAIT });
      assert.equal(await phone.textContent("#topbar-title"), "Vera's notes");
      assert.ok(await phone.evaluate(() => document.getElementById("sidebar").inert), "the closed drawer is out of the focus order");
      const fits = await phone.evaluate((w) => ({
        scroll: document.documentElement.scrollWidth <= w,
        out: [...document.querySelectorAll("#topbar, #chat-header, .online, .message, #composer, #input, #send")]
          .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 1).map((e) => e.id || e.className),
        input: document.getElementById("input").getBoundingClientRect().bottom <= window.innerHeight,
      }), width);
      assert.deepEqual(fits, { scroll: true, out: [], input: true });
      if (width === 390) {
        assert.deepEqual(await axe(phone), [], "the conversation on a phone: axe found violations");
        await phone.screenshot({ path: path.join(OUT, "phone-chat.png") });
      }
      // The menu button opens it again; Escape and the scrim close it.
      await phone.click("#menu");
      await phone.locator("#app.drawer-open").waitFor({ timeout: WAIT });
      assert.equal(await phone.getAttribute("#menu", "aria-expanded"), "true");
      await phone.keyboard.press("Escape");
      await phone.locator("#app:not(.drawer-open)").waitFor({ timeout: WAIT });
      assert.equal(await phone.evaluate(() => document.activeElement?.id), "menu", "focus goes back to the button");
      await phone.click("#menu");
      await phone.locator("#app.drawer-open").waitFor({ timeout: WAIT });
      await phone.waitForTimeout(300);
      await phone.mouse.click(width - 8, 400);
      await phone.locator("#app:not(.drawer-open)").waitFor({ timeout: WAIT });
      await phone.context().close();
    }
  });

  await t.test("no accessibility violations (axe-core, WCAG 2 A and AA)", async () => {
    await admin.click(`#sessions li[data-id="${sessionId}"] button`);
    await message(admin, "Welcome back").waitFor({ timeout: WAIT });
    await admin.click("#people-summary");
    for (const scheme of ["light", "dark"]) {
      await admin.emulateMedia({ colorScheme: scheme });
      assert.deepEqual(await axe(admin), [], `${scheme}: axe found violations`);
    }
    await admin.emulateMedia({ colorScheme: "light" });
    await admin.click("#people-summary");
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

});

/** What axe-core finds wrong on the page, one line per violation and element. */
async function axe(page) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () =>
    (await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })).violations);
  return violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")}: ${n.failureSummary}`));
}

async function page_createSession(page, title) {
  await page.fill("#new-session-title", title);
  await page.press("#new-session-title", "Enter");
  await page.locator("#session-title", { hasText: title }).waitFor({ timeout: WAIT });
}

// ---------- commands: the popup, argument hints and completion, confirmations, buttons, progress ----------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns true; fail with what it last returned. */
async function until(what, fn, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last === true) return;
    } catch (e) { last = e.message; }
    if (Date.now() > end) assert.fail(`${what}: last saw ${JSON.stringify(last)}`);
    await sleep(50);
  }
}

/** What the popup offers: completion values, or command names. */
const offered = (page) =>
  page.locator("#suggestions:not([hidden]) li").evaluateAll((lis) => lis.map((li) => li.dataset.value ?? li.dataset.command));

async function untilOffered(page, want) {
  await until(`the popup offers ${want}`, async () => {
    const got = await offered(page);
    return JSON.stringify(got) === JSON.stringify(want) || got;
  });
}

/** A REST GET as the page's user. */
const rest = (page, path) => page.evaluate(async (path) => {
  const auth = JSON.parse(sessionStorage.getItem("slashd.auth"));
  const res = await fetch(path, { headers: { authorization: `Bearer ${auth.token}` } });
  return res.json();
}, path);

/**
 * Frames sent over a second, raw socket of the page's user (joined to `sessionId`), past
 * what the page would send: each frame's direct answer (by its id).
 */
const raw = (page, sessionId, frames) => page.evaluate(async ({ sessionId, frames }) => {
  const auth = JSON.parse(sessionStorage.getItem("slashd.auth"));
  // (`?raw`: not matched by the tests' /ws$/ routes, so a routed page's sockets stay its own.)
  const ws = new WebSocket(`ws://${location.host}/ws?raw`);
  const waiting = new Map();
  ws.onmessage = (ev) => {
    const f = JSON.parse(ev.data);
    if (f.id !== undefined && waiting.has(f.id)) { waiting.get(f.id)(f); waiting.delete(f.id); }
  };
  await new Promise((ok) => (ws.onopen = ok));
  const ask = (frame) => new Promise((ok) => {
    waiting.set(frame.id, ok);
    ws.send(JSON.stringify(frame));
    setTimeout(() => ok({ type: "no answer" }), 5000);
  });
  ws.send(JSON.stringify({ type: "auth", token: auth.token }));
  await ask({ type: "join", session_id: sessionId, id: "join" });
  const out = [];
  for (const f of frames) out.push(await ask(f));
  ws.close();
  return out;
}, { sessionId, frames });

/** No markup from a plugin ran or became an element. */
async function inert(page) {
  const found = await page.evaluate(() => ({
    xss: window.__xss,
    elements: document.querySelectorAll("body img, body script, body svg, body iframe").length,
    handlers: [...document.querySelectorAll("body *")]
      .filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
  }));
  assert.deepEqual(found, { xss: undefined, elements: 0, handlers: 0 });
}

const deployments = async () => (await (await fetch(`${DEPLOY_API}/_log`)).json()).deployments;

test("commands: the popup, argument hints and completion, confirmations, buttons, progress", async (t) => {
  let admin, bob, vera, sessionId, commands;
  /** The admin page's sockets (routed), to put a frame in front of the page … */
  const adminSockets = [];
  /** … and what the page sent on them, when. */
  const adminSent = [];

  await t.test("admin's session, with bob and vera as members", async () => {
    admin = await open("admin", ADMIN_PASSWORD, {
      wsRoute: (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => { adminSent.push({ at: Date.now(), frame: JSON.parse(m) }); server.send(m); });
        server.onMessage((m) => ws.send(m));
        adminSockets.push(ws);
      },
    });
    await page_createSession(admin, "Commands");
    sessionId = await admin.evaluate(() => location.hash.slice(1));
    for (const name of ["bob", "vera"]) {
      await admin.fill("#member-name", name);
      await admin.press("#member-name", "Enter");
      await admin.locator("#notice", { hasText: `${name} can now join` }).waitFor({ timeout: WAIT });
    }
    bob = await open("bob", USER_PASSWORD);
    vera = await open("vera", USER_PASSWORD);
    for (const [page, name] of [[bob, "bob"], [vera, "vera"]]) {
      await page.click(`#sessions li[data-id="${sessionId}"] button`);
      await page.locator("#participants li", { hasText: `${name} (you)` }).waitFor({ timeout: WAIT });
      await admin.locator("#participants li", { hasText: name }).waitFor({ timeout: WAIT });
    }
    commands = (await rest(admin, "/commands")).commands;
  });

  await t.test("the / popup lists every command, scrolls, and follows the keyboard", async () => {
    assert.ok(commands.length > 8, `more than 8 commands to list: ${commands.length}`);
    await admin.fill("#input", "/");
    await admin.locator("#suggestions li").first().waitFor({ timeout: WAIT });
    assert.equal(await admin.locator("#suggestions li").count(), commands.length, "every command, not the first 8");
    const box = admin.locator("#suggestions");
    assert.ok(await box.evaluate((b) => b.scrollHeight > b.clientHeight), "the popup scrolls");
    const active = () => box.evaluate((b) => {
      const li = b.querySelector("li.selected");
      if (!li) return null;
      const r = li.getBoundingClientRect();
      const o = b.getBoundingClientRect();
      return {
        index: [...b.children].indexOf(li),
        visible: r.top >= o.top - 1 && r.bottom <= o.bottom + 1,
        described: document.getElementById("input").getAttribute("aria-activedescendant") === li.id
          && li.getAttribute("aria-selected") === "true",
        name: li.dataset.command,
        scrollTop: b.scrollTop,
      };
    });
    for (let i = 0; i < 9; i++) await admin.press("#input", "ArrowDown");
    const ninth = await active();
    assert.equal(ninth?.index, 8, "the 9th is picked");
    assert.ok(ninth.visible && ninth.described, `the 9th is in view and announced: ${JSON.stringify(ninth)}`);
    await admin.press("#input", "Enter");
    assert.equal(await admin.inputValue("#input"), `/${ninth.name} `, "Enter takes the 9th");
    // Up from nothing picked goes to the last, scrolled into view.
    await admin.fill("#input", "/");
    await admin.press("#input", "ArrowUp");
    const last = await active();
    assert.equal(last.index, commands.length - 1);
    assert.ok(last.visible && last.scrollTop > 0, `the last is scrolled into view: ${JSON.stringify(last)}`);
    await admin.press("#input", "Escape");
    assert.ok(await box.isHidden(), "Escape closes the popup");
    assert.equal(await admin.inputValue("#input"), "/");
    await admin.fill("#input", "");
  });

  await t.test("typing a command's arguments shows its usage, the current one marked", async () => {
    const deploy = commands.find((c) => c.name === "deploy");
    assert.ok(deploy?.args, "/deploy has typed args");
    assert.equal(deploy.usage, "/deploy <service> [--env staging|prod]");
    const hint = admin.locator("#arg-hint");
    const activeArg = () => hint.locator(".hint-part.active").getAttribute("data-arg");
    await admin.fill("#input", "/deploy ");
    await hint.waitFor({ timeout: WAIT });
    assert.equal(await hint.locator(".hint-usage").textContent(), deploy.usage);
    assert.equal(await activeArg(), "service");
    assert.match(await hint.locator(".hint-about").textContent(), /^service — The service to deploy \(text, required\)$/);
    await admin.fill("#input", "/deploy api --env ");
    assert.equal(await activeArg(), "env");
    assert.match(await hint.locator(".hint-about").textContent(), /one of staging, prod/);
    await admin.fill("#input", "/probe-typed ");
    assert.equal(await activeArg(), "count");
    assert.match(await hint.locator(".hint-about").textContent(), /integer 1–10.*default 1/);
    await admin.fill("#input", "/probe-typed --force --e");
    assert.equal(await activeArg(), "env");
    await admin.fill("#input", "/probe-typed 3 prod ");
    assert.equal(await activeArg(), "force");
    await admin.fill("#input", "just chatting");
    assert.ok(await hint.isHidden(), "no hint for a chat line");
    await admin.fill("#input", "");
  });

  await t.test("arguments complete from the server, in the same popup", async () => {
    await admin.type("#input", "/depl");
    await admin.press("#input", "Tab");
    assert.equal(await admin.inputValue("#input"), "/deploy ");
    await untilOffered(admin, ["api", "web", "worker", "slow", "broken"]);
    assert.equal(await admin.locator('#suggestions li[data-value="api"] .summary').textContent(), "deploy api");
    await admin.screenshot({ path: path.join(OUT, "command-completion.png") });
    await admin.type("#input", "w");
    await untilOffered(admin, ["web", "worker"]);
    await admin.press("#input", "ArrowDown");
    await admin.press("#input", "ArrowDown");
    await admin.press("#input", "Enter");
    assert.equal(await admin.inputValue("#input"), "/deploy worker ");
    await admin.type("#input", "--");
    await untilOffered(admin, ["--env"]);
    await admin.press("#input", "Tab");
    assert.equal(await admin.inputValue("#input"), "/deploy worker --env ");
    await untilOffered(admin, ["staging", "prod"]);
    await admin.press("#input", "Escape");
    // /help completes command names.
    await admin.fill("#input", "/help depl");
    await untilOffered(admin, ["deploy"]);
    await admin.press("#input", "Tab");
    assert.equal(await admin.inputValue("#input"), "/help deploy ");
    // `from` counts code points: the value replaces the right part after astral characters.
    await admin.fill("#input", "/probe-typed --env 😀😀 --who adm");
    await untilOffered(admin, ["admin"]);
    await admin.press("#input", "Tab");
    assert.equal(await admin.inputValue("#input"), "/probe-typed --env 😀😀 --who admin ");
    // A plugin's completions, with markup in their labels: shown as text.
    await admin.fill("#input", "/probe-pick P");
    await untilOffered(admin, ["P1", "P2", "P3"]);
    assert.equal(await admin.locator('#suggestions li[data-value="P2"] .summary').textContent(), `${XSS} P2 for admin`);
    await inert(admin);
    await admin.screenshot({ path: path.join(OUT, "completion-labels.png") });
    await admin.press("#input", "ArrowDown");
    await admin.press("#input", "Enter");
    assert.equal(await admin.inputValue("#input"), "/probe-pick P1 ");
    await admin.press("#input", "Enter");
    await commandReply(admin, "probe-pick").filter({ hasText: "picked P1" }).waitFor({ timeout: WAIT });
  });

  await t.test("completion asks at most every 150 ms and shows only the latest answer", async () => {
    await admin.fill("#input", "");
    const start = adminSent.length;
    const t0 = Date.now();
    await admin.type("#input", "/probe-pick abcdefghijkl", { delay: 15 });
    const took = Date.now() - t0;
    const want = ["abcdefghijkl1", "abcdefghijkl2", "abcdefghijkl3"];
    await untilOffered(admin, want);
    const asked = adminSent.slice(start).filter((s) => s.frame.type === "complete");
    assert.equal(asked.at(-1).frame.line, "/probe-pick abcdefghijkl", "the last line typed is asked about");
    assert.ok(asked.length <= Math.ceil(took / 150) + 1, `${asked.length} complete frames in ${took} ms`);
    const gaps = asked.slice(1).map((s, i) => s.at - asked[i].at);
    assert.ok(gaps.every((g) => g >= 120), `at least ~150 ms apart: ${gaps}`);
    // An answer to an older question is ignored.
    adminSockets[adminSockets.length - 1].send(JSON.stringify({
      type: "completions", id: asked[0].frame.id, items: [{ value: "stale", label: "old" }], from: 12,
    }));
    await sleep(300);
    assert.deepEqual(await offered(admin), want);
    await admin.fill("#input", "");
  });

  await t.test("the server's completion answers (a raw socket)", async () => {
    const [deploy, pick, astral] = await raw(admin, sessionId, [
      { type: "complete", id: "c1", session_id: sessionId, line: "/deploy ap" },
      { type: "complete", id: "c2", session_id: sessionId, line: "/pe" },
      { type: "complete", id: "c3", session_id: sessionId, line: "/probe-typed --env 😀😀 --who adm" },
    ]);
    assert.deepEqual(deploy, { type: "completions", id: "c1", items: [{ value: "api", label: "deploy api" }], from: 8 });
    assert.equal(pick.type, "completions");
    assert.equal(pick.from, 1);
    assert.equal(astral.from, 28, "from counts code points (not UTF-16 units, not bytes)");
  });

  await t.test("a command that asks first gets a modal confirmation", async () => {
    const dialog = admin.locator("#confirm-dialog");
    const prompt = commands.find((c) => c.name === "probe-confirm")?.confirm;
    assert.ok(prompt?.includes(XSS), `the probe's prompt carries markup: ${prompt}`);
    const invocations = admin.locator("#message-list li.role-user", { hasText: "/probe-confirm" });
    // Escape declines: nothing is stored.
    await say(admin, "/probe-confirm");
    await dialog.waitFor({ timeout: WAIT });
    assert.equal(await admin.locator("#confirm-prompt").textContent(), prompt);
    assert.ok(await dialog.evaluate((d) => d.open && d.matches(":modal")), "a modal dialog");
    assert.equal(await admin.evaluate(() => document.activeElement?.id), "confirm-ok");
    await inert(admin);
    await admin.screenshot({ path: path.join(OUT, "confirm.png") });
    await admin.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden", timeout: WAIT });
    await admin.locator("#notice", { hasText: "Cancelled" }).waitFor({ timeout: WAIT });
    assert.equal(await admin.evaluate(() => document.activeElement?.id), "input", "focus goes back");
    await sleep(500);
    assert.equal(await invocations.count(), 0, "declined: nothing stored");
    // Enter confirms: the command runs as if just sent.
    await say(admin, "/probe-confirm");
    await dialog.waitFor({ timeout: WAIT });
    await admin.keyboard.press("Enter");
    await dialog.waitFor({ state: "hidden", timeout: WAIT });
    await commandReply(admin, "probe-confirm").filter({ hasText: "confirmed" }).waitFor({ timeout: WAIT });
    await commandReply(bob, "probe-confirm").filter({ hasText: "confirmed" }).waitFor({ timeout: WAIT });
    assert.equal(await invocations.count(), 1);
    // The Cancel button declines too (/clear asks first).
    await say(admin, "/clear");
    await dialog.waitFor({ timeout: WAIT });
    assert.ok((await admin.locator("#confirm-prompt").textContent()).length > 0);
    await admin.click("#confirm-cancel");
    await dialog.waitFor({ state: "hidden", timeout: WAIT });
    await sleep(300);
    assert.equal(await invocations.count(), 1, "nothing cleared");
    // A confirmation closes by itself when it expires (a frame put in front of the page).
    const live = adminSockets[adminSockets.length - 1];
    live.send(JSON.stringify({
      type: "confirm_required", confirmation_id: "test-expiring", prompt: "This one expires",
      expires_at: new Date(Date.now() + 1500).toISOString(),
    }));
    await admin.locator("#confirm-prompt", { hasText: "This one expires" }).waitFor({ timeout: WAIT });
    await dialog.waitFor({ state: "hidden", timeout: 6000 });
    await admin.locator("#notice", { hasText: "expired" }).waitFor({ timeout: WAIT });
  });

  await t.test("buttons under a reply: roles, once, confirm, live updates", async () => {
    await say(admin, `/probe-buttons ${XSS}`);
    const reply = (page) => commandReply(page, "probe-buttons").filter({ hasText: "buttons for" }).last();
    const button = (page, id) => reply(page).locator(`button.action-button[data-action-id="${id}"]`);
    const reason = (page, id) => button(page, id).locator("xpath=following-sibling::small[1]");
    const pressed = (page, text) => commandReply(page, "probe-buttons").filter({ hasText: text });
    for (const page of [admin, bob, vera]) await button(page, "go").waitFor({ timeout: WAIT });
    assert.equal(await reply(admin).locator(".body").textContent(), `buttons for ${XSS}`);
    assert.equal(await button(admin, "go").textContent(), XSS);
    assert.equal(await button(admin, "once").textContent(), `Once: ${XSS}`);
    assert.equal(await button(admin, "sure").textContent(), `Sure? ${XSS}`);
    assert.match(await button(admin, "admin").getAttribute("class"), /style-danger/);
    for (const page of [admin, bob, vera]) await inert(page);
    // Below the button's role: disabled, and why.
    assert.ok(await button(admin, "admin").isEnabled(), "an admin may press it");
    for (const page of [bob, vera]) {
      assert.ok(await button(page, "admin").isDisabled());
      assert.equal(await reason(page, "admin").textContent(), "needs the admin role");
      assert.match(await button(page, "admin").getAttribute("title"), /needs the admin role/);
    }
    await reply(vera).screenshot({ path: path.join(OUT, "reply-buttons.png") });
    await vera.screenshot({ path: path.join(OUT, "reply-buttons-page.png") });
    // A press: the plugin's reply goes to everyone, saying who pressed.
    await button(vera, "go").click();
    for (const page of [admin, bob, vera]) await pressed(page, "go pressed by vera").waitFor({ timeout: WAIT });
    assert.match(await pressed(admin, "go pressed by vera").locator(".cmd-meta").textContent(), /“go” pressed by vera/);
    // A once-only button: used for everyone, live …
    await button(vera, "once").click();
    for (const page of [admin, bob, vera]) {
      await pressed(page, "once pressed by vera").waitFor({ timeout: WAIT });
      await reply(page).locator('button[data-action-id="once"][data-state="used"]').waitFor({ timeout: WAIT });
      assert.ok(await button(page, "once").isDisabled());
      assert.equal(await reason(page, "once").textContent(), "already used");
    }
    assert.ok(await button(admin, "go").isEnabled(), "a reusable button stays");
    // … and after a reload, from the history.
    await bob.reload();
    await bob.locator('#conn[data-state="connected"]').waitFor({ timeout: WAIT });
    await reply(bob).locator('button[data-action-id="once"][data-state="used"]').waitFor({ timeout: WAIT });
    // What the server says to presses the page would not send.
    const messageId = await reply(vera).getAttribute("data-id");
    const press = (id, action) => ({ type: "action", id, session_id: sessionId, message_id: messageId, action_id: action });
    const [forbidden, again, nothing] = await raw(vera, sessionId, [press("p1", "admin"), press("p2", "once"), press("p3", "nope")]);
    assert.equal(forbidden.type, "error"); assert.equal(forbidden.code, "forbidden");
    assert.equal(again.type, "error"); assert.equal(again.code, "bad_request"); assert.match(again.message, /already used/);
    assert.equal(nothing.type, "error"); assert.equal(nothing.code, "not_found");
    // A button that asks first.
    await button(vera, "sure").click();
    await vera.locator("#confirm-dialog").waitFor({ timeout: WAIT });
    assert.equal(await vera.locator("#confirm-prompt").textContent(), `Really ${XSS}?`);
    await inert(vera);
    await vera.keyboard.press("Enter");
    for (const page of [admin, vera]) await pressed(page, "sure pressed by vera").waitFor({ timeout: WAIT });
    // The admin's own button; a failing one shows the error.
    await button(admin, "admin").click();
    await pressed(bob, "admin pressed by admin").waitFor({ timeout: WAIT });
    await button(bob, "fail").click();
    await bob.locator("#message-list li.role-error", { hasText: "failed on purpose" }).waitFor({ timeout: WAIT });
    for (const page of [admin, bob, vera]) await inert(page);
  });

  /** The invocation message of `text` on bob's page, and its progress line on a page. */
  const invocation = (page, text) => page.locator("#message-list li.role-user", { hasText: text }).last();
  const progressOf = (page, id) => page.locator(`#message-list li[data-id="${id}"] .progress`);

  await t.test("a running command shows progress and can be cancelled by its invoker or an admin", async () => {
    await say(bob, "/deploy slow");
    await invocation(bob, "/deploy slow").locator(".progress").waitFor({ timeout: WAIT });
    const id = await invocation(bob, "/deploy slow").getAttribute("data-id");
    for (const page of [admin, bob, vera]) await progressOf(page, id).waitFor({ timeout: WAIT });
    const line = progressOf(bob, id);
    assert.equal(await line.locator(".progress-command").textContent(), "/deploy");
    await until("the progress text", async () => /waiting for a slot/.test(await line.locator(".progress-text").textContent()));
    await until("a bar at 10%", () => line.locator("progress").evaluate((b) => !b.hidden && Math.abs(b.value - 0.1) < 1e-6));
    assert.ok(await progressOf(bob, id).locator(".progress-cancel").isVisible(), "the invoker may cancel");
    assert.ok(await progressOf(admin, id).locator(".progress-cancel").isVisible(), "an admin may cancel");
    assert.ok(await progressOf(vera, id).locator(".progress-cancel").isHidden(), "another viewer may not");
    await bob.screenshot({ path: path.join(OUT, "progress.png") });
    await line.locator(".progress-cancel").click();
    for (const page of [bob, admin]) {
      await page.locator(`#message-list li[data-id="${id}"] .progress[data-state="cancelled"]`).waitFor({ timeout: WAIT });
    }
    await bob.locator("#message-list li.role-error", { hasText: "cancelled" }).waitFor({ timeout: WAIT });
    await progressOf(bob, id).waitFor({ state: "detached", timeout: WAIT });
  });

  await t.test("a failed command's progress line says so; the reason goes to its invoker", async () => {
    await say(bob, "/deploy broken");
    await invocation(bob, "/deploy broken").locator(".progress").waitFor({ timeout: WAIT });
    const id = await invocation(bob, "/deploy broken").getAttribute("data-id");
    for (const page of [bob, vera]) {
      await page.locator(`#message-list li[data-id="${id}"] .progress[data-state="failed"]`).waitFor({ timeout: WAIT });
    }
    await bob.locator("#message-list li.role-error", { hasText: "health check failed" }).waitFor({ timeout: WAIT });
    assert.equal(await vera.locator("#message-list li.role-error", { hasText: "health check failed" }).count(), 0);
  });

  await t.test("a deploy runs to the end, then its reply has buttons", async () => {
    const before = (await deployments()).length;
    await say(bob, "/deploy api");
    await invocation(bob, "/deploy api").locator(".progress").waitFor({ timeout: WAIT });
    const id = await invocation(bob, "/deploy api").getAttribute("data-id");
    await progressOf(vera, id).waitFor({ timeout: WAIT });
    await bob.locator(`#message-list li[data-id="${id}"] .progress[data-state="done"]`).waitFor({ timeout: WAIT });
    const reply = (page) => commandReply(page, "deploy").filter({ hasText: "Deployed" }).last();
    await reply(bob).waitFor({ timeout: WAIT });
    assert.equal(await reply(bob).locator(".body strong").first().textContent(), "api");
    await progressOf(bob, id).waitFor({ state: "detached", timeout: WAIT });
    const made = (await deployments()).slice(before);
    assert.deepEqual(made.map(({ service, env, by }) => ({ service, env, by })), [{ service: "api", env: "staging", by: "bob" }]);
    // The buttons: status for analysts, roll back for admins (confirmed, once).
    const button = (page, id) => reply(page).locator(`button.action-button[data-action-id="${id}"]`);
    for (const page of [admin, bob, vera]) await button(page, "rollback").waitFor({ timeout: WAIT });
    assert.ok(await button(bob, "status").isEnabled());
    assert.ok(await button(bob, "rollback").isDisabled());
    assert.match(await reply(bob).locator(".actions").textContent(), /needs the admin role/);
    assert.ok(await button(vera, "status").isDisabled());
    assert.match(await reply(vera).locator(".actions").textContent(), /needs the analyst role/);
    assert.ok(await button(admin, "rollback").isEnabled() && await button(admin, "status").isEnabled());
    await reply(admin).screenshot({ path: path.join(OUT, "deploy-reply.png") });
    await button(bob, "status").click();
    await commandReply(vera, "deploy").filter({ hasText: /api in staging \(d-\d+\): succeeded/ }).waitFor({ timeout: WAIT });
    await button(admin, "rollback").click();
    await admin.locator("#confirm-dialog").waitFor({ timeout: WAIT });
    assert.equal(await admin.locator("#confirm-prompt").textContent(), "Roll back api in staging?");
    await admin.click("#confirm-ok");
    await commandReply(bob, "deploy").filter({ hasText: "Rolling back" }).waitFor({ timeout: WAIT });
    for (const page of [admin, bob]) {
      await reply(page).locator('button[data-action-id="rollback"][data-state="used"]').waitFor({ timeout: WAIT });
    }
    assert.ok((await deployments()).some((d) => d.rollback_of === made[0]?.id && d.by === "admin"), "the API was asked to roll back");
  });

  await t.test("at a phone's width the reply's buttons and the popup fit", async () => {
    const phone = await open("vera", USER_PASSWORD, { viewport: { width: 390, height: 844 } });
    await phone.click(`#sessions li[data-id="${sessionId}"] button`);
    const reply = commandReply(phone, "probe-buttons").filter({ hasText: "buttons for" }).last();
    await reply.locator(".actions button").first().waitFor({ timeout: WAIT });
    await reply.scrollIntoViewIfNeeded();
    const fits = () => phone.evaluate(() => {
      const w = document.documentElement.clientWidth;
      const out = [...document.querySelectorAll(".actions button, #suggestions, #composer, .message")]
        .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > w + 1).length;
      return { scroll: document.documentElement.scrollWidth <= w, out };
    });
    assert.deepEqual(await fits(), { scroll: true, out: 0 });
    await phone.screenshot({ path: path.join(OUT, "phone-buttons.png") });
    await phone.fill("#input", "/");
    await phone.locator("#suggestions li").first().waitFor({ timeout: WAIT });
    assert.deepEqual(await fits(), { scroll: true, out: 0 });
    await phone.screenshot({ path: path.join(OUT, "phone-popup.png") });
    await phone.context().close();
  });

  await t.test("dark mode follows the system setting, with readable contrast", async () => {
    const luminance = ([r, g, b]) => {
      const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const contrast = (a, b) => { const [x, y] = [luminance(a), luminance(b)].sort((m, n) => n - m); return (x + 0.05) / (y + 0.05); };
    const colours = (page) => page.evaluate(() => {
      const rgb = (s) => s.match(/\d+/g).slice(0, 3).map(Number);
      const body = getComputedStyle(document.documentElement);
      const message = document.querySelector(".message");
      return {
        bg: rgb(body.backgroundColor),
        ink: rgb(body.color),
        panel: message ? rgb(getComputedStyle(message).backgroundColor) : null,
        muted: rgb(getComputedStyle(document.querySelector("#conn") ?? document.body).color),
      };
    });
    for (const scheme of ["light", "dark"]) {
      const page = await open("vera", USER_PASSWORD, { colorScheme: scheme });
      await page.click(`#sessions li[data-id="${sessionId}"] button`);
      await page.locator(".message").first().waitFor({ timeout: WAIT });
      const c = await colours(page);
      if (scheme === "dark") assert.ok(luminance(c.bg) < 0.05, `dark background: ${c.bg}`);
      else assert.ok(luminance(c.bg) > 0.8, `light background: ${c.bg}`);
      assert.ok(contrast(c.ink, c.bg) >= 7, `${scheme}: text on the page ${c.ink} / ${c.bg}`);
      assert.ok(contrast(c.ink, c.panel) >= 7, `${scheme}: text on a message ${c.ink} / ${c.panel}`);
      assert.ok(contrast(c.muted, c.bg) >= 3, `${scheme}: secondary text ${c.muted} / ${c.bg}`);
      await page.screenshot({ path: path.join(OUT, `chat-${scheme}.png`) });
      await page.context().close();
    }
  });
});

test("no page reported a script error or a CSP violation", () => {
  assert.deepEqual(problems, []);
});
