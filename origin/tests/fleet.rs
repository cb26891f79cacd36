//! A fleet of origins as real processes on one database: what one replica does reaches a
//! session's stream on another, a change made by `agentplane ingest` reaches a subscriber, and an
//! MCP task started on one replica is polled to completion on another after the first is killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use support::processes::{agentplane, free_port, fresh_data_dir, mint, serve, serve_with, signal};
use tokio::sync::mpsc;

const SESSION_REVISION: &str = "2025-11-25";
const STATELESS_REVISION: &str = "2026-07-28";

/// The JSON-RPC messages of an SSE body or a JSON one.
fn messages(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("application/json") {
        return vec![serde_json::from_str(body).unwrap()];
    }
    body.split("\n\n")
        .filter_map(|event| {
            let data: String = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data).unwrap())
        })
        .collect()
}

/// A session-era MCP client that sends each request to the replica it is told to.
struct Client {
    http: reqwest::Client,
    token: String,
    session: Option<String>,
    next: i64,
    revision: &'static str,
}

impl Client {
    fn new(token: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            token: token.to_owned(),
            session: None,
            next: 1,
            revision: SESSION_REVISION,
        }
    }

    fn of_revision(token: &str, revision: &'static str) -> Self {
        Self { revision, ..Self::new(token) }
    }

    fn post(&self, port: u16, body: &Value, revision: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(format!("http://127.0.0.1:{port}/mcp"))
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", revision)
            .json(body);
        if let Some(s) = &self.session {
            req = req.header("Mcp-Session-Id", s);
        }
        req
    }

    /// A request's result, on replica `port`.
    async fn call(&mut self, port: u16, method: &str, params: Value) -> Value {
        let answer = self.answer(port, method, params).await;
        assert!(answer.get("error").is_none(), "{method} on {port}: {answer}");
        answer["result"].clone()
    }

    /// A request's whole JSON-RPC answer, on replica `port`.
    async fn answer(&mut self, port: u16, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let revision =
            if self.session.is_some() || method == "initialize" { self.revision } else { STATELESS_REVISION };
        let resp = self.post(port, &body, revision).send().await.unwrap();
        if method == "initialize" {
            self.session = resp.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned());
            assert!(self.session.is_some(), "initialize opened no session");
        }
        let content_type =
            resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let answer = messages(&content_type, &text).into_iter().find(|m| m["id"] == json!(id));
        answer.unwrap_or_else(|| panic!("{method} on {port}: {status} {text}"))
    }

    async fn notify(&self, port: u16, method: &str) {
        let body = json!({"jsonrpc": "2.0", "method": method});
        let resp = self.post(port, &body, self.revision).send().await.unwrap();
        assert_eq!(resp.status(), 202, "{method} on {port}");
    }

    /// Opens a session on `port` (its `initialize` result), announced as initialized on `other`.
    async fn open_session(&mut self, port: u16, other: u16) -> Value {
        let result = self
            .call(
                port,
                "initialize",
                json!({"protocolVersion": self.revision, "capabilities": {}, "clientInfo": {"name": "fleet-test", "version": "1"}}),
            )
            .await;
        self.notify(other, "notifications/initialized").await;
        result
    }

    /// The session's standalone stream on replica `port`: each message as it arrives.
    async fn stream(&self, port: u16) -> mpsc::UnboundedReceiver<Value> {
        self.stream_after(port, None).await
    }

    /// The stream on `port`, resumed after event `last` when given (`Last-Event-ID`).
    async fn stream_after(&self, port: u16, last: Option<&str>) -> mpsc::UnboundedReceiver<Value> {
        let mut req = self.http.get(format!("http://127.0.0.1:{port}/mcp"));
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        let resp = req
            .bearer_auth(&self.token)
            .header("Accept", "text/event-stream")
            .header("MCP-Protocol-Version", self.revision)
            .header("Mcp-Session-Id", self.session.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET stream on {port}");
        sse(resp)
    }

    async fn tool(&mut self, port: u16, name: &str, arguments: Value) -> Value {
        let result = self.call(port, "tools/call", json!({"name": name, "arguments": arguments})).await;
        assert_ne!(result["isError"], json!(true), "{name}: {result}");
        result
    }
}

/// Each message of an SSE response as it arrives, with its event id (if any) as `_sse_id`.
fn sse(resp: reqwest::Response) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let id = event.lines().find_map(|l| l.strip_prefix("id:")).map(|i| i.trim().to_owned());
                for mut m in messages("text/event-stream", &event) {
                    if let Some(id) = &id {
                        m["_sse_id"] = json!(id);
                    }
                    if tx.send(m).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// A 2026-07-28 `subscriptions/listen` stream on replica `port` for resource list changes.
async fn listen(port: u16, token: &str) -> mpsc::UnboundedReceiver<Value> {
    let mut params = json!({"notifications": {"resourcesListChanged": true}});
    params["_meta"] = stateless_meta();
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", STATELESS_REVISION)
        .header("Mcp-Method", "subscriptions/listen")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": params}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "subscriptions/listen on {port}");
    let mut stream = sse(resp);
    next_with(&mut stream, "notifications/subscriptions/acknowledged").await;
    stream
}

/// The next message on `stream` with `method` (others skipped), within 20 s.
async fn next_with(stream: &mut mpsc::UnboundedReceiver<Value>, method: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.recv()).await {
            Ok(Some(m)) if m["method"] == method => return m,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended before {method}"),
            Err(_) => panic!("no {method} within 20 s"),
        }
    }
}

/// The embedded database of `data`, as its owner (row-level security lets the owner see all).
async fn admin_db(data: &std::path::Path) -> sqlx::PgPool {
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("pg/credentials.json")).unwrap()).unwrap();
    let pid = std::fs::read_to_string(data.join("pg/data/postmaster.pid")).unwrap();
    let port = pid.lines().nth(3).unwrap().trim().to_owned();
    let password = credentials["admin_password"].as_str().unwrap();
    sqlx::PgPool::connect(&format!("postgres://agentplane_admin:{password}@127.0.0.1:{port}/agentplane")).await.unwrap()
}

const TENANT: &str = "f1ee7000-0000-4000-8000-000000000001";

/// Two replicas (ports `a` and `b`) on one fresh database named `name`, and a token of [`TENANT`].
struct TwoReplicas {
    data: std::path::PathBuf,
    a: u16,
    b: u16,
    token: String,
    _origins: [support::processes::Origin; 2],
}

async fn two_replicas(name: &str) -> TwoReplicas {
    let data = fresh_data_dir(name);
    let (a, b) = (free_port(), free_port());
    let first = serve(&data, a).await;
    let second = serve(&data, b).await;
    let token = mint(&data, TENANT);
    TwoReplicas { data, a, b, token, _origins: [first, second] }
}

#[tokio::test]
async fn changes_on_one_replica_and_by_ingest_reach_a_stream_on_another() {
    // `_origins` (not `_`) keeps both replicas running to the test's end.
    let TwoReplicas { data, a, b, token, _origins } = two_replicas("fleet-notifications").await;

    let mut client = Client::new(&token);
    client.open_session(a, b).await;
    let mut stream = client.stream(b).await;
    // A 2026-07-28 client of this tenant listens on B, one of another tenant on A.
    let mut listener = listen(b, &token).await;
    let other = mint(&data, "f1ee7000-0000-4000-8000-000000000002");
    let mut foreign = listen(a, &other).await;

    // A document written through replica A: B's streams hear the list changed.
    let doc = client.tool(a, "upsert_document", json!({"title": "fleet", "content": "first version"})).await;
    let id = doc["structuredContent"]["document"]["id"].as_str().unwrap().to_owned();
    next_with(&mut stream, "notifications/resources/list_changed").await;
    next_with(&mut listener, "notifications/resources/list_changed").await;

    // Subscribed through A, changed through A again: B's stream hears that document updated.
    let uri = format!("agentplane://documents/{id}");
    client.call(a, "resources/subscribe", json!({"uri": uri})).await;
    client.tool(a, "upsert_document", json!({"id": id, "title": "fleet", "content": "second version"})).await;
    let updated = next_with(&mut stream, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], json!(uri));

    // Another tenant's writes reach nobody here.
    let mut stranger = Client::new(&other);
    stranger.open_session(b, a).await;
    stranger.tool(b, "upsert_document", json!({"title": "elsewhere", "content": "not yours"})).await;

    // `agentplane ingest`, a process of its own: a new document is a list change, and a changed
    // subscribed one an update.
    let corpus = data.join("corpus.jsonl");
    std::fs::write(&corpus, format!("{}\n", json!({"_id": "ingested-1", "title": "ingested", "text": "from a file"})))
        .unwrap();
    let out = agentplane(&data).arg("ingest").arg(&corpus).args(["--tenant", TENANT]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    next_with(&mut stream, "notifications/resources/list_changed").await;

    let listed = client.tool(b, "list_documents", json!({})).await;
    let ingested = listed["structuredContent"]["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "ingested")
        .unwrap_or_else(|| panic!("{listed}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ingested_uri = format!("agentplane://documents/{ingested}");
    client.call(b, "resources/subscribe", json!({"uri": ingested_uri})).await;
    std::fs::write(
        &corpus,
        format!("{}\n", json!({"_id": "ingested-1", "title": "ingested", "text": "changed in the file"})),
    )
    .unwrap();
    let out = agentplane(&data).arg("ingest").arg(&corpus).args(["--tenant", TENANT]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let updated = next_with(&mut stream, "notifications/resources/updated").await;
    assert_eq!(updated["params"]["uri"], json!(ingested_uri));

    next_with(&mut listener, "notifications/resources/list_changed").await;
    // The other tenant's listener heard its own write only, none of this tenant's.
    next_with(&mut foreign, "notifications/resources/list_changed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(foreign.try_recv().is_err(), "another tenant heard this tenant's changes");

    // Nothing of the other tenant's arrived: everything left is this tenant's.
    let mut last = updated["_sse_id"].as_str().unwrap().to_owned();
    while let Ok(m) = stream.try_recv() {
        if m["method"] == "notifications/resources/updated" {
            assert!([&uri, &ingested_uri].contains(&&m["params"]["uri"].as_str().unwrap().to_owned()), "{m}");
        }
        if let Some(id) = m["_sse_id"].as_str() {
            last = id.to_owned();
        }
    }

    // The stream on B breaks (as when B dies); a change happens meanwhile; the client resumes on A
    // with the last event id it saw and gets what it missed, once, and nothing it had.
    drop(stream);
    client.tool(a, "upsert_document", json!({"id": id, "title": "fleet", "content": "third version"})).await;
    let mut resumed = client.stream_after(a, Some(&last)).await;
    let missed = next_with(&mut resumed, "notifications/resources/updated").await;
    assert_eq!(missed["params"]["uri"], json!(uri));
    let seq = |m: &Value| -> i64 { m["_sse_id"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap() };
    let last_seq: i64 = last.rsplit(':').next().unwrap().parse().unwrap();
    assert!(seq(&missed) > last_seq, "replayed an event the client had: {missed} after {last}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(m) = resumed.try_recv() {
        if m.get("_sse_id").is_some() && m.get("method").is_some() {
            assert!(seq(&m) > seq(&missed), "out of order or repeated: {m}");
        }
    }

    // The log level a client sets is the session's, kept for every replica.
    client.call(b, "logging/setLevel", json!({"level": "warning"})).await;
    let session = uuid::Uuid::parse_str(client.session.as_deref().unwrap()).unwrap();
    let level: Option<String> = sqlx::query_scalar("SELECT log_level FROM mcp_sessions WHERE id = $1")
        .bind(session)
        .fetch_one(&admin_db(&data).await)
        .await
        .unwrap();
    assert_eq!(level.as_deref(), Some("warning"));
}

/// A stateless (2026-07-28) request's `_meta`, declaring the Tasks extension.
fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_REVISION,
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "fleet-test", "version": "1"}
    })
}

/// A stateless request on replica `port`; the whole JSON-RPC answer.
async fn stateless(port: u16, token: &str, method: &str, name: Option<&str>, mut params: Value) -> Value {
    params["_meta"] = stateless_meta();
    let mut req = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", STATELESS_REVISION)
        .header("Mcp-Method", method)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
    if let Some(name) = name {
        req = req.header("Mcp-Name", name);
    }
    let resp = req.send().await.unwrap();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = resp.text().await.unwrap();
    messages(&content_type, &text)
        .into_iter()
        .find(|m| m["id"] == json!(7))
        .unwrap_or_else(|| panic!("{method}: {text}"))
}

/// `tasks/get` on replica `port` every 200 ms until the task leaves `working` (within 60 s).
async fn polled_until_done(port: u16, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = task_status(port, token, id).await;
        if status["status"] != "working" {
            return status;
        }
        assert!(Instant::now() < deadline, "the task did not finish on {port}: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn task_status(port: u16, token: &str, id: &str) -> Value {
    let answer = stateless(port, token, "tasks/get", Some(id), json!({"taskId": id})).await;
    assert!(answer.get("error").is_none(), "tasks/get: {answer}");
    answer["result"].clone()
}

#[tokio::test]
async fn an_mcp_task_started_on_a_killed_replica_is_polled_to_completion_on_another() {
    let data = fresh_data_dir("fleet-tasks");
    // The database's keeper runs no tasks, so the task runs on A until A dies.
    let keeper = free_port();
    let _keeper = serve_with(&data, keeper, &[("AGENTPLANE_A2A_WORKERS", "0")]).await;
    let a = free_port();
    let mut first = serve(&data, a).await;
    let token = mint(&data, TENANT);

    let created =
        stateless(a, &token, "tools/call", Some("probe"), json!({"name": "probe", "arguments": {"sleep_ms": 1500}}))
            .await;
    let task = &created["result"];
    assert_eq!(task["resultType"], "task", "{created}");
    let id = task["taskId"].as_str().unwrap().to_owned();

    // Once A runs it (working), kill A outright.
    let deadline = Instant::now() + Duration::from_secs(20);
    while task_status(keeper, &token, &id).await["statusMessage"] != "working" {
        assert!(Instant::now() < deadline, "the task never started on A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut killed = first.0.take().unwrap();
    signal(&killed, nix::sys::signal::Signal::SIGKILL);
    killed.wait().unwrap();

    // B takes the task over when A's lease lapses; a client polls B.
    let b = free_port();
    let _second = serve(&data, b).await;
    let done = polled_until_done(b, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_ne!(done["result"]["isError"], json!(true), "{done}");
    assert!(!done["result"]["content"].as_array().unwrap().is_empty(), "{done}");

    // Another tenant cannot see it, and a finished task cannot be cancelled.
    let stranger = mint(&data, "f1ee7000-0000-4000-8000-000000000003");
    let refused = stateless(b, &stranger, "tasks/get", Some(&id), json!({"taskId": id})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let refused = stateless(b, &token, "tasks/cancel", Some(&id), json!({"taskId": id})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
}

#[tokio::test]
async fn research_runs_as_a_task_or_answers_in_the_call() {
    let data = fresh_data_dir("fleet-research");
    let port = free_port();
    let _origin = serve(&data, port).await;
    let token = mint(&data, TENANT);
    let mut session = Client::new(&token);
    session.open_session(port, port).await;
    session.tool(port, "upsert_document", json!({"title": "Leases", "content": "A lease lapses when its holder dies; another replica claims the task."})).await;

    // Without the extension: the call waits for the report.
    let report = session.tool(port, "research", json!({"question": "what happens when a lease lapses?"})).await;
    assert!(!report["content"].as_array().unwrap().is_empty(), "{report}");

    // With it: a task, then its result by polling.
    let created = stateless(
        port,
        &token,
        "tools/call",
        Some("research"),
        json!({"name": "research", "arguments": {"question": "what happens when a lease lapses?"}}),
    )
    .await;
    let id = created["result"]["taskId"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned();
    let done = polled_until_done(port, &token, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert!(!done["result"]["content"].as_array().unwrap().is_empty(), "{done}");

    // A 2025-06-18 session has no tasks at all.
    let mut older = Client::of_revision(&token, "2025-06-18");
    older.open_session(port, port).await;
    let refused = older.answer(port, "tasks/get", json!({"taskId": id})).await;
    assert!(refused.get("error").is_some(), "{refused}");
}

#[tokio::test]
async fn a_2025_11_25_session_runs_tasks_across_replicas() {
    // `_origins` (not `_`) keeps both replicas running to the test's end.
    let TwoReplicas { data, a, b, token, _origins } = two_replicas("fleet-tasks-2025").await;
    let mut client = Client::new(&token);

    // The revision's capability, and which tools may run as tasks.
    let init = client.open_session(a, b).await;
    assert_eq!(init["capabilities"]["tasks"]["requests"]["tools"]["call"], json!({}), "{init}");
    assert!(init["capabilities"]["tasks"]["list"].is_object() && init["capabilities"]["tasks"]["cancel"].is_object());
    let tools = client.call(b, "tools/list", json!({})).await;
    let support = |name: &str| {
        let tool = tools["tools"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap();
        tool["execution"]["taskSupport"].clone()
    };
    assert_eq!(support("research"), "optional");
    assert_eq!(support("hybrid_search"), Value::Null);
    client.tool(a, "upsert_document", json!({"title": "Leases", "content": "A lease lapses when its holder dies; another replica claims the task."})).await;

    // Started on A, its result waited for on B, then seen by tasks/get and tasks/list.
    let question = json!({"question": "what happens when a lease lapses?"});
    let created =
        client.call(a, "tools/call", json!({"name": "research", "arguments": question, "task": {"ttl": 60000}})).await;
    let task = &created["task"];
    assert_eq!(task["status"], "working", "{created}");
    assert!(task["createdAt"].is_string() && task["lastUpdatedAt"].is_string() && task.get("ttl").is_some());
    let id = task["taskId"].as_str().unwrap().to_owned();
    let result = client.call(b, "tasks/result", json!({"taskId": id})).await;
    assert_ne!(result["isError"], json!(true), "{result}");
    assert!(!result["content"].as_array().unwrap().is_empty(), "{result}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], json!(id), "{result}");
    let status = client.call(a, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["taskId"], json!(id));
    let listed = client.call(b, "tasks/list", json!({})).await;
    assert!(listed["tasks"].as_array().unwrap().iter().any(|t| t["taskId"] == json!(id)), "{listed}");

    // Refusals: a finished task is not cancelled, an unknown one is not found, a tool that does
    // not run as a task says so, a bad cursor is invalid.
    let refused = client.answer(b, "tasks/cancel", json!({"taskId": id})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let refused = client.answer(b, "tasks/result", json!({"taskId": unknown})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let refused = client
        .answer(a, "tools/call", json!({"name": "hybrid_search", "arguments": {"query": "lease"}, "task": {}}))
        .await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    let refused = client.answer(a, "tasks/list", json!({"cursor": "not-ours"})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // Another tenant's session does not find the task.
    let mut stranger = Client::new(&mint(&data, "f1ee7000-0000-4000-8000-000000000004"));
    stranger.open_session(b, b).await;
    let refused = stranger.answer(b, "tasks/get", json!({"taskId": id})).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let theirs = stranger.call(b, "tasks/list", json!({})).await;
    assert_eq!(theirs["tasks"], json!([]), "{theirs}");

    // tasks/result on a task still running waits for it (as a quiet SSE stream).
    let created =
        client.call(a, "tools/call", json!({"name": "probe", "arguments": {"sleep_ms": 400}, "task": {}})).await;
    let probe = created["task"]["taskId"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let result = client.call(b, "tasks/result", json!({"taskId": probe})).await;
    assert!(started.elapsed() >= Duration::from_millis(800), "answered before the task ran");
    assert_ne!(result["isError"], json!(true), "{result}");
    assert_eq!(client.call(a, "tasks/get", json!({"taskId": probe})).await["status"], "completed");

    // A running task cancelled on B is cancelled when the answer comes.
    let created =
        client.call(a, "tools/call", json!({"name": "probe", "arguments": {"sleep_ms": 1500}, "task": {}})).await;
    let probe = created["task"]["taskId"].as_str().unwrap().to_owned();
    let cancelled = client.call(b, "tasks/cancel", json!({"taskId": probe})).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(client.call(a, "tasks/get", json!({"taskId": probe})).await["status"], "cancelled");
}
