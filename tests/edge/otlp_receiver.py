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
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces" or not self.headers.get("Content-Type", "").startswith("application/json"):
            self.send_response(415 if self.path == "/v1/traces" else 404)
            self.end_headers()
            return
        with LOCK:
            SPANS.extend(flatten(json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):
        with LOCK:
            body = json.dumps(SPANS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    # Started in the background by a script, this process inherits SIGINT ignored; the scripts
    # stop their servers with SIGINT, so take it back (and SIGTERM) and exit at once.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
