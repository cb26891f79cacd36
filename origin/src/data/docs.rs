//! Documents: read, list, write and delete, always inside a tenant transaction. A document of
//! another tenant is invisible here, so it is simply "not found".

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::data::search::DIMENSIONS;

/// The model name stored with caller-supplied vectors, so they are told apart from vectors a
/// configured provider made.
pub const CALLER_MODEL: &str = "caller-supplied";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    pub id: Uuid,
    pub title: String,
    pub content: String,
    pub metadata: Value,
    pub has_embedding: bool,
    pub embedding_model: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub id: Uuid,
    pub title: String,
    pub metadata: Value,
    pub has_embedding: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upsert {
    pub id: Option<Uuid>,
    pub title: String,
    pub content: String,
    pub metadata: Map<String, Value>,
    /// A vector and the model that made it.
    pub embedding: Option<(Vec<f32>, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    Created,
    Updated,
    /// The same title, content, metadata and embedding were already stored: nothing written.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The id belongs to no document this tenant can see.
    #[error("document not found")]
    NotFound,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

type Row = (Uuid, String, String, Value, Option<String>, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

const COLUMNS: &str = "id, title, content, metadata, embedding_model, created_at, updated_at";

fn from_row((id, title, content, metadata, embedding_model, created_at, updated_at): Row) -> Document {
    Document {
        id,
        title,
        content,
        metadata,
        has_embedding: embedding_model.is_some(),
        embedding_model,
        created_at,
        updated_at,
    }
}

pub fn content_hash(title: &str, content: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(title.as_bytes());
    h.update([0]);
    h.update(content.as_bytes());
    h.finalize().to_vec()
}

pub async fn get(tx: &mut Transaction<'static, Postgres>, id: Uuid) -> Result<Document, DocError> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM documents WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(from_row).ok_or(DocError::NotFound)
}

/// One page in id order after `after`; the next page's cursor is the last id when the page is full.
pub async fn list(
    tx: &mut Transaction<'static, Postgres>,
    after: Option<Uuid>,
    limit: u32,
    title_contains: Option<&str>,
) -> Result<(Vec<Summary>, Option<Uuid>), DocError> {
    // The filter is a substring, not a pattern: LIKE's wildcards in it match themselves.
    let pattern =
        title_contains.map(|t| format!("%{}%", t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")));
    let rows: Vec<(Uuid, String, Value, bool, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT id, title, metadata, embedding IS NOT NULL, updated_at FROM documents \
         WHERE ($1::uuid IS NULL OR id > $1) AND ($3::text IS NULL OR title ILIKE $3) ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit) + 1)
    .bind(pattern)
    .fetch_all(&mut **tx)
    .await?;
    let more = rows.len() > limit as usize;
    let page: Vec<Summary> = rows
        .into_iter()
        .take(limit as usize)
        .map(|(id, title, metadata, has_embedding, updated_at)| Summary {
            id,
            title,
            metadata,
            has_embedding,
            updated_at,
        })
        .collect();
    let next = if more { page.last().map(|s| s.id) } else { None };
    Ok((page, next))
}

pub async fn count(tx: &mut Transaction<'static, Postgres>) -> Result<i64, DocError> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM documents").fetch_one(&mut **tx).await?)
}

/// The tenant's documents, and how many of them still wait for an embedding (the back-fill's
/// backlog as this tenant sees it).
pub async fn counts(tx: &mut Transaction<'static, Postgres>) -> Result<(i64, i64), DocError> {
    Ok(sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE embedding IS NULL) FROM documents")
        .fetch_one(&mut **tx)
        .await?)
}

/// Creates or replaces a document. Ids are the tenant's own (the key is `(tenant_id, id)`):
/// another tenant's documents neither block nor reveal one.
pub async fn upsert(tx: &mut Transaction<'static, Postgres>, doc: &Upsert) -> Result<(Document, Written), DocError> {
    debug_assert!(doc.embedding.as_ref().is_none_or(|(v, _)| v.len() == DIMENSIONS));
    crate::data::db::ensure_tenant(tx).await?;
    let hash = content_hash(&doc.title, &doc.content);
    let metadata = Value::Object(doc.metadata.clone());
    let (vector, model) = match &doc.embedding {
        Some((v, m)) => (Some(pgvector::Vector::from(v.clone())), Some(m.as_str())),
        None => (None, None),
    };
    if let Some(id) = doc.id {
        let sql = format!(
            "UPDATE documents SET title = $2, content = $3, metadata = $4, content_hash = $5, \
             embedding = CASE WHEN $6::vector IS NOT NULL THEN $6::vector \
                              WHEN content_hash = $5 THEN embedding END, \
             embedding_model = CASE WHEN $6::vector IS NOT NULL THEN $7 \
                                    WHEN content_hash = $5 THEN embedding_model END, \
             updated_at = now() \
             WHERE id = $1 AND (title, content_hash, metadata) IS DISTINCT FROM ($2, $5, $4) \
                OR id = $1 AND $6::vector IS NOT NULL AND embedding IS DISTINCT FROM $6::vector \
             RETURNING {COLUMNS}"
        );
        let update = sqlx::query_as(&sql).bind(id);
        let updated: Option<Row> =
            bind_fields(update, doc, &metadata, &hash, &vector, model).fetch_optional(&mut **tx).await?;
        if let Some(row) = updated {
            return Ok((from_row(row), Written::Updated));
        }
        // A no-op rewrite would still create a new row version and a BM25 delete; idempotent
        // re-loads must not churn the indexes.
        match get(tx, id).await {
            Ok(doc) => return Ok((doc, Written::Unchanged)),
            Err(DocError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let sql = format!(
        "INSERT INTO documents (id, title, content, metadata, content_hash, embedding, embedding_model) \
         VALUES (coalesce($1, gen_random_uuid()), $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (tenant_id, id) DO NOTHING RETURNING {COLUMNS}"
    );
    let insert = sqlx::query_as(&sql).bind(doc.id);
    let inserted: Option<Row> =
        bind_fields(insert, doc, &metadata, &hash, &vector, model).fetch_optional(&mut **tx).await?;
    inserted.map(|row| (from_row(row), Written::Created)).ok_or(DocError::NotFound)
}

/// Parameters $2..$7, the same in the update and the insert.
fn bind_fields<'q>(
    q: sqlx::query::QueryAs<'q, Postgres, Row, sqlx::postgres::PgArguments>,
    doc: &'q Upsert,
    metadata: &'q Value,
    hash: &'q Vec<u8>,
    vector: &'q Option<pgvector::Vector>,
    model: Option<&'q str>,
) -> sqlx::query::QueryAs<'q, Postgres, Row, sqlx::postgres::PgArguments> {
    q.bind(&doc.title).bind(&doc.content).bind(metadata).bind(hash).bind(vector).bind(model)
}

/// Whether document `id` already has a vector of this title and content (an upsert that would
/// not change them needs no new embedding: the stored vector is kept).
pub async fn has_current_vector(
    tx: &mut Transaction<'static, Postgres>,
    id: Uuid,
    title: &str,
    content: &str,
) -> Result<bool, sqlx::Error> {
    let current: Option<bool> =
        sqlx::query_scalar("SELECT content_hash = $2 AND embedding IS NOT NULL FROM documents WHERE id = $1")
            .bind(id)
            .bind(content_hash(title, content))
            .fetch_optional(&mut **tx)
            .await?;
    Ok(current == Some(true))
}

pub async fn delete(tx: &mut Transaction<'static, Postgres>, id: Uuid) -> Result<(), DocError> {
    let n = sqlx::query("DELETE FROM documents WHERE id = $1").bind(id).execute(&mut **tx).await?.rows_affected();
    if n == 0 { Err(DocError::NotFound) } else { Ok(()) }
}
