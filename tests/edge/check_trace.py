"""Checks that one MCP call through an edge is one trace (tests/edge/run):

    python3 tests/edge/check_trace.py RECEIVER_URL REQUEST_ID

The edge's span (found by its agentplane.request_id) and the origin's spans share its trace id;
the origin's request span is the edge span's child, the tool span the request span's, and at
least one SQL statement's span is under the tool's. Prints "ok" or what is missing; waits up to
10 s for the spans (the exporters batch).
"""

import json
import sys
import time
import urllib.request


def spans(url):
    with urllib.request.urlopen(url + "/spans", timeout=5) as r:
        return json.load(r)


def verdict(all_spans, request_id):
    edge = [s for s in all_spans if s["service"] == "agentplane-edge" and s["attributes"].get("agentplane.request_id") == request_id]
    if not edge:
        return "no edge span with request id " + request_id
    edge = edge[0]
    trace = [s for s in all_spans if s["traceId"] == edge["traceId"]]
    by_id = {s["spanId"]: s for s in trace}
    request = [s for s in trace if s["service"] == "agentplane-origin" and s["parentSpanId"] == edge["spanId"]]
    if not request:
        return f"no origin span under the edge span {edge['name']} in trace {edge['traceId']}: {[s['name'] for s in trace]}"
    request = request[0]
    tool = [s for s in trace if s["name"].startswith("tool ") and s["parentSpanId"] == request["spanId"]]
    if not tool:
        return f"no tool span under {request['name']}: {[(s['name'], s['parentSpanId']) for s in trace]}"
    tool = tool[0]

    def under_tool(s):
        parent = s["parentSpanId"]
        while parent:
            if parent == tool["spanId"]:
                return True
            parent = by_id.get(parent, {}).get("parentSpanId", "")
        return False

    sql = [s for s in trace if s["attributes"].get("db.system.name") == "postgresql" and under_tool(s)]
    if not sql:
        return f"no SQL span under {tool['name']}: {[s['name'] for s in trace]}"
    return f"ok {edge['name']} > {request['name']} > {tool['name']} > {sql[0]['name']} ({len(trace)} spans)"


def main():
    url, request_id = sys.argv[1], sys.argv[2]
    deadline = time.time() + 10
    while True:
        result = verdict(spans(url), request_id)
        if result.startswith("ok") or time.time() > deadline:
            print(result)
            return
        time.sleep(0.2)


if __name__ == "__main__":
    main()
