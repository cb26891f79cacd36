//! Keeping the BM25 index fast. pg_search query cost grows with the number of index segments
//! (measured on SciFact, 5,183 documents: 6 ms per query in one segment, 21 ms in five), and
//! documents written one at a time leave many. Every interval one origin (an advisory lock picks
//! it) checks the segment count and rebuilds the index concurrently when it has fragmented:
//! reads and writes go on meanwhile.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::LexicalBackend;

/// Above this many segments the index is rebuilt.
pub const MAX_SEGMENTS: i64 = 3;
const INTERVAL: Duration = Duration::from_secs(10);
/// An arbitrary constant naming the compaction lock among the database's advisory locks.
const LOCK_KEY: i64 = 0x6167_656e_7470_6c31;

/// Runs until `cancel`; a no-op on servers without pg_search.
pub async fn run(pool: PgPool, backend: LexicalBackend, cancel: CancellationToken) {
    if backend != LexicalBackend::PgSearchBm25 {
        return;
    }
    loop {
        match compact_if_fragmented(&pool, MAX_SEGMENTS).await {
            Ok(Some(segments)) => tracing::info!(segments_before = segments, "compacted the BM25 index"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "BM25 index maintenance failed; will retry"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

/// Rebuilds the index if it has more than `max_segments` segments and no other origin is at it;
/// returns the segment count it started from.
pub async fn compact_if_fragmented(pool: &PgPool, max_segments: i64) -> Result<Option<i64>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut *conn).await?;
    if !locked {
        return Ok(None);
    }
    let result = async {
        let segments: i64 = sqlx::query_scalar("SELECT count(*) FROM paradedb.index_info('documents_bm25')")
            .fetch_one(&mut *conn)
            .await?;
        if segments <= max_segments {
            return Ok(None);
        }
        sqlx::query("REINDEX INDEX CONCURRENTLY documents_bm25").execute(&mut *conn).await?;
        Ok(Some(segments))
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LOCK_KEY).execute(&mut *conn).await;
    result
}

/// The current segment count, for `/ready`.
pub async fn segments(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM paradedb.index_info('documents_bm25')").fetch_one(pool).await
}
