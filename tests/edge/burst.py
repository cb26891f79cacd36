"""N pings of one tenant at once through the edge; prints the count of each status as JSON.

Usage: burst.py URL TOKEN N. Every request is sent on its own connection from its own thread,
released together, so the edge sees them concurrently: a limiter that reads and writes its state
without an atomic step admits more than the tier's burst here.
"""

import collections
import json
import sys
import threading
import urllib.error
import urllib.request


def main() -> int:
    url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    start = threading.Barrier(n)
    statuses = []
    lock = threading.Lock()

    def one():
        request = urllib.request.Request(url, data=body, headers=headers)
        start.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            status = f"error: {e}"
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(collections.Counter(str(s) for s in statuses), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
