//! `/metrics` as an operator's Prometheus sees it: every family that `deploy/observability/`
//! alerts on and charts (listed in its `metrics.txt`) is exposed with its type, and the figures
//! move with real traffic: calls by method and tier, tool calls, refusals, the embedding
//! provider's latency and open circuit, budget standings, streams, the task queue, the pool.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use agentplane_origin::app::config::EmbeddingProvider;
use agentplane_origin::data::db::Database;
use serde_json::json;
use support::fake_embeddings::{FakeEmbeddings, Mode};
use support::{ALL_SCOPES, Client, origin, pg_url, test_config, workspace_root};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `(name, type)` of every family in `deploy/observability/metrics.txt`.
fn contract() -> Vec<(String, String)> {
    let path = workspace_root().join("deploy/observability/metrics.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            (words.next().unwrap().to_owned(), words.next().unwrap_or_default().to_owned())
        })
        .collect()
}

/// The value of the first sample whose line starts with `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_alerted_family_is_exposed_and_moves_with_traffic() {
    let shared = origin();
    let fake = FakeEmbeddings::start().await;
    let mut config = test_config();
    config.embedding = EmbeddingProvider::Openai;
    config.remote_embedding = fake.config();
    config.budgets.tiers.insert("free".into(), 1_000_000);
    let admin = pg_url(&shared.config, "agentplane_admin", "admin_password", "agentplane");
    let db = Database::open(&shared.app_url, &admin, 8, Default::default()).await.unwrap();
    let embedder = agentplane_origin::app::server::embedder(&config, &db).await.unwrap().unwrap();
    let keys = agentplane_origin::app::keys::load(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app =
        agentplane_origin::app::server::router(&config, db, keys, Some(embedder), CancellationToken::new()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let scrape = || async {
        let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };

    let tenant = Uuid::new_v4();
    let token = shared.token_with(tenant, "metrics", ALL_SCOPES, 3600);
    let mut c =
        Client { url: format!("{base}/mcp"), token: token.clone(), http: reqwest::Client::new(), session: None };
    // A session (2025 revisions), so the gate's session checks are timed too.
    c.initialize().await;
    c.session_rpc(2, "tools/list", json!({})).await;
    // A search while the provider fails twice: lexical answers, then an open circuit.
    fake.set(Mode::Fail);
    for _ in 0..2 {
        let r = c.call("hybrid_search", json!({"query": "metrics quokka"})).await;
        assert!(!r.is_tool_error(), "{:?}", r.result());
    }
    let bad = c.rpc("tools/call", json!({"name": "hybrid_search", "arguments": {"query": 7}})).await;
    assert!(bad.is_tool_error() || bad.error_code().is_some(), "{:?}", bad.result());
    // A refusal before any work: no token.
    let anonymous = reqwest::Client::new().post(format!("{base}/mcp")).body("{}").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // A task: the budget is checked (and its standing recorded); it waits for input.
    let message = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": "help"}]});
    let sent = reqwest::Client::new()
        .post(format!("{base}/a2a"))
        .bearer_auth(&token)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": message}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);

    let text = scrape().await;
    // Every family is exposed, with the contract's type.
    for (name, kind) in contract() {
        // OpenMetrics names a counter's family without `_total`.
        let family = if kind == "counter" { name.strip_suffix("_total").unwrap_or(&name) } else { &name };
        assert!(text.contains(&format!("# TYPE {family} {kind}\n")), "{name} ({kind}) is not exposed:\n{text}");
    }
    let at_least_one = |series: &str| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no sample {series}:\n{text}"));
        assert!(v >= 1.0, "{series} is {v}");
    };
    at_least_one(r#"agentplane_rpc_requests_total{endpoint="mcp",method="tools/call",tier="free",outcome="ok"}"#);
    at_least_one(r#"agentplane_rpc_request_duration_seconds_count{endpoint="mcp",method="tools/call",tier="free"}"#);
    at_least_one(r#"agentplane_rpc_requests_total{endpoint="a2a",method="SendMessage",tier="free",outcome="ok"}"#);
    at_least_one(r#"agentplane_tool_calls_total{tool="hybrid_search",tier="free",outcome="ok"}"#);
    at_least_one(r#"agentplane_tool_call_duration_seconds_count{tool="hybrid_search",tier="free"}"#);
    at_least_one(r#"agentplane_gate_refusals_total{reason="unauthenticated",tier=""}"#);
    at_least_one(r#"agentplane_http_request_duration_seconds_count{endpoint="mcp"}"#);
    at_least_one(
        r#"agentplane_embedding_request_duration_seconds_count{provider="openai-compatible",outcome="error"}"#,
    );
    assert_eq!(sample(&text, r#"agentplane_embedding_breaker_state{provider="openai-compatible"}"#), Some(2.0));
    at_least_one(r#"agentplane_budget_tenants{tier="free",band="under_50"}"#);
    assert!(sample(&text, r#"agentplane_budget_consumption_ratio{tier="free"}"#).is_some(), "{text}");
    assert_eq!(sample(&text, "agentplane_ready "), Some(1.0));
    at_least_one("agentplane_db_pool_max_connections ");
    assert!(sample(&text, r#"agentplane_db_pool_connections{state="idle"}"#).is_some(), "{text}");
    assert!(sample(&text, "agentplane_task_queue_depth ").is_some(), "{text}");
    assert!(sample(&text, "agentplane_task_queue_oldest_age_seconds ").is_some(), "{text}");
    assert_eq!(sample(&text, r#"agentplane_streams_open{kind="a2a"}"#), Some(0.0));
    // No label carries a tenant or a subject.
    assert!(!text.contains(&tenant.to_string()) && !text.contains("\"metrics\""), "a tenant or subject is a label");
    fake.set(Mode::Ok);
}
