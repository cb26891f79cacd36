//! One tenant cannot hurt another (issue 12): each test tries, as a client with an ordinary
//! token would, to stall, starve or read another tenant or user, on the real origin and the real
//! embedded PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

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
    let mut latencies = Vec::new();
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let started = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(12), other.call("get_document", json!({"id": doc_id})))
            .await
            .expect("get_document hung");
        assert_eq!(got.structured()["title"], "steady");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.abort();
    latencies.sort();
    let (p99, slowest) = (latencies[latencies.len() * 99 / 100], latencies[latencies.len() - 1]);
    println!(
        "other tenant's get_document during the webhook stall: p50 {:?}, p99 {p99:?}, slowest {slowest:?} ({} calls)",
        latencies[latencies.len() / 2],
        latencies.len()
    );
    assert!(slowest < Duration::from_secs(1), "the other tenant waited {slowest:?}");
}

fn sleeping_probe(sleep_ms: u64) -> Value {
    json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": "hold on"}],
           "metadata": {"skill": "probe", "sleep_ms": sleep_ms}})
}

/// Point 9: one tenant's open streams are capped, with a 429 that says when to retry; another
/// tenant still streams, and a slot comes back when a stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_cannot_hold_every_stream() {
    let mut config = support::test_config();
    config.max_streams_per_tenant = 2;
    let o = support::start(config);
    let o = &o;
    let (hog, other) = (o.token(Uuid::new_v4(), ALL_SCOPES), o.token(Uuid::new_v4(), ALL_SCOPES));
    let stream = |token: String| async move {
        o.a2a(&token, "SendStreamingMessage", json!({"message": sleeping_probe(5_000)})).await
    };
    let first = stream(hog.clone()).await;
    let second = stream(hog.clone()).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let refused = stream(hog.clone()).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!((body["id"].as_i64(), body["error"]["code"].as_i64()), (Some(9), Some(-32012)), "{body}");
    let others = stream(other).await;
    assert_eq!(others.status().as_u16(), 200, "another tenant was refused a stream");
    drop(first);
    // The slot is freed when the server notices the client left, at its next write at latest.
    let mut reopened = 0;
    for _ in 0..50 {
        let r = stream(hog.clone()).await;
        if r.status().as_u16() == 200 {
            reopened = 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reopened, 200, "no slot came back after a stream ended");
    drop((second, others));
}

/// Point 9: a tenant's submitted and working tasks are capped, so its backlog stays bounded; the
/// refusal is a 429 with `Retry-After` and creates nothing; another tenant is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_cannot_queue_without_bound() {
    let mut config = support::test_config();
    config.a2a.max_active_tasks_per_tenant = 3;
    let o = support::start(config);
    let o = &o;
    let (hog, other) = (o.token(Uuid::new_v4(), ALL_SCOPES), o.token(Uuid::new_v4(), ALL_SCOPES));
    let send = |token: String| async move {
        o.a2a(
            &token,
            "SendMessage",
            json!({"message": sleeping_probe(5_000), "configuration": {"returnImmediately": true}}),
        )
        .await
    };
    for _ in 0..3 {
        assert_eq!(send(hog.clone()).await.status().as_u16(), 200);
    }
    let refused = send(hog.clone()).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"].as_i64(), Some(-32012), "{body}");
    assert_eq!(body["error"]["data"]["limit"].as_u64(), Some(3), "{body}");
    let listed: Value = o.a2a(&hog, "ListTasks", json!({})).await.json().await.unwrap();
    let tasks = listed["result"]["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 3, "{listed}");
    assert_eq!(send(other).await.status().as_u16(), 200, "another tenant was refused a task");
    // No sleeping tasks left for the executors of later tests on the shared database.
    for t in tasks {
        o.a2a(&hog, "CancelTask", json!({"id": t["id"]})).await;
    }
}

/// A task waiting for input holds no executor, so it is outside the cap; the reply that makes it
/// runnable again must fit under the cap like a new task would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_that_revives_a_waiting_task_counts_against_the_task_cap() {
    let mut config = support::test_config();
    config.a2a.max_active_tasks_per_tenant = 1;
    let o = support::start(config);
    let token = o.token(Uuid::new_v4(), ALL_SCOPES);
    let vague = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": "help"}]});
    let asked: Value = o.a2a(&token, "SendMessage", json!({"message": vague})).await.json().await.unwrap();
    assert_eq!(asked["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{asked}");
    let waiting = asked["result"]["task"]["id"].clone();
    let busy = o
        .a2a(
            &token,
            "SendMessage",
            json!({"message": sleeping_probe(5_000), "configuration": {"returnImmediately": true}}),
        )
        .await;
    assert_eq!(busy.status().as_u16(), 200);
    let busy: Value = busy.json().await.unwrap();

    let reply = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "taskId": waiting,
                       "parts": [{"text": "what is a lease?"}]});
    let refused = o.a2a(&token, "SendMessage", json!({"message": reply})).await;
    assert_eq!(refused.status().as_u16(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"].as_i64(), Some(-32012), "{body}");
    let still: Value = o.a2a(&token, "GetTask", json!({"id": waiting})).await.json().await.unwrap();
    assert_eq!(
        still["result"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
        "the refused reply changed the task: {still}"
    );
    o.a2a(&token, "CancelTask", json!({"id": busy["result"]["task"]["id"]})).await;
    o.a2a(&token, "CancelTask", json!({"id": waiting})).await;
}
