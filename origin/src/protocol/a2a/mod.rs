//! A2A at the origin: the JSON-RPC endpoint `/a2a` (0.3 and 1.0 method names, picked by
//! `A2A-Version`), the agent card, durable tasks run by executors in every process, and SSE
//! streams that replay the task's event log.
//!
//! The gate in front (`app::gate`) has already verified the token, parsed the envelope, routed
//! the method and checked its scope; [`handle`] takes the gate's `Admitted` from the request (the
//! principal, the parsed message, the `A2aOperation`) and touches tenant data only in
//! transactions of that principal's tenant.
//!
//! A send stores the task and its first event, then returns at once (0.3 unless `blocking`; 1.0
//! with `returnImmediately`), waits for the task to settle by following its log, or streams the
//! log. Executors in every process claim the task (`a2a_claim_tasks`: `FOR UPDATE SKIP LOCKED`,
//! expired leases free), run its steps and commit each step's checkpoint, artifacts and events in
//! one fenced transaction; commits wake streams through `pg_notify` on `a2a_events` and webhooks
//! through the process's `Pusher`.

pub mod answer;
pub mod card;
mod error;
pub mod executor;
pub mod grpc;
pub mod proto03;
pub mod push;
pub mod rest;
mod rpc;
pub mod ssrf;
pub mod store;
pub mod stream;
pub mod wire;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use agentplane_core::auth::Principal;
use agentplane_core::catalogue::{A2aOperation, A2aVersion, Dialect};
use agentplane_core::gateway::Admitted;
use agentplane_core::jsonrpc::{self, ErrorObject, Id, code};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app::AppError;
use crate::app::config::Config;
use crate::data::db::listen::{Hub, Listener, Timing};
use crate::data::db::{Database, TenantId};
use crate::models::embed::Embedder;
pub use error::A2aError;
use push::Pusher;
use rpc::{Call, Outcome};
use store::TaskRow;
use workflow::RunContext;

/// What the A2A endpoint and card share.
#[derive(Debug)]
pub struct A2a {
    db: Database,
    hub: Arc<Hub>,
    pusher: Arc<Pusher>,
    ctx: Arc<RunContext>,
    card: card::Cards,
    /// To name the tier a token's budget is counted in.
    tiers: agentplane_core::ratelimit::Tiers,
    blocking_wait: Duration,
    /// Submitted and working tasks one tenant may have (`a2a.max_active_tasks_per_tenant`).
    max_active_tasks_per_tenant: usize,
    /// Where the task cap's and the budget's refusals are counted.
    metrics: Arc<crate::app::metrics::Metrics>,
    shutdown: CancellationToken,
}

/// Registers the task events' channel with `listener` and starts, unless `workers` is 0, this
/// process's executor.
pub fn start(
    config: &Config,
    db: Database,
    embedder: Option<Embedder>,
    card_key: &crate::app::local_key::LocalKey,
    listener: &mut Listener,
    metrics: Arc<crate::app::metrics::Metrics>,
    shutdown: CancellationToken,
) -> Arc<A2a> {
    let hub = listener.hub(store::EVENTS_CHANNEL, Timing::of(config));
    let pusher = Pusher::new(db.clone(), config.a2a.push_allow_loopback);
    let chat = crate::models::chat::ChatClient::new(&config.chat).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "chat model client cannot be built; answering extractively");
        None
    });
    let ctx = Arc::new(RunContext {
        db: db.clone(),
        embedder,
        chat,
        budgets: config.budgets.clone(),
        test_workflows: config.a2a.test_workflows,
        tck_fixtures: config.a2a.tck_fixtures,
        tck_reference_agent: config.a2a.tck_fixtures && config.a2a.tck_reference_agent,
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
        let runnable = listener.hub(store::RUNNABLE_CHANNEL, Timing::of(config));
        executor::spawn(ctx.clone(), runnable, pusher.clone(), settings, shutdown.clone());
    }
    let card = card::Cards::new(&config.public_url(), config.a2a.grpc_url.as_deref(), true, true, card_key);
    let blocking_wait = Duration::from_secs(config.a2a.blocking_wait_secs);
    let tiers = config.gateway.tiers.clone();
    let max_active_tasks_per_tenant = config.a2a.max_active_tasks_per_tenant;
    Arc::new(A2a { db, hub, pusher, ctx, card, tiers, blocking_wait, max_active_tasks_per_tenant, metrics, shutdown })
}

impl A2a {
    fn call(
        &self,
        version: A2aVersion,
        principal: &Principal,
        framing: stream::Framing,
        last_event_id: Option<i64>,
    ) -> Call<'_> {
        Call {
            a2a: self,
            version,
            tenant: TenantId::of(principal),
            subject: principal.subject.clone(),
            task_admin: principal.scopes.contains(rpc::TASK_ADMIN_SCOPE),
            // Unknown or absent tiers count as the default tier, as for rate limits.
            tier: self.tiers.name(principal.tier.as_deref()).to_owned(),
            framing,
            last_event_id,
        }
    }

    /// A call on behalf of another protocol (MCP's Tasks extension), which has no A2A request.
    fn engine_call(&self, principal: &Principal) -> Call<'_> {
        self.call(A2aVersion::V1_0, principal, stream::Framing::JsonRpc(Id::from(0)), None)
    }

    /// The budgets, and the tier `principal`'s spending counts in (unknown or absent tiers count
    /// as the default, as for rate limits).
    pub fn budgets_for<'a>(&'a self, principal: &'a Principal) -> (&'a crate::models::budget::BudgetConfig, &'a str) {
        (&self.ctx.budgets, self.tiers.name(principal.tier.as_deref()))
    }

    /// Whether the test-only workflows (`probe`) are offered.
    pub fn test_workflows(&self) -> bool {
        self.ctx.test_workflows
    }

    /// How long a blocking `message/send` waits for its task to settle.
    pub fn blocking_wait(&self) -> Duration {
        self.blocking_wait
    }

    /// Starts a task of `workflow` with `text` as the user's message (and `metadata` on it), as a
    /// `message/send` would: within the caller's budget and its tenant's task cap.
    pub async fn submit(
        &self,
        principal: &Principal,
        workflow: &str,
        text: &str,
        metadata: serde_json::Map<String, Value>,
    ) -> Result<TaskRow, A2aError> {
        let message = wire::Message {
            message_id: uuid::Uuid::new_v4().to_string(),
            role: wire::Role::User,
            parts: vec![wire::Part::Text { text: text.to_owned(), metadata: None }],
            context_id: None,
            task_id: None,
            metadata: (!metadata.is_empty()).then_some(metadata),
        };
        self.engine_call(principal).create(&message, workflow, None).await
    }

    /// The task and its artifacts, if the caller may see it.
    pub async fn task(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> Result<(TaskRow, Vec<wire::Artifact>), A2aError> {
        self.engine_call(principal).load(id).await
    }

    /// Waits up to `wait` for the task to settle; the task and its artifacts then.
    pub async fn settle(
        &self,
        principal: &Principal,
        row: &TaskRow,
        wait: Duration,
    ) -> Result<(TaskRow, Vec<wire::Artifact>), A2aError> {
        stream::wait_settled(&self.db, &self.hub, TenantId::of(principal), row, wait).await?;
        self.task(principal, row.id).await
    }

    /// A page of the caller's tasks, newest first, and the next page's token.
    pub async fn page(
        &self,
        principal: &Principal,
        token: Option<&str>,
        size: usize,
    ) -> Result<(Vec<TaskRow>, Option<String>), A2aError> {
        self.engine_call(principal).page(token, size).await
    }

    /// Waits until the task settles, however long that takes; `None` when the process begins to
    /// shut down first.
    pub async fn settled(
        &self,
        principal: &Principal,
        row: &TaskRow,
    ) -> Result<Option<(TaskRow, Vec<wire::Artifact>)>, A2aError> {
        let mut row = row.clone();
        loop {
            let settled = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(None),
                r = self.settle(principal, &row, self.blocking_wait.max(Duration::from_secs(1))) => r?,
            };
            if settled.0.state.is_settled() {
                return Ok(Some(settled));
            }
            row = settled.0;
        }
    }

    /// Asks the task to stop at its next step boundary.
    pub async fn cancel(&self, principal: &Principal, id: uuid::Uuid) -> Result<(), A2aError> {
        self.engine_call(principal).request_cancel(id).await.map(|_| ())
    }
}

/// `GET /.well-known/agent-card.json`.
pub async fn agent_card(State(a2a): State<Arc<A2a>>, uri: http::Uri, headers: HeaderMap) -> Response {
    a2a.card.respond(&headers, uri.query())
}

/// `POST /a2a`: runs the operation the gate routed, on the message it parsed. Errors are
/// JSON-RPC errors under 200.
pub async fn handle(State(a2a): State<Arc<A2a>>, request: Request) -> Result<Response, AppError> {
    let (principal, version, message, op) = match admitted(&request) {
        Ok(Routed::Call(principal, version, message, op)) => (principal, version, message, op),
        Ok(Routed::NoCall) => return Ok(StatusCode::ACCEPTED.into_response()),
        Err((id, error)) => return Err(AppError::rpc(id, error)),
    };
    let call = a2a.call(version, principal, stream::Framing::JsonRpc(message.id.clone()), last_event_id(&request));
    let params = message.params.as_ref().unwrap_or(&Value::Null);
    let params = match version {
        A2aVersion::V1_0 => wire::json_names(params),
        A2aVersion::V0_3 => std::borrow::Cow::Borrowed(params),
    };
    match dispatch(&call, op, params.as_ref()).await {
        Ok(Outcome::Result(v)) => {
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], jsonrpc::success_bytes(&message.id, &v))
                .into_response())
        }
        Ok(Outcome::Stream(r)) => Ok(r),
        Ok(Outcome::Events(_)) => {
            Err(AppError::rpc(Some(&message.id), ErrorObject::new(code::INTERNAL_ERROR, "Internal error")))
        }
        Err(e) => Err(refusal(&e, version, &message.method, Some(&message.id))),
    }
}

/// What the gate decided about an A2A request.
enum Routed<'r> {
    /// A call: who makes it, in which version, the message and the operation.
    Call(&'r Principal, A2aVersion, &'r jsonrpc::Request, A2aOperation),
    /// A response or notification: A2A servers send no requests, so there is nothing it answers.
    NoCall,
}

/// The gate's decision about `request`, or the error answering it (and the call's id, if any).
fn admitted(request: &Request) -> Result<Routed<'_>, (Option<&Id>, ErrorObject)> {
    let internal = || (None, ErrorObject::new(code::INTERNAL_ERROR, "Internal error"));
    let Some(admitted) = request.extensions().get::<Admitted>() else {
        // The gate admits every A2A request; reaching here without its decision is a bug.
        tracing::error!("A2A request without the gate's decision");
        return Err(internal());
    };
    let (Some(principal), Some(Dialect::A2a(version))) = (&admitted.principal, admitted.dialect) else {
        tracing::error!("A2A request without a principal or an A2A dialect");
        return Err(internal());
    };
    let Some(jsonrpc::Message::Request(message)) = &admitted.message else { return Ok(Routed::NoCall) };
    let Some(op) = admitted.a2a else {
        return Err((Some(&message.id), ErrorObject::method_not_found(&message.method)));
    };
    Ok(Routed::Call(principal, version, message, op))
}

fn last_event_id(request: &Request) -> Option<i64> {
    request.headers().get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok())
}

/// Runs one operation: the one engine behind every binding.
async fn dispatch(call: &Call<'_>, op: A2aOperation, params: &Value) -> Result<Outcome, A2aError> {
    let result = dispatch_uncounted(call, op, params).await;
    if let Err(e) = &result
        && let Some(reason) = e.refusal()
    {
        call.a2a.metrics.refused(reason, call.tier.clone());
    }
    result
}

async fn dispatch_uncounted(call: &Call<'_>, op: A2aOperation, params: &Value) -> Result<Outcome, A2aError> {
    match op {
        A2aOperation::SendMessage => call.send(params, false).await,
        A2aOperation::SendStreamingMessage => call.send(params, true).await,
        A2aOperation::GetTask => call.get(params).await,
        A2aOperation::ListTasks => call.list(params).await,
        A2aOperation::CancelTask => call.cancel(params).await,
        A2aOperation::SubscribeToTask => call.subscribe(params).await,
        A2aOperation::CreatePushConfig => call.push_set(params).await,
        A2aOperation::GetPushConfig => call.push_get(params).await,
        A2aOperation::ListPushConfigs => call.push_list(params).await,
        A2aOperation::DeletePushConfig => call.push_delete(params).await,
        A2aOperation::GetExtendedCard => Ok(call.extended_card()),
    }
}

/// A failed call as the JSON-RPC error answering it (429 with `Retry-After` for a task cap).
fn refusal(e: &A2aError, version: A2aVersion, method: &str, id: Option<&Id>) -> AppError {
    if let A2aError::Internal(inner) = e {
        tracing::error!(error = %inner, method = %method, "A2A call failed");
    }
    let error = e.to_error_object(version);
    if let A2aError::TooManyTasks { .. } = e {
        let retry_after_secs = error::TASK_RETRY_AFTER_SECS;
        let status = http::StatusCode::TOO_MANY_REQUESTS;
        return AppError::RetryLater { status, id: id.cloned(), error, retry_after_secs };
    }
    AppError::rpc(id, error)
}
