//! The log of MCP server-to-client events, as rmcp's [`EventStore`].
//!
//! A session's standalone stream (`{session}:common`: notifications not tied to a request) is
//! logged in `mcp_session_events` under the session's tenant and announced on
//! [`EVENTS_CHANNEL`], so whichever replica holds the client's GET stream delivers what any
//! replica sent, and `Last-Event-ID` resumes it anywhere. Its event ids are `{session}:{n}`.
//!
//! A POST's own response stream and a stateless request's stream end with the call, which dies
//! with its replica; they are kept in this process's memory only (bounded), with ids
//! `{stream}/{n}`, so a client whose connection broke can still resume them here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::model::ServerJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::{
    EventId, EventStore, EventStoreError, EventStream, ServerSseMessage,
};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use super::sessions::Sessions;
use crate::data::db::listen::{Cursor, Hub, Pending, announcement};
use crate::data::db::{Database, TenantId};
use crate::settled;

/// Announces each logged event as `session:n`.
pub const EVENTS_CHANNEL: &str = "mcp_session_events";

/// Events read from the log at a time.
const BATCH: i64 = 256;

/// Streams kept in memory, and events per stream (a response stream holds a few).
const MEMORY_STREAMS: usize = 4096;
const MEMORY_EVENTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("event {0:?} is not one this server issued")]
    UnknownEvent(String),
    #[error("stored event {0} cannot be read: {1}")]
    Corrupt(i64, serde_json::Error),
}

#[derive(Debug, Default)]
struct Memory {
    next: u64,
    streams: HashMap<String, VecDeque<(u64, ServerSseMessage)>>,
    /// Streams oldest first, for eviction.
    order: VecDeque<String>,
}

/// Cheap to clone: a follower task holds its own handle.
#[derive(Debug, Clone)]
pub struct SessionEvents {
    db: Database,
    sessions: Arc<Sessions>,
    hub: Arc<Hub>,
    closed: Arc<Hub>,
    memory: Arc<Mutex<Memory>>,
}

/// The session whose log `last_event_id` is from, if it is a logged event's id.
pub fn session_of(last_event_id: &str) -> Option<Uuid> {
    logged_id(last_event_id).map(|(s, _)| s)
}

/// A logged event's id, `{session}:{n}`.
fn logged_id(id: &str) -> Option<(Uuid, i64)> {
    let (session, n) = id.split_once(':')?;
    Some((Uuid::try_parse(session).ok()?, n.parse().ok()?))
}

fn to_row(event: &ServerSseMessage) -> Result<(Option<serde_json::Value>, Option<i32>), serde_json::Error> {
    let message = event.message.as_deref().map(serde_json::to_value).transpose()?;
    let retry = event.retry.map(|r| i32::try_from(r.as_millis()).unwrap_or(i32::MAX));
    Ok((message, retry))
}

fn from_row(
    session: Uuid,
    id: i64,
    message: Option<serde_json::Value>,
    retry_ms: Option<i32>,
) -> Result<ServerSseMessage, EventLogError> {
    let mut event = match message {
        Some(m) => ServerSseMessage::from_message(
            serde_json::from_value::<ServerJsonRpcMessage>(m).map_err(|e| EventLogError::Corrupt(id, e))?,
        ),
        None => ServerSseMessage::default(),
    };
    event.event_id = Some(format!("{session}:{id}"));
    event.retry = retry_ms.map(|ms| std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    Ok(event)
}

impl SessionEvents {
    pub fn new(db: Database, sessions: Arc<Sessions>, hub: Arc<Hub>, closed: Arc<Hub>) -> Self {
        Self { db, sessions, hub, closed, memory: Arc::default() }
    }

    async fn log(&self, tenant: TenantId, session: Uuid, event: &ServerSseMessage) -> Result<i64, EventLogError> {
        let (message, retry) = to_row(event).map_err(|e| EventLogError::Corrupt(0, e))?;
        let mut tx = self.db.tenant_tx(tenant).await?;
        // The notification fires on commit, after the row is visible.
        let (id, _): (i64, bool) = sqlx::query_as(
            "WITH e AS (INSERT INTO mcp_session_events (session_id, message, retry_ms) VALUES ($1, $2, $3) RETURNING id) \
             SELECT id, pg_notify($4, $1::text || ':' || id::text) IS NULL FROM e",
        )
        .bind(session)
        .bind(message)
        .bind(retry)
        .bind(EVENTS_CHANNEL)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Where the session's log ends now (settled rows only).
    pub async fn newest(&self, tenant: TenantId, session: Uuid) -> Result<Cursor, sqlx::Error> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let newest: Option<(i64, i64)> = sqlx::query_as(concat!(
            "SELECT xid::text::bigint, id FROM mcp_session_events WHERE session_id = $1 AND ",
            settled!(),
            " ORDER BY xid DESC, id DESC LIMIT 1"
        ))
        .bind(session)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(newest.map(|(xid, id)| Cursor { xid, id }).unwrap_or_default())
    }

    /// The position of logged event `id` of `session`, if it is still in the log.
    async fn cursor_of(&self, tenant: TenantId, session: Uuid, id: i64) -> Result<Option<Cursor>, sqlx::Error> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let xid: Option<i64> =
            sqlx::query_scalar("SELECT xid::text::bigint FROM mcp_session_events WHERE session_id = $1 AND id = $2")
                .bind(session)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(xid.map(|xid| Cursor { xid, id }))
    }

    async fn read(
        &self,
        tenant: TenantId,
        session: Uuid,
        after: Cursor,
    ) -> Result<Vec<(Cursor, ServerSseMessage)>, EventLogError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let rows: Vec<(i64, i64, Option<serde_json::Value>, Option<i32>)> = sqlx::query_as(concat!(
            "SELECT xid::text::bigint, id, message, retry_ms FROM mcp_session_events \
             WHERE session_id = $1 AND (xid, id) > ($2::bigint::text::xid8, $3) AND ",
            settled!(),
            " ORDER BY xid, id LIMIT $4"
        ))
        .bind(session)
        .bind(after.xid)
        .bind(after.id)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(|(xid, id, m, r)| Ok((Cursor { xid, id }, from_row(session, id, m, r)?))).collect()
    }

    /// The session's logged events after `after`, then live ones as any replica logs them, until
    /// the client leaves or the session ends.
    pub fn follow(&self, tenant: TenantId, session: Uuid, mut after: Cursor) -> EventStream {
        let (tx, mut rx) = mpsc::channel::<ServerSseMessage>(64);
        // Subscribed before the first read: an event logged in between is read or announced.
        let mut wake = self.hub.subscribe();
        let mut closed = self.closed.subscribe();
        let events = self.clone();
        let fallback = self.hub.timing.fallback_poll;
        tokio::spawn(async move {
            let mut pending = Pending::default();
            loop {
                let batch = match events.read(tenant, session, after).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, %session, "reading an MCP session's stream failed");
                        return;
                    }
                };
                let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
                for (position, event) in batch {
                    after = position;
                    pending.read(position.id);
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if full {
                    continue;
                }
                let wait = pending.wait(fallback);
                tokio::select! {
                    () = tx.closed() => return,
                    ended = session_ended(&mut closed, session) => if ended { return },
                    // Any announcement of the session: ids do not order the log (see Cursor).
                    id = announcement(&mut wake, session) => if let Some(id) = id { pending.announced(id) },
                    () = tokio::time::sleep(wait) => {}
                }
            }
        });
        Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    fn remember(&self, stream_id: &str, mut event: ServerSseMessage) -> EventId {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.next += 1;
        let n = memory.next;
        let id = format!("{stream_id}/{n}");
        event.event_id = Some(id.clone());
        if !memory.streams.contains_key(stream_id) {
            if memory.order.len() >= MEMORY_STREAMS
                && let Some(oldest) = memory.order.pop_front()
            {
                memory.streams.remove(&oldest);
            }
            memory.order.push_back(stream_id.to_owned());
        }
        let events = memory.streams.entry(stream_id.to_owned()).or_default();
        if events.len() >= MEMORY_EVENTS {
            events.pop_front();
        }
        events.push_back((n, event));
        id
    }

    fn recall(&self, last_event_id: &str) -> Option<Vec<ServerSseMessage>> {
        let (stream_id, n) = last_event_id.rsplit_once('/')?;
        let n: u64 = n.parse().ok()?;
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let events = memory.streams.get(stream_id)?;
        Some(events.iter().filter(|(m, _)| *m > n).map(|(_, e)| e.clone()).collect())
    }
}

/// Whether `session` ended (a closure was announced), waiting until something is announced.
async fn session_ended(closed: &mut broadcast::Receiver<(Uuid, i64)>, session: Uuid) -> bool {
    match closed.recv().await {
        Ok((id, _)) => id == session,
        Err(broadcast::error::RecvError::Lagged(_)) => false,
        Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
    }
}

#[async_trait::async_trait]
impl EventStore for SessionEvents {
    async fn store_event(&self, stream_id: &str, event: &ServerSseMessage) -> Result<EventId, EventStoreError> {
        let logged = stream_id
            .strip_suffix(":common")
            .and_then(|s| Uuid::try_parse(s).ok())
            .and_then(|s| Some((s, self.sessions.tenant_of(s)?)));
        match logged {
            Some((session, tenant)) => Ok(format!("{session}:{}", self.log(tenant, session, event).await?)),
            None => Ok(self.remember(stream_id, event.clone())),
        }
    }

    async fn replay_events_after(&self, last_event_id: &str) -> Result<EventStream, EventStoreError> {
        if let Some((session, n)) = logged_id(last_event_id) {
            // The gate checked this request's session (and that the id is of it) just before.
            let unknown = || EventLogError::UnknownEvent(last_event_id.into());
            let tenant = self.sessions.tenant_of(session).ok_or_else(unknown)?;
            // An event swept from the log cannot be resumed after: the client starts afresh.
            let after = self.cursor_of(tenant, session, n).await.map_err(EventLogError::Sql)?.ok_or_else(unknown)?;
            return Ok(self.follow(tenant, session, after));
        }
        let events = self.recall(last_event_id).ok_or_else(|| EventLogError::UnknownEvent(last_event_id.into()))?;
        Ok(Box::pin(futures::stream::iter(events)))
    }
}
