"""A2A message/stream through the edge, timing each SSE event as it arrives.

Usage: a2a_stream.py URL TOKEN SLEEP_MS. Runs the origin's test-only `probe` workflow (three
steps that each sleep SLEEP_MS) and prints one JSON line: the response's content type, and per
event its arrival time in seconds since the request was sent and its kind/state. Streaming is
unbuffered when the first event arrives long before the last.
"""

import json
import sys
import time
import urllib.request


def main() -> int:
    url, token, sleep_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/stream",
        "params": {
            "message": {
                "kind": "message",
                "messageId": f"edge-stream-{time.time_ns()}",
                "role": "user",
                "parts": [{"kind": "text", "text": "probe through the edge"}],
                "metadata": {"skill": "probe", "sleep_ms": sleep_ms},
            }
        },
    }
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
        },
    )
    started = time.monotonic()
    events = []
    with urllib.request.urlopen(req, timeout=120) as response:
        content_type = response.headers.get("content-type", "")
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line.startswith("data:"):
                continue
            at = round(time.monotonic() - started, 3)
            result = json.loads(line[5:]).get("result", {})
            kind = result.get("kind", "?")
            state = (result.get("status") or {}).get("state", "")
            events.append({"at": at, "kind": kind, "state": state})
            if result.get("final") or state in ("completed", "failed", "canceled", "rejected"):
                break
    print(json.dumps({"content_type": content_type, "events": events}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
