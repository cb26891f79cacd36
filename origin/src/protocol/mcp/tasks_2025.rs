//! Tasks as the 2025-11-25 revision defines them, for session clients: the server's `tasks`
//! capability, `execution.taskSupport` on the task tools, `tools/call` with `params.task`
//! answered by a `CreateTaskResult`, and `tasks/get`, `tasks/result`, `tasks/list`,
//! `tasks/cancel` in that revision's shapes. The tasks are the same A2A engine tasks as the
//! extension's (`tasks.rs`), so any replica answers and a task outlives the replica that started it.
//!
//! Why a layer in front of rmcp: rmcp 3.9 follows the Tasks extension (SEP-2663) only, and its
//! types cannot carry the 2025-11-25 shapes (no `params.task`, no `tasks/result` or `tasks/list`,
//! no `capabilities.tasks`, no `Tool.execution`). So this layer answers those requests itself and
//! adds the two fields to rmcp's `initialize` and `tools/list` answers. A 2025-11-25 client that
//! declared the extension keeps the extension's `tasks/get` and `tasks/cancel`.

use std::sync::Arc;

use agentplane_core::auth::Principal;
use agentplane_core::gateway::Admitted;
use agentplane_core::jsonrpc::{self, ErrorObject, Id, Message};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http::header;
use rmcp::ErrorData as McpError;
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use super::McpState;
use super::sessions::Sessions;
use super::tasks;
use crate::protocol::a2a::store::TaskRow;
use crate::protocol::a2a::wire::{Artifact, TaskState};

/// The revision whose tasks this module serves.
pub const REVISION: &str = "2025-11-25";

/// `_meta` key tying a message to its task.
const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// Tasks per `tasks/list` page.
const PAGE_SIZE: usize = 50;

/// How often a waiting `tasks/result` stream sends a comment, so that idle-timeouts between
/// client and origin do not cut it.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// What the layer needs: the MCP state (engine, tool policies) and the session rows.
#[derive(Debug, Clone)]
pub struct Tasks2025 {
    pub state: Arc<McpState>,
    pub sessions: Arc<Sessions>,
}

/// What a request is, as far as this layer is concerned.
enum Handling {
    /// rmcp answers it unchanged.
    Pass,
    /// rmcp answers it; the result gets `patch`.
    Patch(Id, fn(&mut Value)),
    /// This layer answers it.
    Answer(Id, String, Value),
}

/// The middleware around rmcp's service (behind the gate, which put the principal and the parsed
/// message into the request's extensions and checked the session).
pub async fn layer(State(this): State<Arc<Tasks2025>>, request: Request, next: Next) -> Response {
    let call = match request.extensions().get::<Admitted>().and_then(|a| a.message.as_ref()) {
        Some(Message::Request(call)) if request.method() == http::Method::POST && concerns_tasks(call) => call.clone(),
        _ => return next.run(request).await,
    };
    let session = request.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let principal = request.extensions().get::<Principal>().cloned();
    let handling = match this.classify(call, session.as_deref(), principal.as_ref()).await {
        Ok(h) => h,
        Err(response) => return response,
    };
    match (handling, principal) {
        (Handling::Pass, _) => next.run(request).await,
        (Handling::Patch(id, patch), _) => patched(next.run(request).await, id, patch).await,
        (Handling::Answer(id, method, params), Some(principal)) => this.answer(&principal, &id, &method, &params).await,
        (Handling::Answer(id, ..), None) => {
            reply(&id, Err(McpError::internal_error("request carries no verified principal", None)))
        }
    }
}

/// Whether a request may be one this layer answers or patches; every other one passes at once,
/// its params (a document being written, say) not even copied.
fn concerns_tasks(call: &jsonrpc::Request) -> bool {
    match call.method.as_str() {
        "initialize" | "tools/list" | "tasks/get" | "tasks/result" | "tasks/list" | "tasks/cancel" => true,
        "tools/call" => call.params.as_ref().is_some_and(|p| p.get("task").is_some()),
        _ => false,
    }
}

impl Tasks2025 {
    async fn classify(
        &self,
        call: jsonrpc::Request,
        session: Option<&str>,
        principal: Option<&Principal>,
    ) -> Result<Handling, Response> {
        let params = call.params.unwrap_or(Value::Null);
        if call.method == "initialize" {
            let asks = params.get("protocolVersion").and_then(Value::as_str) == Some(REVISION);
            return Ok(if asks { Handling::Patch(call.id, declare_capability) } else { Handling::Pass });
        }
        let (Some(session), Some(principal)) = (session, principal) else { return Ok(Handling::Pass) };
        let initialize = match self.sessions.initialize_of(session, principal).await {
            Ok(Some(i)) => i,
            Ok(None) => return Ok(Handling::Pass),
            Err(e) => return Err(reply(&call.id, Err(super::db_error(&e)))),
        };
        if initialize.protocol_version.as_str() != REVISION {
            return Ok(Handling::Pass);
        }
        // A client of the extension polls with the extension's shapes.
        let extension = initialize.capabilities.supports_tasks();
        let ours = match call.method.as_str() {
            "tools/list" => return Ok(Handling::Patch(call.id, declare_task_support)),
            // `concerns_tasks` let through only calls with `params.task`.
            "tools/call" | "tasks/result" | "tasks/list" => true,
            "tasks/get" | "tasks/cancel" => !extension,
            _ => false,
        };
        Ok(if ours { Handling::Answer(call.id, call.method, params) } else { Handling::Pass })
    }

    async fn answer(&self, principal: &Principal, id: &Id, method: &str, params: &Value) -> Response {
        let result = match method {
            "tools/call" => self.create(principal, params).await,
            "tasks/get" => self.get(principal, params).await,
            "tasks/result" => return self.result(principal, id, params).await,
            "tasks/list" => self.list(principal, params).await,
            "tasks/cancel" => self.cancel(principal, params).await,
            other => Err(McpError::new(ErrorCode::METHOD_NOT_FOUND, format!("method not found: {other}"), None)),
        };
        reply(id, result)
    }

    /// `tools/call` with `params.task`: the task, started.
    async fn create(&self, principal: &Principal, params: &Value) -> Result<Value, McpError> {
        if !params["task"].is_object() {
            return Err(McpError::invalid_params("task must be an object", Some(json!({ "field": "task" }))));
        }
        let name = params["name"]
            .as_str()
            .ok_or_else(|| McpError::invalid_params("name must be a string", Some(json!({ "field": "name" }))))?;
        let args = match &params["arguments"] {
            Value::Null => serde_json::Map::new(),
            Value::Object(m) => m.clone(),
            _ => {
                return Err(McpError::invalid_params(
                    "arguments must be an object",
                    Some(json!({ "field": "arguments" })),
                ));
            }
        };
        let offered = self.state.definitions.iter().any(|t| t.name == name);
        if !offered {
            return Err(super::unknown_tool(name));
        }
        if !tasks::NAMES.contains(&name) {
            // The revision asks for "method not found" when a tool that does not run as a task
            // is asked to.
            return Err(McpError::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("{name} does not run as a task (its execution.taskSupport is forbidden); call it without task"),
                None,
            ));
        }
        if !super::may_call(&self.state.tools, principal, name) {
            return Err(super::lacks_scope(name));
        }
        let row = tasks::start(&self.state.a2a, principal, name, &args).await?;
        Ok(json!({ "task": task(&row) }))
    }

    /// `tasks/get`.
    async fn get(&self, principal: &Principal, params: &Value) -> Result<Value, McpError> {
        let (row, _) = self.state.a2a.task(principal, task_param(params)?).await.map_err(tasks::mcp_error)?;
        Ok(task(&row))
    }

    /// `tasks/result`: the tool's result once the task has settled. A settled task answers at
    /// once as JSON; otherwise the answer is an SSE stream that stays quiet (but for keep-alive
    /// comments) until the task settles, as the revision asks `tasks/result` to block.
    async fn result(&self, principal: &Principal, id: &Id, params: &Value) -> Response {
        let a2a = self.state.a2a.clone();
        let loaded = match task_param(params) {
            Ok(task) => a2a.task(principal, task).await.map_err(tasks::mcp_error),
            Err(e) => Err(e),
        };
        let (row, artifacts) = match loaded {
            Ok(found) => found,
            Err(e) => return reply(id, Err(e)),
        };
        if row.state.is_settled() {
            return reply(id, Ok(payload(&row, &artifacts)));
        }
        let (principal, id) = (principal.clone(), id.clone());
        let answer = futures::stream::once(async move {
            let message = match a2a.settled(&principal, &row).await {
                Ok(Some((row, artifacts))) => jsonrpc::success_bytes(&id, &payload(&row, &artifacts)),
                // Shutting down: the stream ends without an answer, and the client asks again
                // (any replica can answer).
                Ok(None) => return Err(std::io::Error::other("shutting down")),
                Err(e) => error_bytes(&id, &tasks::mcp_error(e)),
            };
            Ok::<_, std::io::Error>(Event::default().data(String::from_utf8_lossy(&message)))
        });
        Sse::new(answer).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
    }

    /// `tasks/list`: the caller's tasks, newest first.
    async fn list(&self, principal: &Principal, params: &Value) -> Result<Value, McpError> {
        let cursor = match &params["cursor"] {
            Value::Null => None,
            Value::String(s) => Some(s.as_str()),
            _ => return Err(McpError::invalid_params("cursor must be a string", Some(json!({ "field": "cursor" })))),
        };
        let (rows, next) = self.state.a2a.page(principal, cursor, PAGE_SIZE).await.map_err(tasks::mcp_error)?;
        let mut result = json!({ "tasks": rows.iter().map(task).collect::<Vec<_>>() });
        if let Some(next) = next {
            result["nextCursor"] = json!(next);
        }
        Ok(result)
    }

    /// `tasks/cancel`: the task, once it has stopped (a running one stops at its next step
    /// boundary, which the engine waits a moment for).
    async fn cancel(&self, principal: &Principal, params: &Value) -> Result<Value, McpError> {
        let a2a = &self.state.a2a;
        let id = task_param(params)?;
        a2a.cancel(principal, id).await.map_err(tasks::mcp_error)?;
        let (row, _) = a2a.task(principal, id).await.map_err(tasks::mcp_error)?;
        let (row, _) = a2a.settle(principal, &row, CANCEL_WAIT).await.map_err(tasks::mcp_error)?;
        Ok(task(&row))
    }
}

/// How long `tasks/cancel` waits for a running task to reach its next step boundary.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn task_param(params: &Value) -> Result<uuid::Uuid, McpError> {
    let raw = params["taskId"]
        .as_str()
        .ok_or_else(|| McpError::invalid_params("taskId must be a string", Some(json!({ "field": "taskId" }))))?;
    tasks::task_id(raw)
}

/// The revision's `Task` for an engine task.
fn task(row: &TaskRow) -> Value {
    let status = match row.state {
        TaskState::Submitted | TaskState::Working => "working",
        // The engine waits for the user (an A2A client can answer it); `tasks/result` then tells
        // an MCP client so.
        TaskState::InputRequired | TaskState::AuthRequired => "input_required",
        TaskState::Completed => "completed",
        TaskState::Failed | TaskState::Rejected => "failed",
        TaskState::Canceled => "cancelled",
    };
    let message = row.status_message.as_ref().map(|m| m.text()).filter(|t| !t.is_empty());
    json!({
        "taskId": row.id.to_string(),
        "status": status,
        "statusMessage": message.unwrap_or_else(|| row.state.as_str().to_owned()),
        "createdAt": tasks::rfc3339(row.created_at),
        "lastUpdatedAt": tasks::rfc3339(row.status_at),
        // Tasks are kept with the tenant's data; none expires on its own.
        "ttl": null,
        "pollInterval": tasks::POLL_INTERVAL_MS,
    })
}

/// What `tasks/result` returns for a settled task: the `tools/call` result, tied to its task.
fn payload(row: &TaskRow, artifacts: &[Artifact]) -> Value {
    let mut result = serde_json::to_value(tasks::result(row, artifacts)).unwrap_or_else(|_| json!({}));
    result["_meta"] = json!({ RELATED_TASK: { "taskId": row.id.to_string() } });
    result
}

/// `initialize`: the server runs `tools/call` as tasks, lists and cancels them.
fn declare_capability(result: &mut Value) {
    if result["protocolVersion"] == REVISION && result["capabilities"].is_object() {
        result["capabilities"]["tasks"] = json!({ "list": {}, "cancel": {}, "requests": { "tools": { "call": {} } } });
    }
}

/// `tools/list`: the task tools may run as tasks; the others may not (the default).
fn declare_task_support(result: &mut Value) {
    let Some(tools) = result["tools"].as_array_mut() else { return };
    for tool in tools {
        if tool["name"].as_str().is_some_and(|n| tasks::NAMES.contains(&n)) {
            tool["execution"] = json!({ "taskSupport": "optional" });
        }
    }
}

fn error_bytes(id: &Id, e: &McpError) -> Vec<u8> {
    let mut error = ErrorObject::new(e.code.0, e.message.clone());
    if let Some(data) = &e.data {
        error = error.with_data(data.clone());
    }
    jsonrpc::error_bytes(Some(id), &error)
}

/// A JSON-RPC answer as `application/json` (errors too: they are answers, HTTP 200).
fn reply(id: &Id, result: Result<Value, McpError>) -> Response {
    let body = match result {
        Ok(result) => jsonrpc::success_bytes(id, &result),
        Err(e) => error_bytes(id, &e),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// rmcp's answer with `patch` applied to the result of request `id`, whether it came as JSON or
/// as SSE events (patched one event at a time, as they pass).
async fn patched(response: Response, id: Id, patch: fn(&mut Value)) -> Response {
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let sse = content_type.starts_with("text/event-stream");
    if !sse && !content_type.starts_with("application/json") {
        return response;
    }
    let (mut head, body) = response.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    if !sse {
        // One JSON message, small (an `initialize` or `tools/list` result).
        let bytes = match axum::body::to_bytes(body, MAX_PATCHED_BYTES).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading an MCP answer to patch failed");
                return reply(&id, Err(McpError::internal_error("internal error", None)));
            }
        };
        return Response::from_parts(head, Body::from(patch_message(&bytes, &id, patch)));
    }
    let events = futures::stream::unfold(
        (body.into_data_stream(), Vec::<u8>::new(), false),
        move |(mut stream, mut buffer, mut ended)| {
            let id = id.clone();
            async move {
                loop {
                    if let Some(end) = find(&buffer, b"\n\n") {
                        let event: Vec<u8> = buffer.drain(..end + 2).collect();
                        let out = Bytes::from(patch_event(&event, &id, patch));
                        return Some((Ok::<_, axum::Error>(out), (stream, buffer, ended)));
                    }
                    if ended {
                        // An unterminated tail passes as it is.
                        return (!buffer.is_empty())
                            .then(|| (Ok(Bytes::from(std::mem::take(&mut buffer))), (stream, Vec::new(), true)));
                    }
                    match stream.next().await {
                        Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                        Some(Err(e)) => return Some((Err(e), (stream, buffer, true))),
                        None => ended = true,
                    }
                }
            }
        },
    );
    Response::from_parts(head, Body::from_stream(events))
}

/// The most of a JSON answer this layer reads to patch.
const MAX_PATCHED_BYTES: usize = 16 << 20;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One JSON-RPC message with `patch` applied if it is the result of `id`; anything else unchanged.
fn patch_message(bytes: &[u8], id: &Id, patch: fn(&mut Value)) -> Vec<u8> {
    let Ok(mut message) = serde_json::from_slice::<Value>(bytes) else { return bytes.to_vec() };
    let ours = serde_json::to_value(id).is_ok_and(|id| message["id"] == id);
    if !ours || !message["result"].is_object() {
        return bytes.to_vec();
    }
    patch(&mut message["result"]);
    serde_json::to_vec(&message).unwrap_or_else(|_| bytes.to_vec())
}

/// One SSE event (ending in a blank line) with its data patched by [`patch_message`]; its other
/// fields (`id`, `event`, `retry`, comments) kept. rmcp writes each message as one `data:` line.
fn patch_event(event: &[u8], id: &Id, patch: fn(&mut Value)) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(event) else { return event.to_vec() };
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        match line.strip_prefix("data:") {
            Some(data) if data.trim_start().starts_with('{') => {
                let patched = patch_message(data.trim().as_bytes(), id, patch);
                out.push_str("data: ");
                out.push_str(&String::from_utf8_lossy(&patched));
                out.push('\n');
            }
            _ => out.push_str(line),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_event_is_patched_and_keeps_its_fields() {
        let event = b"id: 0/3\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"tools\":[{\"name\":\"research\"},{\"name\":\"hybrid_search\"}]}}\n\n";
        let out = String::from_utf8(patch_event(event, &Id::from(4), declare_task_support)).unwrap();
        assert!(out.starts_with("id: 0/3\nevent: message\ndata: {"), "{out}");
        assert!(out.ends_with("}\n\n"), "{out}");
        let data: Value = serde_json::from_str(out.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["result"]["tools"][0]["execution"]["taskSupport"], "optional");
        assert!(data["result"]["tools"][1].get("execution").is_none());
    }

    #[test]
    fn another_request_s_answer_and_errors_pass_unchanged() {
        let other = br#"{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"research"}]}}"#;
        assert_eq!(patch_message(other, &Id::from(4), declare_task_support), other.to_vec());
        let error = br#"{"jsonrpc":"2.0","id":4,"error":{"code":-32600,"message":"no"}}"#;
        assert_eq!(patch_message(error, &Id::from(4), declare_task_support), error.to_vec());
        let priming = b"id: 0/0\nretry: 3000\ndata:\n\n";
        assert_eq!(patch_event(priming, &Id::from(4), declare_task_support), priming.to_vec());
    }

    #[test]
    fn the_capability_is_declared_only_for_the_revision() {
        let mut newer = json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}});
        declare_capability(&mut newer);
        assert!(newer["capabilities"].get("tasks").is_none());
        let mut ours = json!({"protocolVersion": REVISION, "capabilities": {"tools": {}}});
        declare_capability(&mut ours);
        assert_eq!(ours["capabilities"]["tasks"]["requests"]["tools"]["call"], json!({}));
    }
}
