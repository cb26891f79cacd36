//! One LISTEN connection per process for all its channels, fanned out in-process: a [`Hub`] turns
//! a channel's notifications (`uuid:seq` payloads: an A2A task's newest event, an MCP session's
//! newest stream event, a closed session, a tenant's resource change) into a broadcast that any
//! number of followers subscribe to. Followers read their log, never the notification, so a
//! notification is only a hint: a missed or lagged one costs at most a short fallback poll.
//!
//! The connection is the process's own, outside the service pool: a LISTEN holds its connection
//! for the life of the process, and the pool's size is what queries may use at once.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A position in an append-only log whose rows carry their writing transaction (`xid xid8`).
/// Identity ids are taken at insert, not at commit, so a follower that moved past id `n` could
/// miss a row `n - 1` that commits later. Followers therefore read in `(xid, id)` order, and only
/// rows of transactions that have ended ([`settled!`]): every later-settling row then sorts after
/// what was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub xid: i64,
    pub id: i64,
}

/// The SQL condition of a settled row: its transaction is older than every one still running. A
/// macro, so queries are `concat!`ed once at compile time, not formatted on every read.
#[macro_export]
macro_rules! settled {
    () => {
        "xid < pg_snapshot_xmin(pg_current_snapshot())"
    };
}

/// Rows announced to a follower that it has not read yet: one whose transaction committed while
/// an older writer still runs is not settled, and no second announcement will come for it. While
/// any is pending the follower reads again soon (20 ms, doubling), not at its fallback poll; one
/// pending longer than that (a rolled-back write) is given up.
#[derive(Debug, Default)]
pub struct Pending {
    ids: std::collections::HashSet<i64>,
    since: Option<tokio::time::Instant>,
    retry: Duration,
}

impl Pending {
    pub fn announced(&mut self, id: i64) {
        if self.ids.insert(id) && self.since.is_none() {
            self.since = Some(tokio::time::Instant::now());
            self.retry = Duration::from_millis(20);
        }
    }

    pub fn read(&mut self, id: i64) {
        self.ids.remove(&id);
    }

    /// How long to wait before reading again.
    pub fn wait(&mut self, fallback: Duration) -> Duration {
        let expired = self.since.is_some_and(|t| t.elapsed() >= fallback);
        if self.ids.is_empty() || expired {
            self.ids.clear();
            self.since = None;
            return fallback;
        }
        let wait = self.retry;
        self.retry = (self.retry * 2).min(fallback);
        wait
    }
}

/// The next announcement for `key`: `Some(id)`, or `None` when everything must be read again (a
/// restarted listener, missed announcements).
pub async fn announcement(rx: &mut broadcast::Receiver<(Uuid, i64)>, key: Uuid) -> Option<i64> {
    loop {
        match rx.recv().await {
            Ok(event) if event == WAKE_ALL => return None,
            Ok((k, n)) if k == key => return Some(n),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return None,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// How followers of a hub wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a follower trusts notifications before it reads the log anyway (what a missed
    /// notification can cost).
    pub fallback_poll: Duration,
    /// Comment lines on idle streams this often, so proxies keep them open.
    pub heartbeat: Duration,
}

impl Timing {
    /// The configured timing (`a2a.stream_poll_ms`, `a2a.heartbeat_ms`), for every stream.
    pub fn of(config: &crate::app::config::Config) -> Self {
        Self {
            fallback_poll: Duration::from_millis(config.a2a.stream_poll_ms.max(10)),
            heartbeat: Duration::from_millis(config.a2a.heartbeat_ms.max(10)),
        }
    }
}

/// One channel's notifications as an in-process broadcast.
#[derive(Debug)]
pub struct Hub {
    tx: broadcast::Sender<(Uuid, i64)>,
    pub timing: Timing,
}

/// Sent to every follower when the LISTEN connection (re)starts: whatever was committed while no
/// LISTEN was active was never announced, so every follower reads its log once then.
pub const WAKE_ALL: (Uuid, i64) = (Uuid::nil(), 0);

/// The channels a process listens to, registered before [`Listener::start`].
#[derive(Debug, Default)]
pub struct Listener {
    channels: Vec<(&'static str, broadcast::Sender<(Uuid, i64)>)>,
}

impl Listener {
    pub fn new() -> Self {
        Self::default()
    }

    /// The hub of `channel`, live once the listener starts.
    pub fn hub(&mut self, channel: &'static str, timing: Timing) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(4096);
        self.channels.push((channel, tx.clone()));
        Arc::new(Hub { tx, timing })
    }

    /// LISTENs to every registered channel on one connection made with `pool`'s settings.
    pub fn start(self, pool: &sqlx::PgPool, shutdown: CancellationToken) {
        let options = pool.connect_options().as_ref().clone();
        let own = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
        tokio::spawn(listen(own, self.channels, shutdown));
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, i64)> {
        self.tx.subscribe()
    }
}

/// Returns once `key` may have an entry after `after`: its announcement, a restarted listener
/// ([`WAKE_ALL`]) or missed announcements (lag) all mean "read the log again".
pub async fn announced(rx: &mut broadcast::Receiver<(Uuid, i64)>, key: Uuid, after: i64) {
    loop {
        match rx.recv().await {
            Ok((k, n)) if k == key && n > after => return,
            Ok(event) if event == WAKE_ALL => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

fn parse_notification(payload: &str) -> Option<(Uuid, i64)> {
    let (key, seq) = payload.split_once(':')?;
    Some((Uuid::parse_str(key).ok()?, seq.parse().ok()?))
}

async fn listen(
    pool: sqlx::PgPool,
    channels: Vec<(&'static str, broadcast::Sender<(Uuid, i64)>)>,
    shutdown: CancellationToken,
) {
    let names: Vec<&str> = channels.iter().map(|(c, _)| *c).collect();
    let wake_all = || {
        for (_, tx) in &channels {
            let _ = tx.send(WAKE_ALL);
        }
    };
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen_all(names.iter().copied()).await {
                Ok(()) => {
                    // The periodic poll then only covers a connection that died without an error.
                    wake_all();
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            n = listener.recv() => match n {
                                Ok(n) => {
                                    let hub = channels.iter().find(|(c, _)| *c == n.channel());
                                    if let (Some((_, tx)), Some(event)) = (hub, parse_notification(n.payload())) {
                                        // No receivers is fine: nobody follows that key here.
                                        let _ = tx.send(event);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "listener lost its connection");
                                    break;
                                }
                            },
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
            },
            Err(e) => tracing::warn!(error = %e, "listener cannot connect"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            // Then connect again.
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_parse_or_are_ignored() {
        let id = Uuid::new_v4();
        assert_eq!(parse_notification(&format!("{id}:42")), Some((id, 42)));
        assert_eq!(parse_notification("nonsense"), None);
        assert_eq!(parse_notification(&format!("{id}:x")), None);
    }
}
