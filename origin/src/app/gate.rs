//! The origin's front gate: every request passes through the same core pipeline the edge runs
//! (token, JSON-RPC envelope, protocol version, route, scope), plus an origin-local rate limit.
//! Defence in depth: the origin trusts nothing the edge decided. Its `Gateway` is the last hop
//! (`Gateway::last_hop`), so the exchange ends at `Step::Forward`, which here means the handler.
//!
//! Besides the pipeline: MCP sessions (a 2025-revision session id is usable only with a token of
//! the tenant and subject that opened it; the gate persists a session rmcp opens and deletes one
//! a client ends, `protocol::mcp::sessions`), the request's span and log line, and the core's
//! `Admitted` put in the request's extensions, so handlers neither parse nor route again.
//!
//! The gateway is shared by every request of the process, so it is locked only for the two
//! memo operations (looking a token up, remembering a verdict); signatures are checked and bodies
//! parsed outside the lock, and a body is read only once its caller is admitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use agentplane_core::auth::Principal;
use agentplane_core::gateway::{self, Gateway, HttpRequest, RequestContext, Step, TenantState};
use agentplane_core::time::Timestamp;
use agentplane_core::{a2a_grpc, a2a_rest};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use rand::RngCore;
use uuid::Uuid;

use super::health::{self, DatabaseHealth};
use super::metrics::Refusal;
use super::streams::{StreamKind, StreamSlots};
use super::{AppError, AppState};
use crate::protocol::mcp::sessions::{Check, Sessions};

/// The gateway and the per-tenant limiter records of this process.
#[derive(Debug)]
pub struct Gate {
    gateway: Mutex<Gateway>,
    tenants: Mutex<HashMap<Uuid, TenantState>>,
    /// MCP sessions (2025 revisions), shared by every replica through the database.
    sessions: Arc<Sessions>,
    /// Each tenant's open long-lived streams in this process, capped.
    streams: Arc<StreamSlots>,
    /// Whether the database answers; while it does not, `/mcp` and `/a2a` get 503 at once.
    database: Option<Arc<DatabaseHealth>>,
    /// Conformance mode only: the principal of requests that carry no `Authorization` header
    /// (the official suite sends none). `None` everywhere else; absent from production builds.
    #[cfg(feature = "dev-tools")]
    anonymous: Option<Principal>,
}

const SESSION_HEADER: &str = "mcp-session-id";
const LAST_EVENT_ID_HEADER: &str = "last-event-id";

/// The request id the gate assigned, for handlers and logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request's span, for handlers whose work runs outside it.
#[derive(Debug, Clone)]
pub struct RequestSpan(pub tracing::Span);

impl Gate {
    pub fn new(gateway: Gateway, streams: Arc<StreamSlots>, sessions: Arc<Sessions>) -> Self {
        Self {
            gateway: Mutex::new(gateway.last_hop()),
            tenants: Mutex::new(HashMap::new()),
            sessions,
            streams,
            database: None,
            #[cfg(feature = "dev-tools")]
            anonymous: None,
        }
    }

    /// Refuses `/mcp` and `/a2a` with 503 while `health` says the database does not answer.
    pub fn with_database_health(mut self, health: Arc<DatabaseHealth>) -> Self {
        self.database = Some(health);
        self
    }

    /// Lets requests without an `Authorization` header through as `principal` (conformance mode).
    #[cfg(feature = "dev-tools")]
    pub fn with_anonymous(mut self, principal: Option<Principal>) -> Self {
        self.anonymous = principal;
        self
    }
}

impl Gate {
    /// The open streams of this process.
    pub fn streams(&self) -> &StreamSlots {
        &self.streams
    }

    /// Installs a refreshed key set (memoised tokens are forgotten).
    pub fn replace_keys(
        &self,
        keys: agentplane_core::auth::KeySet,
    ) -> Result<(), agentplane_core::gateway::GatewayError> {
        self.gateway.lock().unwrap_or_else(|e| e.into_inner()).replace_keys(keys)
    }
}

/// Whether the request opens a long-lived stream: A2A's streaming send and resubscription, MCP's
/// GET stream.
fn opens_stream(parts: &http::request::Parts, admitted: &agentplane_core::gateway::Admitted) -> bool {
    use agentplane_core::catalogue::A2aOperation;
    matches!(admitted.a2a, Some(A2aOperation::SendStreamingMessage | A2aOperation::SubscribeToTask))
        || (parts.method == http::Method::GET && parts.uri.path() == "/mcp")
        // It waits for its task as a quiet stream.
        || admitted.method.as_deref() == Some("tasks/result")
}

/// A refusal of the gate's own, in the form of the request's binding.
fn refuse(path: &str, e: AppError) -> Response {
    if a2a_rest::is_rest_path(path) {
        return crate::protocol::a2a::rest::error_response(e);
    }
    match e {
        // gRPC's trailers-only form: the status in `grpc-status` (UNAVAILABLE, RESOURCE_EXHAUSTED),
        // `Retry-After` kept, under HTTP 200 as gRPC clients expect.
        AppError::RetryLater { status, id, error, retry_after_secs } if a2a_grpc::is_grpc_path(path) => {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(retry_after_secs));
            let body = agentplane_core::jsonrpc::error_bytes(id.as_ref(), &error);
            AppError::Core(a2a_grpc::reply(gateway::Reply { status, headers, body })).into_response()
        }
        e => e.into_response(),
    }
}

/// Whether `path` is one of the protocols' (not a card, key or health path): what a database
/// outage refuses at once.
fn is_protocol_path(path: &str) -> bool {
    matches!(path, "/mcp" | "/a2a" | "/a2a/") || a2a_rest::is_rest_path(path) || a2a_grpc::is_grpc_path(path)
}

/// The answer to every `/mcp` and `/a2a` request while the database does not answer: nothing was
/// read or done, and the client is told when to try again.
fn database_unavailable() -> AppError {
    use agentplane_core::jsonrpc::{ErrorObject, code};
    let error = ErrorObject::new(code::ORIGIN_UNAVAILABLE, "Service unavailable: the database does not answer")
        .with_data(serde_json::json!({ "retryAfterMs": health::RETRY_AFTER_SECS * 1000 }));
    let (status, retry_after_secs) = (http::StatusCode::SERVICE_UNAVAILABLE, health::RETRY_AFTER_SECS);
    AppError::RetryLater { status, id: None, error, retry_after_secs }
}

/// How long a client refused for too many open streams should wait: streams end when their task
/// does, or when their client leaves, so a short wait usually finds a slot.
const STREAM_RETRY_AFTER_SECS: u64 = 5;

fn too_many_streams(admitted: &agentplane_core::gateway::Admitted, max: usize) -> AppError {
    use agentplane_core::jsonrpc::{ErrorObject, code};
    let error = ErrorObject::new(
        code::RATE_LIMITED,
        format!("Too many open streams: this tenant has {max} open here; retry when one ends"),
    )
    .with_data(serde_json::json!({ "limit": max, "retryAfterMs": STREAM_RETRY_AFTER_SECS * 1000 }));
    let id = admitted.message.as_ref().and_then(|m| m.id().cloned());
    let status = http::StatusCode::TOO_MANY_REQUESTS;
    AppError::RetryLater { status, id, error, retry_after_secs: STREAM_RETRY_AFTER_SECS }
}

/// The largest unread body of a refused request that is still read (and dropped) so that the
/// connection stays usable.
const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// How long draining such a body may take.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// What happens to the body of a request refused before it was read. A small one (declared at
/// most [`DRAIN_MAX_BYTES`]) is read and dropped in the background, unparsed, so the client reads
/// its refusal and keeps its connection. A larger one is not read at all: the connection closes
/// after the refusal, and a client still sending may see it reset. Reading a flood of large
/// refused bodies would cost the CPU everyone else needs.
fn refuse_unread(body: Body, headers: &http::HeaderMap, response: &mut Response) {
    if gateway::content_length(headers).is_some_and(|n| n <= DRAIN_MAX_BYTES) {
        tokio::spawn(async move {
            let _ = tokio::time::timeout(DRAIN_FOR, body.collect()).await;
        });
    } else {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
}

/// Whether reading a body failed because it was longer than the limit (not because the client
/// went away).
fn is_length_limit(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
}

pub fn now() -> Timestamp {
    // A clock before 1970 is a broken host; treating it as the epoch fails every token check.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    Timestamp::from_unix_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The request's MCP session, once it is known to be the caller's. Another tenant's or subject's
/// session is as unknown as one that never was (404), so an id reveals nothing; a
/// `Last-Event-ID` from another session's log is refused the same way.
async fn check_session(
    gate: &Gate,
    parts: &http::request::Parts,
    principal: Option<&Principal>,
) -> Result<Option<String>, AppError> {
    let header = |name| parts.headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok());
    let session = header(SESSION_HEADER).map(str::to_owned);
    let logged_stream = header(LAST_EVENT_ID_HEADER).and_then(crate::protocol::mcp::events::session_of);
    if let Some(stream) = logged_stream
        && session.as_deref().and_then(|s| Uuid::try_parse(s).ok()) != Some(stream)
    {
        return Err(AppError::SessionNotFound);
    }
    let (Some(id), Some(p)) = (&session, principal) else { return Ok(session) };
    match gate.sessions.check(id, p).await {
        Ok(Check::Owned) => Ok(session),
        Ok(Check::Unknown) => Err(AppError::SessionNotFound),
        Err(e) => {
            tracing::warn!(error = %e, "looking an MCP session up failed");
            Err(database_unavailable())
        }
    }
}

/// After the MCP service answered: persists a session it just opened (so every replica can serve
/// it), or ends everywhere the one a client deleted. rmcp answers a `DELETE` with 202; the SDKs
/// expect 200 or 204 (the Python SDK reports 202 as a failed termination).
async fn settle_session(
    gate: &Gate,
    sent: Option<&str>,
    closing: bool,
    mut response: Response,
    principal: Option<&Principal>,
) -> Response {
    let Some(p) = principal else { return response };
    if closing {
        if let Some(id) = sent
            && response.status().is_success()
        {
            if let Err(e) = gate.sessions.close(id, p).await {
                tracing::warn!(error = %e, session = id, "ending an MCP session in the database failed");
                return database_unavailable().into_response();
            }
            if response.status() == http::StatusCode::ACCEPTED {
                *response.status_mut() = http::StatusCode::OK;
            }
        }
        return response;
    }
    let opened = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(opened) = opened
        && sent != Some(opened.as_str())
    {
        match gate.sessions.open(&opened, p).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(session = opened, "MCP session opened without initialize parameters"),
            Err(e) => {
                tracing::warn!(error = %e, session = opened, "persisting an MCP session failed");
                return database_unavailable().into_response();
            }
        }
    }
    response
}

pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let gate = &state.gate;
    #[cfg(feature = "dev-tools")]
    if let Some(anonymous) = &gate.anonymous
        && !request.headers().contains_key(http::header::AUTHORIZATION)
    {
        let (parts, body) = request.into_parts();
        let session = match check_session(gate, &parts, Some(anonymous)).await {
            Ok(session) => session,
            Err(refusal) => return refusal.into_response(),
        };
        let mut request = Request::from_parts(parts, body);
        request.extensions_mut().insert(anonymous.clone());
        let closing = request.method() == http::Method::DELETE;
        let response = next.run(request).await;
        return settle_session(gate, session.as_deref(), closing, response, Some(anonymous)).await;
    }
    if let Some(health) = &gate.database
        && !health.up()
        && is_protocol_path(request.uri().path())
    {
        state.metrics.refused(Refusal::Unavailable, String::new());
        return refuse(request.uri().path(), database_unavailable());
    }
    let (parts, body) = request.into_parts();
    let mut entropy = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut entropy);
    let now = now();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // The body is read only when the exchange asks for it, after the caller is authenticated and
    // admitted: a tenant over its quota costs no read of what it sends. It lives in `read` so the
    // exchange can borrow it; a body never asked for (public paths, MCP's GET and DELETE) goes
    // on to the handler unread.
    let mut unread = Some(body);
    let read: OnceLock<Bytes> = OnceLock::new();
    let http_request = HttpRequest { method: &parts.method, path_and_query, headers: &parts.headers, body: None };
    let lock_gateway = || gate.gateway.lock().unwrap_or_else(|e| e.into_inner());
    let mut exchange = lock_gateway().begin(http_request, RequestContext { now, entropy });
    // The origin is the last hop: nothing is cached or answered here, so the exchange ends at
    // `Forward` (the handler) or a reply.
    loop {
        match exchange.poll() {
            Step::VerifySignature(check) => {
                let ok = check.verify_in_core().unwrap_or(false);
                exchange.handle_signature(&mut lock_gateway(), ok);
            }
            Step::Admit(check) => {
                let decision = {
                    let mut tenants = gate.tenants.lock().unwrap_or_else(|e| e.into_inner());
                    tenants.entry(check.tenant).or_default().admit(now, &check.quota)
                };
                exchange.handle_admission(decision, 0);
            }
            Step::ReadBody { max_bytes } => {
                let body = unread.take().unwrap_or_default();
                match axum::body::to_bytes(body, max_bytes.saturating_add(1)).await {
                    Ok(bytes) if bytes.len() <= max_bytes => exchange.handle_body(read.get_or_init(|| bytes)),
                    Ok(_) => exchange.handle_body_too_large(),
                    Err(e) if is_length_limit(&e) => exchange.handle_body_too_large(),
                    // The client went away mid-body; nobody reads this answer.
                    Err(_) => return http::StatusCode::BAD_REQUEST.into_response(),
                }
            }
            Step::Forward(_) => break,
            Step::Reply(reply) => {
                state.metrics.refused(Refusal::of_status(reply.status), state.metrics.tier(exchange.principal()));
                let mut response = AppError::Core(reply).into_response();
                if let Some(body) = unread.take() {
                    refuse_unread(body, &parts.headers, &mut response);
                }
                return response;
            }
            // Not asked of the last hop; answered as an edge without a cache would.
            Step::ReadGeneration(_) => exchange.handle_generation(0),
            Step::LookupCache(_) => exchange.handle_cache(None),
            Step::EvictCache(_) | Step::BumpGeneration(_) | Step::StoreCache(_) => {}
            Step::ReadOriginBody | Step::Respond(_) => exchange.handle_origin_failed(),
        }
    }
    let admitted = exchange.into_admitted();
    let request_id = admitted.request_id.clone();
    let principal = admitted.principal.clone();
    let tier = state.metrics.tier(principal.as_ref());
    let span = tracing::info_span!(
        "request",
        otel.name = admitted.method.as_deref().unwrap_or(parts.uri.path()),
        otel.kind = "server",
        request_id = %request_id,
        tenant = principal.as_ref().map(|p| p.tenant.to_string()).unwrap_or_default(),
        subject = principal.as_ref().map(|p| p.subject.as_str()).unwrap_or_default(),
        method = admitted.method.as_deref().unwrap_or_default(),
        tool = admitted.tool.as_deref().unwrap_or_default(),
    );
    if let Some(caller) = &admitted.caller_trace {
        super::telemetry::continue_trace(&span, caller);
    }
    // The gate's checks that need I/O: the MCP session and a stream slot.
    let gate_span = tracing::info_span!(parent: &span, "gate");
    let session =
        match tracing::Instrument::instrument(check_session(gate, &parts, principal.as_ref()), gate_span.clone()).await
        {
            Ok(session) => session,
            Err(refusal) => {
                let reason = if matches!(refusal, AppError::RetryLater { .. }) {
                    Refusal::Unavailable
                } else {
                    Refusal::Invalid
                };
                state.metrics.refused(reason, tier);
                return refusal.into_response();
            }
        };
    let closing_session = parts.method == http::Method::DELETE;
    let stream_permit = match (&principal, opens_stream(&parts, &admitted)) {
        (Some(p), true) => {
            let kind = if admitted.a2a.is_some() { StreamKind::A2a } else { StreamKind::Mcp };
            match gate.streams.try_acquire(p.tenant, kind) {
                Some(permit) => Some(permit),
                None => {
                    state.metrics.refused(Refusal::TooManyStreams, tier);
                    return refuse(parts.uri.path(), too_many_streams(&admitted, gate.streams.max_per_tenant()));
                }
            }
        }
        _ => None,
    };
    let body = match (read.into_inner(), unread) {
        (Some(bytes), _) => Body::from(bytes),
        (None, Some(body)) => body,
        (None, None) => Body::empty(),
    };
    let mut request = Request::from_parts(parts, body);
    let principal_for_session = principal.clone();
    if let Some(p) = principal {
        request.extensions_mut().insert(p);
    }
    request.extensions_mut().insert(RequestId(request_id.clone()));
    // Handlers whose work runs on tasks of their own (rmcp's) parent their spans on it.
    request.extensions_mut().insert(RequestSpan(span.clone()));
    // What the gate decided travels with the request: handlers neither parse nor route again.
    request.extensions_mut().insert(admitted);
    let started = std::time::Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    // An SSE stream, or a gRPC answer (a streaming call's events, or one status): the permit
    // lives as long as the body.
    let is_grpc = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if let Some(permit) = stream_permit
        && (gateway::is_event_stream(response.headers()) || is_grpc)
    {
        let (head, body) = response.into_parts();
        response = Response::from_parts(head, permit.hold_with(body));
    }
    if let Ok(v) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let response =
        settle_session(gate, session.as_deref(), closing_session, response, principal_for_session.as_ref()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "served"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grpc_call_is_refused_in_grpc_s_form() {
        let r = refuse("/lf.a2a.v1.A2AService/GetTask", database_unavailable());
        assert_eq!(r.status(), http::StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "14", "UNAVAILABLE");
        assert_eq!(r.headers()[http::header::RETRY_AFTER], health::RETRY_AFTER_SECS.to_string().as_str());
        assert!(is_protocol_path("/lf.a2a.v1.A2AService/SendMessage") && !is_protocol_path("/health"));
        let r = refuse("/mcp", database_unavailable());
        assert_eq!(r.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
