//! Search quality on a labelled BEIR collection: loads it into a tenant of its own (once), runs
//! every query of a split through the same search the MCP tool runs, and scores BM25 alone,
//! vectors alone and the fusion by nDCG@10 and Recall@100.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Map;
use uuid::Uuid;

use crate::beir::{self, Query};
use crate::db::{Database, TenantId};
use crate::embed::Embedder;
use crate::ingest;
use crate::search::{self, SearchParams};

const SUBJECT: &str = "agentplane-eval";

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    #[serde(rename = "ndcg@10")]
    pub ndcg_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_100: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bm25: Scores,
    pub vector: Option<Scores>,
    pub hybrid: Option<Scores>,
    #[serde(skip)]
    pub queries: usize,
    #[serde(skip)]
    pub documents: usize,
    #[serde(skip)]
    pub tenant: Uuid,
}

/// The tenant a collection is loaded into: derived from its directory name, so reruns find it.
pub fn tenant_for(dir: &Path) -> Uuid {
    let name = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    beir::document_id(
        Uuid::nil(),
        &format!("agentplane-eval:{}", name.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()),
    )
}

/// Loads the collection's corpus into the tenant through `agentplane ingest`'s path: documents
/// already there (same id, same content) are skipped. Returns the corpus size.
pub async fn load(
    db: &Database,
    embedder: Option<&Embedder>,
    tenant: TenantId,
    dir: &Path,
    observer: &mut dyn ingest::Observer,
) -> anyhow::Result<ingest::Summary> {
    let summary = ingest::ingest(
        db,
        embedder,
        tenant,
        &dir.join("corpus.jsonl"),
        &ingest::Options::for_embedder(embedder),
        observer,
    )
    .await?;
    anyhow::ensure!(summary.bad == 0, "{} lines of {}/corpus.jsonl could not be read", summary.bad, dir.display());
    Ok(summary)
}

/// Runs every judged query of `split` three ways and scores each.
pub async fn evaluate(
    db: &Database,
    embedder: Option<&Embedder>,
    tenant: TenantId,
    dir: &Path,
    split: &str,
) -> anyhow::Result<Report> {
    let queries: Vec<Query> = beir::read_jsonl(&dir.join("queries.jsonl"))?;
    let qrels = beir::read_qrels(&dir.join("qrels").join(format!("{split}.tsv")))?;
    let judged: Vec<&Query> = queries.iter().filter(|q| qrels.contains_key(&q.id)).collect();
    anyhow::ensure!(!judged.is_empty(), "no query of {} is judged in qrels/{split}.tsv", dir.display());
    let modes: [(&str, f64, f64); 3] = [("bm25", 1.0, 0.0), ("vector", 0.0, 1.0), ("hybrid", 1.0, 1.0)];
    let mut scores = Vec::new();
    for (name, bm25_weight, vector_weight) in modes {
        if vector_weight > 0.0 && embedder.is_none() {
            scores.push(None);
            continue;
        }
        let (mut ndcg, mut recall) = (0.0, 0.0);
        for q in &judged {
            let params = SearchParams {
                query: q.text.clone(),
                limit: 100,
                bm25_weight,
                vector_weight,
                rrf_k: 60,
                filter: Map::new(),
                include_content: false,
                embedding: None,
            };
            let r = search::search_as(db, embedder, tenant, SUBJECT, params)
                .await
                .with_context(|| format!("{name} search"))?;
            let ranked: Vec<String> = r.hits.iter().filter_map(|h| h.external_id.clone()).collect();
            let rel = &qrels[&q.id];
            ndcg += beir::ndcg_at(&ranked, rel, 10);
            recall += beir::recall_at(&ranked, rel, 100);
        }
        let n = judged.len() as f64;
        scores.push(Some(Scores { ndcg_10: ndcg / n, recall_100: recall / n }));
    }
    let bm25 = scores[0].ok_or_else(|| anyhow::anyhow!("bm25 scores missing"))?;
    Ok(Report {
        bm25,
        vector: scores[1],
        hybrid: scores[2],
        queries: judged.len(),
        documents: 0,
        tenant: tenant.as_uuid(),
    })
}
