//! A2A at the origin: the JSON-RPC endpoint `/a2a` (0.3 and 1.0 method names, picked by
//! `A2A-Version`), the agent card, durable tasks run by executors in every process, and SSE
//! streams that replay the task's event log.
//!
//! The gate in front (`app::gate`) has already verified the token, parsed the envelope, routed
//! the method and checked its scope; handlers here read the principal it left in the request and
//! touch tenant data only in transactions of that principal's tenant.

pub mod answer;
pub mod card;
mod error;
pub mod executor;
pub mod push;
mod rpc;
pub mod ssrf;
pub mod store;
pub mod stream;
pub mod wire;
pub mod workflow;

use std::sync::Arc;
use std::time::Duration;

use agentplane_core::auth::Principal;
use agentplane_core::catalogue::A2aVersion;
use agentplane_core::jsonrpc::{self, ErrorObject, code};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app::AppError;
use crate::app::config::Config;
use crate::data::db::{Database, TenantId};
use crate::models::embed::Embedder;
pub use error::A2aError;
use push::Pusher;
use rpc::{Call, Outcome};
use stream::Hub;
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

/// Bodies past the gate are already bounded; this only guards the second read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Starts the event listener and, unless `workers` is 0, this process's executor.
pub fn start(config: &Config, db: Database, embedder: Option<Embedder>, shutdown: CancellationToken) -> Arc<A2a> {
    let timing = stream::Timing {
        fallback_poll: Duration::from_millis(config.a2a.stream_poll_ms.max(10)),
        heartbeat: Duration::from_millis(config.a2a.heartbeat_ms.max(10)),
    };
    let hub = Hub::start(db.pool().clone(), timing, shutdown.clone());
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

/// `POST /a2a`. Errors are JSON-RPC errors under 200, except for a body that is no JSON-RPC
/// request (the parser's status).
pub async fn handle(State(a2a): State<Arc<A2a>>, request: Request) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    let Some(principal) = parts.extensions.get::<Principal>().cloned() else {
        // The gate authenticates every /a2a request; reaching here without a principal is a bug.
        tracing::error!("A2A request without a principal");
        return Err(AppError::rpc(None, ErrorObject::new(code::INTERNAL_ERROR, "Internal error")));
    };
    // The same reading as the gate's: header first, then the query parameter.
    let version_header = parts
        .headers
        .get("a2a-version")
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.query().and_then(|q| query_param(q, "A2A-Version")));
    let version = A2aVersion::from_header(version_header).map_err(|e| AppError::rpc(None, e))?;
    let last_event_id =
        parts.headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        AppError::rpc(None, ErrorObject::new(code::INVALID_REQUEST, "Invalid Request: unreadable body"))
    })?;
    let message = jsonrpc::parse(&bytes, &jsonrpc::Limits::default())?;
    let jsonrpc::Message::Request(request) = message else {
        // A2A servers send no requests, so there is nothing a client's response or notification
        // could answer.
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let Some(op) = op(version, &request.method) else {
        return Err(AppError::rpc(Some(&request.id), ErrorObject::method_not_found(&request.method)));
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
        Ok(Outcome::Result(v)) => {
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], jsonrpc::success_bytes(&request.id, &v))
                .into_response())
        }
        Ok(Outcome::Stream(r)) => Ok(r),
        Err(e) => {
            if let A2aError::Internal(inner) = &e {
                tracing::error!(error = %inner, method = %request.method, "A2A call failed");
            }
            Err(AppError::rpc(Some(&request.id), e.to_error_object(version)))
        }
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
}
