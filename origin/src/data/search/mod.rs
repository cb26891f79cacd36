//! Hybrid search: a lexical top-N (pg_search BM25, or `ts_rank_cd` where that is missing) and a
//! vector top-N (pgvector HNSW, cosine), fused by weighted reciprocal rank fusion.
//!
//! Every query runs inside the caller's tenant transaction, so row-level security applies; the
//! explicit `tenant_id = $n` predicate (from the same verified principal) only helps the planners
//! push the tenant into the BM25 and HNSW scans. All user input is bound, never formatted in.

pub mod fusion;

use tracing::Instrument as _;

use crate::app::telemetry::sql_span;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::data::db::{LexicalBackend, TenantId};
use fusion::{Candidate, Fused, Weights};

/// What a client is told when its query could not be embedded.
pub const LEXICAL_ONLY_NOTICE: &str =
    "lexical ranking only: the embedding provider is unavailable; searches are hybrid again once it recovers";

/// Embedding dimension of the `documents.embedding` column.
pub const DIMENSIONS: usize = 384;

/// Fusion defaults for `hybrid_search`, chosen on SciFact's train split with `agentplane eval
/// --qrels train --tune` (BENCHMARKS.md); the test split only reports.
pub const DEFAULT_BM25_WEIGHT: f64 = 1.0;
pub const DEFAULT_VECTOR_WEIGHT: f64 = 1.0;
pub const DEFAULT_RRF_K: u32 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchParams {
    pub query: String,
    pub limit: u32,
    pub bm25_weight: f64,
    pub vector_weight: f64,
    pub rrf_k: u32,
    /// Metadata key = value pairs that every hit must have.
    pub filter: Map<String, Value>,
    pub include_content: bool,
    /// The query's embedding, when the caller or an embedding provider has one.
    pub embedding: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Hybrid,
    /// No query embedding could be made: lexical ranking only.
    Bm25Only,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: Uuid,
    /// The id the document was ingested under, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub metadata: Value,
    pub bm25_rank: Option<u32>,
    pub vector_rank: Option<u32>,
    pub bm25_score: Option<f64>,
    pub vector_score: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    pub mode: Mode,
    pub lexical_backend: &'static str,
    pub hits: Vec<Hit>,
    /// Why a search that should have been hybrid ran lexically (the embedding provider failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// Where the time went, for the operator's metrics; not part of the answer.
    #[serde(skip)]
    pub timings: Timings,
}

/// Wall time of each phase of one search.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Embedding the query (zero for a cached or supplied vector).
    pub embed: Duration,
    /// Both top-N statements: they run as one, so their time is split by neither; `lexical` holds it
    /// for a lexical-only search and `vector` for the rest.
    pub lexical: Duration,
    pub vector: Duration,
    pub hydrate: Duration,
    pub total: Duration,
}

/// A search as every caller gets it (the MCP tool, `agentplane eval`): the query is embedded when
/// no vector was given and the vector side counts, the embedding call is metered, and the search
/// runs in one transaction of `tenant`. Inference happens before the transaction opens, so it
/// never holds a connection.
pub async fn search_as(
    db: &crate::data::db::Database,
    embedder: Option<&crate::models::embed::Embedder>,
    tenant: TenantId,
    subject: &str,
    mut params: SearchParams,
) -> Result<SearchResult, sqlx::Error> {
    let started = Instant::now();
    let mut usage = None;
    let mut notice = None;
    if params.embedding.is_none()
        && params.vector_weight > 0.0
        && let Some(e) = embedder
    {
        match e.embed_query(&params.query).await {
            Ok((v, u)) => {
                params.embedding = Some(v.to_vec());
                usage = u;
            }
            Err(err) => {
                tracing::warn!(error = %err, "query embedding failed; answering with lexical ranking only");
                // The client hears that, not why: the provider's address and its error bodies
                // are for the operator's logs.
                notice = Some(LEXICAL_ONLY_NOTICE.to_owned());
            }
        }
    }
    let embed = started.elapsed();
    let mut tx = db.search_tx(tenant).await?;
    if let Some(u) = &usage {
        crate::models::usage::record_embedding(&mut tx, subject, u).await?;
    }
    let mut result = hybrid_search(&mut tx, db.lexical(), tenant, &params).await?;
    tx.commit().await?;
    result.notice = notice;
    result.timings.embed = embed;
    result.timings.total = started.elapsed();
    Ok(result)
}

/// How many candidates each side contributes before fusion.
fn depth(limit: u32) -> i64 {
    i64::from(limit.saturating_mul(5).clamp(50, 250))
}

pub async fn hybrid_search(
    tx: &mut Transaction<'static, Postgres>,
    backend: LexicalBackend,
    tenant: TenantId,
    params: &SearchParams,
) -> Result<SearchResult, sqlx::Error> {
    let started = Instant::now();
    let lexical = !(params.query.trim().is_empty() || params.bm25_weight == 0.0 && params.embedding.is_some());
    let (mode, vector) = match &params.embedding {
        Some(e) if params.vector_weight > 0.0 => (Mode::Hybrid, Some(e.as_slice())),
        Some(_) => (Mode::Hybrid, None),
        None => (Mode::Bm25Only, None),
    };
    let (lexical, dense) = candidates(tx, backend, tenant, params, lexical, vector).await?;
    let mut timings = Timings::default();
    if vector.is_some() {
        timings.vector = started.elapsed();
    } else {
        timings.lexical = started.elapsed();
    }
    let weights = Weights { bm25: params.bm25_weight, vector: params.vector_weight, k: f64::from(params.rrf_k) };
    let fused: Vec<Fused> = fusion::fuse(&lexical, &dense, weights).into_iter().take(params.limit as usize).collect();
    let hydrating = Instant::now();
    let hits = hydrate(tx, &fused, &params.query, params.include_content).await?;
    timings.hydrate = hydrating.elapsed();
    timings.total = started.elapsed();
    Ok(SearchResult { mode, lexical_backend: backend.name(), hits, notice: None, timings })
}

// `|||` is pg_search's match-disjunction operator: the text is tokenized, not parsed as query
// syntax, so operators and quotes in user input are just words. Its left side is the indexed
// expression, title and content as one field (migration 20261203000001), written exactly so.
// The ORDER BY must be `pdb.score(row_key) DESC` itself (no cast, no second key) for pg_search to
// run a top-N scan instead of scoring every match (measured: 2 ms against 43 ms on SciFact).
// The metadata filter is a separate statement rather than `$4 IS NULL OR ...`, which pg_search
// cannot push into its scan.
const BM25: &str = "SELECT 0::int2 AS side, id, pdb.score(row_key)::float8 AS score FROM documents \
     WHERE (title || ' ' || content) ||| $1 AND tenant_id = $2 \
     ORDER BY pdb.score(row_key) DESC LIMIT $3";
const BM25_FILTERED: &str = "SELECT 0::int2 AS side, id, pdb.score(row_key)::float8 AS score FROM documents \
     WHERE (title || ' ' || content) ||| $1 AND tenant_id = $2 AND metadata @> $4 \
     ORDER BY pdb.score(row_key) DESC LIMIT $3";
// The query's lexemes OR-ed together (BM25's semantics), each quoted so nothing in the input is
// read as tsquery syntax.
const FULL_TEXT: &str = "WITH q AS (SELECT to_tsquery('simple', coalesce(string_agg(quote_literal(lexeme), ' | '), '')) AS q \
                     FROM unnest(to_tsvector('english', $1))) \
     SELECT 0::int2 AS side, d.id, ts_rank_cd(d.search_text, q.q)::float8 AS score FROM documents d, q \
     WHERE d.search_text @@ q.q AND d.tenant_id = $2 AND ($4::jsonb IS NULL OR d.metadata @> $4) \
     ORDER BY ts_rank_cd(d.search_text, q.q) DESC LIMIT $3";
// Without iterative scans (on for every connection, `db::Database::open`), HNSW returns its
// ef_search nearest rows before the tenant and metadata filters run, and a small tenant in a
// large table would get fewer than n hits.
const VECTOR: &str = "SELECT 1::int2 AS side, id, (1 - (embedding <=> $5))::float8 AS score FROM documents \
     WHERE embedding IS NOT NULL AND tenant_id = $2 AND ($4::jsonb IS NULL OR metadata @> $4) \
     ORDER BY embedding <=> $5 LIMIT $3";

/// Both top-N lists in one statement (one round trip): the lexical side and the vector side, each
/// in its own stable order (score, then id).
async fn candidates(
    tx: &mut Transaction<'static, Postgres>,
    backend: LexicalBackend,
    tenant: TenantId,
    params: &SearchParams,
    lexical: bool,
    vector: Option<&[f32]>,
) -> Result<(Vec<Candidate>, Vec<Candidate>), sqlx::Error> {
    let filtered = !params.filter.is_empty();
    let lexical_sql = match (backend, filtered) {
        (LexicalBackend::PgSearchBm25, false) => BM25,
        (LexicalBackend::PgSearchBm25, true) => BM25_FILTERED,
        (LexicalBackend::TsRankCd, _) => FULL_TEXT,
    };
    let sql = match (lexical, vector.is_some()) {
        (false, false) => return Ok((Vec::new(), Vec::new())),
        (true, false) => lexical_sql.to_owned(),
        (false, true) => VECTOR.to_owned(),
        (true, true) => format!("({lexical_sql}) UNION ALL ({VECTOR})"),
    };
    let filter = Value::Object(params.filter.clone());
    let rows: Vec<(i16, Uuid, f64)> = sqlx::query_as(&sql)
        .bind(&params.query)
        .bind(tenant.as_uuid())
        .bind(depth(params.limit))
        .bind(filtered.then_some(&filter))
        .bind(vector.map(|v| pgvector::Vector::from(v.to_vec())))
        .fetch_all(&mut **tx)
        .instrument(sql_span("search top-N (lexical and vector)"))
        .await?;
    let (mut lexical, mut dense) = (Vec::new(), Vec::new());
    for (side, id, score) in rows {
        if side == 0 { &mut lexical } else { &mut dense }.push(Candidate { id, score });
    }
    // Equal scores in a deterministic order; relaxed_order may also return neighbours slightly
    // out of order.
    for list in [&mut lexical, &mut dense] {
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    }
    Ok((lexical, dense))
}

async fn hydrate(
    tx: &mut Transaction<'static, Postgres>,
    fused: &[Fused],
    query: &str,
    include_content: bool,
) -> Result<Vec<Hit>, sqlx::Error> {
    let ids: Vec<Uuid> = fused.iter().map(|f| f.id).collect();
    let rows: Vec<(Uuid, Option<String>, String, String, Value)> =
        sqlx::query_as("SELECT id, external_id, title, content, metadata FROM documents WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .instrument(sql_span("hydrate documents"))
            .await?;
    let mut by_id: std::collections::HashMap<Uuid, (Option<String>, String, String, Value)> =
        rows.into_iter().map(|(id, e, t, c, m)| (id, (e, t, c, m))).collect();
    Ok(fused
        .iter()
        .filter_map(|f| {
            let (external_id, title, content, metadata) = by_id.remove(&f.id)?;
            let (snippet, content) =
                if include_content { (None, Some(content)) } else { (Some(snippet(&content, query, 240)), None) };
            Some(Hit {
                id: f.id,
                external_id,
                title,
                snippet,
                content,
                metadata,
                bm25_rank: f.bm25_rank,
                vector_rank: f.vector_rank,
                bm25_score: f.bm25_score,
                vector_score: f.vector_score,
                score: f.score,
            })
        })
        .collect())
}

/// About `max_chars` of `content` around the first query word it contains, cut at word
/// boundaries, with ellipses where text was left out.
pub fn snippet(content: &str, query: &str, max_chars: usize) -> String {
    let lower = content.to_lowercase();
    // Lowercasing can change byte lengths (rarely); fall back to the start when it did.
    let start_byte = if lower.len() == content.len() {
        query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .filter_map(|w| lower.find(&w.to_lowercase()))
            .min()
            .unwrap_or(0)
    } else {
        0
    };
    let chars: Vec<(usize, char)> = content.char_indices().collect();
    let total = chars.len();
    if total <= max_chars {
        return content.to_owned();
    }
    let hit = chars.partition_point(|(b, _)| *b < start_byte);
    let mut from = hit.saturating_sub(max_chars / 4);
    let mut to = (from + max_chars).min(total);
    from = to.saturating_sub(max_chars).min(from);
    while from > 0 && !chars[from - 1].1.is_whitespace() && hit - from < max_chars / 2 {
        from -= 1;
    }
    while to < total && !chars[to].1.is_whitespace() && to - from < max_chars + 20 {
        to += 1;
    }
    let body: String = chars[from..to].iter().map(|(_, c)| c).collect();
    format!("{}{}{}", if from > 0 { "…" } else { "" }, body.trim(), if to < total { "…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_center_on_the_query() {
        let text = format!("{} fever in children is common {}", "lorem ipsum ".repeat(40), "dolor sit ".repeat(40));
        let s = snippet(&text, "Fever", 80);
        assert!(s.contains("fever in children"), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'));
        assert_eq!(snippet("short text", "x", 80), "short text");
        // Multi-byte text never splits a character.
        let s = snippet(&"é".repeat(500), "é", 50);
        assert!(s.chars().count() <= 75);
    }

    #[test]
    fn candidate_depth_is_bounded() {
        assert_eq!(depth(1), 50);
        assert_eq!(depth(20), 100);
        assert_eq!(depth(50), 250);
    }
}
