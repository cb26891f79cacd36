//! The MCP Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) on the A2A task engine:
//! `research` called by a client that declared the extension becomes an A2A task (same store,
//! claim loop, leases and workflows as `message/send` with the `research` skill), answered at once
//! with its handle; `tasks/get` and `tasks/cancel` read and cancel it from the database, so any
//! replica answers them and the task survives the replica that started it (another claims it
//! when its lease lapses). A client without the extension gets the result in the call itself.

use std::sync::Arc;

use agentplane_core::auth::Principal;
use rmcp::ErrorData as McpError;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, JsonObject, Task, TaskPayload,
    TaskStatus, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::args::Args;
use super::tools::object;
use crate::protocol::a2a::store::TaskRow;
use crate::protocol::a2a::wire::{Artifact, Part, TaskState};
use crate::protocol::a2a::{A2a, A2aError, workflow};

pub const RESEARCH: &str = "research";
/// The test-only `probe` workflow (steps of `sleep_ms`), offered only with `a2a.test_workflows`:
/// the fleet tests kill a replica while one of its tasks runs.
pub const PROBE: &str = "probe";

/// The tools that run as tasks.
pub const NAMES: [&str; 2] = [RESEARCH, PROBE];

/// What clients are told to wait between polls.
pub(super) const POLL_INTERVAL_MS: u64 = 1000;

pub(super) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An engine error as MCP sees it: an unknown task (or another subject's) is invalid params, as
/// the extension asks; a full budget or task cap is the caller's to fix, so a plain error too.
pub(super) fn mcp_error(e: A2aError) -> McpError {
    match e {
        A2aError::InvalidParams(message) => McpError::invalid_params(message, None),
        A2aError::TaskNotFound => McpError::invalid_params("task not found", Some(json!({ "field": "taskId" }))),
        A2aError::TaskNotCancelable(state) => {
            McpError::invalid_params(format!("the task is already {state}"), Some(json!({ "field": "taskId" })))
        }
        A2aError::Internal(inner) => {
            tracing::error!(error = %inner, "MCP task call failed");
            McpError::internal_error("internal error", None)
        }
        other => McpError::invalid_request(other.to_string(), None),
    }
}

/// A task id from the client; anything that is not one of ours is simply not found.
pub(super) fn task_id(raw: &str) -> Result<Uuid, McpError> {
    Uuid::try_parse(raw).map_err(|_| mcp_error(A2aError::TaskNotFound))
}

/// The question of a `research` call.
fn question(args: &JsonObject) -> Result<String, McpError> {
    let a = Args::new(args, &["question"])?;
    let q = a.required_string("question", 2000)?.trim().to_owned();
    if q.is_empty() {
        return Err(super::args::invalid("question", "must not be empty"));
    }
    Ok(q)
}

/// Whether `principal` may start tasks: the scope A2A's `message/send` needs.
pub fn may_run(principal: &Principal) -> bool {
    principal.scopes.contains(agentplane_core::catalogue::SCOPE_TASKS_RUN)
}

/// What a finished task's result carries as structured content.
fn output_schema() -> Arc<JsonObject> {
    object(json!({
        "type": "object",
        "properties": {
            "task_id": {"type": "string", "format": "uuid", "description": "The task on the engine (also an A2A task)."},
            "artifacts": {"type": "array", "items": {"type": "object"}, "description": "The task's artifacts, as A2A 1.0 shows them."}
        },
        "required": ["task_id", "artifacts"]
    }))
}

/// The task tools' definitions (`probe` only with the test workflows).
pub fn definitions(test_workflows: bool) -> Vec<Tool> {
    let annotations = ToolAnnotations::new().read_only(true).destructive(false).idempotent(false).open_world(false);
    let mut list = vec![
        Tool::new(
            RESEARCH,
            "Research a question across this tenant's documents: plan sub-queries, search each, cross-reference the \
             findings and write a cited report. Takes seconds; a client with the io.modelcontextprotocol/tasks \
             extension gets a task to poll (tasks/get) instead of waiting.",
            object(json!({
                "type": "object",
                "properties": {"question": {"type": "string", "minLength": 1, "maxLength": 2000}},
                "required": ["question"],
                "additionalProperties": false
            })),
        )
        .with_raw_output_schema(output_schema())
        .with_annotations(annotations.clone()),
    ];
    if test_workflows {
        list.push(
            Tool::new(
                PROBE,
                "Test only: three steps of sleep_ms each, as a task.",
                object(json!({
                    "type": "object",
                    "properties": {"sleep_ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
                    "additionalProperties": false
                })),
            )
            .with_raw_output_schema(output_schema())
            .with_annotations(annotations),
        );
    }
    list
}

/// Starts `name` as a task on the engine, as the caller's.
pub(super) async fn start(
    a2a: &A2a,
    principal: &Principal,
    name: &str,
    args: &JsonObject,
) -> Result<TaskRow, McpError> {
    let (workflow, text, metadata) = match name {
        RESEARCH => (RESEARCH, question(args)?, Map::new()),
        PROBE if a2a.test_workflows() => {
            let a = Args::new(args, &["sleep_ms"])?;
            let sleep = a.integer("sleep_ms", 0, 60_000, 0)?;
            (PROBE, "probe".to_owned(), Map::from_iter([("sleep_ms".to_owned(), json!(sleep))]))
        }
        _ => {
            return Err(super::unknown_tool(name));
        }
    };
    debug_assert!(workflow::find(workflow, a2a.test_workflows()).is_some());
    a2a.submit(principal, workflow, &text, metadata).await.map_err(mcp_error)
}

/// Runs `name` on the engine: a task handle for a client that declared the extension on this
/// request (or at `initialize`), else the result once the task settles (up to the engine's
/// blocking wait).
pub async fn call(
    a2a: &A2a,
    principal: &Principal,
    name: &str,
    args: &JsonObject,
    ctx: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let row = start(a2a, principal, name, args).await?;
    if ctx.client_capabilities().is_some_and(|c| c.supports_tasks()) {
        return Ok(CallToolResponse::Task(CreateTaskResult::new(handle(&row))));
    }
    let wait = a2a.blocking_wait();
    let (row, artifacts) = a2a.settle(principal, &row, wait).await.map_err(mcp_error)?;
    Ok(if row.state.is_terminal() {
        result(&row, &artifacts)
    } else {
        CallToolResult::error(vec![ContentBlock::text(format!(
            "{name} is still running after {} s; it goes on as task {} (A2A tasks/get), or call again with the \
             io.modelcontextprotocol/tasks extension to get a task to poll",
            wait.as_secs(),
            row.id
        ))])
    }
    .into())
}

/// The task handle of a freshly created task.
fn handle(row: &TaskRow) -> Task {
    Task::new(row.id.to_string(), TaskStatus::Working, rfc3339(row.created_at), rfc3339(row.status_at))
        .with_status_message(row.state.as_str())
        .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// `tasks/get`.
pub async fn get(a2a: &A2a, principal: &Principal, id: &str) -> Result<DetailedTask, McpError> {
    let (row, artifacts) = a2a.task(principal, task_id(id)?).await.map_err(mcp_error)?;
    Ok(detailed(&row, &artifacts))
}

/// `tasks/cancel`: the task stops at its next step boundary; `tasks/get` shows when.
pub async fn cancel(a2a: &A2a, principal: &Principal, id: &str) -> Result<(), McpError> {
    a2a.cancel(principal, task_id(id)?).await.map_err(mcp_error)
}

fn detailed(row: &TaskRow, artifacts: &[Artifact]) -> DetailedTask {
    let status_text = row.status_message.as_ref().map(|m| m.text()).filter(|t| !t.is_empty());
    let mut task = Task::new(row.id.to_string(), TaskStatus::Working, rfc3339(row.created_at), rfc3339(row.status_at))
        .with_poll_interval_ms(POLL_INTERVAL_MS);
    task.status_message = status_text.or_else(|| Some(row.state.as_str().to_owned()));
    let payload = match row.state {
        TaskState::Completed | TaskState::Failed | TaskState::Rejected => {
            // A workflow that failed is a failed tool execution (a result with isError), not a
            // JSON-RPC error: the extension keeps `failed` for those.
            let result = serde_json::to_value(result(row, artifacts)).ok().and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            });
            TaskPayload::Completed { result: result.unwrap_or_default() }
        }
        TaskState::Canceled => TaskPayload::Cancelled,
        // `input-required` and `auth-required` are reached through A2A only (research never
        // asks); MCP sees the task as still working, with the status message saying why.
        _ => TaskPayload::Working,
    };
    DetailedTask::new(task, payload)
}

/// The tool result of a finished task: each artifact's text, and the artifacts as structured
/// content.
pub(super) fn result(row: &TaskRow, artifacts: &[Artifact]) -> CallToolResult {
    if row.state != TaskState::Completed {
        let why = row.status_message.as_ref().map(|m| m.text()).unwrap_or_default();
        return CallToolResult::error(vec![ContentBlock::text(format!("the task is {}: {why}", row.state.as_str()))]);
    }
    let mut content = Vec::new();
    for artifact in artifacts {
        for part in &artifact.parts {
            if let Part::Text { text, .. } = part {
                content.push(ContentBlock::text(text.clone()));
            }
        }
    }
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(json!({ "task_id": row.id, "artifacts": artifacts }));
    result
}
