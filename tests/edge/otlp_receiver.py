"""A small OTLP/HTTP trace receiver (JSON encoding) for tests/edge/run: POST /v1/traces stores
every span; GET /spans answers them all as one JSON array of
{traceId, spanId, parentSpanId, name, service, attributes}.

    python3 tests/edge/otlp_receiver.py PORT
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SPANS = []
LOCK = threading.Lock()


def flatten(request):
    for resource in request.get("resourceSpans", []):
        attrs = resource.get("resource", {}).get("attributes", [])
        service = next((a["value"].get("stringValue") for a in attrs if a["key"] == "service.name"), "")
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                yield {
                    "traceId": span.get("traceId", "").lower(),
                    "spanId": span.get("spanId", "").lower(),
                    "parentSpanId": (span.get("parentSpanId") or "").lower(),
                    "name": span.get("name", ""),
                    "service": service,
                    "attributes": {a["key"]: next(iter(a.get("value", {}).values()), None) for a in span.get("attributes", [])},
                }


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with a length on every answer: exporters keep their connections.
    protocol_version = "HTTP/1.1"

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.body()
        if self.path != "/v1/traces" or not self.headers.get("Content-Type", "").startswith("application/json"):
            self.answer(415 if self.path == "/v1/traces" else 404)
            return
        with LOCK:
            SPANS.extend(flatten(json.loads(body)))
        self.answer(200, b"{}")

    def do_GET(self):
        with LOCK:
            body = json.dumps(SPANS).encode()
        self.answer(200, body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    # Started in the background by a script, this process inherits SIGINT ignored; the scripts
    # stop their servers with SIGINT, so take it back (and SIGTERM) and exit at once.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
