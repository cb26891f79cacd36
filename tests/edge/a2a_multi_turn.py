"""A multi-turn A2A conversation through the edge: a question too vague to search for leaves the
task input-required with the agent's question; the reply, sent with the task's id by
message/stream, continues the same task to its answer.

Usage: a2a_multi_turn.py URL TOKEN. Prints one JSON line: the first state, the agent's question,
and the continued stream's kinds and states (0.3 shapes). Exits non-zero on a JSON-RPC error.
"""

import json
import sys
import time
import urllib.request


def post(url, token, body, accept):
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": accept},
    )
    return urllib.request.urlopen(req, timeout=120)


def message(text, task_id=None):
    m = {"kind": "message", "messageId": f"edge-turn-{time.time_ns()}", "role": "user",
         "parts": [{"kind": "text", "text": text}]}
    if task_id:
        m["taskId"] = task_id
    return m


def main() -> int:
    url, token = sys.argv[1], sys.argv[2]
    first = {"jsonrpc": "2.0", "id": 1, "method": "message/send",
             "params": {"message": message("help"), "configuration": {"blocking": True}}}
    with post(url, token, first, "application/json") as response:
        answer = json.load(response)
    if "error" in answer:
        raise SystemExit(f"message/send: {answer['error']}")
    task = answer["result"]
    question = "".join(p.get("text", "") for p in (task["status"].get("message") or {}).get("parts", []))
    second = {"jsonrpc": "2.0", "id": 2, "method": "message/stream",
              "params": {"message": message("row-level security", task["id"])}}
    events = []
    with post(url, token, second, "text/event-stream") as response:
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line.startswith("data:"):
                continue
            data = json.loads(line[5:])
            if "error" in data:
                raise SystemExit(f"message/stream: {data['error']}")
            result = data["result"]
            state = (result.get("status") or {}).get("state", "")
            events.append({"kind": result.get("kind"), "state": state, "task": result.get("taskId", result.get("id"))})
            if result.get("final") or state in ("completed", "failed", "canceled", "rejected"):
                break
    print(json.dumps({"task": task["id"], "first_state": task["status"]["state"], "question": question[:80],
                      "events": events}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
