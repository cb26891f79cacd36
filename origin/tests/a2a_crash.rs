//! A2A on real origin processes. Durable execution across a crash: an origin running 20 tasks is
//! killed with SIGKILL and started again on the same data, or killed beside a second origin (a
//! replica) that carries on; every task completes, with each artifact and each event once. And
//! webhooks that ignore a proxy the environment names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::processes::{A2A_WORKERS as TASKS, free_port, fresh_data_dir, mint, serve, serve_with, signal};

async fn rpc(port: u16, token: &str, method: &str, params: Value) -> Value {
    // ListTasks has only a 1.0 name.
    let version = if method == "ListTasks" { "1.0" } else { "0.3" };
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/a2a"))
        .bearer_auth(token)
        .header("A2A-Version", version)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("error").is_none(), "{method}: {body}");
    body["result"].clone()
}

/// The whole event log of a task, replayed over SSE from the start: (sequence number, result).
async fn replay(port: u16, token: &str, task: &str) -> Vec<(i64, Value)> {
    let text = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/a2a"))
        .bearer_auth(token)
        .header("Last-Event-ID", "0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/resubscribe", "params": {"id": task}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let id = block.lines().find_map(|l| l.strip_prefix("id:"))?.trim().parse().unwrap();
            let data = block.lines().find_map(|l| l.strip_prefix("data:"))?;
            Some((id, serde_json::from_str::<Value>(data.trim()).unwrap()["result"].clone()))
        })
        .collect()
}

#[tokio::test]
async fn tasks_survive_a_killed_origin_and_finish_after_restart() {
    let data = fresh_data_dir("a2a-crash");
    let port = free_port();
    let mut first = serve(&data, port).await;
    let token = mint(&data, "c4a5c4a5-0000-4000-8000-000000000001");
    let ids = send_tasks(&token, &[port]).await;
    // Kill the origin once every task is under way and some have finished a step.
    wait_all_working(port, &token).await;
    let mut killed = first.0.take().unwrap();
    signal(&killed, nix::sys::signal::Signal::SIGKILL);
    killed.wait().unwrap();

    let port = free_port();
    let mut second = serve(&data, port).await;
    for t in &wait_all_completed(port, &token).await {
        let names: Vec<&str> =
            t["artifacts"].as_array().unwrap().iter().map(|a| a["artifactId"].as_str().unwrap()).collect();
        assert_eq!(names, ["probe-1", "probe-2", "probe-3"], "{t}");
    }
    assert_each_completed_once(port, &token, &ids).await;

    let mut child = second.0.take().unwrap();
    signal(&child, nix::sys::signal::Signal::SIGINT);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Sends [`TASKS`] probe tasks (three 1 s steps each), in turn through each of `ports`; their ids.
async fn send_tasks(token: &str, ports: &[u16]) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let message = json!({"kind": "message", "messageId": format!("m{i}"), "role": "user",
            "parts": [{"kind": "text", "text": format!("crash test {i}")}],
            "metadata": {"skill": "probe", "sleep_ms": 1000}});
        let task = rpc(ports[i % ports.len()], token, "message/send", json!({"message": message})).await;
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn task_list_params() -> Value {
    json!({"pageSize": 100, "includeArtifacts": true})
}

/// Waits until all [`TASKS`] tasks are working and some have finished a step, none done yet: the
/// moment for a kill to land while they run.
async fn wait_all_working(port: u16, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tasks = rpc(port, token, "ListTasks", task_list_params()).await["tasks"].as_array().unwrap().clone();
        assert_eq!(tasks.len(), TASKS);
        let working = tasks.iter().filter(|t| t["status"]["state"] == "TASK_STATE_WORKING").count();
        let stepped = tasks.iter().filter(|t| t["artifacts"].as_array().is_some_and(|a| !a.is_empty())).count();
        let done = tasks.iter().filter(|t| t["status"]["state"] == "TASK_STATE_COMPLETED").count();
        assert_eq!(done, 0, "the kill must land while the tasks run");
        if working == TASKS && stepped > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "tasks never got going: {working} working");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until all [`TASKS`] tasks have completed, none failed or canceled on the way; the tasks.
async fn wait_all_completed(port: u16, token: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = rpc(port, token, "ListTasks", task_list_params()).await["tasks"].as_array().unwrap().clone();
        let states: Vec<&str> = tasks.iter().map(|t| t["status"]["state"].as_str().unwrap()).collect();
        assert!(!states.iter().any(|s| *s == "TASK_STATE_FAILED" || *s == "TASK_STATE_CANCELED"), "{tasks:?}");
        if states.len() == TASKS && states.iter().all(|s| *s == "TASK_STATE_COMPLETED") {
            return tasks;
        }
        assert!(Instant::now() < deadline, "not every task finished: {states:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every task in `ids` completed, with each artifact and each event once, read through `port`.
async fn assert_each_completed_once(port: u16, token: &str, ids: &[String]) {
    for id in ids {
        let events = replay(port, token, id).await;
        let seqs: Vec<i64> = events.iter().map(|e| e.0).collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "contiguous log for {id}");
        let artifact_events: Vec<&str> = events
            .iter()
            .filter(|e| e.1["kind"] == "artifact-update")
            .map(|e| e.1["artifact"]["artifactId"].as_str().unwrap())
            .collect();
        assert_eq!(artifact_events, ["probe-1", "probe-2", "probe-3"], "each artifact logged once for {id}");
        let finals: Vec<&Value> = events.iter().map(|e| &e.1).filter(|r| r["final"] == true).collect();
        assert_eq!(finals.len(), 1);
        assert_eq!(finals[0]["status"]["state"], "completed");
    }
}

/// Two origins on one database, as two replicas; one is killed with SIGKILL while both run
/// tasks and 16 MCP clients (writes and searches, half on each origin, moving to the survivor
/// when theirs is gone) keep them busy. Every task finishes on the survivor, with each artifact
/// and each event once, and every acknowledged write is there.
#[tokio::test]
async fn tasks_of_a_killed_replica_finish_once_on_the_other() {
    let data = fresh_data_dir("a2a-crash-two");
    // The survivor starts first and so runs the database; the victim attaches to it, as a
    // replica does to a database it does not own.
    let survivor_port = free_port();
    let mut survivor = serve(&data, survivor_port).await;
    let victim_port = free_port();
    let mut victim = serve(&data, victim_port).await;
    let token = mint(&data, "c4a5c4a5-0000-4000-8000-000000000002");
    let ids = send_tasks(&token, &[victim_port, survivor_port]).await;
    // The load is another tenant's, at about 16 requests a second (its tier allows 1,000 a minute).
    let load_token = mint(&data, "c4a5c4a5-0000-4000-8000-000000000004");
    let load = McpLoad::start(&load_token, [victim_port, survivor_port]);
    // Kill the victim once every task is under way (both executors claim from the one queue).
    wait_all_working(survivor_port, &token).await;
    let mut killed = victim.0.take().unwrap();
    signal(&killed, nix::sys::signal::Signal::SIGKILL);
    killed.wait().unwrap();

    wait_all_completed(survivor_port, &token).await;
    assert_each_completed_once(survivor_port, &token, &ids).await;
    let (answers, written) = load.stop().await;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{survivor_port}/mcp");
    for id in &written {
        let request = agentplane_origin::dev::client::request(
            &http,
            &url,
            &load_token,
            1,
            "tools/call",
            json!({"name": "get_document", "arguments": {"id": id}}),
        );
        let body = request.send().await.unwrap().text().await.unwrap();
        assert!(
            body.contains(id.as_str()) && !body.contains("\"isError\":true"),
            "acknowledged write {id} is missing: {body}"
        );
    }
    println!(
        "one origin of two killed under 16 MCP clients: {TASKS} tasks completed once on the survivor; \
         MCP answers {answers:?}; {} acknowledged writes, all present",
        written.len()
    );
    let mut child = survivor.0.take().unwrap();
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert!(child.wait().unwrap().success());
}

/// 16 MCP clients writing and searching, one call a second each, half on each of two origins; a
/// client whose origin stops answering moves to the other, as behind a load balancer.
struct McpLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Tally>>,
}

/// Answers by kind, and the ids of the writes acknowledged.
type Tally = (std::collections::BTreeMap<String, u64>, Vec<String>);

impl McpLoad {
    fn start(token: &str, ports: [u16; 2]) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients = (0..16)
            .map(|c| {
                let (stop, token) = (stop.clone(), token.to_owned());
                tokio::spawn(async move {
                    let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
                    let (mut port, mut answers, mut written) =
                        (ports[c % 2], std::collections::BTreeMap::new(), Vec::new());
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let id = format!("{:08x}-0000-4000-8000-{:012x}", c, n);
                        let (tool, args) = if n % 2 == 0 {
                            (
                                "upsert_document",
                                json!({"id": id, "title": format!("replica {c} {n}"), "content": "load"}),
                            )
                        } else {
                            ("hybrid_search", json!({"query": "replica load"}))
                        };
                        let url = format!("http://127.0.0.1:{port}/mcp");
                        let request = agentplane_origin::dev::client::request(
                            &http,
                            &url,
                            &token,
                            1,
                            "tools/call",
                            json!({"name": tool, "arguments": args}),
                        );
                        let kind = match request.send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let body = r.text().await.unwrap_or_default();
                                if status == 200 && tool == "upsert_document" && !body.contains("\"isError\":true") {
                                    written.push(id);
                                }
                                status.to_string()
                            }
                            Err(_) => {
                                port = ports[1];
                                "connection failed".to_owned()
                            }
                        };
                        *answers.entry(kind).or_default() += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    (answers, written)
                })
            })
            .collect();
        Self { stop, clients }
    }

    /// Stops the clients; every answer by kind, and the writes acknowledged.
    async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let (mut answers, mut written) = (std::collections::BTreeMap::new(), Vec::new());
        for c in self.clients {
            let (a, w) = c.await.unwrap();
            for (k, v) in a {
                *answers.entry(k).or_default() += v;
            }
            written.extend(w);
        }
        (answers, written)
    }
}

/// Issue 12, point 10: webhooks never go through a proxy from the environment, since a proxy
/// would resolve the name itself and connect wherever that leads, past the SSRF check.
#[tokio::test]
async fn webhooks_ignore_a_proxy_from_the_environment() {
    // A "proxy" that counts the connections it gets and answers none.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let proxied = Arc::new(AtomicUsize::new(0));
    let counted = proxied.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = proxy.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", receiver.local_addr().unwrap());
    let delivered = Arc::new(AtomicUsize::new(0));
    let d = delivered.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let d = d.clone();
            async move {
                d.fetch_add(1, Ordering::SeqCst);
                http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await.unwrap() });

    let data = fresh_data_dir("webhook-proxy");
    // The test switch lets webhooks go to loopback over http, as the receiver here is.
    let config = data.join("agentplane.toml");
    std::fs::write(&config, "[a2a]\npush_allow_loopback = true\n").unwrap();
    let config = config.to_string_lossy().into_owned();
    let port = free_port();
    let env = [
        ("AGENTPLANE_CONFIG", config.as_str()),
        ("HTTP_PROXY", proxy_url.as_str()),
        ("http_proxy", proxy_url.as_str()),
        ("ALL_PROXY", proxy_url.as_str()),
        ("NO_PROXY", ""),
    ];
    let mut origin = serve_with(&data, port, &env).await;
    let token = mint(&data, "c4a5c4a5-0000-4000-8000-000000000003");
    let message = json!({"kind": "message", "messageId": "proxy-1", "role": "user", "parts": [{"kind": "text", "text": "hi"}],
        "metadata": {"skill": "probe"}});
    rpc(
        port,
        &token,
        "message/send",
        json!({"message": message, "configuration": {"pushNotificationConfig": {"url": hook}}}),
    )
    .await;
    for _ in 0..100 {
        if delivered.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (direct, through_proxy) = (delivered.load(Ordering::SeqCst), proxied.load(Ordering::SeqCst));
    println!("webhook POSTs delivered directly: {direct}; connections to the environment's proxy: {through_proxy}");
    assert!(direct >= 3, "the receiver got {direct} notifications");
    assert_eq!(through_proxy, 0, "a webhook went through the environment's proxy");
    let mut child = origin.0.take().unwrap();
    signal(&child, nix::sys::signal::Signal::SIGINT);
    assert!(child.wait().unwrap().success());
}
