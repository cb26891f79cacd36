"""The official A2A Python SDK of the 0.3 line (a2a-sdk 0.3.x, the client 0.3 agents are built
with) against a running agentplane origin (or an edge in front of one), over JSON-RPC and over
HTTP+JSON, each the transport the card names.

Usage: client_v03.py BASE_URL TOKEN   (the origin must offer the probe workflow)
"""

import asyncio
import sys
import uuid

import httpx

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    AgentCard,
    Message,
    MessageSendConfiguration,
    Part,
    Role,
    Task,
    TaskIdParams,
    TaskQueryParams,
    TaskState,
    TextPart,
)


def message(text: str, **metadata) -> Message:
    return Message(message_id=str(uuid.uuid4()), role=Role.user, parts=[Part(root=TextPart(text=text))],
                   metadata=metadata or None)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"FAILED: {what}")


async def run(http: httpx.AsyncClient, card: AgentCard, transport: str) -> None:
    def config(**kw) -> ClientConfig:
        return ClientConfig(httpx_client=http, supported_transports=[transport], **kw)

    for streaming in (False, True):
        client = ClientFactory(config(streaming=streaming)).create(card)
        task: Task | None = None
        updates = 0
        async for event in client.send_message(message("sdk 0.3 probe", skill="probe")):
            check(isinstance(event, tuple), f"a task, not a message: {event!r}")
            task, update = event
            updates += update is not None
        check(task is not None and task.status.state == TaskState.completed,
              f"streaming={streaming}: completed, got {task and task.status.state}")
        if streaming:
            check(updates >= 4, f"status and artifact updates in the stream, got {updates}")
        got = await client.get_task(TaskQueryParams(id=task.id))
        names = [a.artifact_id for a in got.artifacts or []]
        check(names == ["probe-1", "probe-2", "probe-3"], f"{transport}: artifacts {names}")

    # A slow task (three 2 s steps), answered at once (polling), then canceled.
    polling = ClientFactory(config(streaming=False, polling=True)).create(card)
    task = None
    async for event in polling.send_message(message("slow", skill="probe", sleep_ms=2000),
                                            configuration=MessageSendConfiguration(blocking=False)):
        task, _ = event
    check(task is not None and task.status.state in (TaskState.submitted, TaskState.working),
          f"returned at once, got {task and task.status.state}")
    canceled = await polling.cancel_task(TaskIdParams(id=task.id))
    check(canceled.status.state == TaskState.canceled, f"cancel, got {canceled.status.state}")
    try:
        await polling.cancel_task(TaskIdParams(id=task.id))
        check(False, "a second cancel fails")
    except Exception as e:  # noqa: BLE001 - the SDK's error type differs by transport
        check("cancel" in str(e).lower() or "32002" in str(e), f"TaskNotCancelable, got {e!r}")
    print(f"a2a-sdk 0.3 client against A2A 0.3 {transport}: ok")


async def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    # A2A-Version 0.3 picks the card's 0.3 shape (without it, the card is 1.0's); on the calls it
    # is what the server assumes anyway.
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}", "A2A-Version": "0.3"}, timeout=60)
    card = await A2ACardResolver(http, base).get_agent_card()
    check(card.capabilities.streaming is True, "the card offers streaming")
    transports = [i.transport for i in card.additional_interfaces or []]
    check(transports == ["JSONRPC", "HTTP+JSON"], f"the card's interfaces: {transports}")
    for transport in transports:
        await run(http, card, transport)
    await http.aclose()


if __name__ == "__main__":
    asyncio.run(main())
