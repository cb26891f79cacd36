//! The origin through its A2A endpoint, on the real embedded PostgreSQL: cards, both protocol
//! versions, the executor (retries, timeouts, cancel, resume after a lost lease) and SSE streams
//! with replay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use support::{ALL_SCOPES, origin};
use uuid::Uuid;

/// A client of one tenant speaking one A2A version (`None` sends no `A2A-Version`: 0.3).
struct A2a {
    url: String,
    token: String,
    version: Option<&'static str>,
    http: reqwest::Client,
}

fn client(tenant: Uuid, version: Option<&'static str>) -> A2a {
    let o = origin();
    A2a {
        url: format!("http://{}/a2a", o.addr),
        token: o.token(tenant, ALL_SCOPES),
        version,
        http: reqwest::Client::new(),
    }
}

/// One SSE event: its `id` and the JSON-RPC message in its `data`.
#[derive(Debug, Clone)]
struct Frame {
    id: i64,
    message: Value,
}

fn parse_frames(text: &str) -> Vec<Frame> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse().unwrap());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            (!data.is_empty()).then(|| Frame {
                id: id.expect("every event has an id"),
                message: serde_json::from_str(&data).unwrap(),
            })
        })
        .collect()
}

impl A2a {
    /// `message/send` (0.3) that waits for the task to settle; the task.
    async fn send_blocking(&self, message: Value) -> Value {
        self.result("message/send", json!({"message": message, "configuration": {"blocking": true}})).await
    }

    fn request(&self, method: &str, params: Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
        if let Some(v) = self.version {
            req = req.header("A2A-Version", v);
        }
        req
    }

    /// The whole JSON-RPC response.
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let resp = self.request(method, params).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    async fn result(&self, method: &str, params: Value) -> Value {
        let r = self.rpc(method, params).await;
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    async fn error_code(&self, method: &str, params: Value) -> i64 {
        let r = self.rpc(method, params).await;
        r["error"]["code"].as_i64().unwrap_or_else(|| panic!("{method} did not fail: {r}"))
    }

    /// Reads a stream to its end.
    async fn stream(&self, method: &str, params: Value, last_event_id: Option<i64>) -> Vec<Frame> {
        let mut req = self.request(method, params);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = tokio::time::timeout(Duration::from_secs(60), req.send()).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        let text =
            tokio::time::timeout(Duration::from_secs(60), resp.text()).await.expect("stream did not end").unwrap();
        assert!(ct.starts_with("text/event-stream"), "{ct}: {text}");
        parse_frames(&text)
    }

    /// A task as `GetTask`/`tasks/get` returns it.
    async fn get(&self, id: &str) -> Value {
        let method = if self.version == Some("1.0") { "GetTask" } else { "tasks/get" };
        self.result(method, json!({"id": id})).await
    }

    /// Polls until the task's state is one of `states`.
    async fn wait_for(&self, id: &str, states: &[&str]) -> Value {
        for _ in 0..300 {
            let t = self.get(id).await;
            if states.contains(&t["status"]["state"].as_str().unwrap()) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("task {id} never reached {states:?}: {}", self.get(id).await);
    }
}

fn message_v03(text: &str, metadata: Value) -> Value {
    json!({"kind": "message", "messageId": Uuid::new_v4().to_string(), "role": "user",
           "parts": [{"kind": "text", "text": text}], "metadata": metadata})
}

fn message_v10(text: &str, metadata: Value) -> Value {
    json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": text}], "metadata": metadata})
}

/// Stores documents for `tenant` through MCP and returns their ids.
async fn upsert(tenant: Uuid, docs: &[(&str, &str)]) -> Vec<String> {
    let c = origin().client(tenant, ALL_SCOPES);
    let mut ids = Vec::new();
    for (title, content) in docs {
        let r = c.call("upsert_document", json!({"title": title, "content": content})).await;
        ids.push(r.structured()["document"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// A word no other test (or run) uses: BM25 statistics are global.
fn word(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..8])
}

fn text_of(parts: &Value) -> String {
    parts.as_array().unwrap().iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn the_agent_card_is_public_cached_and_revalidated() {
    let o = origin();
    let http = reqwest::Client::new();
    let url = format!("http://{}/.well-known/agent-card.json", o.addr);
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["cache-control"], "public, max-age=300");
    let card: Value = resp.json().await.unwrap();
    assert_eq!(card["name"], "agentplane");
    assert_eq!(card["capabilities"]["streaming"], true);
    assert_eq!(card["capabilities"]["pushNotifications"], true);
    // Without A2A-Version the card is 1.0's, with none of 0.3's fields (1.0's schema is closed).
    assert!(card.get("url").is_none() && card.get("protocolVersion").is_none(), "{card}");
    let versions: Vec<String> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {} {}",
                i["protocolBinding"].as_str().unwrap(),
                i["protocolVersion"].as_str().unwrap(),
                i["url"].as_str().unwrap()
            )
        })
        .collect();
    let a2a = format!("http://{}/a2a", o.addr);
    assert_eq!(
        versions,
        [
            format!("JSONRPC 1.0 {a2a}"),
            format!("HTTP+JSON 1.0 {a2a}/v1"),
            format!("JSONRPC 0.3 {a2a}"),
            format!("HTTP+JSON 0.3 {a2a}")
        ]
    );
    assert_eq!(card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["bearerFormat"], "JWT");
    let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skills, ["rag_answer", "research"]);
    for modes in ["defaultInputModes", "defaultOutputModes"] {
        assert!(card[modes].as_array().unwrap().contains(&json!("text/plain")));
    }

    // A 0.3 client asks for its shape.
    let old: Value = http.get(&url).header("A2A-Version", "0.3").send().await.unwrap().json().await.unwrap();
    assert_eq!(old["url"], format!("http://{}/a2a", o.addr));
    assert_eq!(old["protocolVersion"], "0.3.0");
    assert_eq!(old["securitySchemes"]["bearer"]["bearerFormat"], "JWT");
    assert!(old.get("supportedInterfaces").is_none(), "{old}");

    let again = http.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.text().await.unwrap().is_empty());
    let stale = http.get(&url).header("If-None-Match", "\"something-else\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    // The endpoint itself is not public.
    let anonymous = http.post(format!("http://{}/a2a", o.addr)).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn message_send_v03_answers_from_the_tenants_documents_with_citations() {
    let tenant = Uuid::new_v4();
    let w = word("glimmer");
    let ids = upsert(
        tenant,
        &[
            ("Field notes", &format!("The {w} beetle glows at dusk. It feeds on moss.")),
            ("Unrelated", "Tax forms are due in April. Nothing else to see."),
        ],
    )
    .await;
    let a = client(tenant, None);
    let task = a.send_blocking(message_v03(&format!("When does the {w} beetle glow?"), json!({}))).await;
    assert_eq!(task["kind"], "task");
    assert_eq!(task["status"]["state"], "completed", "{task}");
    let answer = text_of(&task["artifacts"][0]["parts"]);
    assert!(answer.contains(&format!("\"The {w} beetle glows at dusk.\" [doc:{}]", ids[0])), "{answer}");
    assert!(!answer.contains(&ids[1]), "{answer}");
    assert_eq!(task["artifacts"][0]["parts"][1]["kind"], "data");
    assert_eq!(task["artifacts"][0]["parts"][1]["data"]["citations"][0]["id"], ids[0]);
    let history = task["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["role"], "user");
    assert_eq!(history[1]["role"], "agent");
    assert_eq!(history[1]["kind"], "message");
    assert_eq!(text_of(&task["status"]["message"]["parts"]), answer);

    let id = task["id"].as_str().unwrap();
    let got = a.get(id).await;
    assert_eq!(got["status"]["state"], "completed");
    assert_eq!(got["contextId"], task["contextId"]);
    let short = a.result("tasks/get", json!({"id": id, "historyLength": 1})).await;
    assert_eq!(short["history"].as_array().unwrap().len(), 1);
    assert_eq!(short["history"][0]["role"], "agent");

    // Without `blocking` the task comes back at once, submitted, and completes on its own.
    let quick = a.result("message/send", json!({"message": message_v03(&format!("{w} moss"), json!({}))})).await;
    assert_eq!(quick["status"]["state"], "submitted");
    a.wait_for(quick["id"].as_str().unwrap(), &["completed"]).await;
}

#[tokio::test]
async fn answers_match_words_across_plural_and_verb_endings() {
    let tenant = Uuid::new_v4();
    let w = word("policy");
    let ids = upsert(
        tenant,
        &[("Isolation", &format!("Under {w}, one tenant never sees another tenant's documents. Keys rotate."))],
    )
    .await;
    let task = client(tenant, None)
        .send_blocking(message_v03(&format!("How are tenants kept apart by {w}?"), json!({})))
        .await;
    let answer = text_of(&task["artifacts"][0]["parts"]);
    assert_eq!(answer, format!("\"Under {w}, one tenant never sees another tenant's documents.\" [doc:{}]", ids[0]));
}

#[tokio::test]
async fn send_message_v10_waits_by_default_and_speaks_protojson() {
    let tenant = Uuid::new_v4();
    let w = word("quartzite");
    let ids = upsert(tenant, &[("Geology", &format!("{w} forms from sandstone under heat and pressure."))]).await;
    let a = client(tenant, Some("1.0"));
    let result =
        a.result("SendMessage", json!({"message": message_v10(&format!("How does {w} form?"), json!({}))})).await;
    let task = &result["task"];
    assert!(task.get("kind").is_none());
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{result}");
    assert_eq!(task["history"][0]["role"], "ROLE_USER");
    assert_eq!(task["history"][1]["role"], "ROLE_AGENT");
    assert!(text_of(&task["artifacts"][0]["parts"]).contains(&format!("[doc:{}]", ids[0])));
    assert_eq!(task["artifacts"][0]["parts"][1]["mediaType"], "application/json");
    let got = a.result("GetTask", json!({"id": task["id"]})).await;
    assert_eq!(got["status"]["state"], "TASK_STATE_COMPLETED");

    // returnImmediately: the task as created.
    let quick = a
        .result(
            "SendMessage",
            json!({"message": message_v10(&format!("{w} heat"), json!({})), "configuration": {"returnImmediately": true}}),
        )
        .await;
    assert_eq!(quick["task"]["status"]["state"], "TASK_STATE_SUBMITTED");
    a.wait_for(quick["task"]["id"].as_str().unwrap(), &["TASK_STATE_COMPLETED"]).await;
}

#[tokio::test]
async fn research_cross_references_parallel_searches_into_a_report() {
    let tenant = Uuid::new_v4();
    let (x, y) = (word("stripe"), word("mane"));
    let ids = upsert(
        tenant,
        &[
            ("Zebras", &format!("Zebra {x} patterns confuse biting flies.")),
            ("Lions", &format!("A lion {y} signals fitness to rivals.")),
            ("Both", &format!("Both {x} patterns and {y} colour are sexually selected traits.")),
        ],
    )
    .await;
    let a = client(tenant, Some("1.0"));
    let result = a
        .result(
            "SendMessage",
            json!({"message": message_v10(&format!("{x} patterns and {y} colour"), json!({"skill": "research"}))}),
        )
        .await;
    let task = &result["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{result}");
    assert_eq!(task["metadata"]["workflow"], "research");
    let artifact = &task["artifacts"][0];
    assert_eq!(artifact["name"], "report");
    let report = text_of(&artifact["parts"]);
    assert!(report.starts_with(&format!("# Research: {x} patterns and {y} colour")), "{report}");
    assert!(report.contains(&format!("## {x} patterns")) && report.contains(&format!("## {y} colour")), "{report}");
    // The document both sub-searches found is cross-referenced first.
    let documents = artifact["parts"][1]["data"]["documents"].as_array().unwrap();
    assert_eq!(documents[0]["id"], ids[2], "{report}");
    assert_eq!(documents[0]["found_by"].as_array().unwrap().len(), 3);
    for id in &ids {
        assert!(report.contains(&format!("[doc:{id}]")), "{report}");
    }
}

#[tokio::test]
async fn list_tasks_filters_by_context_and_pages() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, Some("1.0"));
    let context = Uuid::new_v4().to_string();
    let mut created = Vec::new();
    for i in 0..3 {
        let mut m = message_v10(&format!("leases, part {i}"), json!({}));
        m["contextId"] = json!(context);
        let r = a.result("SendMessage", json!({"message": m})).await;
        assert_eq!(r["task"]["contextId"], context);
        created.push(r["task"]["id"].as_str().unwrap().to_owned());
    }
    a.result("SendMessage", json!({"message": message_v10("elsewhere", json!({}))})).await;

    let first = a.result("ListTasks", json!({"contextId": context, "pageSize": 2})).await;
    assert_eq!(first["totalSize"], 3);
    assert_eq!(first["pageSize"], 2);
    let token = first["nextPageToken"].as_str().unwrap();
    assert!(!token.is_empty());
    let second = a.result("ListTasks", json!({"contextId": context, "pageSize": 2, "pageToken": token})).await;
    assert_eq!(second["nextPageToken"], "");
    let mut listed: Vec<String> = first["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["tasks"].as_array().unwrap())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    // Newest first.
    assert_eq!(listed, created.iter().rev().cloned().collect::<Vec<_>>());
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 3);
    assert!(first["tasks"][0].get("artifacts").is_none(), "artifacts only on request");

    let all = a.result("ListTasks", json!({})).await;
    assert_eq!(all["totalSize"], 4);
    let done = a.result("ListTasks", json!({"status": "TASK_STATE_COMPLETED", "includeArtifacts": true})).await;
    assert_eq!(done["totalSize"], 4);
    assert!(done["tasks"][0]["artifacts"].is_array());
    let none = a.result("ListTasks", json!({"status": "TASK_STATE_CANCELED"})).await;
    assert_eq!(none["totalSize"], 0);
    assert_eq!(none["tasks"], json!([]));
    assert_eq!(a.error_code("ListTasks", json!({"pageSize": 0})).await, -32602);
    assert_eq!(a.error_code("ListTasks", json!({"pageToken": "forged"})).await, -32602);
    // ListTasks has no 0.3 JSON-RPC name.
    assert_eq!(client(tenant, None).error_code("ListTasks", json!({})).await, -32601);
}

#[tokio::test]
async fn unknown_and_foreign_tasks_are_not_found() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mine = client(a, None);
    let task = mine.result("message/send", json!({"message": message_v03("anything", json!({}))})).await;
    let id = task["id"].as_str().unwrap();
    // Another tenant's client asks for the task; its own tenant's client for an id that does not
    // exist. (Comparing tokens to tell the two apart failed when a second ticked between mints.)
    for (c, target) in [(client(b, None), id.to_owned()), (client(a, None), Uuid::new_v4().to_string())] {
        assert_eq!(c.error_code("tasks/get", json!({"id": target})).await, -32001);
        assert_eq!(c.error_code("tasks/cancel", json!({"id": target})).await, -32001);
        assert_eq!(c.error_code("tasks/resubscribe", json!({"id": target})).await, -32001);
    }
    assert_eq!(mine.error_code("tasks/get", json!({"id": "not-a-uuid"})).await, -32001);
    let v1 = client(b, Some("1.0"));
    let r = v1.rpc("GetTask", json!({"id": id})).await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(r["error"]["data"][0]["reason"], "TASK_NOT_FOUND");
    assert_eq!(r["error"]["data"][0]["domain"], "a2a-protocol.org");
    // And a follow-up message naming the foreign task finds nothing either.
    let mut m = message_v03("more", json!({}));
    m["taskId"] = json!(id);
    assert_eq!(client(b, None).error_code("message/send", json!({"message": m})).await, -32001);
}

#[tokio::test]
async fn bad_messages_get_precise_errors() {
    let a = client(Uuid::new_v4(), None);
    assert_eq!(a.error_code("message/send", json!({})).await, -32602);
    assert_eq!(a.error_code("message/send", json!({"message": {"role": "user", "parts": []}})).await, -32602);
    assert_eq!(
        a.error_code("message/send", json!({"message": message_v03("x", json!({"skill": "nope"}))})).await,
        -32602
    );
    let data_only =
        json!({"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "data", "data": {}}]});
    assert_eq!(a.error_code("message/send", json!({"message": data_only})).await, -32005);
    // A webhook inside the network is refused with the task, before anything runs.
    let push = json!({"message": message_v03("x", json!({})), "configuration": {"pushNotificationConfig": {"url": "http://10.0.0.1/hook"}}});
    assert_eq!(a.error_code("message/send", push).await, -32602);
    assert_eq!(a.error_code("tasks/pushNotificationConfig/get", json!({"id": "x"})).await, -32001);
}

#[tokio::test]
async fn a_canceled_task_stops_at_a_step_boundary_and_stays_canceled() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, None);
    let task = a
        .result("message/send", json!({"message": message_v03("slow", json!({"skill": "probe", "sleep_ms": 700}))}))
        .await;
    let id = task["id"].as_str().unwrap();
    a.wait_for(id, &["working"]).await;
    let canceled = a.result("tasks/cancel", json!({"id": id})).await;
    assert_eq!(canceled["status"]["state"], "canceled", "{canceled}");
    // The step that was running when cancel came is not recorded; no later step ran.
    let artifacts = canceled["artifacts"].as_array().map_or(0, Vec::len);
    assert!(artifacts <= 1, "{canceled}");
    assert_eq!(a.error_code("tasks/cancel", json!({"id": id})).await, -32002);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = a.get(id).await;
    assert_eq!(later["status"]["state"], "canceled");
    assert_eq!(later["artifacts"].as_array().map_or(0, Vec::len), artifacts);

    // A finished task cannot be canceled, in either version's words.
    let v1 = client(tenant, Some("1.0"));
    let done = v1.result("SendMessage", json!({"message": message_v10("fast", json!({"skill": "probe"}))})).await;
    assert_eq!(done["task"]["status"]["state"], "TASK_STATE_COMPLETED");
    let r = v1.rpc("CancelTask", json!({"id": done["task"]["id"]})).await;
    assert_eq!(r["error"]["code"], -32002);
    assert_eq!(r["error"]["data"][0]["reason"], "TASK_NOT_CANCELABLE");
}

#[tokio::test]
async fn a_failing_step_is_retried_and_then_succeeds() {
    let a = client(Uuid::new_v4(), None);
    let task = a.send_blocking(message_v03("flaky", json!({"skill": "probe", "fail_times": 2}))).await;
    assert_eq!(task["status"]["state"], "completed", "{task}");
    let artifacts = task["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3);
    for (i, artifact) in artifacts.iter().enumerate() {
        assert_eq!(text_of(&artifact["parts"]), format!("probe step {} done on attempt 3", i + 1));
    }
}

#[tokio::test]
async fn a_step_that_keeps_failing_fails_the_task_after_its_attempts() {
    let a = client(Uuid::new_v4(), None);
    let task = a.send_blocking(message_v03("broken", json!({"skill": "probe", "fail_times": 9}))).await;
    assert_eq!(task["status"]["state"], "failed", "{task}");
    let why = text_of(&task["status"]["message"]["parts"]);
    assert_eq!(why, "step probe-1 failed after 3 attempt(s): probe step 1 fails attempt 3");
    assert!(task.get("artifacts").is_none());
}

#[tokio::test]
async fn a_step_that_outlives_its_timeout_fails() {
    let a = client(Uuid::new_v4(), Some("1.0"));
    let started = std::time::Instant::now();
    let result = a
        .result(
            "SendMessage",
            json!({"message": message_v10("stuck", json!({"skill": "probe", "sleep_ms": 30000, "timeout_ms": 150}))}),
        )
        .await;
    let task = &result["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_FAILED", "{result}");
    assert_eq!(
        text_of(&task["status"]["message"]["parts"]),
        "step probe-1 failed after 3 attempt(s): timed out after 150 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "each attempt was cut off, not awaited");
}

fn seqs(frames: &[Frame]) -> Vec<i64> {
    frames.iter().map(|f| f.id).collect()
}

#[tokio::test]
async fn message_stream_sends_the_log_in_order_and_ends_at_the_final_state() {
    let a = client(Uuid::new_v4(), None);
    let frames =
        a.stream("message/stream", json!({"message": message_v03("stream me", json!({"skill": "probe"}))}), None).await;
    assert_eq!(seqs(&frames), [1, 2, 3, 4, 5, 6]);
    let kinds: Vec<&str> = frames.iter().map(|f| f.message["result"]["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["task", "status-update", "artifact-update", "artifact-update", "artifact-update", "status-update"]
    );
    assert_eq!(frames[0].message["result"]["status"]["state"], "submitted");
    assert_eq!(frames[1].message["result"]["status"]["state"], "working");
    assert_eq!(frames[1].message["result"]["final"], false);
    let last = &frames[5].message["result"];
    assert_eq!(last["status"]["state"], "completed");
    assert_eq!(last["final"], true);
    assert_eq!(text_of(&last["status"]["message"]["parts"]), "probe step 3 done on attempt 1");
    assert!(frames.iter().all(|f| f.message["id"] == 1 && f.message["jsonrpc"] == "2.0"));

    // 1.0: StreamResponse wrappers, no `final`.
    let v1 = client(Uuid::new_v4(), Some("1.0"));
    let frames = v1
        .stream("SendStreamingMessage", json!({"message": message_v10("stream me", json!({"skill": "probe"}))}), None)
        .await;
    assert_eq!(seqs(&frames), [1, 2, 3, 4, 5, 6]);
    assert_eq!(frames[0].message["result"]["task"]["status"]["state"], "TASK_STATE_SUBMITTED");
    assert_eq!(frames[2].message["result"]["artifactUpdate"]["artifact"]["artifactId"], "probe-1");
    let last = &frames[5].message["result"]["statusUpdate"];
    assert_eq!(last["status"]["state"], "TASK_STATE_COMPLETED");
    assert!(last.get("final").is_none());
}

#[tokio::test]
async fn a_dropped_stream_resumes_after_last_event_id_without_gaps_or_repeats() {
    let a = client(Uuid::new_v4(), None);
    let resp = a
        .request(
            "message/stream",
            json!({"message": message_v03("resume me", json!({"skill": "probe", "sleep_ms": 300}))}),
        )
        .send()
        .await
        .unwrap();
    // Read until three events have arrived, then drop the connection.
    let mut resp = resp;
    let mut text = String::new();
    // Only whole events (up to the last blank line) are parsed.
    let complete = |t: &str| t[..t.rfind("\n\n").map_or(0, |i| i + 2)].to_owned();
    while parse_frames(&complete(&text)).len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(20), resp.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let first: Vec<Frame> = parse_frames(&complete(&text)).into_iter().take(3).collect();
    drop(resp);
    let task_id = first[0].message["result"]["id"].as_str().unwrap().to_owned();
    let last_seen = first[2].id;

    let rest = a.stream("tasks/resubscribe", json!({"id": task_id}), Some(last_seen)).await;
    let mut all = seqs(&first);
    all.extend(seqs(&rest));
    assert_eq!(all, [1, 2, 3, 4, 5, 6], "every event exactly once");
    assert_eq!(rest.last().unwrap().message["result"]["status"]["state"], "completed");

    // After the end, a reconnect from any point replays the rest of the log; from the last
    // event, nothing.
    let replay = a.stream("tasks/resubscribe", json!({"id": task_id}), Some(1)).await;
    assert_eq!(seqs(&replay), [2, 3, 4, 5, 6]);
    assert!(a.stream("tasks/resubscribe", json!({"id": task_id}), Some(6)).await.is_empty());
    assert!(a.stream("tasks/resubscribe", json!({"id": task_id}), Some(999)).await.is_empty(), "ends, not hangs");
    // Without Last-Event-ID, subscribing to a finished task is unsupported.
    assert_eq!(a.error_code("tasks/resubscribe", json!({"id": task_id})).await, -32004);
}

#[tokio::test]
async fn subscribing_to_a_running_task_starts_with_the_task_as_it_is() {
    let a = client(Uuid::new_v4(), Some("1.0"));
    let r = a
        .result(
            "SendMessage",
            json!({"message": message_v10("watch me", json!({"skill": "probe", "sleep_ms": 300})), "configuration": {"returnImmediately": true}}),
        )
        .await;
    let id = r["task"]["id"].as_str().unwrap();
    a.wait_for(id, &["TASK_STATE_WORKING"]).await;
    let frames = a.stream("SubscribeToTask", json!({"id": id}), None).await;
    let snapshot = &frames[0];
    assert_eq!(snapshot.message["result"]["task"]["id"], id);
    // The snapshot carries the sequence number it reflects; events follow from the next one.
    let next: Vec<i64> = frames[1..].iter().map(|f| f.id).collect();
    assert_eq!(next, ((snapshot.id + 1)..=6).collect::<Vec<_>>());
    assert_eq!(frames.last().unwrap().message["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");
}

#[tokio::test]
async fn a_task_whose_executor_lost_its_lease_resumes_and_writes_nothing_twice() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, None);
    let task = a
        .result("message/send", json!({"message": message_v03("survive", json!({"skill": "probe", "sleep_ms": 400}))}))
        .await;
    let id: Uuid = task["id"].as_str().unwrap().parse().unwrap();
    a.wait_for(&id.to_string(), &["working"]).await;
    // Simulate the owner dying mid-step: its lease passes to an owner that no longer exists
    // and has run out, so the claim loop hands the task to an executor again.
    let mut tx = support::tenant_tx(origin(), tenant).await;
    let n = sqlx::query(
        "UPDATE a2a_tasks SET lease_owner = gen_random_uuid(), lease_expires_at = now() - interval '1 second' WHERE id = $1 AND state = 'working'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap()
    .rows_affected();
    tx.commit().await.unwrap();
    assert_eq!(n, 1);

    let done = a.wait_for(&id.to_string(), &["completed", "failed"]).await;
    assert_eq!(done["status"]["state"], "completed", "{done}");
    let names: Vec<&str> =
        done["artifacts"].as_array().unwrap().iter().map(|a| a["artifactId"].as_str().unwrap()).collect();
    assert_eq!(names, ["probe-1", "probe-2", "probe-3"]);

    let mut tx = support::tenant_tx(origin(), tenant).await;
    let (claims, last_seq): (i32, i64) = sqlx::query_as("SELECT claims, last_seq FROM a2a_tasks WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(claims >= 2, "claimed again after the lease ran out");
    let events: Vec<(i64, String)> =
        sqlx::query_as("SELECT seq, kind FROM a2a_task_events WHERE task_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=last_seq).collect::<Vec<_>>(), "contiguous");
    let artifact_events = events.iter().filter(|e| e.1 == "artifact").count();
    assert_eq!(artifact_events, 3, "no artifact logged twice: {events:?}");
}

#[tokio::test]
async fn task_tables_are_invisible_without_a_tenant() {
    let o = origin();
    let victim = Uuid::new_v4();
    let a = client(victim, None);
    a.send_blocking(message_v03("rls", json!({"skill": "probe"}))).await;
    let pool = sqlx::PgPool::connect(&o.app_url).await.unwrap();
    for table in ["a2a_tasks", "a2a_task_events", "a2a_artifacts", "a2a_push_configs"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&pool).await.unwrap();
        assert_eq!(n, 0, "{table}");
        let err =
            sqlx::query(&format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("must be owner"), "{err}");
    }
    // Another tenant's transaction cannot write a row for this one (which exists).
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(Uuid::new_v4().to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO a2a_tasks (tenant_id, context_id, subject, workflow, input) VALUES ($1, 'c', 's', 'w', '{}')",
    )
    .bind(victim)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// What a webhook receiver recorded: headers and raw body of each accepted POST.
type Received = Arc<Mutex<Vec<(http::HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on loopback that answers 503 to its first `fail_first` requests and
/// records the rest.
struct Hook {
    url: String,
    got: Received,
    refused: Arc<AtomicUsize>,
}

async fn hook(fail_first: usize) -> Hook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Received = Arc::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let (g, r) = (got.clone(), refused.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let (g, r) = (g.clone(), r.clone());
            async move {
                if r.fetch_add(1, Ordering::SeqCst) < fail_first {
                    return http::StatusCode::SERVICE_UNAVAILABLE;
                }
                g.lock().unwrap().push((headers, body.to_vec()));
                http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hook { url, got, refused }
}

impl Hook {
    /// Waits until the receiver holds a notification for which `done` holds; returns them all.
    async fn wait(&self, done: impl Fn(&[(http::HeaderMap, Vec<u8>)]) -> bool) -> Vec<(http::HeaderMap, Value)> {
        for _ in 0..200 {
            let got = self.got.lock().unwrap().clone();
            if done(&got) {
                return got.into_iter().map(|(h, b)| (h, serde_json::from_slice(&b).unwrap())).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("webhook never got what it waited for: {:?}", self.got.lock().unwrap().len());
    }
}

fn event_seq(h: &http::HeaderMap) -> i64 {
    h["x-a2a-event-id"].to_str().unwrap().rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn push_configs_are_kept_per_task_in_both_versions() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, None);
    let task = a.result("message/send", json!({"message": message_v03("hooks", json!({"skill": "probe"}))})).await;
    let id = task["id"].as_str().unwrap();
    let cfg = json!({"id": "c1", "url": "http://127.0.0.1:9/hook", "token": "tok",
                     "authentication": {"schemes": ["Bearer"], "credentials": "s3cret"}});
    let set = a.result("tasks/pushNotificationConfig/set", json!({"taskId": id, "pushNotificationConfig": cfg})).await;
    assert_eq!(set, json!({"taskId": id, "pushNotificationConfig": cfg}));
    // The token and credentials are shown to the call that set them, and never again.
    let got = a.result("tasks/pushNotificationConfig/get", json!({"id": id, "pushNotificationConfigId": "c1"})).await;
    let withheld = json!({"id": "c1", "url": "http://127.0.0.1:9/hook", "authentication": {"schemes": ["Bearer"]}});
    assert_eq!(got, json!({"taskId": id, "pushNotificationConfig": withheld}));

    // The same config through 1.0's flat shape, and a second one.
    let v1 = client(tenant, Some("1.0"));
    let flat = v1.result("GetTaskPushNotificationConfig", json!({"taskId": id, "id": "c1"})).await;
    assert_eq!(
        flat,
        json!({"id": "c1", "taskId": id, "url": "http://127.0.0.1:9/hook", "authentication": {"scheme": "Bearer"}})
    );
    let created =
        v1.result("CreateTaskPushNotificationConfig", json!({"taskId": id, "url": "http://localhost:9/other"})).await;
    let second = created["id"].as_str().unwrap().to_owned();
    // ProtoJSON readers take a field's proto name too; the compatibility kit sends `task_id`.
    let snake = v1.result("GetTaskPushNotificationConfig", json!({"task_id": id, "id": second})).await;
    assert_eq!(snake["url"], "http://localhost:9/other");
    let listed = v1.result("ListTaskPushNotificationConfigs", json!({"taskId": id})).await;
    assert_eq!(listed["configs"].as_array().unwrap().len(), 2);
    assert_eq!(listed["nextPageToken"], "");
    assert_eq!(a.result("tasks/pushNotificationConfig/list", json!({"id": id})).await.as_array().unwrap().len(), 2);

    assert_eq!(v1.result("DeleteTaskPushNotificationConfig", json!({"taskId": id, "id": second})).await, json!({}));
    assert_eq!(
        a.result("tasks/pushNotificationConfig/delete", json!({"id": id, "pushNotificationConfigId": "c1"})).await,
        Value::Null
    );
    assert_eq!(a.result("tasks/pushNotificationConfig/list", json!({"id": id})).await, json!([]));
    // Deleting is idempotent in both versions.
    assert_eq!(
        a.result("tasks/pushNotificationConfig/delete", json!({"id": id, "pushNotificationConfigId": "c1"})).await,
        Value::Null
    );
    assert_eq!(v1.result("DeleteTaskPushNotificationConfig", json!({"taskId": id, "id": second})).await, json!({}));

    // Destinations inside the network are refused, also after DNS; another tenant sees no task.
    for url in [
        "http://10.0.0.7/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "ftp://example.com/",
    ] {
        let r = v1.rpc("CreateTaskPushNotificationConfig", json!({"taskId": id, "url": url})).await;
        assert_eq!(r["error"]["code"], -32602, "{url}: {r}");
    }
    let other = client(Uuid::new_v4(), None);
    let r = other
        .rpc(
            "tasks/pushNotificationConfig/set",
            json!({"taskId": id, "pushNotificationConfig": {"url": "http://127.0.0.1:9/"}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32001);
    assert_eq!(other.error_code("tasks/pushNotificationConfig/list", json!({"id": id})).await, -32001);
}

/// A webhook's signing secret (the `HMAC-SHA256` scheme's credentials): at least 32 bytes.
const SIGNING_SECRET: &str = "whsec-0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn webhooks_get_every_event_in_order_signed_and_retried() {
    let receiver = hook(2).await;
    let a = client(Uuid::new_v4(), None);
    let send = json!({
        "message": message_v03("notify me", json!({"skill": "probe"})),
        "configuration": {"blocking": true, "pushNotificationConfig": {"url": receiver.url, "token": "tok-123",
            "authentication": {"schemes": ["HMAC-SHA256"], "credentials": SIGNING_SECRET}}}
    });
    let task = a.result("message/send", send).await;
    assert_eq!(task["status"]["state"], "completed");
    let got = receiver.wait(|g| g.len() >= 6).await;
    // The first two POSTs were answered 503 and sent again: each event arrived exactly once.
    assert!(receiver.refused.load(Ordering::SeqCst) >= 8);
    assert_eq!(got.iter().map(|(h, _)| event_seq(h)).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let states: Vec<&str> = got.iter().map(|(_, b)| b["status"]["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["submitted", "working", "working", "working", "working", "completed"]);
    assert!(got.iter().all(|(_, b)| b["kind"] == "task" && b["id"] == task["id"]));
    let raw = receiver.got.lock().unwrap().clone();
    for (h, body) in &raw {
        assert_eq!(h["x-a2a-notification-token"], "tok-123");
        // The signing secret is never sent, and the token sent beside it is not the key.
        assert!(h.get("authorization").is_none(), "{h:?}");
        assert!(!h.values().any(|v| v.to_str().is_ok_and(|v| v.contains(SIGNING_SECRET))), "{h:?}");
        let sig = h["x-a2a-signature"].to_str().unwrap();
        let t: u64 = sig.split(',').next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
        assert_eq!(
            sig,
            agentplane_origin::protocol::a2a::push::signature(SIGNING_SECRET, t, body),
            "the signature covers the body"
        );
        assert_ne!(sig, agentplane_origin::protocol::a2a::push::signature("tok-123", t, body));
    }

    // 1.0: a config set on a running task hears what happens from then on, as StreamResponses.
    let receiver = hook(0).await;
    let v1 = client(Uuid::new_v4(), Some("1.0"));
    let r = v1
        .result(
            "SendMessage",
            json!({"message": message_v10("later", json!({"skill": "probe", "sleep_ms": 300})), "configuration": {"returnImmediately": true}}),
        )
        .await;
    let id = r["task"]["id"].as_str().unwrap();
    v1.result(
        "CreateTaskPushNotificationConfig",
        json!({"taskId": id, "url": receiver.url, "authentication": {"scheme": "Bearer", "credentials": "hook-secret"}}),
    )
    .await;
    let got =
        receiver.wait(|g| g.iter().any(|(_, b)| String::from_utf8_lossy(b).contains("TASK_STATE_COMPLETED"))).await;
    let seqs: Vec<i64> = got.iter().map(|(h, _)| event_seq(h)).collect();
    assert_eq!(*seqs.last().unwrap(), 6);
    assert_eq!(seqs, (seqs[0]..=6).collect::<Vec<_>>(), "in order, without gaps or repeats");
    assert!(got.iter().all(|(h, _)| h.get("x-a2a-signature").is_none()), "not the signing scheme: nothing signed");
    assert!(got.iter().all(|(h, _)| h["authorization"] == "Bearer hook-secret"));
    let last = &got.last().unwrap().1;
    assert_eq!(last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED");
}

/// A second origin on the same database, as another replica would be: it runs no executor,
/// reads event logs only when NOTIFY says so (its fallback poll is longer than any test waits),
/// and sends heartbeats every 200 ms.
fn replica() -> &'static support::Origin {
    static REPLICA: OnceLock<support::Origin> = OnceLock::new();
    REPLICA.get_or_init(|| {
        let mut config = support::test_config();
        config.a2a.workers = 0;
        config.a2a.stream_poll_ms = 120_000;
        config.a2a.heartbeat_ms = 200;
        support::start(config)
    })
}

#[tokio::test]
async fn a_stream_on_another_replica_follows_live_through_notify_with_heartbeats() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, Some("1.0"));
    let r = a
        .result(
            "SendMessage",
            json!({"message": message_v10("fan out", json!({"skill": "probe", "sleep_ms": 600})), "configuration": {"returnImmediately": true}}),
        )
        .await;
    let id = r["task"]["id"].as_str().unwrap().to_owned();
    let b = replica();
    let started = std::time::Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("http://{}/a2a", b.addr))
        .bearer_auth(b.token(tenant, ALL_SCOPES))
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "SubscribeToTask", "params": {"id": id}}))
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(20), resp.text()).await.expect("stream ended").unwrap();
    // The executor is on the first origin; only its NOTIFYs can have woken this one in time.
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let frames = parse_frames(&text);
    let last = frames.last().unwrap();
    assert_eq!(last.message["result"]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", "{text}");
    assert_eq!(last.id, 6);
    let after_snapshot: Vec<i64> = frames[1..].iter().map(|f| f.id).collect();
    assert_eq!(after_snapshot, ((frames[0].id + 1)..=6).collect::<Vec<_>>());
    // Steps take 600 ms; heartbeats (SSE comments) filled the quiet stretches.
    assert!(text.lines().any(|l| l.starts_with(':')), "{text}");
}

/// Managed PostgreSQL gives migrations an owner role that is not a superuser, so FORCE'd row
/// security binds it too: the claim function must still see every tenant's runnable tasks, and
/// the service role still none.
#[tokio::test]
async fn claims_work_when_the_migrating_role_is_no_superuser() {
    use sqlx::Connection as _;
    let o = origin();
    let superuser = support::pg_url(&o.config, "agentplane_admin", "admin_password", "postgres");
    let mut conn = sqlx::PgConnection::connect(&superuser).await.unwrap();
    let owner_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentplane_owner_test')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if !owner_exists {
        sqlx::query("CREATE ROLE agentplane_owner_test LOGIN PASSWORD 'owner-test' NOSUPERUSER NOBYPASSRLS")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'agentplane_nosuper')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if !db_exists {
        sqlx::query("CREATE DATABASE agentplane_nosuper OWNER agentplane_owner_test").execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    // As a provider does: extensions come preinstalled; the owner cannot create them.
    let mut conn = sqlx::PgConnection::connect(&support::pg_url(
        &o.config,
        "agentplane_admin",
        "admin_password",
        "agentplane_nosuper",
    ))
    .await
    .unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS vector").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let mut owner_url =
        reqwest::Url::parse(&support::pg_url(&o.config, "agentplane_admin", "admin_password", "agentplane_nosuper"))
            .unwrap();
    owner_url.set_username("agentplane_owner_test").unwrap();
    owner_url.set_password(Some("owner-test")).unwrap();
    let db = agentplane_origin::data::db::Database::open(
        &support::pg_url(&o.config, "agentplane", "app_password", "agentplane_nosuper"),
        owner_url.as_str(),
        4,
        agentplane_origin::data::db::LexicalChoice::TsRankCd,
    )
    .await
    .expect("migrations run as a role that is no superuser");

    let tenant = agentplane_origin::data::db::TenantId::for_tests(Uuid::new_v4());
    let input = agentplane_origin::protocol::a2a::wire::Message::agent("m".into(), "hello");
    let mut tx = db.tenant_tx(tenant).await.unwrap();
    let task = agentplane_origin::protocol::a2a::store::create_task(
        &mut tx,
        agentplane_origin::protocol::a2a::store::NewTask {
            context_id: "c",
            subject: "s",
            tier: "free",
            workflow: "rag_answer",
            input: &input,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // No executor runs on this database, so the task is there to be claimed, by this call only.
    let owner = Uuid::new_v4();
    let claimed =
        agentplane_origin::protocol::a2a::store::claim(db.pool(), owner, Duration::from_secs(30), 100).await.unwrap();
    assert!(claimed.contains(&(task.id, tenant.as_uuid())), "{claimed:?}");
    let again = agentplane_origin::protocol::a2a::store::claim(db.pool(), Uuid::new_v4(), Duration::from_secs(30), 100)
        .await
        .unwrap();
    assert!(!again.iter().any(|(id, _)| *id == task.id), "a leased task is not claimed twice");
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM a2a_tasks").fetch_one(db.pool()).await.unwrap();
    assert_eq!(visible, 0, "the service role still sees nothing without a tenant");
}

#[tokio::test]
async fn without_the_test_switch_a_loopback_webhook_is_refused() {
    // A second origin on the same database, configured as in production: loopback not allowed.
    let mut config = support::test_config();
    config.a2a.push_allow_loopback = false;
    // No executors: on the shared database they would claim other tests' tasks and deliver
    // their webhooks under this origin's stricter rule.
    config.a2a.workers = 0;
    let strict = support::start(config);
    let c = A2a {
        url: format!("http://{}/a2a", strict.addr),
        token: strict.token(Uuid::new_v4(), ALL_SCOPES),
        version: None,
        http: reqwest::Client::new(),
    };
    let task = c.result("message/send", json!({"message": message_v03("hooks", json!({"skill": "probe"}))})).await;
    let id = task["id"].as_str().unwrap();
    for url in ["https://127.0.0.1:9/hook", "https://localhost:9/hook", "https://[::1]:9/hook"] {
        let r = c
            .rpc("tasks/pushNotificationConfig/set", json!({"taskId": id, "pushNotificationConfig": {"url": url}}))
            .await;
        assert_eq!(r["error"]["code"], -32602, "{url}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("loopback"), "{url}: {r}");
    }
    // Plain http is refused wherever it points (issue 12, point 10).
    let r = c
        .rpc(
            "tasks/pushNotificationConfig/set",
            json!({"taskId": id, "pushNotificationConfig": {"url": "http://93.184.215.14/hook"}}),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("must be https"), "{r}");
    // The shared test origin has the switch on: the same URL is accepted there.
    let relaxed = client(Uuid::new_v4(), None);
    let task =
        relaxed.result("message/send", json!({"message": message_v03("hooks", json!({"skill": "probe"}))})).await;
    let id = task["id"].as_str().unwrap();
    let ok = relaxed
        .result(
            "tasks/pushNotificationConfig/set",
            json!({"taskId": id, "pushNotificationConfig": {"url": "http://127.0.0.1:9/hook"}}),
        )
        .await;
    assert_eq!(ok["pushNotificationConfig"]["url"], "http://127.0.0.1:9/hook");
}

#[tokio::test]
async fn the_jsonrpc_binding_refuses_in_jsonrpc_and_serves_the_trailing_slash() {
    let a = client(Uuid::new_v4(), Some("1.0"));
    // Clients join the card's interface URL and `/`.
    let slash = a
        .http
        .post(format!("{}/", a.url))
        .bearer_auth(&a.token)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 5, "method": "GetTask", "params": {"id": Uuid::new_v4().to_string()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(slash.status(), 200);
    let body: Value = slash.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(body["error"]["data"][0]["reason"], "TASK_NOT_FOUND", "{body}");

    // Malformed JSON is a JSON-RPC error under 200; a body that is not JSON, A2A's own -32005.
    let send = |content_type: &'static str, body: &'static str| {
        a.http.post(&a.url).bearer_auth(&a.token).header("Content-Type", content_type).body(body).send()
    };
    let parse = send("application/json", "{not json").await.unwrap();
    assert_eq!(parse.status(), 200);
    assert_eq!(parse.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let text = send("text/plain", "hello").await.unwrap();
    assert_eq!(text.status(), 415);
    assert_eq!(text.json::<Value>().await.unwrap()["error"]["code"], -32005);

    // Refusals rmcp writes in plain text reach the client as JSON-RPC errors too.
    let o = origin();
    let mcp = a
        .http
        .post(format!("http://{}/mcp", o.addr))
        .bearer_auth(&a.token)
        .header("Accept", "text/html")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 406);
    assert_eq!(mcp.headers()["content-type"], "application/json");
    let body: Value = mcp.json().await.unwrap();
    assert_eq!((body["id"].clone(), body["error"]["code"].clone()), (json!(9), json!(-32600)), "{body}");
}

#[tokio::test]
async fn a_vague_question_asks_for_input_and_the_reply_continues_the_task() {
    let tenant = Uuid::new_v4();
    let topic = word("lease");
    upsert(tenant, &[("Leases", &format!("A {topic} lapses when its holder dies; another replica claims the task."))])
        .await;
    let v1 = client(tenant, Some("1.0"));

    // Too vague to search for: the task waits for the user, with the agent's question.
    let sent = v1.result("SendMessage", json!({"message": message_v10("help", json!({}))})).await;
    let task = &sent["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{task}");
    assert!(text_of(&task["status"]["message"]["parts"]).contains("What would you like to know?"), "{task}");
    let (id, context) = (task["id"].as_str().unwrap().to_owned(), task["contextId"].as_str().unwrap().to_owned());

    // Another context is refused; the reply in the task's own context continues it to an answer.
    let mut wrong = message_v10(&topic, json!({}));
    wrong["taskId"] = json!(id);
    wrong["contextId"] = json!("someone-else");
    assert_eq!(v1.error_code("SendMessage", json!({"message": wrong})).await, -32602);
    let mut reply = message_v10(&format!("what happens when a {topic} lapses?"), json!({}));
    reply["taskId"] = json!(id);
    let done = v1.result("SendMessage", json!({"message": reply})).await;
    let done = &done["task"];
    assert_eq!(done["id"], json!(id));
    assert_eq!(done["contextId"], json!(context));
    assert_eq!(done["status"]["state"], "TASK_STATE_COMPLETED", "{done}");
    assert!(text_of(&done["status"]["message"]["parts"]).contains(&topic), "{done}");

    // The history is the conversation: question, its clarification request, the reply, the answer.
    let full = v1.result("GetTask", json!({"id": id})).await;
    let roles: Vec<&str> = full["history"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["ROLE_USER", "ROLE_AGENT", "ROLE_USER", "ROLE_AGENT"], "{full}");
    let last_two = v1.result("GetTask", json!({"id": id, "historyLength": 2})).await;
    assert_eq!(last_two["history"].as_array().unwrap().len(), 2);

    // An ended task takes no more messages.
    let mut late = message_v10("and then?", json!({}));
    late["taskId"] = json!(id);
    assert_eq!(v1.error_code("SendMessage", json!({"message": late})).await, -32004);
}

#[tokio::test]
async fn a_continued_task_streams_from_its_snapshot_to_the_end() {
    let tenant = Uuid::new_v4();
    let a = client(tenant, None);
    let waiting = a.send_blocking(message_v03("tell me more", json!({}))).await;
    assert_eq!(waiting["status"]["state"], "input-required", "{waiting}");
    let mut reply = message_v03("row-level security", json!({}));
    reply["taskId"] = waiting["id"].clone();
    let frames = a.stream("message/stream", json!({"message": reply}), None).await;
    let results: Vec<&Value> = frames.iter().map(|f| &f.message["result"]).collect();
    assert_eq!(results[0]["kind"], "task", "{results:?}");
    assert_eq!(results[0]["id"], waiting["id"]);
    let last = results.last().unwrap();
    assert_eq!((last["kind"].as_str(), last["final"].as_bool()), (Some("status-update"), Some(true)), "{last}");
    assert_eq!(last["status"]["state"], "completed", "{last}");
}

#[tokio::test]
async fn the_compatibility_kit_s_messages_play_its_scenarios_and_nobody_else_s_do() {
    let v1 = client(Uuid::new_v4(), Some("1.0"));
    let kit = |id: &str| json!({"messageId": format!("{id}-{}", Uuid::new_v4()), "role": "ROLE_USER", "parts": [{"text": "TCK"}]});
    let data = v1.result("SendMessage", json!({"message": kit("tck-artifact-data")})).await;
    assert_eq!(data["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{data}");
    assert_eq!(data["task"]["artifacts"][0]["parts"][0]["data"], json!({"key": "value", "count": 42}), "{data}");
    let file = v1.result("SendMessage", json!({"message": kit("tck-artifact-file-url")})).await;
    let part = &file["task"]["artifacts"][0]["parts"][0];
    assert_eq!(
        (part["url"].as_str(), part["filename"].as_str()),
        (Some("https://example.com/output.txt"), Some("output.txt"))
    );
    let reply = v1.result("SendMessage", json!({"message": kit("tck-message-response")})).await;
    assert_eq!(text_of(&reply["message"]["parts"]), "Direct message response", "{reply}");
    assert!(reply.get("task").is_none());
    let waiting = v1.result("SendMessage", json!({"message": kit("tck-input-required")})).await;
    assert_eq!(waiting["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{waiting}");
    let rejected = v1.result("SendMessage", json!({"message": kit("tck-reject-task")})).await;
    assert_eq!(rejected["task"]["status"]["state"], "TASK_STATE_REJECTED", "{rejected}");

    // The same words from anyone else meet the real skills, and nobody picks the kit's workflow.
    let plain = v1.result("SendMessage", json!({"message": message_v10("tck-artifact-data", json!({}))})).await;
    assert_eq!(plain["task"]["metadata"]["workflow"], "rag_answer", "{plain}");
    let named = v1.rpc("SendMessage", json!({"message": message_v10("leases", json!({"skill": "tck"}))})).await;
    assert_eq!(named["error"]["code"], -32602, "{named}");
}

#[tokio::test]
async fn a_subscriber_to_a_task_waiting_for_input_sees_it_through_to_the_end() {
    let a = client(Uuid::new_v4(), None);
    let waiting = a.send_blocking(message_v03("help", json!({}))).await;
    assert_eq!(waiting["status"]["state"], "input-required", "{waiting}");
    let id = waiting["id"].clone();
    let subscribed = a.stream("tasks/resubscribe", json!({"id": id}), None);
    let reply = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut reply = message_v03("row-level security", json!({}));
        reply["taskId"] = id.clone();
        a.result("message/send", json!({"message": reply})).await
    };
    let (frames, _) = tokio::join!(subscribed, reply);
    let results: Vec<&Value> = frames.iter().map(|f| &f.message["result"]).collect();
    assert_eq!(results[0]["status"]["state"], "input-required", "{results:?}");
    assert_eq!(results.last().unwrap()["status"]["state"], "completed", "{results:?}");
}

#[tokio::test]
async fn the_extended_card_shows_the_caller_s_limits_in_each_version() {
    let tenant = Uuid::new_v4();
    let v1 = client(tenant, Some("1.0"));
    let public: Value =
        v1.http.get(v1.url.replace("/a2a", "/.well-known/agent-card.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(public["capabilities"]["extendedAgentCard"], true);
    assert!(public["capabilities"].get("extensions").is_none(), "the public card shows no limits");
    let card = v1.result("GetExtendedAgentCard", json!({})).await;
    assert!(card.get("url").is_none() && card["supportedInterfaces"].is_array(), "{card}");
    let ext = &card["capabilities"]["extensions"][0];
    assert_eq!(ext["uri"], "urn:agentplane:extensions:limits:v1");
    assert_eq!(ext["params"]["tier"], "free", "{ext}");
    assert_eq!(ext["params"]["requests"]["count"], 100000, "{ext}");
    assert!(ext["params"]["maxActiveTasks"].as_u64().unwrap() > 0);
    let old = client(tenant, None).result("agent/getAuthenticatedExtendedCard", json!({})).await;
    assert_eq!(old["supportsAuthenticatedExtendedCard"], true);
    assert_eq!(old["capabilities"]["extensions"][0]["params"], ext["params"]);
    // Without a token there is no extended card.
    let anonymous = v1
        .http
        .post(&v1.url)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "GetExtendedAgentCard", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn the_http_json_binding_runs_the_same_engine_in_both_versions() {
    let tenant = Uuid::new_v4();
    let w = word("basalt");
    let ids = upsert(tenant, &[("Rocks", &format!("{w} cools quickly from lava into fine grains."))]).await;
    let a = client(tenant, Some("1.0"));
    let rest = format!("{}/v1", a.url);
    let call = |method: http::Method, path: &str, version: &'static str| {
        a.http.request(method, format!("{rest}{path}")).bearer_auth(&a.token).header("A2A-Version", version)
    };

    // 1.0: the bare SendMessageResponse, then the task by its resource path.
    let sent = call(http::Method::POST, "/message:send", "1.0")
        .json(&json!({"message": message_v10(&format!("How does {w} form?"), json!({}))}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let sent: Value = sent.json().await.unwrap();
    assert!(sent.get("jsonrpc").is_none(), "{sent}");
    assert_eq!(sent["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{sent}");
    let id = sent["task"]["id"].as_str().unwrap().to_owned();
    let got: Value = call(http::Method::GET, &format!("/tasks/{id}?historyLength=1"), "1.0")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["history"].as_array().unwrap().len(), 1, "{got}");
    assert!(text_of(&got["artifacts"][0]["parts"]).contains(&format!("[doc:{}]", ids[0])));

    // Errors are AIP-193 under the status their code maps to.
    let missing = call(http::Method::GET, &format!("/tasks/{}", Uuid::new_v4()), "1.0").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!((body["error"]["code"].clone(), body["error"]["status"].clone()), (json!(404), json!("NOT_FOUND")));
    assert_eq!(body["error"]["details"][0]["reason"], "TASK_NOT_FOUND", "{body}");
    let done = call(http::Method::POST, &format!("/tasks/{id}:cancel"), "1.0").send().await.unwrap();
    assert_eq!(done.status(), 409);
    let nowhere = call(http::Method::GET, "/nowhere", "1.0").send().await.unwrap();
    assert_eq!(nowhere.status(), 404);
    assert_eq!(nowhere.json::<Value>().await.unwrap()["error"]["status"], "NOT_FOUND");
    let wrong = call(http::Method::DELETE, "/message:send", "1.0").send().await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(wrong.headers()["allow"], "POST", "the methods of that route");
    let anonymous = a.http.get(format!("{rest}/tasks/{id}")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"]["status"], "UNAUTHENTICATED");
    let not_json = call(http::Method::POST, "/message:send", "1.0")
        .header("Content-Type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);

    // A stream's events are bare StreamResponses.
    let streamed = call(http::Method::POST, "/message:stream", "1.0")
        .json(&json!({"message": message_v10(&format!("{w} lava"), json!({}))}))
        .send()
        .await
        .unwrap();
    assert!(streamed.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let frames = parse_frames(&tokio::time::timeout(Duration::from_secs(60), streamed.text()).await.unwrap().unwrap());
    assert!(frames[0].message["task"]["id"].is_string(), "{:?}", frames[0]);
    let last = &frames.last().unwrap().message;
    assert_eq!(last["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", "{last}");

    // 0.3 clients speak 0.3's protobuf JSON on the same routes.
    let old = call(http::Method::POST, "/message:send", "0.3")
        .json(&json!({"message": {"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER",
            "content": [{"text": format!("How does {w} form?")}]}, "configuration": {"blocking": true}}))
        .send()
        .await
        .unwrap();
    let old: Value = old.json().await.unwrap();
    assert_eq!(old["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{old}");
    assert!(old["task"]["history"][0]["content"].is_array(), "{old}");
    let card: Value = call(http::Method::GET, "/card", "0.3").send().await.unwrap().json().await.unwrap();
    assert_eq!(card["protocolVersion"], "0.3.0", "{card}");
}

/// A reply makes a waiting task runnable, and the executors hear of it at once: they do not wait
/// for their next poll (here a minute, longer than the blocking send waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reply_to_a_waiting_task_wakes_the_executors() {
    let mut config = support::test_config();
    config.a2a.poll_ms = 60_000;
    config.a2a.blocking_wait_secs = 20;
    let o = support::start(config);
    let token = o.token(Uuid::new_v4(), ALL_SCOPES);
    let vague = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER", "parts": [{"text": "help"}]});
    let asked: Value = o.a2a(&token, "SendMessage", json!({"message": vague})).await.json().await.unwrap();
    assert_eq!(asked["result"]["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", "{asked}");
    let reply = json!({"messageId": Uuid::new_v4().to_string(), "role": "ROLE_USER",
                       "taskId": asked["result"]["task"]["id"], "parts": [{"text": "what is a lease?"}]});
    let done: Value = o.a2a(&token, "SendMessage", json!({"message": reply})).await.json().await.unwrap();
    assert_eq!(done["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED", "{done}");
}
