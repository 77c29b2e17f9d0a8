// npm install ws; CHAT_TOKEN=… node chat.mjs SESSION_ID "hello"
import WebSocket from "ws";
const [session, text] = process.argv.slice(2);
const ws = new WebSocket(process.env.CHAT_URL ?? "ws://localhost:8080/ws", {
  headers: { Authorization: `Bearer ${process.env.CHAT_TOKEN}` },
});
const send = (frame) => ws.send(JSON.stringify(frame));
ws.on("message", (data) => {
  const frame = JSON.parse(data);
  console.log(frame.type, JSON.stringify(frame));
  if (frame.type === "ready") send({ type: "join", session_id: session, id: "j" });
  if (frame.type === "joined") send({ type: "message", session_id: session, content: text, id: "m" });
  if (frame.type === "message" && frame.message.content === text) ws.close();
  if (frame.type === "error") { process.exitCode = 1; ws.close(); }
});
