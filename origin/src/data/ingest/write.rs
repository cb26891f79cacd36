//! Writing a batch of documents with binary COPY: rows go into a temporary staging table (COPY
//! cannot write to a table with row-level security), then one `INSERT ... SELECT` moves them into
//! `documents` inside the tenant's transaction, so RLS checks every row as for any other write.
//!
//! COPY runs on a tokio-postgres connection of the service role: its `BinaryCopyInWriter` sends
//! each value in PostgreSQL's binary form (vectors through pgvector's types), so nothing is
//! escaped or printed as text and parsed back.

use postgres_types::{Kind, ToSql, Type};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use uuid::Uuid;

use crate::data::db::TenantId;
use crate::models::embed::Usage;

/// One row of the staging table.
#[derive(Debug)]
pub struct Row<'a> {
    pub id: Uuid,
    pub external_id: &'a str,
    pub title: &'a str,
    pub content: &'a str,
    pub metadata: &'a serde_json::Map<String, serde_json::Value>,
    pub content_hash: &'a [u8],
    pub embedding: Option<(&'a [f32], &'a str)>,
}

/// How many rows were inserted and how many updated (the rest were identical already).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub created: u64,
    pub updated: u64,
}

const STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (\
     id uuid, external_id text, title text, content text, metadata jsonb, content_hash bytea, \
     embedding vector, embedding_model text) ON COMMIT DELETE ROWS";

const COPY: &str = "COPY ingest_staging \
     (id, external_id, title, content, metadata, content_hash, embedding, embedding_model) FROM STDIN (FORMAT binary)";

/// A changed content drops the old vector unless a new one came with it; unchanged content keeps
/// its vector. Identical rows are not rewritten (a rewrite churns the search indexes).
const MERGE: &str = "INSERT INTO documents AS d \
         (id, external_id, title, content, metadata, content_hash, embedding, embedding_model) \
     SELECT id, external_id, title, content, metadata, content_hash, embedding, embedding_model FROM ingest_staging \
     ON CONFLICT (tenant_id, id) DO UPDATE SET \
         external_id = EXCLUDED.external_id, title = EXCLUDED.title, content = EXCLUDED.content, \
         metadata = EXCLUDED.metadata, content_hash = EXCLUDED.content_hash, \
         embedding = CASE WHEN EXCLUDED.embedding IS NOT NULL THEN EXCLUDED.embedding \
                          WHEN d.content_hash = EXCLUDED.content_hash THEN d.embedding END, \
         embedding_model = CASE WHEN EXCLUDED.embedding IS NOT NULL THEN EXCLUDED.embedding_model \
                                WHEN d.content_hash = EXCLUDED.content_hash THEN d.embedding_model END, \
         updated_at = now() \
     WHERE (d.external_id, d.title, d.content_hash, d.metadata) \
               IS DISTINCT FROM (EXCLUDED.external_id, EXCLUDED.title, EXCLUDED.content_hash, EXCLUDED.metadata) \
        OR EXCLUDED.embedding IS NOT NULL AND d.embedding IS NULL \
     RETURNING (xmax = 0)";

/// Writes `rows` into `tenant` in one transaction, with the ledger row of the embedding call
/// that made their vectors (metered under `subject`).
pub async fn write(
    client: &mut tokio_postgres::Client,
    vector: &Type,
    tenant: TenantId,
    rows: &[Row<'_>],
    usage: Option<(&str, &Usage)>,
) -> Result<Written, tokio_postgres::Error> {
    if rows.is_empty() && usage.is_none() {
        return Ok(Written::default());
    }
    let tx = client.transaction().await?;
    // One round trip: the tenant (a parsed UUID: hex digits and dashes, nothing to inject), its
    // row, and the staging table.
    tx.batch_execute(&format!(
        "SELECT set_config('app.tenant_id', '{}', true); {}; {STAGING}",
        tenant.as_uuid().hyphenated(),
        crate::data::db::ENSURE_TENANT,
    ))
    .await?;
    let sink = tx.copy_in(COPY).await?;
    let types = [Type::UUID, Type::TEXT, Type::TEXT, Type::TEXT, Type::JSONB, Type::BYTEA, vector.clone(), Type::TEXT];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in rows {
        let metadata = postgres_types::Json(row.metadata);
        let embedding = row.embedding.map(|(v, _)| pgvector::Vector::from(v.to_vec()));
        let model = row.embedding.map(|(_, m)| m);
        let values: [&(dyn ToSql + Sync); 8] =
            [&row.id, &row.external_id, &row.title, &row.content, &metadata, &row.content_hash, &embedding, &model];
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    let inserted: Vec<bool> = tx.query(MERGE, &[]).await?.iter().map(|r| r.get(0)).collect();
    if let Some((subject, u)) = usage {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        tx.execute(
            crate::models::usage::LEDGER_INSERT,
            &[&subject, &"embedding", &u.provider, &u.model, &n(u.tokens), &0i64, &n(u.cost_micros)],
        )
        .await?;
    }
    tx.commit().await?;
    let created = inserted.iter().filter(|i| **i).count() as u64;
    Ok(Written { created, updated: inserted.len() as u64 - created })
}

/// pgvector's `vector` type as this database numbers it (an extension type has no fixed OID);
/// looked up once per ingest run.
pub async fn vector_type(client: &tokio_postgres::Client) -> Result<Type, tokio_postgres::Error> {
    let row = client.query_one("SELECT 'vector'::regtype::oid, typnamespace::regnamespace::text FROM pg_type WHERE oid = 'vector'::regtype", &[]).await?;
    Ok(Type::new("vector".to_owned(), row.get(0), Kind::Simple, row.get(1)))
}
