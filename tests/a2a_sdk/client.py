"""The official A2A Python SDK client against a running agentplane origin (or an edge in front
of one), once per protocol version and binding: the SDK's 1.0 JSON-RPC and HTTP+JSON transports
and its 0.3 compatibility transports of both.

Usage: client.py BASE_URL TOKEN   (the origin must offer the probe workflow: a2a.test_workflows)
Exits non-zero with a message on the first thing that does not work as the SDK expects.
"""

import asyncio
import sys
import uuid

import httpx
from google.protobuf.struct_pb2 import Struct

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskState,
)


def message(text: str, **metadata) -> Message:
    meta = Struct()
    meta.update(metadata)
    return Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)], metadata=meta)


def final_state(events) -> tuple[str, int]:
    """The task id and the last state the events report."""
    task_id, state = "", TaskState.TASK_STATE_UNSPECIFIED
    for e in events:
        if e.HasField("task"):
            task_id, state = e.task.id, e.task.status.state
        elif e.HasField("status_update"):
            task_id, state = e.status_update.task_id, e.status_update.status.state
    return task_id, state


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")


async def run(base: str, token: str, version: str, binding: str) -> None:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    card = await A2ACardResolver(http, base).get_agent_card()
    check(card.capabilities.streaming, "the card offers streaming")
    # Only the interface under test, so the factory picks that transport.
    keep = [i for i in card.supported_interfaces if i.protocol_version == version and i.protocol_binding == binding]
    check(len(keep) == 1, f"the card lists a {version} {binding} interface")
    del card.supported_interfaces[:]
    card.supported_interfaces.extend(keep)
    version = f"{version} {binding}"

    def config(**kw) -> ClientConfig:
        return ClientConfig(httpx_client=http, supported_protocol_bindings=[binding], **kw)

    for streaming in (False, True):
        client = ClientFactory(config(streaming=streaming)).create(card)
        events = [e async for e in client.send_message(SendMessageRequest(message=message("sdk probe", skill="probe")))]
        task_id, state = final_state(events)
        check(state == TaskState.TASK_STATE_COMPLETED, f"{version} streaming={streaming}: completed, got {state}")
        if streaming:
            updates = [e for e in events if e.HasField("artifact_update")]
            check(len(updates) == 3, f"{version}: three artifact updates in the stream, got {len(updates)}")
        task = await client.get_task(GetTaskRequest(id=task_id))
        check(task.status.state == TaskState.TASK_STATE_COMPLETED, f"{version}: get_task sees completed")
        names = [a.artifact_id for a in task.artifacts]
        check(names == ["probe-1", "probe-2", "probe-3"], f"{version}: artifacts {names}")

    # rag_answer over an empty tenant still completes, with the no-answer text.
    client = ClientFactory(config(streaming=False)).create(card)
    events = [e async for e in client.send_message(SendMessageRequest(message=message("anything at all?")))]
    _, state = final_state(events)
    check(state == TaskState.TASK_STATE_COMPLETED, f"{version}: rag_answer completes")

    # Cancel a slow task (three 2 s steps: a loaded machine still cancels it before its end), then
    # subscribe is refused on it and a second cancel fails.
    polling = ClientFactory(config(streaming=False, polling=True)).create(card)
    request = SendMessageRequest(message=message("slow", skill="probe", sleep_ms=2000))
    if version.startswith("0.3"):
        # The 0.3 transport only waits when asked; ask it not to.
        request.configuration.return_immediately = True
    events = [e async for e in polling.send_message(request)]
    task_id, _ = final_state(events)
    canceled = await polling.cancel_task(CancelTaskRequest(id=task_id))
    check(canceled.status.state == TaskState.TASK_STATE_CANCELED, f"{version}: cancel, got {canceled.status.state}")
    try:
        await polling.cancel_task(CancelTaskRequest(id=task_id))
        check(False, f"{version}: a second cancel fails")
    except Exception as e:  # noqa: BLE001 - any SDK error type will do; the code is checked below
        check("cancel" in str(e).lower() or "32002" in str(e), f"{version}: TaskNotCancelable, got {e!r}")

    if version.startswith("1.0"):
        listed = await client.list_tasks(ListTasksRequest(page_size=100))
        check(listed.total_size >= 4, f"list_tasks total {listed.total_size}")
        streaming_client = ClientFactory(config(streaming=True)).create(card)
        try:
            _ = [e async for e in streaming_client.subscribe(SubscribeToTaskRequest(id=task_id))]
            check(False, "subscribing to a finished task is refused")
        except Exception as e:  # noqa: BLE001
            check("nothing to subscribe" in str(e) or "32004" in str(e), f"UnsupportedOperation, got {e!r}")
    await http.aclose()
    print(f"a2a-sdk client against A2A {version}: ok")


async def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    for version in ("1.0", "0.3"):
        for binding in ("JSONRPC", "HTTP+JSON"):
            await run(base, token, version, binding)


if __name__ == "__main__":
    asyncio.run(main())
