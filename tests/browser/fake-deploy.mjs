// A stand-in for the deploy API that plugins/examples/deploy speaks (see the top of its
// src/lib.rs), for the page's progress, cancel and button tests:
//   POST /deployments {"service","env","by"}  → 201 {"id"}
//   GET  /deployments/{id}                    → {"state","progress"?,"message"?}
//   POST /deployments/{id}/rollback {"by"}    → 201 {"id"} (the rollback, itself a deployment)
// Every call needs `Authorization: Bearer TOKEN`. A deployment runs ~2 s with increasing
// progress, then succeeds; service `slow` stays running until the command is cancelled (it
// is never told: it just stops being polled); service `broken` fails half way.
// GET /_log (no token; for the test) lists the deployments and the refused calls.
// Usage: node fake-deploy.mjs PORT_FILE TOKEN — listens on a free port, writes it to PORT_FILE.
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";

const [portFile, token] = process.argv.slice(2);
if (!portFile || !token) {
  console.error("usage: node fake-deploy.mjs PORT_FILE TOKEN");
  process.exit(2);
}
const RUN_MS = 2000;
const deployments = new Map();
let refused = 0;
let next = 1;

const send = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

const server = createServer(async (req, res) => {
  let body = "";
  for await (const chunk of req) body += chunk;
  const url = new URL(req.url, "http://localhost");
  if (req.method === "GET" && url.pathname === "/_log") {
    send(res, 200, { deployments: [...deployments.values()].map(view), refused });
    return;
  }
  if (req.headers.authorization !== `Bearer ${token}`) {
    refused++;
    send(res, 401, { error: "unauthorized" });
    return;
  }
  if (req.method === "POST" && url.pathname === "/deployments") {
    let json;
    try { json = JSON.parse(body); } catch { send(res, 400, { error: "not JSON" }); return; }
    if (typeof json?.service !== "string" || typeof json?.env !== "string") {
      send(res, 400, { error: "service and env are required" });
      return;
    }
    const id = `d-${next++}`;
    deployments.set(id, { id, service: json.service, env: json.env, by: json.by ?? null, started: Date.now(), polls: 0 });
    send(res, 201, { id });
    return;
  }
  const rb = /^\/deployments\/([^/]+)\/rollback$/.exec(url.pathname);
  if (req.method === "POST" && rb) {
    const d = deployments.get(decodeURIComponent(rb[1]));
    if (!d) { send(res, 404, { error: "no such deployment" }); return; }
    let by = null;
    try { by = JSON.parse(body || "{}").by ?? null; } catch { /* no body */ }
    const id = `d-${next++}`;
    deployments.set(id, { id, service: d.service, env: d.env, by, started: Date.now(), polls: 0, rollback_of: d.id });
    send(res, 201, { id });
    return;
  }
  const m = /^\/deployments\/([^/]+)$/.exec(url.pathname);
  if (req.method === "GET" && m) {
    const d = deployments.get(decodeURIComponent(m[1]));
    if (!d) { send(res, 404, { error: "no such deployment" }); return; }
    d.polls++;
    send(res, 200, status(d));
    return;
  }
  send(res, 404, { error: "not found" });
});

function status(d) {
  const f = Math.min(1, (Date.now() - d.started) / RUN_MS);
  if (d.service === "slow") return { state: "running", progress: 0.1, message: "waiting for a slot" };
  if (d.service === "broken" && f >= 0.5) return { state: "failed", message: "health check failed" };
  if (f >= 1) return { state: "succeeded", progress: 1, message: "all instances healthy" };
  return { state: "running", progress: Math.round(f * 100) / 100, message: `rolling out (${Math.round(f * 100)}%)` };
}

const view = (d) => ({
  id: d.id, service: d.service, env: d.env, by: d.by, polls: d.polls, state: status(d).state,
  rollback_of: d.rollback_of ?? null,
});

server.listen(0, "127.0.0.1", () => {
  writeFileSync(portFile, String(server.address().port));
});
process.on("SIGTERM", () => process.exit(0));
