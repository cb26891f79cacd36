"""A write streamed back through the edge, and a search that runs while it is in flight.

Usage: stale_write.py EDGE_MCP_URL TOKEN. MCP's session revisions answer a POST with an event
stream whose head arrives before the tool has committed. The edge bumps the tenant's data
generation when that head arrives; a search that runs before the commit misses, reads the old
data at the origin, and is cached under the new generation. Unless the edge bumps again when the
write's stream ends, the next search is a hit that does not show the write.

Each attempt warms the cache with a search for a fresh term, starts an upsert of a document with
that term (large, so that it is slow to commit), searches while it is in flight, reads the
upsert's stream to its end, and searches again. Prints one JSON line: per attempt the cache
status of both searches and whether each showed the document. Exits 0 when every last search
showed the document and the race (a search in flight that did not) happened at least once.
"""

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def post(url, token, body, headers):
    h = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    h.update(headers)
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=h)
    return urllib.request.urlopen(request, timeout=60)


def search(url, token, term, doc_id):
    """(cache status, whether the hits include doc_id)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"_meta": META, "name": "hybrid_search", "arguments": {"query": term, "vector_weight": 0}},
    }
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "hybrid_search"}
    with post(url, token, body, headers) as r:
        answer = json.loads(r.read())
        hits = answer["result"]["structuredContent"]["hits"]
        return r.headers.get("x-agentplane-cache"), any(h["id"] == doc_id for h in hits)


def write_succeeded(text):
    """Whether the upsert's answer (an event stream or a JSON body) is a successful result."""
    lines = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")] or [text]
    for line in lines:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "result" in message or "error" in message:
            return "result" in message and not message["result"].get("isError", False)
    return False


def open_session(url, token):
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "stale-write-check", "version": "1"},
        },
    }
    with post(url, token, init, {}) as r:
        session = r.headers["mcp-session-id"]
        r.read()
    headers = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    with post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers) as r:
        r.read()
    return headers


def main() -> int:
    url, token = sys.argv[1], sys.argv[2]
    session = open_session(url, token)
    attempts = []
    for attempt in range(6):
        term = f"stalewriteprobe{time.time_ns()}"
        doc_id = str(uuid.uuid4())
        search(url, token, term, doc_id)
        warm = search(url, token, term, doc_id)
        upsert = {
            "jsonrpc": "2.0",
            "id": 10 + attempt,
            "method": "tools/call",
            "params": {
                "name": "upsert_document",
                "arguments": {"id": doc_id, "title": term, "content": f"{term} " + "padding " * 60000},
            },
        }
        with post(url, token, upsert, session) as write:
            streamed = write.headers.get("content-type", "").startswith("text/event-stream")
            during = search(url, token, term, doc_id)
            written = write.read().decode()
        after = search(url, token, term, doc_id)
        attempts.append(
            {
                "streamed": streamed,
                "warm": warm[0],
                "during": list(during),
                "after": list(after),
                "write_ok": write_succeeded(written),
            }
        )
        if during == ("miss", False) and after[1]:
            break
    raced = any(a["during"] == ["miss", False] for a in attempts)
    ok = raced and all(a["after"][1] and a["write_ok"] for a in attempts)
    print(json.dumps({"ok": ok, "raced": raced, "attempts": attempts}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
