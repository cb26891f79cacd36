//! The origin through its MCP endpoint, on the real embedded PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::{ALL_SCOPES, embedding, origin};
use uuid::Uuid;

fn ids(v: &Value, list: &str) -> Vec<String> {
    v[list].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn tenants_are_isolated_in_every_tool() {
    let o = origin();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let ca = o.client(a, ALL_SCOPES);
    let cb = o.client(b, ALL_SCOPES);
    let doc = ca
        .call("upsert_document", json!({"title": "Quarterly zebra report", "content": "zebra migration numbers for tenant a", "metadata": {"team": "a"}}))
        .await;
    let id = doc.structured()["document"]["id"].as_str().unwrap().to_owned();
    cb.call("upsert_document", json!({"title": "B's note", "content": "nothing about the striped animal"}))
        .await
        .structured();

    // B cannot fetch, list, find, update or delete A's document; each is plain "not found".
    assert!(cb.call("get_document", json!({"id": id})).await.is_tool_error());
    let listed = cb.call("list_documents", json!({"limit": 100})).await;
    assert!(!ids(listed.structured(), "documents").contains(&id));
    assert_eq!(listed.structured()["documents"].as_array().unwrap().len(), 1, "B sees exactly its own document");
    let found = cb.call("hybrid_search", json!({"query": "zebra migration"})).await;
    assert!(!ids(found.structured(), "hits").contains(&id));
    // Ids are each tenant's own: B writing under A's id makes B a document of its own, answered
    // exactly as for a fresh id, and A's stays as it was.
    let own = cb.call("upsert_document", json!({"id": id, "title": "pwned", "content": "pwned"})).await;
    assert_eq!(own.structured()["status"], "created", "{own:?}");
    assert!(cb.call("delete_document", json!({"id": id})).await.structured()["deleted"].as_bool().unwrap());
    assert!(cb.call("delete_document", json!({"id": id})).await.is_tool_error());
    let read = cb.rpc("resources/read", json!({"uri": format!("agentplane://documents/{id}")})).await;
    assert!(read.error_code().is_some(), "{read:?}");
    let resources = cb.rpc("resources/list", json!({})).await;
    assert!(!resources.result().to_string().contains(&id));

    // A still has it, unchanged.
    let mine = ca.call("get_document", json!({"id": id})).await;
    assert_eq!(mine.structured()["title"], "Quarterly zebra report");
    let found = ca.call("hybrid_search", json!({"query": "zebra migration"})).await;
    assert_eq!(ids(found.structured(), "hits"), std::slice::from_ref(&id));
    let read = ca.rpc("resources/read", json!({"uri": format!("agentplane://documents/{id}")})).await;
    assert_eq!(read.result()["contents"][0]["text"], "zebra migration numbers for tenant a");
}

#[tokio::test]
async fn row_level_security_holds_below_the_application() {
    let o = origin();
    let pool = sqlx::PgPool::connect(&o.app_url).await.unwrap();
    let a = Uuid::new_v4();
    o.client(a, ALL_SCOPES).call("upsert_document", json!({"title": "t", "content": "c"})).await.structured();
    // No tenant set: nothing is visible, nothing can be written.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_ledger").fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0);
    // A transaction of tenant B may not insert a row claiming tenant A.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(Uuid::new_v4().to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let err =
        sqlx::query("INSERT INTO documents (tenant_id, title, content, content_hash) VALUES ($1, 'x', 'y', '\\x00')")
            .bind(a)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    drop(tx);
    // The service role cannot switch RLS off or read around it.
    let err = sqlx::query("ALTER TABLE documents DISABLE ROW LEVEL SECURITY").execute(&pool).await.unwrap_err();
    assert!(err.to_string().contains("must be owner"), "{err}");
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!superuser && !bypass);
}

#[tokio::test]
async fn injection_strings_in_every_string_argument_are_harmless() {
    let o = origin();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let ca = o.client(a, ALL_SCOPES);
    let victim = o.client(b, ALL_SCOPES);
    let kept = victim.call("upsert_document", json!({"title": "keep me", "content": "victim data"})).await;
    let kept_id = kept.structured()["document"]["id"].as_str().unwrap().to_owned();
    let payloads = [
        "'; DROP TABLE documents; --",
        "\" OR 1=1 --",
        "' OR tenant_id IS NOT NULL OR '",
        "$1 $$ $tag$ ) ; SELECT pg_sleep(5); --",
        "\\'; SET app.tenant_id = '00000000-0000-0000-0000-000000000000",
        "title:x AND content:* OR (",
        "%_\\%_",
        "ünïcödé ✓ 🦓",
        "<script>alert(1)</script>",
    ];
    for p in payloads {
        let up = ca.call("upsert_document", json!({"title": p, "content": p, "metadata": {p: p}})).await;
        let id = up.structured()["document"]["id"].as_str().unwrap().to_owned();
        let got = ca.call("get_document", json!({"id": id})).await;
        assert_eq!(got.structured()["title"], p, "stored verbatim");
        ca.call("hybrid_search", json!({"query": p, "filter": {p: p}})).await.structured();
        for bad_id in [p, "00000000-0000-0000-0000-000000000000' OR '1'='1"] {
            assert!(ca.call("get_document", json!({"id": bad_id})).await.names_bad_argument("id"));
            assert!(ca.call("delete_document", json!({"id": bad_id})).await.names_bad_argument("id"));
        }
        assert!(ca.call("list_documents", json!({"cursor": p})).await.names_bad_argument("cursor"));
        let read = ca.rpc("resources/read", json!({"uri": format!("agentplane://documents/{p}")})).await;
        assert!(read.error_code().is_some());
    }
    // NUL cannot be stored in PostgreSQL text: it is an argument error, not a database error.
    assert!(ca.call("upsert_document", json!({"title": "a\u{0}b", "content": "c"})).await.names_bad_argument("title"));
    // The table and the other tenant's row are untouched.
    assert_eq!(victim.call("get_document", json!({"id": kept_id})).await.structured()["content"], "victim data");
}

#[tokio::test]
async fn documents_without_embeddings_are_listed_fetched_and_found_by_bm25() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), ALL_SCOPES);
    let up = c
        .call(
            "upsert_document",
            json!({"title": "Okapi BM25", "content": "Probabilistic relevance framework for ranking documents."}),
        )
        .await;
    let doc = up.structured()["document"].clone();
    assert_eq!(doc["has_embedding"], false);
    let id = doc["id"].as_str().unwrap();
    assert_eq!(ids(c.call("list_documents", json!({})).await.structured(), "documents"), [id]);
    assert_eq!(c.call("get_document", json!({"id": id})).await.structured()["has_embedding"], false);
    let r = c.call("hybrid_search", json!({"query": "ranking relevance"})).await;
    let s = r.structured();
    assert_eq!(s["mode"], "bm25_only");
    assert_eq!(s["hits"][0]["id"], id);
    assert_eq!(s["hits"][0]["bm25_rank"], 1);
    assert!(s["hits"][0]["vector_rank"].is_null());
    assert!(s["hits"][0]["snippet"].as_str().unwrap().contains("ranking"));
}

#[tokio::test]
async fn hybrid_search_fuses_both_rankings_and_honours_filters() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), ALL_SCOPES);
    // BM25 statistics span the whole index (every tenant's rows), so the test's words are made
    // unique to this run rather than relying on how common "fever" happens to be.
    let u: Vec<String> = (0..3).map(|_| format!("w{}", &Uuid::new_v4().simple().to_string()[..12])).collect();
    let mut made = Vec::new();
    for (i, (title, content, kind)) in [
        ("Aspirin and fever", format!("aspirin lowers fever in adults {}", u[0]), "drug"),
        ("Paracetamol", format!("paracetamol reduces fever in children {}", u[1]), "drug"),
        ("Weather", format!("the weather was hot like a fever {}", u[2]), "other"),
    ]
    .iter()
    .enumerate()
    {
        let r = c
            .call("upsert_document", json!({"title": title, "content": content, "metadata": {"kind": kind}, "embedding": embedding(i as u64)}))
            .await;
        made.push(r.structured()["document"]["id"].as_str().unwrap().to_owned());
    }
    // Document 1 is first on both sides: its word, and a query embedding equal to its own.
    let r = c.call("hybrid_search", json!({"query": u[1], "embedding": embedding(1), "limit": 3})).await;
    let s = r.structured();
    assert_eq!(s["mode"], "hybrid");
    let top = &s["hits"][0];
    assert_eq!(top["id"], made[1], "{s}");
    assert_eq!((top["bm25_rank"].clone(), top["vector_rank"].clone()), (json!(1), json!(1)));
    assert!(top["vector_score"].as_f64().unwrap() > 0.99);
    // Rank 1 on both sides, weights 1 and 1, the default k.
    let k = f64::from(agentplane_origin::data::search::DEFAULT_RRF_K);
    assert!((top["score"].as_f64().unwrap() - 2.0 / (k + 1.0)).abs() < 1e-9);
    assert_eq!(s["hits"].as_array().unwrap().len(), 3, "every document is a vector candidate");
    // Filters apply to both sides.
    let r = c
        .call("hybrid_search", json!({"query": "fever", "embedding": embedding(1), "filter": {"kind": "other"}}))
        .await;
    assert_eq!(ids(r.structured(), "hits"), [made[2].clone()]);
    // With the vector weight at zero the vector side is skipped: BM25 alone decides.
    let r = c
        .call(
            "hybrid_search",
            json!({"query": u[0], "embedding": embedding(1), "vector_weight": 0, "include_content": true}),
        )
        .await;
    let top = &r.structured()["hits"][0];
    assert_eq!(top["id"], made[0]);
    assert!(top["content"].as_str().unwrap().starts_with("aspirin"));
}

#[tokio::test]
async fn bad_arguments_are_failed_executions_naming_the_field() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), ALL_SCOPES);
    for (tool, args, field) in [
        ("hybrid_search", json!({}), "query"),
        ("hybrid_search", json!({"query": "x", "limit": 0}), "limit"),
        ("hybrid_search", json!({"query": "x", "limit": 51}), "limit"),
        ("hybrid_search", json!({"query": "x", "bm25_weight": -1}), "bm25_weight"),
        ("hybrid_search", json!({"query": "x", "rrf_k": "sixty"}), "rrf_k"),
        ("hybrid_search", json!({"query": "x", "filter": {"a": {"b": 1}}}), "filter.a"),
        ("hybrid_search", json!({"query": "x", "embedding": [1, 2, 3]}), "embedding"),
        ("hybrid_search", json!({"query": "x", "surprise": 1}), "surprise"),
        ("get_document", json!({"id": "not-a-uuid"}), "id"),
        ("list_documents", json!({"limit": 1000}), "limit"),
        ("upsert_document", json!({"content": "no title"}), "title"),
        ("upsert_document", json!({"title": "t", "content": ""}), "content"),
        ("upsert_document", json!({"title": "t", "content": "c", "metadata": []}), "metadata"),
    ] {
        // Since 2025-11-25: a tool execution error the model can read and correct.
        let r = c.call(tool, args.clone()).await;
        assert!(r.names_bad_argument(field), "{tool} {args}: {r:?}");
    }
    // An unknown tool is still a protocol error.
    let r = c.call("no_such_tool", json!({})).await;
    assert_eq!(r.error_code(), Some(-32602));
}

#[tokio::test]
async fn scopes_gate_tools_and_tools_list_shows_only_callable_ones() {
    let o = origin();
    let tenant = Uuid::new_v4();
    let reader = o.client(tenant, "search:read");
    let names = |r: &support::Reply| -> Vec<String> {
        r.result()["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    };
    let listed = names(&reader.rpc("tools/list", json!({})).await);
    assert_eq!(listed, ["hybrid_search", "get_document", "list_documents", "usage"]);
    let writer = o.client(tenant, ALL_SCOPES);
    let all = writer.rpc("tools/list", json!({})).await;
    // `research` and the test-only `probe` run as tasks: they need tasks:run, as A2A tasks do.
    assert_eq!(
        names(&all),
        [
            "hybrid_search",
            "get_document",
            "list_documents",
            "upsert_document",
            "delete_document",
            "usage",
            "research",
            "probe"
        ]
    );
    for tool in all.result()["tools"].as_array().unwrap() {
        assert!(tool["inputSchema"].is_object() && tool["outputSchema"].is_object(), "{tool}");
    }
    let denied = reader.call("upsert_document", json!({"title": "t", "content": "c"})).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.error_code(), Some(-32011));
    let challenge = denied.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope") && challenge.contains("scope=\"docs:write\""));
    let nothing = o.client(tenant, "");
    assert_eq!(nothing.call("hybrid_search", json!({"query": "x"})).await.status, 403);
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_challenges() {
    let o = origin();
    let http = reqwest::Client::new();
    let resp =
        http.post(o.url()).json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer resource_metadata=\""), "{challenge}");
    let metadata_url = challenge.split('"').nth(1).unwrap().to_owned();
    let md: Value = http
        .get(metadata_url.replace(&o.config.public_url(), &format!("http://{}", o.addr)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["bearer_methods_supported"], json!(["header"]));
    let expired = o.token_with(Uuid::new_v4(), "x", ALL_SCOPES, -120);
    let resp = http
        .post(o.url())
        .bearer_auth(expired)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("token expired"));
    let resp = http
        .post(o.url())
        .bearer_auth(o.token(Uuid::new_v4(), ALL_SCOPES))
        .header("Origin", "https://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn sessions_of_2025_revisions_work_and_belong_to_their_tenant() {
    let o = origin();
    let mut c = o.client(Uuid::new_v4(), ALL_SCOPES);
    let init = c.initialize().await;
    assert_eq!(init.status, 200);
    assert_eq!(init.result()["protocolVersion"], "2025-11-25");
    assert!(c.session.is_some());
    let listed = c.session_rpc(2, "tools/list", json!({})).await;
    assert_eq!(listed.result()["tools"].as_array().unwrap().len(), 8);
    let called = c.session_rpc(3, "tools/call", json!({"name": "list_documents", "arguments": {}})).await;
    assert!(called.result()["structuredContent"]["documents"].is_array());
    // Another tenant presenting this session id is told it does not exist.
    let mut thief = o.client(Uuid::new_v4(), ALL_SCOPES);
    thief.session = c.session.clone();
    assert_eq!(thief.session_rpc(4, "tools/list", json!({})).await.status, 404);
}

#[tokio::test]
async fn ten_clients_fifty_mixed_calls_no_error_no_cross_talk() {
    let o = origin();
    let mut tasks = Vec::new();
    for client in 0..10 {
        tasks.push(tokio::spawn(async move {
            let tenant = Uuid::new_v4();
            let c = o.client(tenant, ALL_SCOPES);
            let marker = format!("marker{client}x{}", tenant.simple());
            let mut mine = Vec::new();
            for i in 0..50 {
                match i % 5 {
                    0 | 1 => {
                        let r = c
                            .call(
                                "upsert_document",
                                json!({"title": format!("{marker} {i}"), "content": format!("{marker} body {i}")}),
                            )
                            .await;
                        mine.push(r.structured()["document"]["id"].as_str().unwrap().to_owned());
                    }
                    2 => {
                        let r = c.call("hybrid_search", json!({"query": marker, "limit": 50})).await;
                        for h in r.structured()["hits"].as_array().unwrap() {
                            assert!(h["title"].as_str().unwrap().starts_with(&marker), "cross-talk: {h}");
                        }
                    }
                    3 => {
                        let r = c.call("list_documents", json!({"limit": 100})).await;
                        assert_eq!(r.structured()["documents"].as_array().unwrap().len(), mine.len());
                    }
                    _ => {
                        let id = &mine[i % mine.len()];
                        let r = c.call("get_document", json!({"id": id})).await;
                        assert!(r.structured()["title"].as_str().unwrap().starts_with(&marker));
                    }
                }
            }
            mine.len()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 20);
    }
}

#[tokio::test]
async fn upserts_report_created_updated_and_unchanged() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), ALL_SCOPES);
    let first = c.call("upsert_document", json!({"title": "t", "content": "c", "metadata": {"k": 1}})).await;
    assert_eq!(first.structured()["status"], "created");
    let id = first.structured()["document"]["id"].clone();
    let same = c.call("upsert_document", json!({"id": id, "title": "t", "content": "c", "metadata": {"k": 1}})).await;
    assert_eq!(same.structured()["status"], "unchanged", "a no-op write writes nothing");
    assert_eq!(same.structured()["document"]["updated_at"], first.structured()["document"]["updated_at"]);
    let changed =
        c.call("upsert_document", json!({"id": id, "title": "t2", "content": "c", "metadata": {"k": 1}})).await;
    assert_eq!(changed.structured()["status"], "updated");
    let embedded = c
        .call(
            "upsert_document",
            json!({"id": id, "title": "t2", "content": "c", "metadata": {"k": 1}, "embedding": embedding(9)}),
        )
        .await;
    assert_eq!(embedded.structured()["status"], "updated");
    assert_eq!(embedded.structured()["document"]["has_embedding"], true);
    let new_id = Uuid::new_v4();
    let chosen = c.call("upsert_document", json!({"id": new_id, "title": "x", "content": "y"})).await;
    assert_eq!(chosen.structured()["status"], "created");
    assert_eq!(chosen.structured()["document"]["id"], json!(new_id));
}

#[tokio::test]
async fn listing_pages_with_opaque_cursors() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), ALL_SCOPES);
    for i in 0..7 {
        c.call("upsert_document", json!({"title": format!("doc {i}"), "content": "x"})).await.structured();
    }
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let r = c.call("list_documents", json!({"limit": 3, "cursor": cursor})).await;
        let s = r.structured().clone();
        seen.extend(ids(&s, "documents"));
        cursor = s["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
        assert!(!cursor.as_str().unwrap().contains('-'), "cursors are opaque, not raw ids");
    }
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7);
}

#[tokio::test]
async fn prompt_and_health_endpoints() {
    let o = origin();
    let c = o.client(Uuid::new_v4(), "search:read");
    let p = c
        .rpc("prompts/get", json!({"name": "answer_with_citations", "arguments": {"question": "what is BM25?"}}))
        .await;
    assert!(p.result()["messages"][0]["content"]["text"].as_str().unwrap().contains("what is BM25?"));
    assert_eq!(
        c.rpc("prompts/get", json!({"name": "answer_with_citations", "arguments": {}})).await.error_code(),
        Some(-32602)
    );
    let http = reqwest::Client::new();
    // Public readiness says ready and nothing else; the details need the operator token.
    let ready: Value = http.get(format!("http://{}/ready", o.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready"}));
    let details = format!("http://{}/ready/details", o.addr);
    let refused = http.get(&details).bearer_auth(o.token(Uuid::new_v4(), "search:read")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    let token = o.config.operator_token.as_deref().unwrap();
    let ready: Value = http.get(&details).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["lexical_backend"], "pg_search_bm25");
    assert_eq!(http.get(format!("http://{}/health", o.addr)).send().await.unwrap().status(), 200);
    let jwks: Value =
        http.get(format!("http://{}/.well-known/jwks.json", o.addr)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
}
