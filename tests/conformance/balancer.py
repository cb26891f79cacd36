"""A round-robin HTTP/1.1 balancer for the fleet tests: each request goes to the next origin in
turn, streamed both ways (SSE included), with no affinity of any kind. A request whose origin
refuses the connection (a killed replica) goes to the next one: nothing was sent, so that is
safe for any request. Every exchange uses its own upstream connection (`Connection: close`).

    python3 tests/conformance/balancer.py LISTEN_PORT ORIGIN_PORT [ORIGIN_PORT ...]

With `BALANCER_BEARER` set, every request goes on with `Authorization: Bearer <that token>` in
place of its own: the A2A compatibility kits send no credentials, and the server's own
authentication stays as it is. `BALANCER_HEADERS` (`Name: value` entries separated by `;`) adds
headers the same way: the 0.3 kit's client is a 0.3 client, which says so with `A2A-Version: 0.3`.
`BALANCER_ANONYMOUS_METHODS` (JSON-RPC method names separated by `,`) are sent on with no
credentials at all: the 0.3 kit checks that an unauthenticated `agent/getAuthenticatedExtendedCard`
is refused, and its client has no way to leave out credentials it never had.

Prints one line per request (`origin method path status session`) to stdout, `-` for a request
outside a session.

SIGUSR1 arms a drain of the last origin: right after that origin opens the next session (answers
an initialize with a new session id), the balancer prints `opened SESSION on PORT` and drains it,
as a load balancer does before a replica is taken away: no new request goes to it (the new
session's next requests go elsewhere), and once none of its POSTs and DELETEs is in flight the
balancer prints `drained PORT`. Its GET streams stay open; they break when the replica dies, and the client
resumes them elsewhere with Last-Event-ID. SIGINT and SIGTERM end the balancer (a background
command of a non-interactive shell starts with SIGINT ignored, so it is handled here).
"""

import asyncio
import json
import os
import signal
import sys

listen_port = int(sys.argv[1])
origins = [int(p) for p in sys.argv[2:]]
turn = 0
draining = set()
reported = set()
armed = False
bearer = os.environ.get("BALANCER_BEARER")
added = [tuple(h.split(":", 1)) for h in os.environ.get("BALANCER_HEADERS", "").split(";") if ":" in h]
if bearer:
    added.append(("Authorization", f" Bearer {bearer}"))
anonymous_methods = {m.strip() for m in os.environ.get("BALANCER_ANONYMOUS_METHODS", "").split(",") if m.strip()}
# Requests in flight per origin, GET streams excepted: they may last as long as the session.
in_flight = {port: 0 for port in origins}


def next_origins():
    """Origins in the order to try for the next request, draining ones left out."""
    global turn
    turn = (turn + 1) % len(origins)
    ordered = origins[turn:] + origins[:turn]
    return [port for port in ordered if port not in draining]


def report_drained():
    for port in draining - reported:
        if in_flight[port] == 0:
            reported.add(port)
            print("drained", port, flush=True)


def arm():
    global armed
    armed = True


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


def header(headers, name):
    return next((v.strip() for k, v in headers if k.strip().lower() == name), None)


async def forward(request_line, request_headers, head, body, client_writer):
    upstream = None
    for port in next_origins():
        try:
            upstream = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            continue
    if upstream is None:
        client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await client_writer.drain()
        return
    method, path = request_line.split(" ")[:2]
    counted = method != "GET"
    if counted:
        in_flight[port] += 1
    try:
        up_reader, up_writer = upstream
        up_writer.write(head.encode("latin-1") + body)
        await up_writer.drain()
        # The origin closes after its answer, so the client's connection closes with it; the
        # client opens a new one for its next request, which may go anywhere.
        status_line, response_headers = await read_head(up_reader)
        client_writer.write((status_line + "\r\n" + "".join(f"{k}:{v}\r\n" for k, v in response_headers) + "\r\n").encode("latin-1"))
        session = header(request_headers, "mcp-session-id")
        opened = header(response_headers, "mcp-session-id") if session is None else None
        print(port, method, path, status_line.split(" ")[1], session or opened or "-", flush=True)
        global armed
        if armed and opened and port == origins[-1]:
            armed = False
            print("opened", opened, "on", port, flush=True)
            draining.add(port)
        await pipe(up_reader, client_writer)
        up_writer.close()
    finally:
        if counted:
            in_flight[port] -= 1
            report_drained()


def jsonrpc_method(body):
    try:
        message = json.loads(body)
    except ValueError:
        return None
    return message.get("method") if isinstance(message, dict) else None


async def serve(client_reader, client_writer):
    try:
        try:
            request_line, headers = await read_head(client_reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        length = int(header(headers, "content-length") or 0)
        body = await client_reader.readexactly(length) if length else b""
        extra = added
        if anonymous_methods and jsonrpc_method(body) in anonymous_methods:
            extra = [(k, v) for k, v in added if k.lower() != "authorization"] + [("Authorization", "")]
        dropped = ("connection", "keep-alive") + tuple(k.strip().lower() for k, _ in extra)
        kept = [(k, v) for k, v in headers if k.strip().lower() not in dropped] + [(k, v) for k, v in extra if v]
        head = request_line + "\r\n" + "".join(f"{k}:{v}\r\n" for k, v in kept) + "Connection: close\r\n\r\n"
        await forward(request_line, headers, head, body, client_writer)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        client_writer.close()


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    loop.add_signal_handler(signal.SIGUSR1, arm)
    server = await asyncio.start_server(serve, "127.0.0.1", listen_port)
    async with server:
        await stop


asyncio.run(main())
