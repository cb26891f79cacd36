//! The local embedding model against reference vectors from an independent NumPy forward pass
//! (`bench/minilm_reference.py`): cosine above 0.999 for every sentence, alone or in a batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use agentplane_origin::models::embed::LocalModel;
use serde_json::{Value, json};
use support::{ALL_SCOPES, Client, origin, pg_url, test_config};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn local_model_matches_the_reference_vectors() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = LocalModel::load(&root.join(".tools/models/all-MiniLM-L6-v2")).expect("model (run scripts/setup)");
    let fixture: Value = serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let sentences = fixture["sentences"].as_array().unwrap();
    let texts: Vec<String> = sentences.iter().map(|s| s["text"].as_str().unwrap().to_owned()).collect();
    let reference: Vec<Vec<f32>> = sentences
        .iter()
        .map(|s| s["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect();
    // In one padded batch: padding must not change any vector.
    let batch = model.embed_blocking(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (i, (got, want)) in batch.iter().zip(&reference).enumerate() {
        assert_eq!(got.len(), 384);
        let c = cosine(got, want);
        assert!(c > 0.999, "sentence {i}: cosine {c}");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // One at a time gives the same vectors.
    for (text, want) in texts.iter().zip(&reference).take(2) {
        let alone = model.embed_blocking(std::slice::from_ref(text)).unwrap();
        assert!(cosine(&alone[0], want) > 0.999);
    }
    assert!(model.embed_blocking(&[]).unwrap().is_empty());
}

/// Queries that arrive together share a forward pass; each still gets its own vector, the same as
/// alone, and its own token count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_queries_are_batched_without_mixing_their_vectors() {
    use agentplane_origin::models::embed::{Embedder, Engine, batcher::QueryBatcher};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let model = LocalModel::load(&root.join(".tools/models/all-MiniLM-L6-v2")).unwrap();
    let texts: Vec<String> = (0..24)
        .map(|i| {
            format!("claim {i}: {} lowers the risk of {}", ["aspirin", "exercise", "sleep"][i % 3], "x ".repeat(i))
        })
        .collect();
    let alone: Vec<(Vec<f32>, u64)> =
        texts.iter().map(|t| model.embed_each(std::slice::from_ref(t)).unwrap().remove(0)).collect();
    // One worker, so the 24 queries queue up behind each other and batches form.
    let batcher = QueryBatcher::start(model.clone(), 1).unwrap();
    let answers = futures::future::join_all(texts.iter().map(|t| batcher.embed(t.clone()))).await;
    for (i, (answer, (want, tokens))) in answers.into_iter().zip(&alone).enumerate() {
        let (got, got_tokens) = answer.unwrap();
        assert_eq!(got_tokens, *tokens, "query {i}");
        assert!(cosine(&got, want) > 0.99999, "query {i}: cosine {}", cosine(&got, want));
    }
    // Through the embedder (the search path), with the query cache off: the same vectors.
    let embedder = Embedder::new(Engine::Local(model), 0);
    let through = futures::future::join_all(texts.iter().map(|t| embedder.embed_query(t))).await;
    for (answer, (want, _)) in through.into_iter().zip(&alone) {
        assert!(cosine(&answer.unwrap().0, want) > 0.99999);
    }
}

/// The shared origin's database, opened again with the local model switched on.
async fn with_local_model() -> (
    &'static support::Origin,
    agentplane_origin::app::config::Config,
    agentplane_origin::data::db::Database,
    Option<agentplane_origin::models::embed::Embedder>,
) {
    let shared = origin();
    let mut config = test_config();
    config.embedding = agentplane_origin::app::config::EmbeddingProvider::Local;
    config.model_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".tools/models/all-MiniLM-L6-v2");
    let admin = pg_url(&config, "agentplane_admin", "admin_password", "agentplane");
    let db = agentplane_origin::data::db::Database::open(&shared.app_url, &admin, 4, Default::default()).await.unwrap();
    let embedder = agentplane_origin::app::server::embedder(&config, &db).await.unwrap();
    (shared, config, db, embedder)
}

#[tokio::test]
async fn search_is_hybrid_by_default_and_embedding_calls_are_metered() {
    let (shared, config, db, embedder) = with_local_model().await;
    assert!(embedder.is_some());
    let keys = agentplane_origin::app::keys::load(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app =
        agentplane_origin::app::server::router(&config, db.clone(), keys, embedder, CancellationToken::new()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tenant = Uuid::new_v4();
    let c = Client {
        url,
        token: shared.token_with(tenant, "embedder", ALL_SCOPES, 3600),
        http: reqwest::Client::new(),
        session: None,
    };
    let mut ids = Vec::new();
    for (title, content) in [
        ("Canine companions", "Dogs are loyal pets that love long walks in the park."),
        ("Interest rates", "The central bank raised its policy rate to curb inflation."),
        ("Photosynthesis", "Plants turn sunlight, water and carbon dioxide into sugar."),
    ] {
        let r = c.call("upsert_document", json!({"title": title, "content": content})).await;
        assert_eq!(r.structured()["document"]["has_embedding"], true);
        assert_eq!(r.structured()["document"]["embedding_model"], "all-MiniLM-L6-v2");
        ids.push(r.structured()["document"]["id"].clone());
    }
    // No word in common with the document: only the vector side can find it.
    let r = c.call("hybrid_search", json!({"query": "a puppy that wants to go outside", "limit": 3})).await;
    let s = r.structured();
    assert_eq!(s["mode"], "hybrid");
    assert_eq!(s["hits"][0]["id"], ids[0], "{s}");
    assert_eq!(s["hits"][0]["vector_rank"], 1);
    assert!(s["hits"][0]["bm25_rank"].is_null());
    // Each embedding call is in the ledger: three documents and one query.
    let mut tx = db.tenant_tx(agentplane_origin::data::db::TenantId::for_tests(tenant)).await.unwrap();
    let (calls, tokens): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), sum(input_tokens)::bigint FROM usage_ledger WHERE kind = 'embedding' AND model = 'all-MiniLM-L6-v2' AND subject = 'embedder'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(calls, 4);
    assert!(tokens.unwrap() > 20);
}

#[tokio::test]
async fn eval_loads_once_and_scores_every_mode() {
    let (_, _, db, embedder) = with_local_model().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/beir-mini");
    let tenant = agentplane_origin::data::db::TenantId::for_tests(Uuid::new_v4());
    use agentplane_origin::dev::eval;
    let first = eval::load(&db, embedder.as_ref(), tenant, &dir, &mut ()).await.unwrap();
    assert_eq!((first.read, first.created), (8, 8));
    // A second run finds everything in place and writes nothing.
    let second = eval::load(&db, embedder.as_ref(), tenant, &dir, &mut ()).await.unwrap();
    assert_eq!((second.read, second.created, second.updated, second.unchanged), (8, 0, 0, 8));
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let (docs, embedded): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(embedding) FROM documents").fetch_one(&mut *tx).await.unwrap();
    assert_eq!((docs, embedded), (8, 8));
    tx.commit().await.unwrap();
    let report = eval::evaluate(&db, embedder.as_ref(), tenant, &dir, "test", true).await.unwrap();
    assert_eq!(report.queries, 3, "only judged queries count");
    let hybrid = report.hybrid.unwrap();
    assert!(hybrid.ndcg_10 > 0.9 && hybrid.recall_100 == 1.0, "{report:?}");
    assert!(report.vector.unwrap().ndcg_10 > 0.9, "{report:?}");
    assert_eq!(report.grid.len(), 36);
    // The grid's default setting is the hybrid search itself, fused offline.
    use agentplane_origin::data::search::{DEFAULT_RRF_K, DEFAULT_VECTOR_WEIGHT};
    let default =
        report.grid.iter().find(|g| g.vector_weight == DEFAULT_VECTOR_WEIGHT && g.rrf_k == DEFAULT_RRF_K).unwrap();
    assert!((default.scores.ndcg_10 - hybrid.ndcg_10).abs() < 1e-9, "{default:?} vs {hybrid:?}");
    let json: Value = serde_json::to_value(&report).unwrap();
    assert!(json["bm25"]["ndcg@10"].is_number() && json["hybrid"]["recall@100"].is_number());
}
