//! Whether the database answers and is migrated, as a value every request can read without
//! waiting: a background probe runs the readiness query every [`PROBE_EVERY`] with a deadline of
//! [`PROBE_DEADLINE`]. Public `/ready` answers from it, so a flood of `/ready` costs the database
//! nothing; and while the database does not answer, the gate refuses `/mcp` and `/a2a` with 503
//! and `Retry-After` at once instead of letting each request wait on the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::data::db::Database;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// What a client refused while the database is down should wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 2;

/// What public readiness says: nothing more than whether to send traffic here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Migrating,
    Unavailable,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Migrating => "migrating",
            Readiness::Unavailable => "unavailable",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Readiness::Ready,
            1 => Readiness::Migrating,
            _ => Readiness::Unavailable,
        }
    }
}

/// The readiness query: whether every migration is applied, with the counts for operators.
pub async fn check_readiness(db: &Database) -> (Readiness, Value) {
    let expected = crate::data::db::MIGRATOR.iter().count();
    match db.readiness().await {
        Ok(applied) if applied >= expected => (Readiness::Ready, json!({ "applied": applied, "expected": expected })),
        Ok(applied) => (Readiness::Migrating, json!({ "applied": applied, "expected": expected })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (Readiness::Unavailable, Value::Null)
        }
    }
}

/// The database's last known readiness. It starts ready: the server is built after the
/// migrations ran.
#[derive(Debug)]
pub struct DatabaseHealth {
    readiness: AtomicU8,
}

impl DatabaseHealth {
    pub fn readiness(&self) -> Readiness {
        Readiness::from_u8(self.readiness.load(Ordering::Relaxed))
    }

    /// Whether the database answers (migrated or not).
    pub fn up(&self) -> bool {
        self.readiness() != Readiness::Unavailable
    }

    /// Starts probing `db` until `cancel`.
    pub fn watch(db: Database, cancel: CancellationToken) -> Arc<Self> {
        let health = Arc::new(Self { readiness: AtomicU8::new(Readiness::Ready as u8) });
        let watched = Arc::clone(&health);
        tokio::spawn(async move {
            loop {
                let now = tokio::time::timeout(PROBE_DEADLINE, check_readiness(&db))
                    .await
                    .map_or(Readiness::Unavailable, |(r, _)| r);
                let before = Readiness::from_u8(watched.readiness.swap(now as u8, Ordering::Relaxed));
                match (before == Readiness::Unavailable, now == Readiness::Unavailable) {
                    (false, true) => tracing::error!("the database does not answer; refusing requests with 503"),
                    (true, false) => tracing::info!("the database answers again"),
                    _ => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                }
            }
        });
        health
    }
}
