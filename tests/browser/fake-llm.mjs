// A stand-in for an OpenAI-compatible endpoint: every chat completion streams a short
// markdown reply in small pieces, slowly enough that the page shows it growing.
// Usage: node fake-llm.mjs PORT_FILE — listens on a free port and writes it to PORT_FILE.
import { createServer } from "node:http";
import { writeFileSync } from "node:fs";

const PIECES = ["Hello", " from", " the", " **fake", " model**", " — I", " stream", " slowly."];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = createServer(async (req, res) => {
  if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
    res.writeHead(404).end();
    return;
  }
  for await (const _ of req); // drain the request
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const chunk = (delta, finish = null) =>
    `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.write(chunk({ role: "assistant" }));
  for (const p of PIECES) {
    await sleep(350);
    res.write(chunk({ content: p }));
  }
  res.write(chunk({}, "stop"));
  res.end("data: [DONE]\n\n");
});

server.listen(0, "127.0.0.1", () => {
  writeFileSync(process.argv[2], String(server.address().port));
});
process.on("SIGTERM", () => process.exit(0));
