"""One tenant at twice its tier's rate through the edge, another at half of it, for a while.

Usage: rate_2x.py EDGE_MCP_URL HEAVY_TOKEN LIGHT_TOKEN RATE_PER_MIN BURST SECONDS. Both tokens
are of a tier with RATE_PER_MIN and BURST. The heavy tenant sends pings (answered at the edge,
counted by the limiter) at 2x the rate, the light one at 0.5x. Prints one JSON line: what each
sent and had admitted, and the heavy tenant's allowance (burst + rate * elapsed). Exits 0 when
the heavy tenant's admitted count is within 5% of its allowance and the light tenant saw no 429.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()


def ping(url, token):
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=BODY, headers=headers), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def run(url, token, per_sec, seconds, workers, out):
    """Sends at `per_sec` on a fixed schedule from `workers` threads; records (time, status)."""
    start = time.monotonic()
    total = int(per_sec * seconds)
    lock = threading.Lock()
    next_i = [0]

    def worker():
        while True:
            with lock:
                i = next_i[0]
                next_i[0] += 1
            if i >= total:
                return
            delay = start + i / per_sec - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status = ping(url, token)
            with lock:
                out.append((time.monotonic(), status))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start


def main() -> int:
    url, heavy, light = sys.argv[1], sys.argv[2], sys.argv[3]
    rate_per_min, burst, seconds = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    rate = rate_per_min / 60.0
    heavy_out, light_out = [], []
    light_thread = threading.Thread(target=run, args=(url, light, rate * 0.5, seconds, 2, light_out))
    light_thread.start()
    start = run(url, heavy, rate * 2.0, seconds, 8, heavy_out)
    light_thread.join()
    admitted = sum(1 for _, s in heavy_out if s == 200)
    elapsed = max(t for t, _ in heavy_out) - start
    allowance = burst + rate * elapsed
    light_admitted = sum(1 for _, s in light_out if s == 200)
    light_refused = sum(1 for _, s in light_out if s == 429)
    other = sorted({s for _, s in heavy_out + light_out if s not in (200, 429)})
    ok = abs(admitted - allowance) <= 0.05 * allowance and light_refused == 0 and not other
    print(
        json.dumps(
            {
                "ok": ok,
                "seconds": round(elapsed, 1),
                "heavy": {"sent": len(heavy_out), "admitted": admitted, "allowance": round(allowance, 1)},
                "light": {"sent": len(light_out), "admitted": light_admitted, "refused": light_refused},
                "other_statuses": other,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
