"""A2A load: rag_answer tasks through /a2a, blocking sends and streams, from N concurrent clients.

Usage: a2a_load.py URL TOKEN [--tasks 200] [--concurrency 16]
Prints tasks/s, end-to-end latency percentiles of blocking `SendMessage` (1.0), and time to
first event and to the final event of `message/stream` (0.3). Standard library only.
"""

import argparse
import http.client
import json
import statistics
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

QUESTIONS = [
    "How are tenants kept apart?",
    "What happens when a token expires?",
    "How does hybrid search rank documents?",
    "What does the edge cache?",
    "How are rate limits enforced?",
]


def request(url: str, token: str, method: str, params: dict, version: str):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    conn.request("POST", u.path, body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                        "A2A-Version": version, "Accept": "application/json, text/event-stream"})
    return conn, conn.getresponse()


def message(i: int, version: str) -> dict:
    text = QUESTIONS[i % len(QUESTIONS)]
    if version == "1.0":
        return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user", "parts": [{"kind": "text", "text": text}]}


def blocking(url: str, token: str, i: int) -> float:
    start = time.perf_counter()
    conn, resp = request(url, token, "SendMessage", {"message": message(i, "1.0")}, "1.0")
    body = json.loads(resp.read())
    conn.close()
    state = body["result"]["task"]["status"]["state"]
    if state != "TASK_STATE_COMPLETED":
        raise SystemExit(f"task ended {state}: {body}")
    return time.perf_counter() - start


def streamed(url: str, token: str, i: int) -> tuple[float, float]:
    start = time.perf_counter()
    conn, resp = request(url, token, "message/stream", {"message": message(i, "0.3")}, "0.3")
    first = None
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        first = first or time.perf_counter() - start
        result = json.loads(line[5:])["result"]
        if result.get("final"):
            break
    conn.close()
    return first or 0.0, time.perf_counter() - start


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()

    with ThreadPoolExecutor(a.concurrency) as pool:
        start = time.perf_counter()
        latencies = list(pool.map(lambda i: blocking(a.url, a.token, i), range(a.tasks)))
        elapsed = time.perf_counter() - start
    print(f"SendMessage (blocking, rag_answer): {a.tasks} tasks, {a.concurrency} clients: "
          f"{a.tasks / elapsed:.1f} tasks/s; latency p50 {pct(latencies, 50):.0f} ms, "
          f"p95 {pct(latencies, 95):.0f} ms, p99 {pct(latencies, 99):.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms")

    with ThreadPoolExecutor(a.concurrency) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda i: streamed(a.url, a.token, i), range(a.tasks)))
        elapsed = time.perf_counter() - start
    firsts = [r[0] for r in results]
    finals = [r[1] for r in results]
    print(f"message/stream (rag_answer): {a.tasks / elapsed:.1f} tasks/s; first event p50 {pct(firsts, 50):.0f} ms, "
          f"p95 {pct(firsts, 95):.0f} ms; final event p50 {pct(finals, 50):.0f} ms, p95 {pct(finals, 95):.0f} ms")


if __name__ == "__main__":
    main()
