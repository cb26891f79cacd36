"""Edge benchmarks against a running origin and edge (see scripts/bench-edge).

Usage: edge.py ORIGIN_URL EDGE_URL TOKEN [cloudflare|spin [PARTS]]

1. Core CPU per request in wasm, inside the runtime: GET /__bench runs the core's per-request work
   (testkit::workload) n times in one request; workerd's clocks stand still while code runs, so
   each request is timed here, and (median t(n) - median t(0)) / n is the cost of one. (The Spin
   component could time itself, but is timed the same way so the figures compare.)
2. Edge overhead: the same forwarded call (the `usage` tool: never cached, cheap at the origin),
   one at a time on a kept-alive connection, straight to the origin and through the edge.
Prints Markdown tables.
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Conn:
    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def request(self, method, path, body=None, headers=None):
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        return time.perf_counter() - started, response.status, data


def wasm_core_cpu(edge, kind):
    c = Conn(edge)
    rows = []
    cases = [
        ("hit", "core", 20000, "token memo hit"),
        ("eddsa", "core", 300, "memo miss, EdDSA verified by the core"),
        ("es256", "core", 300, "memo miss, ES256 verified by the core"),
        ("rs256", "core", 100, "memo miss, RS256 verified by the core"),
        ("eddsa", "webcrypto", 1000, "memo miss, EdDSA verified by WebCrypto"),
        ("es256", "webcrypto", 1000, "memo miss, ES256 verified by WebCrypto"),
        ("rs256", "webcrypto", 1000, "memo miss, RS256 verified by WebCrypto"),
    ]
    if kind == "spin":
        # No WebCrypto in a Spin component: the core checks every signature.
        cases = [case for case in cases if case[1] == "core"]
    runtime = RUNTIME[kind]
    for tokens, signatures, n, label in cases:
        def timed(count):
            times = []
            for _ in range(7):
                path = f"/__bench?tokens={tokens}&signatures={signatures}&n={count}"
                t, status, data = c.request("GET", path)
                if status != 200 or json.loads(data)["forwarded"] != count:
                    raise SystemExit(f"{path}: {status} {data[:200]!r}")
                times.append(t)
            return statistics.median(times)

        base = timed(0)
        full = timed(n)
        rows.append((label, n, (full - base) / n * 1e6))
    print(f"| per request: `tools/call` to forward decision | n per request | µs in {runtime} |")
    print("|---|---|---|")
    for label, n, us in rows:
        print(f"| {label} | {n} | {us:.1f} |")
    print()


def answered_at_edge(edge, token, kind, count=1000, warmup=100):
    """What the local runtime itself costs: requests the edge answers without the origin."""
    ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    headers = {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25",
        "Mcp-Method": "ping",
    }
    print(f"| answered at the edge, sequential, {count} requests | p50 ms | p99 ms |")
    print("|---|---|---|")
    for label, method, path, body, h in [
        (f"unknown path: 404 from the core (no {STORE[kind]}, no origin)", "GET", "/nothing", None, {}),
        (f"`ping`: token + {STORE[kind]} admit", "POST", "/mcp", ping, headers),
    ]:
        c = Conn(edge)
        times = []
        for i in range(warmup + count):
            t, _, _ = c.request(method, path, body=body, headers=h)
            if i >= warmup:
                times.append(t * 1000)
        times.sort()
        print(f"| {label} | {times[len(times) // 2]:.2f} | {times[int(len(times) * 0.99) - 1]:.2f} |")
    print()


def overhead(origin, edge, token, count=2000, warmup=200):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "usage", "arguments": {}, "_meta": META}})
    headers = {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call", "Mcp-Name": "usage",
    }
    results = {}
    for label, base in [("origin, direct", origin), ("through the edge", edge)]:
        c = Conn(base)
        times = []
        for i in range(warmup + count):
            t, status, data = c.request("POST", "/mcp", body=body, headers=headers)
            if status != 200:
                raise SystemExit(f"{label}: {status} {data[:200]!r}")
            if i >= warmup:
                times.append(t * 1000)
        times.sort()
        results[label] = (times[len(times) // 2], times[int(len(times) * 0.99) - 1])
    print(f"| `usage` tools/call, sequential, {count} requests | p50 ms | p99 ms |")
    print("|---|---|---|")
    for label, (p50, p99) in results.items():
        print(f"| {label} | {p50:.2f} | {p99:.2f} |")
    (d50, d99), (e50, e99) = results["origin, direct"], results["through the edge"]
    print(f"| edge overhead | {e50 - d50:.2f} | {e99 - d99:.2f} |")
    print()


RUNTIME = {"cloudflare": "workerd", "spin": "wasmtime"}
STORE = {"cloudflare": "Durable Object", "spin": "key-value"}


def main():
    origin, edge, token = sys.argv[1:4]
    kind = sys.argv[4] if len(sys.argv) > 4 else "cloudflare"
    parts = (sys.argv[5] if len(sys.argv) > 5 else "cpu,overhead,local").split(",")
    if "cpu" in parts:
        wasm_core_cpu(edge, kind)
    if "overhead" in parts:
        overhead(origin, edge, token)
    if "local" in parts:
        answered_at_edge(edge, token, kind)


if __name__ == "__main__":
    main()
