//! One tenant cannot hurt another (issue 12): each test tries, as a client with an ordinary
//! token would, to stall, starve or read another tenant or user, on the real origin and the real
//! embedded PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{ALL_SCOPES, origin};
use uuid::Uuid;

/// One JSON-RPC call to the origin's A2A endpoint as `token` (A2A 1.0); the HTTP status and body.
async fn a2a(token: &str, method: &str, params: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/a2a", origin().addr))
        .bearer_auth(token)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn message(text: &str, skill: &str) -> Value {
    json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}],
           "metadata": {"skill": skill}})
}

/// Point 2: a message's text is bounded, so no question reaches search, the embedder or the
/// chat model at the body cap's size; the refusal names the limit and creates no task.
#[tokio::test]
async fn an_oversized_research_question_is_refused_at_once() {
    let tenant = Uuid::new_v4();
    let token = origin().token(tenant, ALL_SCOPES);
    // Just under the 1 MiB body cap with the envelope around it.
    let question = "why do zebras have stripes, ".repeat(1_000_000 / 28);
    let started = Instant::now();
    let (status, reply) = a2a(&token, "SendMessage", json!({"message": message(&question, "research")})).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    let text = reply["error"]["message"].as_str().unwrap();
    assert!(text.contains("the limit is 32768 bytes"), "{text}");
    assert!(took < Duration::from_secs(1), "the refusal took {took:?}");
    let (_, listed) = a2a(&token, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["tasks"], json!([]), "{listed}");

    let parts: Vec<Value> = (0..33).map(|_| json!({"text": "zebra"})).collect();
    let mut many = message("", "research");
    many["parts"] = json!(parts);
    let (_, reply) = a2a(&token, "SendMessage", json!({"message": many})).await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(reply["error"]["message"].as_str().unwrap().contains("the limit is 32"), "{reply}");
}

/// Point 5: a task belongs to the user who submitted it. Another user of the same tenant gets
/// "task not found" on it and on its webhooks, exactly as for a task that does not exist; the
/// `tasks:admin` scope sees the tenant's tasks; a webhook's secrets are never read back.
#[tokio::test]
async fn another_user_of_the_tenant_cannot_see_or_touch_a_task() {
    let tenant = Uuid::new_v4();
    let o = origin();
    let u1 = o.token_with(tenant, "u1", ALL_SCOPES, 3600);
    let u2 = o.token_with(tenant, "u2", ALL_SCOPES, 3600);
    let admin = o.token_with(tenant, "ops", "tasks:run tasks:admin", 3600);
    let push = json!({"url": "http://127.0.0.1:9/hook", "token": "u1-secret",
                      "authentication": {"scheme": "Bearer", "credentials": "u1-credentials"}});
    let (_, sent) = a2a(
        &u1,
        "SendMessage",
        json!({"message": message("zebra stripes", "probe"),
               "configuration": {"returnImmediately": true, "taskPushNotificationConfig": push}}),
    )
    .await;
    let id = sent["result"]["task"]["id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();
    let (_, configs) = a2a(&u1, "ListTaskPushNotificationConfigs", json!({"taskId": id})).await;
    let config = configs["result"]["configs"][0].clone();
    let config_id = config["id"].as_str().unwrap().to_owned();
    assert!(!configs.to_string().contains("u1-secret") && !configs.to_string().contains("u1-credentials"));

    for (method, params) in [
        ("GetTask", json!({"id": id})),
        ("CancelTask", json!({"id": id})),
        ("SubscribeToTask", json!({"id": id})),
        ("GetTaskPushNotificationConfig", json!({"taskId": id, "id": config_id})),
        ("ListTaskPushNotificationConfigs", json!({"taskId": id})),
        ("CreateTaskPushNotificationConfig", json!({"taskId": id, "url": "http://127.0.0.1:9/mine"})),
        ("DeleteTaskPushNotificationConfig", json!({"taskId": id, "id": config_id})),
    ] {
        let (_, r) = a2a(&u2, method, params).await;
        assert_eq!(r["error"]["code"], -32001, "u2 {method}: {r}");
    }
    let (_, listed) = a2a(&u2, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["tasks"], json!([]), "{listed}");
    assert_eq!(listed["result"]["totalSize"], 0);

    let (_, got) = a2a(&admin, "GetTask", json!({"id": id})).await;
    assert_eq!(got["result"]["id"], id.as_str(), "{got}");
    let (_, listed) = a2a(&admin, "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["totalSize"], 1, "{listed}");
    let (_, own) = a2a(&u1, "GetTaskPushNotificationConfig", json!({"taskId": id, "id": config_id})).await;
    assert_eq!(own["result"]["url"], "http://127.0.0.1:9/hook");
    assert!(own["result"].get("token").is_none(), "{own}");
    assert!(own["result"]["authentication"].get("credentials").is_none(), "{own}");
}

/// Point 1: webhook delivery holds no pooled connection while a receiver is slow. 40 tasks
/// whose webhook accepts connections and never answers (more than the pool's 32 connections);
/// meanwhile another tenant's reads answer in under a second throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_that_never_answers_stalls_no_other_tenant() {
    // Accepts every connection and keeps it open, reading nothing and answering nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });

    let other = origin().client(Uuid::new_v4(), ALL_SCOPES);
    let doc = other.call("upsert_document", json!({"title": "steady", "content": "the other tenant"})).await;
    let doc_id = doc.structured()["document"]["id"].as_str().unwrap().to_owned();

    let stalling = origin().token(Uuid::new_v4(), ALL_SCOPES);
    let sends = (0..40).map(|_| {
        let stalling = stalling.clone();
        let hook = hook.clone();
        async move {
            let (_, r) = a2a(
                &stalling,
                "SendMessage",
                json!({"message": message("zebra stripes", "probe"),
                       "configuration": {"returnImmediately": true, "taskPushNotificationConfig": {"url": hook}}}),
            )
            .await;
            assert!(r.get("result").is_some(), "{r}");
        }
    });
    futures::future::join_all(sends).await;

    // Each delivery waits up to 10 s per attempt; watch for longer than one attempt.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let started = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(12), other.call("get_document", json!({"id": doc_id})))
            .await
            .expect("get_document hung");
        assert_eq!(got.structured()["title"], "steady");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.abort();
    println!("slowest get_document of the other tenant during the webhook stall: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "the other tenant waited {slowest:?}");
}

/// Point 3: a tenant over its quota costs the origin almost nothing, and nothing anyone waits
/// on: the limiter runs before the body is parsed, and nothing is parsed under a lock. 64
/// concurrent 1 MiB bodies from an over-quota token while another tenant makes its cheapest call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "open (issue 12, point 3): the origin still reads a body before its limiter; p99 299 ms"]
async fn an_over_quota_flood_of_large_bodies_does_not_slow_another_tenant() {
    let mut config = support::test_config();
    config.gateway.tiers = serde_json::from_value(json!({
        "tiers": {"tiny": {"count": 1, "period_secs": 3600, "burst": 1},
                  "free": {"count": 100000, "period_secs": 60, "burst": 10000}},
        "default_tier": "free"
    }))
    .unwrap();
    let o = support::start(config);
    let url = o.url();
    let flooder =
        o.token_claims(json!({"tenant_id": Uuid::new_v4(), "sub": "f", "scope": ALL_SCOPES, "tier": "tiny"}), 3600);
    let big = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                     "params": {"name": "hybrid_search", "arguments": {"query": "x".repeat(1_000_000)}}})
    .to_string();
    let http = reqwest::Client::new();
    // The one request the tier allows.
    mcp_post(&http, &url, &flooder, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string()).await.unwrap();

    let other = o.client(Uuid::new_v4(), ALL_SCOPES);
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let flood: Vec<_> = (0..64)
        .map(|_| {
            let (stop, statuses) = (stop.clone(), statuses.clone());
            let (http, url, flooder, big) = (http.clone(), url.clone(), flooder.clone(), big.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let r = mcp_post(&http, &url, &flooder, big.clone()).await;
                    statuses.lock().unwrap().push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        // The cheapest call of the stateless revision (it has no ping).
        let r = other.rpc("tools/list", json!({})).await;
        latencies.push(started.elapsed());
        assert!(r.result()["tools"].is_array());
    }
    stop.store(true, Ordering::Relaxed);
    for h in flood {
        let _ = h.await;
    }
    let statuses = statuses.lock().unwrap().clone();
    assert!(statuses.len() >= 64 && statuses.iter().all(|s| *s == 429), "{statuses:?}");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!(
        "other tenant's tools/list during the flood: p50 {:?}, p99 {p99:?} ({} refused 1 MiB bodies)",
        latencies[latencies.len() / 2],
        statuses.len()
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
}

async fn mcp_post(http: &reqwest::Client, url: &str, token: &str, body: String) -> reqwest::Result<reqwest::Response> {
    http.post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-11-25")
        .body(body)
        .send()
        .await
}
