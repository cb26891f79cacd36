//! The OpenAI-compatible embedding provider against a local fake server that answers, stalls and
//! fails; the origin's behaviour while the provider's circuit is open; the back-fill.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use agentplane_origin::app::config::EmbeddingProvider;
use agentplane_origin::data::db::{Database, TenantId};
use agentplane_origin::models::breaker::Status;
use agentplane_origin::models::embed::backfill::{self, Progress};
use agentplane_origin::models::embed::{Embedder, Engine, RemoteEmbedder};
use serde_json::{Value, json};
use support::fake_embeddings::{FakeEmbeddings, Mode, vector};
use support::{ALL_SCOPES, Client, origin, pg_url, test_config};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn database() -> Database {
    let shared = origin();
    let admin = pg_url(&shared.config, "agentplane_admin", "admin_password", "agentplane");
    Database::open(&shared.app_url, &admin, 8, Default::default()).await.unwrap()
}

#[tokio::test]
async fn remote_provider_times_out_opens_its_breaker_and_recovers() {
    let fake = FakeEmbeddings::start().await;
    let e = RemoteEmbedder::new(fake.config()).unwrap();
    let (v, tokens) = e.embed(&["hello remote world".to_owned()]).await.unwrap();
    assert_eq!(v, vec![vector("hello remote world")]);
    assert_eq!(tokens, 3, "the provider's own token count");

    // Slow: each attempt times out at 500 ms; one retry, then the call fails.
    fake.set(Mode::Slow);
    let before = fake.requests();
    let err = e.embed(&["slow".to_owned()]).await.unwrap_err().to_string();
    assert!(err.contains("did not answer within 500 ms"), "{err}");
    assert_eq!(fake.requests() - before, 2, "one attempt and one retry");
    assert_eq!(e.breaker(), Status::Closed, "one failed call is below the threshold of 2");

    // Failing: the second failed call in a row opens the circuit.
    fake.set(Mode::Fail);
    let err = e.embed(&["fail".to_owned()]).await.unwrap_err().to_string();
    assert!(err.contains("500"), "{err}");
    assert_eq!(e.breaker(), Status::Open);
    // Open: refused at once, without a request.
    let before = fake.requests();
    let err = e.embed(&["refused".to_owned()]).await.unwrap_err().to_string();
    assert!(err.contains("circuit open"), "{err}");
    assert_eq!(fake.requests(), before);

    // Recovered, but the cool-down (1 s) is not over: still refused.
    fake.set(Mode::Ok);
    assert!(e.embed(&["early".to_owned()]).await.is_err());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The probe succeeds and closes the circuit.
    assert!(e.embed(&["probe".to_owned()]).await.is_ok());
    assert_eq!(e.breaker(), Status::Closed);
    assert!(e.embed(&["after".to_owned()]).await.is_ok());
}

#[tokio::test]
async fn a_provider_of_the_wrong_dimension_is_a_startup_error() {
    let fake = FakeEmbeddings::start().await;
    let mut config = test_config();
    config.embedding = EmbeddingProvider::Openai;
    config.remote_embedding = fake.config();
    config.remote_embedding.dimensions = 768;
    let err = agentplane_origin::app::server::embedder(&config, &database().await).await.unwrap_err().to_string();
    assert!(err.contains("768") && err.contains("384"), "{err}");
}

#[tokio::test]
async fn while_the_circuit_is_open_search_is_lexical_and_writes_keep_null_vectors() {
    let shared = origin();
    let fake = FakeEmbeddings::start().await;
    let mut config = test_config();
    config.embedding = EmbeddingProvider::Openai;
    config.remote_embedding = fake.config();
    let db = database().await;
    let embedder = agentplane_origin::app::server::embedder(&config, &db).await.unwrap().unwrap();
    let keys = agentplane_origin::app::keys::load(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = agentplane_origin::app::server::router(
        &config,
        db.clone(),
        keys,
        Some(embedder.clone()),
        CancellationToken::new(),
    )
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tenant = Uuid::new_v4();
    let c = Client {
        url: format!("{base}/mcp"),
        token: shared.token_with(tenant, "breaker", ALL_SCOPES, 3600),
        http: reqwest::Client::new(),
        session: None,
    };

    fake.set(Mode::Fail);
    let doc = json!({"title": "Quokka husbandry", "content": "Quokkabreaker marsupials thrive on Rottnest island."});
    let r = c.call("upsert_document", doc).await;
    assert!(!r.is_tool_error(), "{:?}", r.result());
    assert_eq!(r.structured()["document"]["has_embedding"], false, "the write went through without a vector");
    let search = json!({"query": "quokkabreaker marsupials"});
    let r = c.call("hybrid_search", search.clone()).await;
    assert_eq!(r.structured()["mode"], "bm25_only");
    assert_eq!(r.structured()["hits"][0]["title"], "Quokka husbandry");
    // Two failed calls: the circuit is open and the next search does not wait for the provider.
    let before = fake.requests();
    let r = c.call("hybrid_search", search.clone()).await;
    assert_eq!(r.structured()["mode"], "bm25_only");
    // The client hears that ranking is lexical, not the provider's address or answers.
    assert_eq!(r.structured()["notice"], agentplane_origin::data::search::LEXICAL_ONLY_NOTICE);
    assert!(!r.structured().to_string().contains(&fake.url()), "{}", r.structured());
    assert_eq!(fake.requests(), before);
    let operator = config.operator_token.clone().unwrap();
    let details =
        |base: &str| reqwest::Client::new().get(format!("{base}/ready/details")).bearer_auth(&operator).send();
    let public: Value = reqwest::get(format!("{base}/ready")).await.unwrap().json().await.unwrap();
    assert_eq!(public, json!({"status": "ready"}));
    let ready: Value = details(&base).await.unwrap().json().await.unwrap();
    assert_eq!(ready["embedding"]["circuit"], "open", "{ready}");
    assert_eq!(ready["embedding"]["model"], "fake-minilm");
    assert!(ready["embedding"]["backfill"]["pending"].as_i64().unwrap() >= 1, "{ready}");

    // Recovered: after the cool-down the back-fill embeds the row and search is hybrid again.
    fake.set(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let progress = Progress::default();
    let n = backfill::drain_tenant(&db, &embedder, TenantId::for_tests(tenant), 32, &progress).await.unwrap();
    assert_eq!(n, 1);
    let r = c.call("hybrid_search", search).await;
    assert_eq!(r.structured()["mode"], "hybrid");
    assert!(r.structured().get("notice").is_none());
    assert_eq!(r.structured()["hits"][0]["vector_rank"], 1);
    let ready: Value = details(&base).await.unwrap().json().await.unwrap();
    assert_eq!(ready["embedding"]["circuit"], "closed", "{ready}");
}

#[tokio::test]
async fn two_backfill_workers_embed_each_row_once() {
    let db = database().await;
    let tenant = TenantId::for_tests(Uuid::new_v4());
    let marker = format!("bf{}", Uuid::new_v4().simple());
    let dir = std::env::temp_dir().join(format!("agentplane-backfill-{marker}"));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus: String = (0..200)
        .map(|i| format!("{}\n", json!({"_id": format!("d{i}"), "title": format!("{marker} {i}"), "text": format!("row {i} of {marker}")})))
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    // Stored without vectors (embeddings off), as after an outage.
    let options = agentplane_origin::data::ingest::Options { batch: 1000 };
    let s = agentplane_origin::data::ingest::ingest(&db, None, tenant, &dir, &options, &mut ()).await.unwrap();
    assert_eq!(s.created, 200);
    let backlog = backfill::backlog(&db).await.unwrap();
    assert!(backlog.contains(&(tenant.as_uuid(), 200)), "{backlog:?}");

    let fake = FakeEmbeddings::start().await;
    fake.shared.latency_ms.store(20, std::sync::atomic::Ordering::Relaxed);
    // 20 currency units per million tokens: 20 micros a token.
    let embedder = Embedder::new(
        Engine::Remote(
            RemoteEmbedder::new(agentplane_origin::models::embed::RemoteConfig {
                price_micros_per_mtok: 20_000_000,
                ..fake.config()
            })
            .unwrap(),
        ),
        0,
    );
    let (p1, p2) = (Progress::default(), Progress::default());
    let (a, b) = tokio::join!(
        backfill::drain_tenant(&db, &embedder, tenant, 16, &p1),
        backfill::drain_tenant(&db, &embedder, tenant, 16, &p2)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 200, "workers embedded {a} and {b}");
    assert!(a > 0 && b > 0, "both workers took batches ({a}, {b})");
    let counts = fake.counts(&marker);
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|n| *n == 1), "a row was embedded twice: {counts:?}");

    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let (docs, embedded, models): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), count(embedding), count(DISTINCT embedding_model) FROM documents")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!((docs, embedded, models), (200, 200, 1));
    let (calls, tokens, cost): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(input_tokens)::bigint, sum(cost_micros)::bigint FROM usage_ledger \
         WHERE subject = 'agentplane-backfill' AND model = 'fake-minilm'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(calls, 13, "one ledger row per batch of 16");
    assert_eq!(tokens, 200 * 6, "the provider's token counts, summed");
    assert_eq!(cost, 200 * 6 * 20, "priced per token as configured");
    tx.commit().await.unwrap();
    assert!(!backfill::backlog(&db).await.unwrap().iter().any(|(t, _)| *t == tenant.as_uuid()));
    std::fs::remove_dir_all(&dir).unwrap();
}
