//! `agentplane ingest`: documents from files into a tenant, in batches. Each batch is checked
//! against what is stored (by the id derived from tenant and external id, and the content hash),
//! so unchanged documents cost neither an embedding nor a write; the rest are embedded in one call
//! and written with COPY in one tenant transaction. A batch commits as a whole, so an interrupted
//! run leaves whole batches behind and a re-run picks up after them without duplicates.

pub mod source;
pub mod write;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::data::db::{Database, TenantId};
use crate::models::embed::Embedder;
use source::{Bad, Item, Record};

/// The document id an external id (a BEIR `_id`, a file's path) maps to within a tenant: stable,
/// so loading twice updates rather than duplicates. Ids are each tenant's own (the key is
/// `(tenant_id, id)`); the tenant in the hash only keeps ids of different tenants apart in logs.
pub fn document_id(tenant: Uuid, external: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update(external.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// The subject ingest's embedding calls are metered under.
pub const SUBJECT: &str = "agentplane-ingest";

#[derive(Debug, Clone)]
pub struct Options {
    /// Documents per transaction.
    pub batch: usize,
}

impl Options {
    /// Large batches make COPY pay; with a model, smaller ones keep progress and restarts fine-grained.
    pub fn for_embedder(embedder: Option<&Embedder>) -> Self {
        Self { batch: if embedder.is_some() { 64 } else { 2000 } }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Later lines with an external id seen earlier in the same batch replace it.
    pub repeated: u64,
    pub bad: u64,
    /// Written without a vector (the provider failed); the back-fill embeds them later.
    pub without_embedding: u64,
    pub elapsed: Duration,
}

impl Summary {
    pub fn docs_per_sec(&self) -> f64 {
        self.read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Progress as ingest goes: a bar on a terminal, nothing in tests.
pub trait Observer {
    fn total(&mut self, _records: u64) {}
    fn advanced(&mut self, _records: u64) {}
    fn bad(&mut self, _bad: &Bad) {}
    fn warn(&mut self, _message: &str) {}
}

impl Observer for () {}

/// Ingests every document under `path` into `tenant`.
pub async fn ingest(
    db: &Database,
    embedder: Option<&Embedder>,
    tenant: TenantId,
    path: &Path,
    options: &Options,
    observer: &mut dyn Observer,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (files, _ignored) = source::files(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    anyhow::ensure!(!files.is_empty(), "{}: no .jsonl, .md or .txt files", path.display());
    observer.total(source::estimate(&files));
    let mut summary = Summary::default();
    let mut batch = Vec::with_capacity(options.batch);
    let mut embedder = embedder;
    let client = db.copy_client().await.context("opening the ingest connection")?;
    let vector = write::vector_type(&client).await.context("looking up pgvector's type")?;
    let mut run = Run { client, vector, known: lru::LruCache::new(KNOWN_VECTORS) };
    for item in source::Reader::new(files) {
        match item {
            Item::Record(r) => batch.push(r),
            Item::Bad(b) => {
                summary.bad += 1;
                observer.bad(&b);
                observer.advanced(1);
            }
        }
        if batch.len() >= options.batch.max(1) {
            store(db, &mut run, &mut embedder, tenant, std::mem::take(&mut batch), &mut summary, observer).await?;
        }
    }
    store(db, &mut run, &mut embedder, tenant, batch, &mut summary, observer).await?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Distinct texts whose vectors one run remembers (about 1.5 KiB each at 384 dimensions).
const KNOWN_VECTORS: NonZeroUsize = NonZeroUsize::MIN.saturating_add(16_383);

/// What one ingest run carries from batch to batch.
struct Run {
    /// The binary COPY connection.
    client: tokio_postgres::Client,
    /// pgvector's type on that connection's database.
    vector: postgres_types::Type,
    /// Vectors by content hash: a corpus that repeats a text (boilerplate pages, the same
    /// abstract under two ids) embeds it once.
    known: lru::LruCache<Vec<u8>, Arc<[f32]>>,
}

struct Stored {
    hash: Vec<u8>,
    metadata: Value,
    has_embedding: bool,
}

async fn store(
    db: &Database,
    run: &mut Run,
    embedder: &mut Option<&Embedder>,
    tenant: TenantId,
    batch: Vec<Record>,
    summary: &mut Summary,
    observer: &mut dyn Observer,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let n = batch.len() as u64;
    summary.read += n;
    // One row per id: the last line for an external id wins.
    let mut last: HashMap<Uuid, usize> = HashMap::with_capacity(batch.len());
    let ids: Vec<Uuid> = batch.iter().map(|r| document_id(tenant.as_uuid(), &r.external_id)).collect();
    for (i, id) in ids.iter().enumerate() {
        last.insert(*id, i);
    }
    summary.repeated += n - last.len() as u64;

    let mut tx = db.tenant_tx(tenant).await?;
    let rows: Vec<(Uuid, Vec<u8>, Value, bool)> =
        sqlx::query_as("SELECT id, content_hash, metadata, embedding IS NOT NULL FROM documents WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    let stored: HashMap<Uuid, Stored> = rows
        .into_iter()
        .map(|(id, hash, metadata, has_embedding)| (id, Stored { hash, metadata, has_embedding }))
        .collect();

    struct Pending<'a> {
        id: Uuid,
        record: &'a Record,
        hash: Vec<u8>,
        embed: bool,
    }
    let mut pending = Vec::new();
    for (i, record) in batch.iter().enumerate() {
        let id = ids[i];
        if last.get(&id) != Some(&i) {
            continue;
        }
        let hash = crate::data::docs::content_hash(&record.title, &record.content);
        let old = stored.get(&id);
        let same_text = old.is_some_and(|o| o.hash == hash);
        let has_vector = same_text && old.is_some_and(|o| o.has_embedding);
        let same_metadata = old.is_some_and(|o| o.metadata.as_object() == Some(&record.metadata));
        if same_text && same_metadata && (has_vector || embedder.is_none()) {
            summary.unchanged += 1;
            continue;
        }
        let embed = embedder.is_some() && !has_vector;
        pending.push(Pending { id, record, hash, embed });
    }

    let mut vectors: HashMap<Uuid, Arc<[f32]>> = HashMap::new();
    let mut usage = None;
    if let Some(e) = *embedder {
        let mut wanted: Vec<&Pending> = Vec::new();
        for p in pending.iter().filter(|p| p.embed) {
            match run.known.get(&p.hash) {
                Some(v) => drop(vectors.insert(p.id, v.clone())),
                None => wanted.push(p),
            }
        }
        // One inference per distinct text.
        let mut seen = HashSet::new();
        let unique: Vec<&Pending> = wanted.iter().copied().filter(|p| seen.insert(p.hash.as_slice())).collect();
        if !unique.is_empty() {
            let texts = unique
                .iter()
                .map(|p| crate::models::embed::document_text(&p.record.title, &p.record.content))
                .collect();
            match e.embed(texts).await {
                Ok((v, u)) => {
                    let fresh: HashMap<&[u8], Arc<[f32]>> =
                        unique.iter().map(|p| p.hash.as_slice()).zip(v.into_iter().map(Arc::from)).collect();
                    for p in &wanted {
                        if let Some(v) = fresh.get(p.hash.as_slice()) {
                            vectors.insert(p.id, v.clone());
                        }
                    }
                    for (hash, v) in fresh {
                        run.known.put(hash.to_vec(), v);
                    }
                    usage = Some(u);
                }
                Err(err) => {
                    // Keep going without vectors rather than stop a long ingest; the back-fill
                    // of a running origin completes them.
                    observer.warn(&format!(
                        "embedding failed ({err}); storing the rest without vectors for the back-fill to embed"
                    ));
                    *embedder = None;
                }
            }
        }
    }
    summary.without_embedding += pending.iter().filter(|p| p.embed && !vectors.contains_key(&p.id)).count() as u64;
    let model = embedder.map(|e| e.model().to_owned()).unwrap_or_default();
    let rows: Vec<write::Row> = pending
        .iter()
        .map(|p| write::Row {
            id: p.id,
            external_id: &p.record.external_id,
            title: &p.record.title,
            content: &p.record.content,
            metadata: &p.record.metadata,
            content_hash: &p.hash,
            embedding: vectors.get(&p.id).map(|v| (&v[..], model.as_str())),
        })
        .collect();
    let written =
        write::write(&mut run.client, &run.vector, tenant, &rows, usage.as_ref().map(|u| (SUBJECT, u))).await?;
    summary.created += written.created;
    summary.updated += written.updated;
    summary.unchanged += rows.len() as u64 - written.created - written.updated;
    observer.advanced(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids_are_stable_and_per_tenant() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(document_id(t1, "x"), document_id(t1, "x"));
        assert_ne!(document_id(t1, "x"), document_id(t1, "y"));
        assert_ne!(document_id(t1, "x"), document_id(t2, "x"));
    }
}
