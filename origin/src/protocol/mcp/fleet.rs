//! rmcp's session manager for a fleet of replicas: rmcp's in-memory [`LocalSessionManager`]
//! runs each session's worker in this process (restored from the session row when another
//! replica opened it), and the standalone GET stream is the session's event log rather than this
//! worker's channel, so it carries what every replica sent to the session. A client's answer to
//! a server request (sampling, elicitation) may land on another replica than the tool call that
//! waits for it: it goes through `mcp_session_inbox` to every replica that runs the session.

use std::sync::Arc;

use futures::Stream;
use futures::future::Either;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, LocalSessionManagerError};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use uuid::Uuid;

use super::events::SessionEvents;
use super::sessions::Sessions;
use crate::data::db::listen::{Hub, WAKE_ALL};
use crate::data::db::{Database, TenantId};

/// Announces a client's answer as `session:id` of its `mcp_session_inbox` row.
pub const INBOX_CHANNEL: &str = "mcp_session_inbox";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    #[error("session event log: {0}")]
    Log(#[from] sqlx::Error),
    #[error("a client message cannot be stored: {0}")]
    Message(#[from] serde_json::Error),
}

#[derive(Debug)]
pub struct Fleet {
    local: LocalSessionManager,
    sessions: Arc<Sessions>,
    events: SessionEvents,
    db: Database,
    inbox: Arc<Hub>,
}

impl Fleet {
    pub fn new(db: Database, sessions: Arc<Sessions>, events: SessionEvents, inbox: Arc<Hub>) -> Self {
        let local = LocalSessionManager::default().with_event_store(Arc::new(events.clone()));
        Self { local, sessions, events, db, inbox }
    }

    /// The session's id and tenant, when it is one of the database's sessions.
    fn logged(&self, id: &SessionId) -> Option<(Uuid, TenantId)> {
        Uuid::try_parse(id).ok().and_then(|s| Some((s, self.sessions.tenant_of(s)?)))
    }

    async fn post(&self, tenant: TenantId, session: Uuid, message: &ClientJsonRpcMessage) -> Result<(), FleetError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        sqlx::query(
            "WITH m AS (INSERT INTO mcp_session_inbox (session_id, message) VALUES ($1, $2) RETURNING id) \
             SELECT pg_notify($3, $1::text || ':' || id::text) FROM m",
        )
        .bind(session)
        .bind(serde_json::to_value(message)?)
        .bind(INBOX_CHANNEL)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take(&self, tenant: TenantId, id: i64) -> Result<Option<ClientJsonRpcMessage>, FleetError> {
        let mut tx = self.db.tenant_tx(tenant).await?;
        let message: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT message FROM mcp_session_inbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(message.map(serde_json::from_value).transpose()?)
    }

    /// Hands every client answer posted on any replica to this process's worker of its session,
    /// if it runs one; a worker that did not ask ignores an answer it does not expect.
    pub async fn deliver_answers(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut rx = self.inbox.subscribe();
        loop {
            let (session, id) = tokio::select! {
                () = cancel.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(posted) if posted == WAKE_ALL => continue,
                    Ok(posted) => posted,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "MCP client answers were missed");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            let sid: SessionId = session.to_string().into();
            let Some(tenant) = self.sessions.tenant_of(session) else { continue };
            if !self.local.has_session(&sid).await.unwrap_or(false) {
                continue;
            }
            let delivered = match self.take(tenant, id).await {
                Ok(Some(message)) => self.local.accept_message(&sid, message).await.map_err(FleetError::from),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = delivered {
                tracing::warn!(error = %e, %session, "delivering an MCP client answer failed");
            }
        }
    }
}

impl SessionManager for Fleet {
    type Error = FleetError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        Ok(self.local.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.local.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.local.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        Ok(self.local.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.local.create_stream(id, message).await?)
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        // An answer may be for a call waiting on another replica: every replica running the
        // session hears of it (this one too, through the same notification).
        if matches!(message, JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_))
            && let Some((session, tenant)) = self.logged(id)
        {
            return self.post(tenant, session, &message).await;
        }
        Ok(self.local.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let Some((session, tenant)) = self.logged(id) else {
            // A session whose row could not be written serves its own channel only.
            return Ok(Either::Left(self.local.create_standalone_stream(id).await?));
        };
        // Read before the local channel opens, so its priming event is in what follows.
        let after = self.events.newest(tenant, session).await?;
        // The worker's channel stays registered (one GET stream per session, as rmcp enforces),
        // but what it sends is logged first and reaches the client through the log; the
        // worker's sends to the dropped receiver fail quietly.
        drop(self.local.create_standalone_stream(id).await?);
        Ok(Either::Right(self.events.follow(tenant, session, after)))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.local.resume(id, last_event_id).await?)
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        Ok(self.local.restore_session(id).await?)
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.local.event_store()
    }
}
