//! A2A at the origin: the JSON-RPC endpoint `/a2a` (0.3 and 1.0 method names, picked by
//! `A2A-Version`), the agent card, durable tasks run by executors in every process, and SSE
//! streams that replay the task's event log.
//!
//! The gate in front (`http::guard`) has already verified the token, parsed the envelope, routed
//! the method and checked its scope; handlers here read the principal it left in the request and
//! touch tenant data only in transactions of that principal's tenant.

pub mod answer;
pub mod card;
pub mod executor;
pub mod push;
pub mod ssrf;
pub mod store;
pub mod stream;
pub mod wire;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use agentplane_core::auth::Principal;
use agentplane_core::catalogue::A2aVersion;
use agentplane_core::jsonrpc::{self, ErrorObject, Id, code};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::db::{Database, TenantId};
use crate::embed::Embedder;
use push::Pusher;
use store::{StoreError, TaskRow};
use stream::{Hub, Start, StreamRequest};
use wire::{Role, TaskState};
use workflow::RunContext;

/// What the A2A endpoint and card share.
#[derive(Debug)]
pub struct A2a {
    db: Database,
    hub: Arc<Hub>,
    pusher: Arc<Pusher>,
    ctx: Arc<RunContext>,
    card: card::Card,
    /// To name the tier a token's budget is counted in.
    tiers: agentplane_core::ratelimit::Tiers,
    blocking_wait: Duration,
    shutdown: CancellationToken,
}

/// How long `CancelTask` waits for the executor to reach its next step boundary.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// Bodies past the gate are already bounded; this only guards the second read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Starts the event listener and, unless `workers` is 0, this process's executor.
pub fn start(config: &Config, db: Database, embedder: Option<Embedder>, shutdown: CancellationToken) -> Arc<A2a> {
    let hub = Hub::start(db.pool().clone(), shutdown.clone());
    let pusher = Pusher::new(db.clone(), config.a2a.push_allow_loopback);
    let chat = crate::chat::ChatClient::new(&config.chat).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "chat model client cannot be built; answering extractively");
        None
    });
    let ctx = Arc::new(RunContext {
        db: db.clone(),
        embedder,
        chat,
        budgets: config.budgets.clone(),
        test_workflows: config.a2a.test_workflows,
    });
    let c = &config.a2a;
    if c.workers > 0 {
        let settings = executor::Settings {
            concurrency: c.workers,
            lease: Duration::from_secs(c.lease_secs.max(1)),
            poll: Duration::from_millis(c.poll_ms.max(10)),
            step_timeout: Duration::from_secs(c.step_timeout_secs.max(1)),
            max_attempts: c.max_attempts.max(1),
            backoff: Duration::from_millis(c.backoff_ms),
            backoff_max: Duration::from_millis(c.backoff_max_ms.max(c.backoff_ms)),
        };
        executor::spawn(ctx.clone(), hub.clone(), pusher.clone(), settings, shutdown.clone());
    }
    let card = card::Card::new(&card::document(&config.public_url(), true, true));
    let blocking_wait = Duration::from_secs(config.a2a.blocking_wait_secs);
    let tiers = config.tiers.clone();
    Arc::new(A2a { db, hub, pusher, ctx, card, tiers, blocking_wait, shutdown })
}

/// `GET /.well-known/agent-card.json`.
pub async fn agent_card(State(a2a): State<Arc<A2a>>, headers: HeaderMap) -> Response {
    a2a.card.respond(&headers)
}

/// A2A's errors, with the codes both versions give them.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    #[error("Task not found")]
    TaskNotFound,
    #[error("Task cannot be canceled: it is already {0}")]
    TaskNotCancelable(&'static str),
    #[error("Push notifications are not supported by this agent")]
    PushNotificationNotSupported,
    #[error("Push notification config not found")]
    PushConfigNotFound,
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ContentTypeNotSupported(String),
    #[error("No authenticated extended agent card is configured")]
    ExtendedCardNotConfigured,
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    #[error("Internal error")]
    Internal(#[from] StoreError),
}

impl From<sqlx::Error> for A2aError {
    fn from(e: sqlx::Error) -> Self {
        A2aError::Internal(StoreError::Sql(e))
    }
}

impl A2aError {
    pub fn code(&self) -> i32 {
        match self {
            A2aError::TaskNotFound => -32001,
            A2aError::TaskNotCancelable(_) => -32002,
            A2aError::PushNotificationNotSupported => -32003,
            // A2A has no code of its own for this; the config is a parameter that names nothing.
            A2aError::PushConfigNotFound => code::INVALID_PARAMS,
            A2aError::UnsupportedOperation(_) => -32004,
            A2aError::ContentTypeNotSupported(_) => -32005,
            A2aError::ExtendedCardNotConfigured => -32007,
            A2aError::InvalidParams(_) => code::INVALID_PARAMS,
            A2aError::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// The `google.rpc.ErrorInfo` reason 1.0 attaches to its own errors.
    fn reason(&self) -> Option<&'static str> {
        Some(match self {
            A2aError::TaskNotFound => "TASK_NOT_FOUND",
            A2aError::TaskNotCancelable(_) => "TASK_NOT_CANCELABLE",
            A2aError::PushNotificationNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            A2aError::UnsupportedOperation(_) => "UNSUPPORTED_OPERATION",
            A2aError::ContentTypeNotSupported(_) => "CONTENT_TYPE_NOT_SUPPORTED",
            A2aError::ExtendedCardNotConfigured => "EXTENDED_AGENT_CARD_NOT_CONFIGURED",
            A2aError::InvalidParams(_) | A2aError::PushConfigNotFound | A2aError::Internal(_) => return None,
        })
    }

    pub fn to_error_object(&self, version: A2aVersion) -> ErrorObject {
        let e = ErrorObject::new(self.code(), self.to_string());
        match (version, self.reason()) {
            (A2aVersion::V1_0, Some(reason)) => e.with_data(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
            }])),
            _ => e,
        }
    }
}

/// The A2A operations, whatever their name in the client's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Stream,
    Get,
    List,
    Cancel,
    Subscribe,
    PushSet,
    PushGet,
    PushList,
    PushDelete,
    ExtendedCard,
}

fn op(version: A2aVersion, method: &str) -> Option<Op> {
    Some(match (version, method) {
        (A2aVersion::V0_3, "message/send") | (A2aVersion::V1_0, "SendMessage") => Op::Send,
        (A2aVersion::V0_3, "message/stream") | (A2aVersion::V1_0, "SendStreamingMessage") => Op::Stream,
        (A2aVersion::V0_3, "tasks/get") | (A2aVersion::V1_0, "GetTask") => Op::Get,
        (A2aVersion::V1_0, "ListTasks") => Op::List,
        (A2aVersion::V0_3, "tasks/cancel") | (A2aVersion::V1_0, "CancelTask") => Op::Cancel,
        (A2aVersion::V0_3, "tasks/resubscribe") | (A2aVersion::V1_0, "SubscribeToTask") => Op::Subscribe,
        (A2aVersion::V0_3, "tasks/pushNotificationConfig/set")
        | (A2aVersion::V1_0, "CreateTaskPushNotificationConfig") => Op::PushSet,
        (A2aVersion::V0_3, "tasks/pushNotificationConfig/get")
        | (A2aVersion::V1_0, "GetTaskPushNotificationConfig") => Op::PushGet,
        (A2aVersion::V0_3, "tasks/pushNotificationConfig/list")
        | (A2aVersion::V1_0, "ListTaskPushNotificationConfigs") => Op::PushList,
        (A2aVersion::V0_3, "tasks/pushNotificationConfig/delete")
        | (A2aVersion::V1_0, "DeleteTaskPushNotificationConfig") => Op::PushDelete,
        (A2aVersion::V0_3, "agent/getAuthenticatedExtendedCard") | (A2aVersion::V1_0, "GetExtendedAgentCard") => {
            Op::ExtendedCard
        }
        _ => return None,
    })
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(id: Option<&Id>, e: &ErrorObject) -> Response {
    json_response(StatusCode::OK, jsonrpc::error_bytes(id, e))
}

/// `POST /a2a`.
pub async fn handle(State(a2a): State<Arc<A2a>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        // The gate authenticates every /a2a request; reaching here without a principal is a bug.
        tracing::error!("A2A request without a principal");
        return error_response(None, &ErrorObject::new(code::INTERNAL_ERROR, "Internal error"));
    };
    // The same reading as the gate's: header first, then the query parameter.
    let version_header = parts
        .headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.query().and_then(|q| query_param(q, "A2A-Version")));
    let version = match A2aVersion::from_header(version_header) {
        Ok(v) => v,
        Err(e) => return error_response(None, &e),
    };
    let last_event_id =
        parts.headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(None, &ErrorObject::new(code::INVALID_REQUEST, "Invalid Request: unreadable body"));
        }
    };
    let message = match jsonrpc::parse(&bytes, &jsonrpc::Limits::default()) {
        Ok(m) => m,
        Err(e) => return json_response(e.http_status(), jsonrpc::error_bytes(e.id.as_ref(), &e.to_error_object())),
    };
    let jsonrpc::Message::Request(request) = message else {
        // A2A servers send no requests, so there is nothing a client's response or notification
        // could answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let Some(op) = op(version, &request.method) else {
        return error_response(Some(&request.id), &ErrorObject::method_not_found(&request.method));
    };
    let call = Call {
        a2a: &a2a,
        version,
        tenant: TenantId::of(&principal),
        subject: principal.subject.clone(),
        // Unknown or absent tiers count as the default tier, as for rate limits.
        tier: principal
            .tier
            .clone()
            .filter(|t| a2a.tiers.tiers.contains_key(t))
            .unwrap_or_else(|| a2a.tiers.default_tier.clone()),
        id: request.id.clone(),
        last_event_id,
    };
    let params = request.params.unwrap_or(Value::Null);
    let outcome = match op {
        Op::Send => call.send(&params, false).await,
        Op::Stream => call.send(&params, true).await,
        Op::Get => call.get(&params).await,
        Op::List => call.list(&params).await,
        Op::Cancel => call.cancel(&params).await,
        Op::Subscribe => call.subscribe(&params).await,
        Op::PushSet => call.push_set(&params).await,
        Op::PushGet => call.push_get(&params).await,
        Op::PushList => call.push_list(&params).await,
        Op::PushDelete => call.push_delete(&params).await,
        Op::ExtendedCard => Err(A2aError::ExtendedCardNotConfigured),
    };
    match outcome {
        Ok(Outcome::Result(v)) => json_response(StatusCode::OK, jsonrpc::success_bytes(&request.id, &v)),
        Ok(Outcome::Stream(r)) => r,
        Err(e) => {
            if let A2aError::Internal(inner) = &e {
                tracing::error!(error = %inner, method = %request.method, "A2A call failed");
            }
            error_response(Some(&request.id), &e.to_error_object(version))
        }
    }
}

enum Outcome {
    Result(Value),
    Stream(Response),
}

/// One call, with who made it.
struct Call<'a> {
    a2a: &'a A2a,
    version: A2aVersion,
    tenant: TenantId,
    subject: String,
    tier: String,
    id: Id,
    last_event_id: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> A2aError {
    A2aError::InvalidParams(msg.into())
}

/// A task id from the client: anything that is not one of our ids is simply not found.
fn task_id(params: &Value) -> Result<Uuid, A2aError> {
    let id = params.get("id").and_then(Value::as_str).ok_or_else(|| invalid("id is required"))?;
    Uuid::parse_str(id).map_err(|_| A2aError::TaskNotFound)
}

fn opt_usize(params: &Value, key: &str) -> Result<Option<usize>, A2aError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
            .ok_or_else(|| invalid(format!("{key} must be a non-negative integer"))),
    }
}

fn opt_bool(v: Option<&Value>, key: &str) -> Result<Option<bool>, A2aError> {
    match v.and_then(|c| c.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{key} must be a boolean"))),
    }
}

/// The skill a message asks for: `metadata.skill` on the message, else on the request.
fn skill(message: &wire::Message, params: &Value) -> Result<Option<String>, A2aError> {
    let from_message = message.metadata.as_ref().and_then(|m| m.get("skill"));
    let from_request = params.get("metadata").and_then(|m| m.get("skill"));
    match from_message.or(from_request) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("metadata.skill must be a string")),
    }
}

const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 100;

fn page_token(row: &TaskRow) -> String {
    format!("{}_{}", row.created_at.timestamp_micros(), row.id)
}

fn parse_page_token(token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = token.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, Uuid::parse_str(id).ok()?))
}

impl Call<'_> {
    async fn load(&self, id: Uuid) -> Result<(TaskRow, Vec<wire::Artifact>), A2aError> {
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = store::get_task(&mut tx, id).await?.ok_or(A2aError::TaskNotFound)?;
        let artifacts = store::artifacts(&mut tx, id).await?;
        tx.commit().await?;
        Ok((row, artifacts))
    }

    fn stream(&self, task: TaskRow, artifacts: Vec<wire::Artifact>, start: Start) -> Outcome {
        Outcome::Stream(stream::sse(StreamRequest {
            db: self.a2a.db.clone(),
            hub: self.a2a.hub.clone(),
            shutdown: self.a2a.shutdown.clone(),
            version: self.version,
            rpc_id: self.id.clone(),
            tenant: self.tenant,
            task,
            artifacts,
            start,
        }))
    }

    async fn send(&self, params: &Value, streaming: bool) -> Result<Outcome, A2aError> {
        let message = params.get("message").ok_or_else(|| invalid("message is required"))?;
        let message = wire::parse_message(self.version, message).map_err(|e| invalid(e.0))?;
        if message.role != Role::User {
            return Err(invalid("message.role must be the user role"));
        }
        if let Some(existing) = &message.task_id {
            // Our workflows never stop for input, so no task of ours can take a follow-up.
            let id = Uuid::parse_str(existing).map_err(|_| A2aError::TaskNotFound)?;
            self.load(id).await?;
            return Err(A2aError::UnsupportedOperation(
                "this agent does not continue tasks; send a new message without taskId".into(),
            ));
        }
        let skill = skill(&message, params)?.unwrap_or_else(|| workflow::DEFAULT.to_owned());
        if workflow::find(&skill, self.a2a.ctx.test_workflows).is_none() {
            return Err(invalid(format!("unknown skill {skill:?}; this agent offers rag_answer and research")));
        }
        if message.text().trim().is_empty() {
            return Err(A2aError::ContentTypeNotSupported(
                "this agent reads text parts only; the message has none".into(),
            ));
        }
        let configuration = params.get("configuration").filter(|c| !c.is_null());
        let (blocking, push) = match self.version {
            // 0.3: `blocking` asks to wait; absent means answer at once.
            A2aVersion::V0_3 => (
                opt_bool(configuration, "blocking")?.unwrap_or(false),
                configuration.and_then(|c| c.get("pushNotificationConfig")),
            ),
            // 1.0: wait unless `returnImmediately`.
            A2aVersion::V1_0 => (
                !opt_bool(configuration, "returnImmediately")?.unwrap_or(false),
                configuration.and_then(|c| c.get("taskPushNotificationConfig")),
            ),
        };
        let push = push.filter(|p| !p.is_null());
        // The task id is not known yet; it is filled in below.
        let push = push.map(|p| push::config_from(self.version, p, Uuid::nil()).map_err(invalid)).transpose()?;
        if let Some(p) = &push {
            self.check_webhook(&p.url).await?;
        }
        let history_length = match configuration {
            Some(c) => opt_usize(c, "historyLength")?,
            None => None,
        };
        let context_id = message.context_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = store::create_task(
            &mut tx,
            store::NewTask {
                context_id: &context_id,
                subject: &self.subject,
                tier: &self.tier,
                workflow: &skill,
                input: &message,
            },
        )
        .await?;
        // Over budget: the task is rejected (terminal) before any work, and says why.
        let row = match self.a2a.ctx.budgets.check(&mut tx, &self.tier, &self.subject).await? {
            Ok(()) => row,
            Err(exceeded) => {
                let mut why = wire::Message::agent(format!("{}-rejected", row.id), exceeded.to_string());
                why.task_id = Some(row.id.to_string());
                why.context_id = Some(row.context_id.clone());
                store::set_state(&mut tx, row.id, TaskState::Rejected, Some(&why)).await?;
                store::get_task(&mut tx, row.id).await?.ok_or(A2aError::TaskNotFound)?
            }
        };
        if let Some(mut p) = push {
            // From the first event on: the client asked for it with the task itself.
            p.task_id = row.id;
            p.delivered_seq = 0;
            store::put_push_config(&mut tx, &p).await?;
        }
        tx.commit().await?;
        self.a2a.pusher.notify(self.tenant, row.id);
        if streaming {
            return Ok(self.stream(row, Vec::new(), Start::After(0)));
        }
        let (row, artifacts) = if blocking {
            stream::wait_settled(&self.a2a.db, &self.a2a.hub, self.tenant, &row, self.a2a.blocking_wait).await?;
            self.load(row.id).await?
        } else {
            (row, Vec::new())
        };
        let task = stream::task_value(self.version, &row, &artifacts, history_length);
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => task,
            A2aVersion::V1_0 => json!({ "task": task }),
        }))
    }

    async fn get(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let history_length = opt_usize(params, "historyLength")?;
        let (row, artifacts) = self.load(id).await?;
        Ok(Outcome::Result(stream::task_value(self.version, &row, &artifacts, history_length)))
    }

    async fn list(&self, params: &Value) -> Result<Outcome, A2aError> {
        let page_size = opt_usize(params, "pageSize")?.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&page_size) {
            return Err(invalid(format!("pageSize must be between 1 and {PAGE_MAX}")));
        }
        let text = |key: &str| -> Result<Option<String>, A2aError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("{key} must be a string"))),
            }
        };
        let state = match text("status")? {
            None => None,
            Some(s) if s == "TASK_STATE_UNSPECIFIED" => None,
            Some(s) => {
                Some(TaskState::from_wire(self.version, &s).ok_or_else(|| invalid(format!("unknown status {s:?}")))?)
            }
        };
        let before = match text("pageToken")? {
            None => None,
            Some(t) => Some(parse_page_token(&t).ok_or_else(|| invalid("pageToken is not one this server issued"))?),
        };
        let status_after = match text("statusTimestampAfter")? {
            None => None,
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|_| invalid("statusTimestampAfter must be an RFC 3339 timestamp"))?
                    .with_timezone(&Utc),
            ),
        };
        let history_length = opt_usize(params, "historyLength")?;
        let include_artifacts = opt_bool(Some(params), "includeArtifacts")?.unwrap_or(false);
        let filter = store::ListFilter {
            context_id: text("contextId")?,
            state,
            status_after,
            before,
            limit: i64::try_from(page_size + 1).unwrap_or(i64::MAX),
        };
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let (mut rows, total) = store::list_tasks(&mut tx, &filter).await?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        let mut tasks = Vec::with_capacity(rows.len());
        for row in &rows {
            let artifacts = if include_artifacts { store::artifacts(&mut tx, row.id).await? } else { Vec::new() };
            tasks.push(stream::task_value(self.version, row, &artifacts, history_length));
        }
        tx.commit().await?;
        let next = if more { rows.last().map(page_token).unwrap_or_default() } else { String::new() };
        Ok(Outcome::Result(json!({
            "tasks": tasks,
            "nextPageToken": next,
            "pageSize": page_size,
            "totalSize": total,
        })))
    }

    async fn cancel(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = store::lock_task(&mut tx, id).await?.ok_or(A2aError::TaskNotFound)?;
        if let Err(state) = store::request_cancel(&mut tx, &row).await? {
            return Err(A2aError::TaskNotCancelable(state.as_str()));
        }
        tx.commit().await?;
        self.a2a.pusher.notify(self.tenant, id);
        // A running task stops at its next step boundary; give it a moment to get there.
        stream::wait_settled(&self.a2a.db, &self.a2a.hub, self.tenant, &row, CANCEL_WAIT).await?;
        let (row, artifacts) = self.load(id).await?;
        Ok(Outcome::Result(stream::task_value(self.version, &row, &artifacts, None)))
    }

    /// Refuses a webhook that points inside the network now, rather than at delivery time only.
    async fn check_webhook(&self, url: &str) -> Result<(), A2aError> {
        ssrf::vet(url, self.a2a.pusher.allow_loopback())
            .await
            .map(|_| ())
            .map_err(|e| invalid(format!("push notification url refused: {e}")))
    }

    /// The task named by a push-config call: `taskId` (1.0, and 0.3's set), or `id` (0.3's
    /// get, list and delete).
    fn push_task(&self, params: &Value, set: bool) -> Result<Uuid, A2aError> {
        let key = match (self.version, set) {
            (A2aVersion::V0_3, false) => "id",
            _ => "taskId",
        };
        let id = params.get(key).and_then(Value::as_str).ok_or_else(|| invalid(format!("{key} is required")))?;
        Uuid::parse_str(id).map_err(|_| A2aError::TaskNotFound)
    }

    /// The config id of a get or delete: 0.3 `pushNotificationConfigId`, 1.0 `id`.
    fn push_config_id<'p>(&self, params: &'p Value) -> Option<&'p str> {
        let key = match self.version {
            A2aVersion::V0_3 => "pushNotificationConfigId",
            A2aVersion::V1_0 => "id",
        };
        params.get(key).and_then(Value::as_str)
    }

    async fn push_set(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, true)?;
        let mut config = push::parse_config(self.version, params, task).map_err(invalid)?;
        self.check_webhook(&config.url).await?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = store::get_task(&mut tx, task).await?.ok_or(A2aError::TaskNotFound)?;
        config.delivered_seq = row.last_seq;
        let stored = store::put_push_config(&mut tx, &config).await?;
        tx.commit().await?;
        Ok(Outcome::Result(push::config_value(self.version, &stored)))
    }

    async fn push_configs(&self, task: Uuid) -> Result<Vec<store::PushConfig>, A2aError> {
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        store::get_task(&mut tx, task).await?.ok_or(A2aError::TaskNotFound)?;
        let configs = store::push_configs(&mut tx, task).await?;
        tx.commit().await?;
        Ok(configs)
    }

    async fn push_get(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let wanted = self.push_config_id(params);
        let configs = self.push_configs(task).await?;
        // 0.3 lets the config id be left out when the task has one config.
        let found = match wanted {
            Some(id) => configs.iter().find(|c| c.id == id),
            None if self.version == A2aVersion::V0_3 => configs.first(),
            None => return Err(invalid("id is required")),
        };
        let config = found.ok_or(A2aError::PushConfigNotFound)?;
        Ok(Outcome::Result(push::config_value(self.version, config)))
    }

    async fn push_list(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let configs: Vec<Value> =
            self.push_configs(task).await?.iter().map(|c| push::config_value(self.version, c)).collect();
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => Value::Array(configs),
            A2aVersion::V1_0 => json!({ "configs": configs, "nextPageToken": "" }),
        }))
    }

    async fn push_delete(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let id = self.push_config_id(params).ok_or_else(|| invalid("the config id is required"))?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        store::get_task(&mut tx, task).await?.ok_or(A2aError::TaskNotFound)?;
        if !store::delete_push_config(&mut tx, task, id).await? {
            return Err(A2aError::PushConfigNotFound);
        }
        tx.commit().await?;
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => Value::Null,
            A2aVersion::V1_0 => json!({}),
        }))
    }

    async fn subscribe(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let (row, artifacts) = self.load(id).await?;
        let start = match self.last_event_id {
            // A reconnect: everything after the last event the client saw, even if the task
            // has ended since.
            // An id past the log's end (not one we sent) counts as "seen everything".
            Some(seq) => Start::After(seq.clamp(0, row.last_seq)),
            None if row.state.is_terminal() => {
                return Err(A2aError::UnsupportedOperation(format!(
                    "the task is already {}; there is nothing to subscribe to",
                    row.state.as_str()
                )));
            }
            None => Start::Snapshot,
        };
        Ok(self.stream(row, artifacts, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_name_sets_map_to_the_same_operations() {
        assert_eq!(op(A2aVersion::V0_3, "message/send"), Some(Op::Send));
        assert_eq!(op(A2aVersion::V1_0, "SendMessage"), Some(Op::Send));
        assert_eq!(op(A2aVersion::V1_0, "message/send"), None);
        assert_eq!(op(A2aVersion::V0_3, "ListTasks"), None);
        assert_eq!(op(A2aVersion::V1_0, "ListTaskPushNotificationConfigs"), Some(Op::PushList));
        assert_eq!(op(A2aVersion::V0_3, "tasks/pushNotificationConfig/set"), Some(Op::PushSet));
    }

    #[test]
    fn v1_errors_carry_error_info() {
        let e = A2aError::TaskNotFound.to_error_object(A2aVersion::V1_0);
        assert_eq!(e.code, -32001);
        assert_eq!(e.data.as_ref().unwrap()[0]["reason"], "TASK_NOT_FOUND");
        assert!(A2aError::TaskNotFound.to_error_object(A2aVersion::V0_3).data.is_none());
        assert_eq!(A2aError::TaskNotCancelable("completed").code(), -32002);
    }

    #[test]
    fn page_tokens_round_trip() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::from_u128(5);
        assert_eq!(parse_page_token(&format!("{}_{id}", at.timestamp_micros())), Some((at, id)));
        assert_eq!(parse_page_token("garbage"), None);
    }
}
