"""Many open A2A streams on one origin: what they cost in memory, CPU and database work.

Usage: a2a_streams.py URL TOKEN --pid PID [--streams 1000] [--hold 30] [--psql URL]

Opens STREAMS `message/stream` (0.3) and `SendStreamingMessage` (1.0) calls at once, half each,
against an origin that runs no executor, so every task stays `submitted` and every stream stays
open on heartbeats. Waits until each stream has its first event, holds them HOLD seconds, then
cancels every task and checks that each stream receives the `canceled` event and ends. Reports the
origin's RSS (VmRSS of PID) before, with the streams open and after they ended; the origin's and
its PostgreSQL's CPU while the streams sit idle; the heartbeats received; the database
connections the origin held and the transactions it committed while idle (with --psql); errors.
Plain asyncio streams (standard library only), one connection per stream.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
import urllib.parse
import uuid

CLK = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def descendants(pid: int) -> list[int]:
    """The embedded PostgreSQL's processes: everything below the origin."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for p in pids:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass  # a backend that exited
    return total


def psql(url: str | None, sql: str) -> str:
    if not url:
        return "-"
    try:
        r = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "- (no psql)"
    return r.stdout.strip() if r.returncode == 0 else f"psql failed: {r.stderr.strip()}"


def message(version: str, i: int) -> dict:
    text = f"stream {i}: how are tenants kept apart?"
    if version == "1.0":
        return {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user", "parts": [{"kind": "text", "text": text}]}


class Stream:
    """One SSE response read off a raw HTTP/1.1 connection (chunked transfer coding)."""

    def __init__(self, i: int):
        self.i = i
        self.version = "1.0" if i % 2 else "0.3"
        self.task = None
        self.events = 0
        self.heartbeats = 0
        self.first = asyncio.Event()
        self.final_state = None
        self.error = None
        self.ended = False
        self.writer = None

    async def run(self, url: urllib.parse.ParseResult, token: str):
        try:
            reader, self.writer = await asyncio.open_connection(url.hostname, url.port)
            method = "SendStreamingMessage" if self.version == "1.0" else "message/stream"
            body = json.dumps({"jsonrpc": "2.0", "id": self.i, "method": method,
                               "params": {"message": message(self.version, self.i)}}).encode()
            head = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: application/json\r\nAccept: text/event-stream\r\nA2A-Version: {self.version}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self.writer.write(head + body)
            await self.writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"HTTP status {status!r}")
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # headers
            buf = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    break
                buf += await reader.readexactly(size + 2)
                buf = buf[:-2]
                while b"\n\n" in buf:
                    frame, buf = buf.split(b"\n\n", 1)
                    self.on_frame(frame.decode())
        except Exception as e:  # noqa: BLE001 - any failure is one stream's error, counted
            if not self.ended:
                self.error = repr(e)
        finally:
            self.ended = True
            self.first.set()
            if self.writer:
                self.writer.close()

    def on_frame(self, frame: str):
        data = [line[5:].strip() for line in frame.splitlines() if line.startswith("data:")]
        if not data:
            self.heartbeats += 1  # a comment-only frame: axum's keep-alive
            return
        result = json.loads("".join(data))["result"]
        self.events += 1
        if self.task is None:
            # 0.3: the Task itself; 1.0: {"task": {...}}.
            t = result.get("task", result)
            self.task = t["id"]
            self.first.set()
        status = (result.get("statusUpdate") or result).get("status")
        if status:
            self.final_state = status["state"]


async def cancel(url: urllib.parse.ParseResult, token: str, s: Stream, sem: asyncio.Semaphore) -> str | None:
    async with sem:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        method = "CancelTask" if s.version == "1.0" else "tasks/cancel"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"id": s.task}}).encode()
        writer.write((f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: application/json\r\nA2A-Version: {s.version}\r\nConnection: close\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await writer.drain()
        raw = await reader.read()
        writer.close()
        reply = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        return None if "result" in reply else json.dumps(reply.get("error"))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=30)
    ap.add_argument("--psql", help="admin URL of the origin's database, for its connections and transactions")
    a = ap.parse_args()
    url = urllib.parse.urlparse(a.url)
    app_conns = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'agentplane'"
    commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = 'agentplane'"

    rss_before, fds_before = rss_kib(a.pid), fds(a.pid)
    print(f"origin before: RSS {rss_before / 1024:.1f} MiB, {fds_before} fds, "
          f"{psql(a.psql, app_conns)} database connections")

    streams = [Stream(i) for i in range(a.streams)]
    start = time.perf_counter()
    tasks = [asyncio.create_task(s.run(url, a.token)) for s in streams]
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), 300)
    opened = time.perf_counter() - start
    open_ok = [s for s in streams if s.task and not s.ended]
    print(f"opened {len(open_ok)} of {a.streams} streams with their first event in {opened:.2f} s "
          f"({len(open_ok) / opened:.0f} streams/s)")

    # Idle: every stream open, nothing happens but heartbeats and the followers' fallback polls.
    await asyncio.sleep(2)
    beats0 = sum(s.heartbeats for s in streams)
    # Listed now, not at the start: the pool opened most of its backends while the streams came.
    pg = descendants(a.pid)
    cpu0, pgcpu0, commits0 = cpu_seconds(a.pid), tree_cpu(pg), psql(a.psql, commits)
    t0 = time.perf_counter()
    samples = []
    while time.perf_counter() - t0 < a.hold:
        await asyncio.sleep(1)
        samples.append(rss_kib(a.pid))
    held = time.perf_counter() - t0
    cpu1, pgcpu1, commits1 = cpu_seconds(a.pid), tree_cpu(pg), psql(a.psql, commits)
    beats = sum(s.heartbeats for s in streams) - beats0
    still_open = sum(1 for s in streams if not s.ended)
    rss_open, fds_open = max(samples), fds(a.pid)
    print(f"held {still_open} streams open {held:.0f} s: RSS {rss_open / 1024:.1f} MiB (max of 1 s samples), "
          f"{fds_open} fds, {psql(a.psql, app_conns)} database connections")
    print(f"  per stream: {(rss_open - rss_before) / max(1, still_open):.1f} KiB RSS")
    print(f"  heartbeats: {beats} ({beats / held:.0f}/s, {sum(1 for s in streams if s.heartbeats)} streams had one)")
    print(f"  CPU while idle: origin {100 * (cpu1 - cpu0) / held:.1f}% of a core, "
          f"its PostgreSQL {100 * (pgcpu1 - pgcpu0) / held:.1f}%")
    if a.psql and commits0.isdigit() and commits1.isdigit():
        print(f"  database transactions while idle: {(int(commits1) - int(commits0)) / held:.0f}/s")

    # Cancel every task: each stream must deliver `canceled` and end.
    sem = asyncio.Semaphore(16)
    start = time.perf_counter()
    cancel_errors = [e for e in await asyncio.gather(*(cancel(url, a.token, s, sem) for s in open_ok)) if e]
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    closed = time.perf_counter() - start
    canceled = sum(1 for s in streams if s.final_state in ("canceled", "TASK_STATE_CANCELED"))
    errors = [s.error for s in streams if s.error]
    print(f"canceled all tasks in {closed:.2f} s: {canceled} streams ended on their canceled event; "
          f"{len(cancel_errors)} cancel errors, {len(errors)} stream errors")
    for e in (cancel_errors + errors)[:5]:
        print(f"  error: {e}")
    await asyncio.sleep(3)
    rss_after = rss_kib(a.pid)
    print(f"origin after: RSS {rss_after / 1024:.1f} MiB, {fds(a.pid)} fds, "
          f"{psql(a.psql, app_conns)} database connections")
    events = [s.events for s in streams]
    print(f"events per stream: mean {statistics.mean(events):.1f}")


if __name__ == "__main__":
    asyncio.run(main())
