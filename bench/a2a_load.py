"""A2A load: rag_answer tasks through /a2a, blocking sends and streams, from N concurrent clients.

Usage: a2a_load.py URL TOKEN [--tasks 200] [--concurrency 16] [--streams-only]
Prints tasks/s, end-to-end latency percentiles of blocking `SendMessage` (1.0), and time to
first event and to the final event of `message/stream` (0.3) and `SendStreamingMessage` (1.0),
as the client sees them: from sending the request to the event's data line. Standard library only.
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


def streamed(url: str, token: str, i: int, version: str) -> tuple[float, float]:
    method = "SendStreamingMessage" if version == "1.0" else "message/stream"
    start = time.perf_counter()
    conn, resp = request(url, token, method, {"message": message(i, version)}, version)
    first = last = None
    # The origin ends the stream right after the event that settles the task (1.0 has no
    # `final` flag), so the last data line before the end is the final event.
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        last = time.perf_counter() - start
        first = first or last
        if "error" in json.loads(line[5:]):
            raise SystemExit(f"stream error: {line}")
    conn.close()
    if first is None or last is None:
        raise SystemExit(f"{method}: stream ended without events")
    return first, last


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--streams-only", action="store_true", help="skip the blocking SendMessage run")
    a = ap.parse_args()

    if not a.streams_only:
        run_blocking(a)
    for version in ("0.3", "1.0"):
        run_streamed(a, version)


def run_blocking(a: argparse.Namespace) -> None:
    with ThreadPoolExecutor(a.concurrency) as pool:
        start = time.perf_counter()
        latencies = list(pool.map(lambda i: blocking(a.url, a.token, i), range(a.tasks)))
        elapsed = time.perf_counter() - start
    print(f"SendMessage (blocking, rag_answer): {a.tasks} tasks, {a.concurrency} clients: "
          f"{a.tasks / elapsed:.1f} tasks/s; latency p50 {pct(latencies, 50):.0f} ms, "
          f"p95 {pct(latencies, 95):.0f} ms, p99 {pct(latencies, 99):.0f} ms, mean {statistics.mean(latencies) * 1000:.0f} ms")


def run_streamed(a: argparse.Namespace, version: str) -> None:
    method = "SendStreamingMessage (1.0)" if version == "1.0" else "message/stream (0.3)"
    with ThreadPoolExecutor(a.concurrency) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda i: streamed(a.url, a.token, i, version), range(a.tasks)))
        elapsed = time.perf_counter() - start
    firsts = [r[0] for r in results]
    finals = [r[1] for r in results]
    print(f"{method}, rag_answer: {a.tasks} tasks, {a.concurrency} clients: {a.tasks / elapsed:.1f} tasks/s; "
          f"first event p50 {pct(firsts, 50):.1f} ms, p90 {pct(firsts, 90):.1f} ms, p99 {pct(firsts, 99):.1f} ms; "
          f"final event p50 {pct(finals, 50):.0f} ms, p90 {pct(finals, 90):.0f} ms, p99 {pct(finals, 99):.0f} ms")


if __name__ == "__main__":
    main()
