//! The back-fill: embeds documents stored without a vector, a batch at a time, in the background
//! of every origin process.
//!
//! Several workers (in one process or across replicas) share the work without coordination: each
//! batch is claimed with `FOR UPDATE SKIP LOCKED` inside a tenant transaction, embedded while the
//! rows stay locked, and written in the same transaction, so a row is embedded once and a
//! concurrent edit of it waits for (or follows) the new vector.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{EmbedError, Embedder};
use crate::data::db::{Database, SystemTask, TenantId};

/// The subject back-fill embedding calls are metered under.
pub const SUBJECT: &str = "agentplane-backfill";
pub const BATCH: i64 = 32;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// What the workers of this process have done, for `/ready`.
#[derive(Debug, Default)]
pub struct Progress {
    embedded: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// Rows without a vector, over all tenants.
    pub pending: i64,
    /// Rows this process has embedded since it started.
    pub embedded_since_start: u64,
    pub last_error: Option<String>,
}

impl Progress {
    pub async fn report(&self, db: &Database) -> Result<Report, sqlx::Error> {
        let pending: i64 = backlog(db).await?.iter().map(|(_, n)| n).sum();
        Ok(Report {
            pending,
            embedded_since_start: self.embedded.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        })
    }

    fn record(&self, outcome: &Result<usize, BackfillError>) {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(n) => {
                self.embedded.fetch_add(*n as u64, Ordering::Relaxed);
                *last = None;
            }
            Err(e) => *last = Some(e.to_string()),
        }
    }
}

/// Tenants with rows to embed, and how many each.
pub async fn backlog(db: &Database) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, pending FROM embedding_backlog()").fetch_all(db.pool()).await
}

/// Claims, embeds and stores one batch of `tenant`'s rows; returns how many (0: none left that no
/// other worker holds).
pub async fn embed_batch(
    db: &Database,
    embedder: &Embedder,
    tenant: TenantId,
    batch: i64,
) -> Result<usize, BackfillError> {
    let mut tx = db.tenant_tx(tenant).await?;
    let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT id, title, content FROM documents WHERE embedding IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let texts = rows.iter().map(|(_, title, content)| super::document_text(title, content)).collect();
    let (vectors, usage) = embedder.embed(texts).await?;
    let ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    let vectors: Vec<pgvector::Vector> = vectors.into_iter().map(pgvector::Vector::from).collect();
    // updated_at is left alone: the document's content did not change.
    sqlx::query(
        "UPDATE documents AS d SET embedding = u.embedding, embedding_model = $3 \
         FROM unnest($1::uuid[], $2::vector[]) AS u(id, embedding) WHERE d.id = u.id",
    )
    .bind(&ids)
    .bind(&vectors)
    .bind(&usage.model)
    .execute(&mut *tx)
    .await?;
    crate::models::usage::record_embedding(&mut tx, SUBJECT, &usage).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Embeds batches of `tenant` until none is left to claim; returns the rows embedded.
pub async fn drain_tenant(
    db: &Database,
    embedder: &Embedder,
    tenant: TenantId,
    batch: i64,
    progress: &Progress,
) -> Result<usize, BackfillError> {
    let mut total = 0;
    loop {
        let outcome = embed_batch(db, embedder, tenant, batch).await;
        progress.record(&outcome);
        match outcome? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

/// The worker loop: drains every tenant's backlog, then waits `idle` before looking again. A
/// failure (provider down, circuit open) also waits, so a dead provider is not hammered.
pub async fn run(
    db: Database,
    embedder: Embedder,
    progress: std::sync::Arc<Progress>,
    idle: Duration,
    cancel: CancellationToken,
) {
    loop {
        let pass = async {
            for (tenant, _) in backlog(&db).await? {
                drain_tenant(&db, &embedder, TenantId::for_system_task(tenant, SystemTask::Backfill), BATCH, &progress)
                    .await?;
            }
            Ok::<(), BackfillError>(())
        };
        let outcome = tokio::select! {
            outcome = pass => outcome,
            () = cancel.cancelled() => return,
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "embedding back-fill paused");
        }
        tokio::select! {
            () = tokio::time::sleep(idle) => {}
            () = cancel.cancelled() => return,
        }
    }
}
