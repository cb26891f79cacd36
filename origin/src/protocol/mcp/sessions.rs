//! MCP sessions (2025 revisions) that every replica can serve: the session row (owner, the
//! client's `initialize` parameters) lives in PostgreSQL under row-level security, written once
//! when the session opens; each process keeps the rows it has used in memory.
//!
//! The gate asks [`Sessions::check`] before a request with `Mcp-Session-Id` reaches rmcp: an
//! unknown session, or one of another tenant or subject, is a 404 like any unknown session. When
//! rmcp has no worker for a known session (another replica opened it, or this one restarted),
//! it restores one through this type's [`SessionStore`] side, which answers from the row the
//! check just read, and replays the handshake. `DELETE` removes the row and announces it on
//! `mcp_sessions_closed`, so every replica drops its worker; idle sessions are swept the same
//! way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentplane_core::auth::Principal;
use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};
use uuid::Uuid;

use crate::data::db::{Database, TenantId, ensure_tenant};

/// Announces ended sessions (payload `id:0`), so every replica drops its worker.
pub const CLOSED_CHANNEL: &str = "mcp_sessions_closed";

/// How often a replica that serves a session refreshes its `last_seen_at`.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How long `initialize` parameters wait for the gate to persist their session.
const PENDING_FOR: Duration = Duration::from_secs(60);

/// A session this process has seen.
#[derive(Debug, Clone)]
struct Known {
    tenant: TenantId,
    subject: String,
    initialize: Arc<InitializeRequestParams>,
    touched: Instant,
}

/// What [`Sessions::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The session exists and belongs to the caller.
    Owned,
    /// No such session for this caller (unknown, ended, or another tenant's or subject's).
    Unknown,
}

#[derive(Debug)]
pub struct Sessions {
    db: Database,
    known: Mutex<HashMap<Uuid, Known>>,
    /// `initialize` parameters rmcp handed to [`SessionStore::store`], until the gate, which knows
    /// the caller, persists the session with them.
    pending: Mutex<HashMap<Uuid, (InitializeRequestParams, Instant)>>,
    capacity: usize,
    /// Where each check's time is recorded.
    metrics: Option<Arc<crate::app::metrics::Metrics>>,
}

fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::try_parse(id).ok()
}

impl Sessions {
    pub fn new(db: Database, capacity: usize) -> Self {
        Self { db, known: Mutex::default(), pending: Mutex::default(), capacity: capacity.max(1), metrics: None }
    }

    /// Records each check's time in `metrics` (`agentplane_mcp_session_lookup_seconds`).
    pub fn with_metrics(mut self, metrics: Arc<crate::app::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, id: Uuid, known: Known) {
        let mut map = self.known();
        if map.len() >= self.capacity && !map.contains_key(&id) {
            // Forget the least recently refreshed half; they are read again on their next use.
            let mut ages: Vec<Instant> = map.values().map(|k| k.touched).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            map.retain(|_, k| k.touched > cut);
        }
        map.insert(id, known);
    }

    /// The tenant of a session this process has checked, for work done on its behalf (its
    /// stream's events).
    pub fn tenant_of(&self, id: Uuid) -> Option<TenantId> {
        self.known().get(&id).map(|k| k.tenant)
    }

    /// The `initialize` parameters of `principal`'s session `id` (its revision, the client's
    /// capabilities); `None` when it is not a live session of theirs.
    pub async fn initialize_of(
        &self,
        id: &str,
        principal: &Principal,
    ) -> Result<Option<Arc<InitializeRequestParams>>, sqlx::Error> {
        let Some(uuid) = parse_id(id) else { return Ok(None) };
        let cached = || {
            self.known()
                .get(&uuid)
                .filter(|k| k.tenant == TenantId::of(principal) && k.subject == principal.subject)
                .map(|k| k.initialize.clone())
        };
        if let Some(params) = cached() {
            return Ok(Some(params));
        }
        // Read again (the gate's check put it in memory, but a full map may have let it go).
        self.lookup(id, principal).await?;
        Ok(cached())
    }

    /// Whether `id` is a live session of `principal`'s tenant and subject; refreshes its
    /// `last_seen_at` at most every [`TOUCH_EVERY`] per process.
    pub async fn check(&self, id: &str, principal: &Principal) -> Result<Check, sqlx::Error> {
        let started = Instant::now();
        let (check, database) = self.lookup(id, principal).await?;
        if let Some(m) = &self.metrics {
            m.observe_session_lookup(database, started.elapsed());
        }
        Ok(check)
    }

    /// [`Self::check`], and whether it went to the database.
    async fn lookup(&self, id: &str, principal: &Principal) -> Result<(Check, bool), sqlx::Error> {
        let Some(uuid) = parse_id(id) else { return Ok((Check::Unknown, false)) };
        let tenant = TenantId::of(principal);
        let cached = self.known().get(&uuid).cloned();
        if let Some(k) = &cached {
            if k.tenant != tenant || k.subject != principal.subject {
                return Ok((Check::Unknown, false));
            }
            if k.touched.elapsed() < TOUCH_EVERY {
                return Ok((Check::Owned, false));
            }
        }
        // One statement reads the owner's row and refreshes it; RLS hides other tenants' rows.
        let mut tx = self.db.tenant_tx(tenant).await?;
        let row: Option<(sqlx::types::Json<InitializeRequestParams>,)> = sqlx::query_as(
            "UPDATE mcp_sessions SET last_seen_at = now() WHERE id = $1 AND subject = $2 RETURNING initialize",
        )
        .bind(uuid)
        .bind(&principal.subject)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some((initialize,)) => {
                let known = Known {
                    tenant,
                    subject: principal.subject.clone(),
                    initialize: Arc::new(initialize.0),
                    touched: Instant::now(),
                };
                self.remember(uuid, known);
                Ok((Check::Owned, true))
            }
            None => {
                self.known().remove(&uuid);
                Ok((Check::Unknown, true))
            }
        }
    }

    /// Persists the session rmcp just opened for `principal`, with the `initialize` parameters it
    /// handed over. `Ok(false)`: rmcp handed none (the session cannot be restored elsewhere).
    pub async fn open(&self, id: &str, principal: &Principal) -> Result<bool, sqlx::Error> {
        let Some(uuid) = parse_id(id) else { return Ok(false) };
        let Some((initialize, _)) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&uuid) else {
            return Ok(false);
        };
        let tenant = TenantId::of(principal);
        let mut tx = self.db.tenant_tx(tenant).await?;
        ensure_tenant(&mut tx).await?;
        sqlx::query("INSERT INTO mcp_sessions (id, subject, initialize) VALUES ($1, $2, $3)")
            .bind(uuid)
            .bind(&principal.subject)
            .bind(sqlx::types::Json(&initialize))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let known = Known {
            tenant,
            subject: principal.subject.clone(),
            initialize: Arc::new(initialize),
            touched: Instant::now(),
        };
        self.remember(uuid, known);
        Ok(true)
    }

    /// Ends `principal`'s session `id` everywhere: the row goes (its stream log with it) and every
    /// replica hears of it on [`CLOSED_CHANNEL`].
    pub async fn close(&self, id: &str, principal: &Principal) -> Result<(), sqlx::Error> {
        let Some(uuid) = parse_id(id) else { return Ok(()) };
        let mut tx = self.db.tenant_tx(TenantId::of(principal)).await?;
        sqlx::query(
            "WITH gone AS (DELETE FROM mcp_sessions WHERE id = $1 AND subject = $2 RETURNING id) \
             SELECT pg_notify($3, id::text || ':0') FROM gone",
        )
        .bind(uuid)
        .bind(&principal.subject)
        .bind(CLOSED_CHANNEL)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.known().remove(&uuid);
        Ok(())
    }

    /// `logging/setLevel` of `principal`'s session `id`: kept in its row, so the level holds on
    /// every replica that serves the session.
    pub async fn set_log_level(&self, id: Uuid, principal: &Principal, level: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.db.tenant_tx(TenantId::of(principal)).await?;
        sqlx::query("UPDATE mcp_sessions SET log_level = $3 WHERE id = $1 AND subject = $2")
            .bind(id)
            .bind(&principal.subject)
            .bind(level)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Another replica (or the sweep) ended `id`: forget it here.
    pub fn forget(&self, id: Uuid) {
        self.known().remove(&id);
    }

    /// Ends sessions idle for longer than `idle` in every tenant, and trims stream logs to that
    /// age; returns how many sessions ended.
    pub async fn sweep(&self, idle: Duration) -> Result<i32, sqlx::Error> {
        sqlx::query_scalar("SELECT mcp_sweep_sessions(make_interval(secs => $1), make_interval(secs => $1))")
            .bind(idle.as_secs_f64())
            .fetch_one(self.db.pool())
            .await
    }
}

#[async_trait::async_trait]
impl SessionStore for Sessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        // The gate checked this request's session just before rmcp asks, so the row is here.
        let Some(uuid) = parse_id(session_id) else { return Ok(None) };
        Ok(self.known().get(&uuid).map(|k| SessionState::new((*k.initialize).clone())))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let Some(uuid) = parse_id(session_id) else { return Ok(()) };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Handshakes whose gate never came back (a client gone mid-initialize) are dropped here.
        pending.retain(|_, (_, at)| at.elapsed() < PENDING_FOR);
        pending.insert(uuid, (state.initialize_params.clone(), Instant::now()));
        Ok(())
    }

    async fn delete(&self, _session_id: &str) -> Result<(), SessionStoreError> {
        // The gate deletes the row: it knows who asked.
        Ok(())
    }
}
