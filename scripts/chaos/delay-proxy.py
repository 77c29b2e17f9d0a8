#!/usr/bin/env python3
"""A TCP proxy that delays what it forwards: the latency and jitter of scripts/cluster-chaos.sh
(this kernel has no tc netem).

    delay-proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT CONTROL_FILE

CONTROL_FILE holds "DELAY_MS JITTER_MS" (e.g. "200 50"; missing or "0 0": no delay) and is
read again whenever it changes, so the script turns latency on and off without dropping a
connection. Each chunk is held DELAY ± JITTER ms after it arrived, never overtaking the
chunk before it (TCP order is kept), in both directions.
"""

import asyncio
import os
import random
import sys
import time


class Delay:
    def __init__(self, path):
        self.path, self.mtime, self.value = path, None, (0.0, 0.0)

    def now(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
            if mtime != self.mtime:
                self.mtime = mtime
                with open(self.path) as f:
                    parts = f.read().split()
                self.value = (float(parts[0]) / 1000, float(parts[1]) / 1000) if len(parts) >= 2 else (0.0, 0.0)
        except (OSError, ValueError, IndexError):
            self.value = (0.0, 0.0)
        return self.value


async def pump(reader, writer, delay):
    queue = asyncio.Queue()
    done = object()

    async def deliver():
        while True:
            item = await queue.get()
            if item is done:
                break
            at, data = item
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    last = 0.0
    try:
        while data := await reader.read(65536):
            base, jitter = delay.now()
            at = time.monotonic() + max(0.0, base + random.uniform(-jitter, jitter))
            last = max(last, at)
            queue.put_nowait((last, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait(done)
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def main():
    listen, target, control = sys.argv[1:4]
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    delay = Delay(control)

    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(thost, int(tport))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, upstream_writer, delay),
            pump(upstream_reader, client_writer, delay),
        )

    server = await asyncio.start_server(handle, lhost, int(lport))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
