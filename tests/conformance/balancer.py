"""A round-robin HTTP/1.1 balancer for the fleet tests: each request goes to the next origin in
turn, streamed both ways (SSE included), with no affinity of any kind. A request whose origin
refuses the connection (a killed replica) goes to the next one: nothing was sent, so that is
safe for any request. Every exchange uses its own upstream connection (`Connection: close`).

    python3 tests/conformance/balancer.py LISTEN_PORT ORIGIN_PORT [ORIGIN_PORT ...]

Prints one line per request (`origin method path status`) to stdout.
"""

import asyncio
import itertools
import sys

listen_port = int(sys.argv[1])
origins = [int(p) for p in sys.argv[2:]]
turns = itertools.cycle(range(len(origins)))


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], [line.split(":", 1) for line in lines[1:] if ":" in line]


async def pipe(reader, writer):
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass


async def serve(client_reader, client_writer):
    try:
        while True:
            try:
                request_line, headers = await read_head(client_reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
            body = await client_reader.readexactly(length) if length else b""
            kept = [(k, v) for k, v in headers if k.strip().lower() not in ("connection", "keep-alive")]
            head = request_line + "\r\n" + "".join(f"{k}:{v}\r\n" for k, v in kept) + "Connection: close\r\n\r\n"
            upstream = None
            for _ in origins:
                port = origins[next(turns)]
                try:
                    upstream = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    continue
            if upstream is None:
                client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await client_writer.drain()
                return
            up_reader, up_writer = upstream
            up_writer.write(head.encode("latin-1") + body)
            await up_writer.drain()
            # The origin closes after its answer, so the client's connection closes with it; the
            # client opens a new one for its next request, which may go anywhere.
            status = (await up_reader.readuntil(b"\r\n"))
            client_writer.write(status)
            print(port, request_line.split(" ")[0], request_line.split(" ")[1], status.decode().split(" ")[1], flush=True)
            await pipe(up_reader, client_writer)
            up_writer.close()
            return
    finally:
        client_writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
