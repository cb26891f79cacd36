//! Whether the database answers, as a flag every request can read without waiting: a
//! background probe runs `SELECT 1` every [`PROBE_EVERY`] with a deadline of [`PROBE_DEADLINE`].
//! While it fails, the gate answers `/mcp` and `/a2a` with 503 and `Retry-After` at once instead
//! of letting each request wait on the pool, and the first probe that succeeds opens it again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::data::db::Database;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// What a client refused while the database is down should wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 2;

/// The database's last known state; up until a probe says otherwise.
#[derive(Debug)]
pub struct DatabaseHealth {
    up: AtomicBool,
}

impl DatabaseHealth {
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Starts probing `db` until `cancel`; the flag starts up.
    pub fn watch(db: Database, cancel: CancellationToken) -> Arc<Self> {
        let health = Arc::new(Self { up: AtomicBool::new(true) });
        let watched = Arc::clone(&health);
        tokio::spawn(async move {
            loop {
                let answered = tokio::time::timeout(PROBE_DEADLINE, sqlx::query("SELECT 1").execute(db.pool()))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if watched.up.swap(answered, Ordering::Relaxed) != answered {
                    if answered {
                        tracing::info!("the database answers again");
                    } else {
                        tracing::error!("the database does not answer; refusing requests with 503");
                    }
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
