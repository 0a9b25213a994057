"""An asyncio echo server and its streaming clients, for the harness's server cases.

  server WHERE        the server alone (WHERE: a Unix socket path, HOST:PORT or [HOST]:PORT)
  client WHERE DIR    50 clients of it
  both WHERE DIR      the server, and the clients in a child process of it

Each client sends a byte stream of its own (a pattern whose period differs per
connection, so that crossed or shifted streams show) as fast as the server echoes it
and checks every byte that comes back. When DIR/stop appears the clients stop
sending, half-close, and read the rest: every byte sent must have come back once, in
order. The client prints "progress N" for each 16 MiB echoed and "ok ..." at the end;
anything wrong prints "FAIL ..." and exits 1."""
import asyncio
import os
import socket
import sys

CLIENTS = 50
CHUNK = 4096
READ = 65536
PROGRESS = 16 << 20


def pattern(c):
    period = 200 + c
    return period, bytes(((i % period) * 7 + c) & 0xFF for i in range(period + READ))


def address(where):
    """HOST:PORT, or [HOST]:PORT for IPv6."""
    host, port = where.rsplit(":", 1)
    return host.strip("[]"), int(port)


def listen(where):
    if where.startswith("/"):
        sk = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sk.bind(where)
    else:
        host, port = address(where)
        sk = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                           socket.SOCK_STREAM)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sk.bind((host, port))
    sk.listen(128)
    return sk


async def echo(reader, writer):
    while True:
        data = await reader.read(READ)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def serve(sk):
    if sk.family == socket.AF_UNIX:
        server = await asyncio.start_unix_server(echo, sock=sk)
    else:
        server = await asyncio.start_server(echo, sock=sk)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


class Totals:
    def __init__(self):
        self.echoed = 0
        self.reported = 0

    def add(self, n):
        self.echoed += n
        while self.echoed >= self.reported + PROGRESS:
            self.reported += PROGRESS
            print(f"progress {self.reported >> 20}", flush=True)


async def connect(where):
    if where.startswith("/"):
        return await asyncio.open_unix_connection(where, limit=READ)
    host, port = address(where)
    return await asyncio.open_connection(host, port, limit=READ)


async def receive(c, reader, period, block, totals):
    got = 0
    while True:
        data = await reader.read(READ)
        if not data:
            return got
        at = got % period
        if data != block[at:at + len(data)]:
            raise RuntimeError(f"connection {c}: the echo differs at byte {got}")
        got += len(data)
        totals.add(len(data))


async def stream(c, conn, stop, totals):
    reader, writer = conn
    period, block = pattern(c)
    rx = asyncio.create_task(receive(c, reader, period, block, totals))
    sent = 0
    while not stop.is_set():
        at = sent % period
        writer.write(block[at:at + CHUNK])
        sent += CHUNK
        await writer.drain()
        if rx.done():
            break
    if not rx.done():
        writer.write_eof()
    got = await rx
    writer.close()
    if got != sent:
        raise RuntimeError(f"connection {c}: sent {sent} bytes, {got} came back")
    return sent


async def watch(path, stop):
    while not os.path.exists(path):
        await asyncio.sleep(0.01)
    stop.set()


async def clients(where, dir):
    conns = [await connect(where) for _ in range(CLIENTS)]
    print(f"connected {CLIENTS}", flush=True)
    stop, totals = asyncio.Event(), Totals()
    watcher = asyncio.create_task(watch(os.path.join(dir, "stop"), stop))
    try:
        sent = await asyncio.gather(*(stream(c, conns[c], stop, totals)
                                      for c in range(CLIENTS)))
    finally:
        watcher.cancel()
    print(f"ok {CLIENTS} connections, {sum(sent)} bytes echoed", flush=True)


def client_main(where, dir):
    try:
        asyncio.run(clients(where, dir))
    except Exception as e:
        print(f"FAIL {e}", flush=True)
        return 1
    return 0


def main():
    what, where = sys.argv[1], sys.argv[2]
    if what == "client":
        return client_main(where, sys.argv[3])
    sk = listen(where)
    if what == "both" and os.fork() == 0:
        sk.close()
        os._exit(client_main(where, sys.argv[3]))
    asyncio.run(serve(sk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
