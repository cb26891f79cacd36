//! Search quality on a labelled BEIR collection: loads it into a tenant of its own (once), runs
//! every query of a split through the same search the MCP tool runs, and scores BM25 alone,
//! vectors alone and the fusion by nDCG@10 and Recall@100.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Map;
use uuid::Uuid;

use crate::data::db::{Database, TenantId};
use crate::data::ingest;
use crate::data::search::fusion::{self, Candidate, Weights};
use crate::data::search::{self, SearchParams};
use crate::dev::beir::{self, Query};
use crate::models::embed::Embedder;

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
    /// Fusion settings tried with `--tune`.
    #[serde(skip)]
    pub grid: Vec<GridPoint>,
    #[serde(skip)]
    pub queries: usize,
    #[serde(skip)]
    pub tenant: Uuid,
}

/// The tenant a collection is loaded into: derived from its directory name, so reruns find it.
pub fn tenant_for(dir: &Path) -> Uuid {
    let name = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    crate::data::ingest::document_id(
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

/// Candidates per side when tuning: what `hybrid_search` fuses for any limit up to 50.
const CANDIDATES: u32 = 250;

/// One fusion setting scored on the split (`--tune`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GridPoint {
    pub vector_weight: f64,
    pub rrf_k: u32,
    #[serde(flatten)]
    pub scores: Scores,
}

/// A single-sided ranking of one query: (id, external id, score), best first.
type Ranking = Vec<(Uuid, String, f64)>;

/// Runs every judged query of `split` three ways and scores each. With `tune`, also scores a grid
/// of fusion settings by fusing the two single-sided rankings offline, exactly as
/// `hybrid_search` would (same candidates, same fusion function).
pub async fn evaluate(
    db: &Database,
    embedder: Option<&Embedder>,
    tenant: TenantId,
    dir: &Path,
    split: &str,
    tune: bool,
) -> anyhow::Result<Report> {
    let queries: Vec<Query> = beir::read_jsonl(&dir.join("queries.jsonl"))?;
    let qrels = beir::read_qrels(&dir.join("qrels").join(format!("{split}.tsv")))?;
    let judged: Vec<&Query> = queries.iter().filter(|q| qrels.contains_key(&q.id)).collect();
    anyhow::ensure!(!judged.is_empty(), "no query of {} is judged in qrels/{split}.tsv", dir.display());
    let modes: [(&str, f64, f64); 3] = [
        ("bm25", 1.0, 0.0),
        ("vector", 0.0, 1.0),
        ("hybrid", search::DEFAULT_BM25_WEIGHT, search::DEFAULT_VECTOR_WEIGHT),
    ];
    let vectors = match embedder {
        Some(e) => Some(embed_queries(db, e, tenant, &judged).await?),
        None => None,
    };
    let mut scores = Vec::new();
    let mut sides: [Vec<Ranking>; 2] = [Vec::new(), Vec::new()];
    for (mode, (name, bm25_weight, vector_weight)) in modes.into_iter().enumerate() {
        if vector_weight > 0.0 && embedder.is_none() {
            scores.push(None);
            continue;
        }
        let single_sided = mode < 2;
        let (mut ndcg, mut recall) = (0.0, 0.0);
        for (i, q) in judged.iter().enumerate() {
            let params = SearchParams {
                query: q.text.clone(),
                limit: if tune && single_sided { CANDIDATES } else { 100 },
                bm25_weight,
                vector_weight,
                rrf_k: search::DEFAULT_RRF_K,
                filter: Map::new(),
                include_content: false,
                // Each query is embedded once for both modes that use a vector.
                embedding: vectors.as_ref().and_then(|v| v.get(i).cloned()).filter(|_| vector_weight > 0.0),
            };
            let r = search::search_as(db, embedder, tenant, SUBJECT, params)
                .await
                .with_context(|| format!("{name} search"))?;
            let ranking: Ranking = r
                .hits
                .iter()
                .filter_map(|h| {
                    let score = if mode == 0 { h.bm25_score } else { h.vector_score };
                    Some((h.id, h.external_id.clone()?, score.unwrap_or(0.0)))
                })
                .collect();
            let (n, r) = score(&ranking, &qrels[&q.id]);
            ndcg += n;
            recall += r;
            if tune && single_sided {
                sides[mode].push(ranking);
            }
        }
        let n = judged.len() as f64;
        scores.push(Some(Scores { ndcg_10: ndcg / n, recall_100: recall / n }));
    }
    let bm25 = scores[0].ok_or_else(|| anyhow::anyhow!("bm25 scores missing"))?;
    let grid = if tune && scores[1].is_some() {
        let rels: Vec<_> = judged.iter().map(|q| &qrels[&q.id]).collect();
        fusion_grid(&sides[0], &sides[1], &rels)
    } else {
        Vec::new()
    };
    Ok(Report { bm25, vector: scores[1], hybrid: scores[2], grid, queries: judged.len(), tenant: tenant.as_uuid() })
}

/// The judged queries' vectors, embedded in batches and metered like any other embedding call.
async fn embed_queries(
    db: &Database,
    embedder: &Embedder,
    tenant: TenantId,
    queries: &[&Query],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut vectors = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(64) {
        let (v, usage) = embedder.embed(chunk.iter().map(|q| q.text.clone()).collect()).await?;
        let mut tx = db.tenant_tx(tenant).await?;
        crate::models::usage::record_embedding(&mut tx, SUBJECT, &usage).await?;
        tx.commit().await?;
        vectors.extend(v);
    }
    anyhow::ensure!(vectors.len() == queries.len(), "the embedding provider returned too few vectors");
    Ok(vectors)
}

/// nDCG@10 and Recall@100 of one ranking.
fn score(ranking: &Ranking, relevant: &BTreeMap<String, u32>) -> (f64, f64) {
    let ids: Vec<String> = ranking.iter().take(100).map(|(_, e, _)| e.clone()).collect();
    (beir::ndcg_at(&ids, relevant, 10), beir::recall_at(&ids, relevant, 100))
}

/// External ids by document id, for one query's candidates.
type Names<'a> = HashMap<Uuid, &'a String>;

fn fusion_grid(bm25: &[Ranking], vector: &[Ranking], relevant: &[&BTreeMap<String, u32>]) -> Vec<GridPoint> {
    // What each query contributes is the same for every setting: built once.
    let candidates =
        |r: &Ranking| -> Vec<Candidate> { r.iter().map(|(id, _, s)| Candidate { id: *id, score: *s }).collect() };
    let queries: Vec<(Vec<Candidate>, Vec<Candidate>, Names)> = bm25
        .iter()
        .zip(vector)
        .map(|(b, v)| (candidates(b), candidates(v), b.iter().chain(v).map(|(id, e, _)| (*id, e)).collect()))
        .collect();
    let mut grid = Vec::new();
    for vector_weight in [0.5, 0.75, 1.0, 1.25, 1.5, 2.0] {
        for rrf_k in [5, 10, 20, 40, 60, 100] {
            let (mut ndcg, mut recall) = (0.0, 0.0);
            for ((b, v, names), rel) in queries.iter().zip(relevant) {
                let weights = Weights { bm25: 1.0, vector: vector_weight, k: f64::from(rrf_k) };
                let fused: Ranking = fusion::fuse(b, v, weights)
                    .into_iter()
                    .filter_map(|f| Some((f.id, (*names.get(&f.id)?).clone(), f.score)))
                    .collect();
                let (n, r) = score(&fused, rel);
                ndcg += n;
                recall += r;
            }
            let n = relevant.len().max(1) as f64;
            grid.push(GridPoint { vector_weight, rrf_k, scores: Scores { ndcg_10: ndcg / n, recall_100: recall / n } });
        }
    }
    grid
}
