# pip install websockets; CHAT_TOKEN=… python chat.py SESSION_ID "hello"
import asyncio, json, os, sys
from websockets.asyncio.client import connect

async def main(session, text):
    url = os.environ.get("CHAT_URL", "ws://localhost:8080/ws")
    auth = {"Authorization": "Bearer " + os.environ["CHAT_TOKEN"]}
    async with connect(url, additional_headers=auth) as ws:
        await ws.send(json.dumps({"type": "join", "session_id": session, "id": "j"}))
        async for raw in ws:
            frame = json.loads(raw)
            print(frame["type"], raw)
            if frame["type"] == "joined":
                await ws.send(json.dumps({"type": "message", "session_id": session, "content": text, "id": "m"}))
            if frame["type"] == "error": sys.exit(1)
            if frame["type"] == "message" and frame["message"]["content"] == text: break

asyncio.run(main(*sys.argv[1:3]))
