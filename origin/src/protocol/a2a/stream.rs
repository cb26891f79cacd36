//! Following a task's event log: replay from a sequence number, then live.
//!
//! The process's `a2a_events` [`Hub`] announces each task's newest sequence number. A [`Follower`] subscribes before it reads the log and re-reads
//! the log on every wake-up, so the notification is only a hint: events come from the log, in
//! sequence order, each once. A missed or lagged notification costs at most a short fallback
//! poll. SSE streams use the sequence number as the event `id`, so `Last-Event-ID` resumes a
//! dropped stream exactly after the last event the client saw.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use agentplane_core::catalogue::A2aVersion;
use agentplane_core::jsonrpc::Id;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::store::{self, Event, EventKind, StoreError, TaskRow};
use super::wire::{self, Message, TaskState, TaskView};
use crate::data::db::listen::{Hub, announced};
use crate::data::db::{Database, TenantId};

/// Events read from the log at a time.
const BATCH: i64 = 256;

/// Reads one task's events in order, waiting for new ones.
#[derive(Debug)]
pub struct Follower {
    db: Database,
    tenant: TenantId,
    task: Uuid,
    after: i64,
    rx: broadcast::Receiver<(Uuid, i64)>,
    fallback_poll: Duration,
}

impl Follower {
    /// Follows `task` from the event after sequence number `after`.
    pub fn new(db: Database, hub: &Hub, tenant: TenantId, task: Uuid, after: i64) -> Self {
        // Subscribed before the first read: an event committed in between is either read or
        // announced, never neither.
        Self { db, tenant, task, after, rx: hub.subscribe(), fallback_poll: hub.timing.fallback_poll }
    }

    /// The next events, oldest first, waiting up to `wait` for at least one; empty if none came.
    pub async fn next(&mut self, wait: Duration) -> Result<Vec<Event>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut tx = self.db.tenant_tx(self.tenant).await?;
            let events = store::events_after(&mut tx, self.task, self.after, BATCH).await?;
            tx.commit().await?;
            if let Some(last) = events.last() {
                self.after = last.seq;
                return Ok(events);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let _ = tokio::time::timeout(self.fallback_poll.min(deadline - now), self.notified()).await;
        }
    }

    async fn notified(&mut self) {
        announced(&mut self.rx, self.task, self.after).await;
    }
}

/// The task as a client of `version` sees it: history is the client's message and the agent's
/// answer, the newest `history_length` of them.
pub fn task_value(
    version: A2aVersion,
    row: &TaskRow,
    artifacts: &[wire::Artifact],
    history_length: Option<usize>,
) -> Value {
    let mut history: Vec<&Message> = std::iter::once(&row.input).chain(&row.history).collect();
    if let Some(m) = &row.status_message {
        history.push(m);
    }
    if let Some(n) = history_length {
        let skip = history.len().saturating_sub(n);
        history.drain(..skip);
    }
    let id = row.id.to_string();
    wire::task(
        version,
        &TaskView {
            id: &id,
            context_id: &row.context_id,
            state: row.state,
            status_message: row.status_message.as_ref(),
            status_at: row.status_at,
            history,
            artifacts,
            metadata: json!({ "workflow": row.workflow }),
        },
    )
}

/// One logged event as a stream result, and whether the stream ends with it.
pub fn render_event(version: A2aVersion, row: &TaskRow, e: &Event) -> Result<(Value, bool), StoreError> {
    let task_id = row.id.to_string();
    let corrupt = |what: &str| StoreError::Corrupt(format!("event {} of task {}: {what}", e.seq, row.id));
    match e.kind {
        EventKind::Task => {
            let state = e.state().ok_or_else(|| corrupt("no state"))?;
            let snapshot = TaskRow { state, status_message: None, status_at: e.created_at, ..row.clone() };
            Ok((wire::stream_response(version, "task", task_value(version, &snapshot, &[], None)), false))
        }
        EventKind::Status => {
            let state = e.state().ok_or_else(|| corrupt("no state"))?;
            let msg: Option<Message> = match e.payload.get("message") {
                None | Some(Value::Null) => None,
                Some(m) => Some(serde_json::from_value(m.clone()).map_err(|_| corrupt("bad message"))?),
            };
            let status = wire::status(version, state, msg.as_ref(), e.created_at);
            let settled = state.is_settled();
            let update = wire::status_update(version, &task_id, &row.context_id, status, settled);
            Ok((wire::stream_response(version, "statusUpdate", update), settled))
        }
        EventKind::Artifact => {
            let a: wire::Artifact = serde_json::from_value(e.payload.get("artifact").cloned().unwrap_or(Value::Null))
                .map_err(|_| corrupt("bad artifact"))?;
            let update = wire::artifact_update(version, &task_id, &row.context_id, &a);
            Ok((wire::stream_response(version, "artifactUpdate", update), false))
        }
    }
}

/// Where a stream starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Replay every event after this sequence number (0 = the whole log), then follow.
    After(i64),
    /// First the task as it is now, then the events after it.
    Snapshot,
}

/// What an SSE stream needs.
#[derive(Debug)]
pub struct StreamRequest {
    pub db: Database,
    pub hub: Arc<Hub>,
    pub shutdown: CancellationToken,
    pub version: A2aVersion,
    pub framing: Framing,
    pub tenant: TenantId,
    pub task: TaskRow,
    pub artifacts: Vec<wire::Artifact>,
    pub start: Start,
}

/// How each event's `StreamResponse` is put in an SSE `data` line.
#[derive(Debug, Clone)]
pub enum Framing {
    /// JSON-RPC: a response to the call with this id.
    JsonRpc(Id),
    /// HTTP+JSON: the `StreamResponse` itself, passed through a rewrite (0.3's protobuf JSON).
    Rest(fn(Value) -> Value),
    /// gRPC: no SSE at all; the caller takes the events themselves ([`events`]).
    Grpc,
}

impl Framing {
    fn frame(&self, seq: i64, result: Value) -> SseEvent {
        let body = match self {
            Framing::JsonRpc(id) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Framing::Rest(rewrite) => rewrite(result),
            Framing::Grpc => result,
        };
        SseEvent::default().id(seq.to_string()).data(body.to_string())
    }
}

/// The SSE response: events are sent only after they were read from the log, and the stream
/// ends after the event that settles the task.
pub fn sse(req: StreamRequest) -> Response {
    let heartbeat = req.hub.timing.heartbeat;
    let framing = req.framing.clone();
    let rx = events(req);
    let events = futures::stream::unfold(rx, move |mut rx| {
        let framing = framing.clone();
        async move { rx.recv().await.map(|(seq, result)| (Ok::<_, Infallible>(framing.frame(seq, result)), rx)) }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat)).into_response()
}

/// The stream's `StreamResponse`s with their sequence numbers, as they are read from the log;
/// the channel closes after the event that settles the task. Dropping the receiver stops the
/// follower.
pub fn events(req: StreamRequest) -> tokio::sync::mpsc::Receiver<(i64, Value)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<(i64, Value)>(16);
    tokio::spawn(async move {
        let row = req.task;
        let (after, ended) = match req.start {
            Start::After(n) => (n, row.state.is_settled()),
            Start::Snapshot => {
                let snapshot = task_value(req.version, &row, &req.artifacts, None);
                let result = wire::stream_response(req.version, "task", snapshot);
                if tx.send((row.last_seq, result)).await.is_err() {
                    return;
                }
                // A subscriber to a task waiting for input waits with it: the stream goes on
                // to what the reply sets going.
                (row.last_seq, row.state.is_terminal())
            }
        };
        if ended && after >= row.last_seq {
            return;
        }
        let mut follower = Follower::new(req.db, &req.hub, req.tenant, row.id, after);
        loop {
            let batch = tokio::select! {
                () = req.shutdown.cancelled() => return,
                // The client went away: stop following.
                () = tx.closed() => return,
                // Long: the follower itself re-reads the log on notifications and every
                // fallback poll; this only bounds one call.
                r = follower.next(Duration::from_secs(3600)) => r,
            };
            let events = match batch {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(task = %row.id, error = %e, "reading the A2A event log failed; closing the stream");
                    return;
                }
            };
            for e in events {
                let (result, end) = match render_event(req.version, &row, &e) {
                    Ok(r) => r,
                    Err(err) => {
                        tracing::warn!(task = %row.id, error = %err, "unreadable A2A event; closing the stream");
                        return;
                    }
                };
                if tx.send((e.seq, result)).await.is_err() || end {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits until the task settles (terminal or waiting for input) or `wait` passes; returns its
/// state then.
pub async fn wait_settled(
    db: &Database,
    hub: &Hub,
    tenant: TenantId,
    row: &TaskRow,
    wait: Duration,
) -> Result<TaskState, StoreError> {
    if row.state.is_settled() {
        return Ok(row.state);
    }
    let deadline = tokio::time::Instant::now() + wait;
    // `row` already reflects every event up to its `last_seq`: follow from there.
    let mut follower = Follower::new(db.clone(), hub, tenant, row.id, row.last_seq);
    let mut state = row.state;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(state);
        }
        for e in follower.next(left).await? {
            if let Some(s) = e.state() {
                state = s;
            }
        }
        if state.is_settled() {
            return Ok(state);
        }
    }
}
