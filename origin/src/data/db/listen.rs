//! One LISTEN connection per channel and process, fanned out in-process: a [`Hub`] turns a
//! channel's notifications (`uuid:seq` payloads: an A2A task's newest event, an MCP session's
//! newest stream event, a closed session) into a broadcast that any number of followers
//! subscribe to. Followers read their log, never the notification, so a notification is only a
//! hint: a missed or lagged one costs at most a short fallback poll.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How followers of a hub wait.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a follower trusts notifications before it reads the log anyway (what a missed
    /// notification can cost).
    pub fallback_poll: Duration,
    /// Comment lines on idle streams this often, so proxies keep them open.
    pub heartbeat: Duration,
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

impl Hub {
    pub fn start(pool: sqlx::PgPool, channel: &'static str, timing: Timing, shutdown: CancellationToken) -> Arc<Self> {
        let (tx, _) = broadcast::channel(4096);
        tokio::spawn(listen(pool, channel, tx.clone(), shutdown));
        Arc::new(Self { tx, timing })
    }

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
    channel: &'static str,
    tx: broadcast::Sender<(Uuid, i64)>,
    shutdown: CancellationToken,
) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(channel).await {
                Ok(()) => {
                    // The periodic poll then only covers a connection that died without an error.
                    let _ = tx.send(WAKE_ALL);
                    loop {
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            n = listener.recv() => match n {
                                Ok(n) => {
                                    if let Some(event) = parse_notification(n.payload()) {
                                        // No receivers is fine: nobody follows that key here.
                                        let _ = tx.send(event);
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, channel, "listener lost its connection");
                                    break;
                                }
                            },
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, channel, "LISTEN failed"),
            },
            Err(e) => tracing::warn!(error = %e, channel, "listener cannot connect"),
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
