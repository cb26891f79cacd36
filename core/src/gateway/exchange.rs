//! One request on its way through the gateway: a state machine its I/O shell drives.
//!
//! [`Exchange::poll`] names the one thing the shell must do next ([`Step`]); the shell does it
//! and reports the outcome with the matching `handle_*` method; the exchange continues where it
//! stopped. Polling again without reporting returns the same step, so a shell cannot skip one.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::reply::{self, Reply, ReplyBuilder};
use super::{Gateway, HttpRequest, Shared, header};
use crate::auth::{AuthError, Principal, SignatureCheck, TokenDigest, UnverifiedToken};
use crate::cache::{self, CacheEntry, CacheHints, CacheKey, CacheRule, KeyParts};
use crate::catalogue::{self, A2aOperation, A2aVersion, Dialect, Endpoint, McpRevision, Route, Streaming, Target};
use crate::jsonrpc::{self, ErrorObject, Id, Message, code};
use crate::ratelimit::{Quota, RateDecision};
use crate::time::Timestamp;
use crate::trace::TraceParent;

/// The limiter question of [`Step::Admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitCheck {
    pub tenant: Uuid,
    pub quota: Quota,
}

/// Whether a response came from the edge cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Not a cacheable call.
    Bypass,
    Miss,
    Hit,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Bypass => "bypass",
            CacheStatus::Miss => "miss",
            CacheStatus::Hit => "hit",
        }
    }
}

/// What to send to the origin. The body is the client's, unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    /// Whether the request may go to a second origin when the first cannot be reached
    /// ([`crate::gateway::Origins::attempts`]): it repeats harmlessly. Never a call that may
    /// have written or started work (a `tools/call` that is not cacheable, an A2A send).
    pub retryable: bool,
}

/// A result to keep in the edge cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    pub key: CacheKey,
    pub bytes: Vec<u8>,
    pub ttl_ms: u64,
}

/// The status and headers of the client's response to a forwarded request; its body is the
/// origin's, streamed or as buffered for [`Step::ReadOriginBody`].
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Once the origin's body has been passed on in full, bump this tenant's data generation
    /// again before the client's body ends. A write streamed back (MCP's session revisions answer
    /// a POST with an event stream) commits after its response head: the bump made at the head
    /// came too early for a read that ran meanwhile, whose stale answer this retires.
    pub bump_after_body: Option<Uuid>,
}

/// What the gateway decided about a request it let through, handed to the origin's handlers so
/// they neither authenticate, parse nor route it again.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub request_id: String,
    /// The caller's trace context (header, else MCP `_meta`): the parent of the handler's span.
    pub caller_trace: Option<TraceParent>,
    /// The verified caller; `None` on public paths.
    pub principal: Option<Principal>,
    /// The JSON-RPC message; `None` for MCP's GET stream, session DELETE and public paths.
    pub message: Option<Message>,
    pub dialect: Option<Dialect>,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub a2a: Option<A2aOperation>,
}

/// What the shell must do next.
#[derive(Debug)]
#[must_use]
pub enum Step<'e> {
    /// The token is new: check this signature (with [`SignatureCheck::verify_in_core`], or the
    /// runtime's own crypto), then [`Exchange::handle_signature`].
    VerifySignature(&'e SignatureCheck),
    /// Run [`super::TenantState::admit`] on the tenant's record, then
    /// [`Exchange::handle_admission`] with the decision and the record's data generation.
    Admit(RateLimitCheck),
    /// The caller is admitted and the request was begun without its body: read at most
    /// `max_bytes` of it, then [`Exchange::handle_body`] (or [`Exchange::handle_body_too_large`]).
    ReadBody { max_bytes: usize },
    /// Read the tenant's data generation, then [`Exchange::handle_generation`].
    ReadGeneration(Uuid),
    /// Look the key up in the edge cache, then [`Exchange::handle_cache`].
    LookupCache(&'e CacheKey),
    /// The stored entry is dead: remove it (no answer needed).
    EvictCache(CacheKey),
    /// Send the request to the origin with the client's body, then
    /// [`Exchange::handle_origin_head`] or [`Exchange::handle_origin_failed`]. At the origin
    /// ([`Gateway::last_hop`]) this means: run the handler.
    Forward(Forward),
    /// Buffer the origin's body, then [`Exchange::handle_origin_body`] (or
    /// [`Exchange::handle_origin_failed`]).
    ReadOriginBody,
    /// The call wrote tenant data: bump the tenant's generation before the response goes out
    /// (and again after its body: [`ResponseHead::bump_after_body`]).
    BumpGeneration(Uuid),
    /// Keep this entry in the edge cache; the response need not wait for it.
    StoreCache(StoreEntry),
    /// Send the origin's response with this status and these headers. The exchange is over.
    Respond(ResponseHead),
    /// Send this reply. The exchange is over.
    Reply(Reply),
}

/// The verified caller of a request and its tier's quota.
#[derive(Debug)]
struct Caller {
    principal: Principal,
    token: TokenDigest,
    quota: Option<Quota>,
}

/// What the route of a JSON-RPC call decided, owned.
#[derive(Debug)]
struct Call {
    id: Option<Id>,
    dialect: Dialect,
    method: Option<String>,
    target: Target,
    streaming: Streaming,
    cache: Option<CacheRule>,
    writes: bool,
    tool: Option<String>,
    a2a: Option<A2aOperation>,
}

#[derive(Debug)]
enum State {
    /// Waits for [`Exchange::handle_signature`].
    Signature(Box<UnverifiedToken>),
    /// Authenticated; the rate limit, then the envelope, version, route and scope checks run
    /// next. The limiter comes first: a tenant over its quota costs no parsing.
    Checks,
    /// Waits for [`Exchange::handle_admission`].
    Admission(RateLimitCheck),
    /// Waits for [`Exchange::handle_body`].
    Body,
    /// Admitted; a local reply or the cache comes next.
    Admitted,
    /// Waits for [`Exchange::handle_generation`].
    Generation(Uuid),
    /// Waits for [`Exchange::handle_cache`].
    Cache(CacheKey),
    Evict(CacheKey),
    /// Waits for [`Exchange::handle_origin_head`].
    Forward,
    /// Waits for [`Exchange::handle_origin_body`].
    OriginBody(ResponseHead),
    Finish(Box<Finish>),
    Reply(Reply),
    Done,
}

/// The effects of the origin's answer, handed out one step at a time.
#[derive(Debug)]
struct Finish {
    bump: Option<Uuid>,
    store: Option<StoreEntry>,
    head: ResponseHead,
}

/// Headers never passed on: hop-by-hop ones (RFC 9110 section 7.6.1), ones the adapter recomputes,
/// and our own, which a client must not be able to forge.
const DROPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    header::TRACEPARENT,
    header::REQUEST_ID,
];

/// The largest body whose id a refused request's 429 echoes.
const PEEK_ID_MAX_BYTES: usize = 16 * 1024;

/// Response headers that describe the origin's connection or encoding of the body rather than
/// the body itself; the runtime sets its own when the body is passed on.
const ORIGIN_HOP_HEADERS: &[&str] = &["connection", "keep-alive", "transfer-encoding", "content-length"];

/// One request through the gateway. Made by [`Gateway::begin`].
#[derive(Debug)]
pub struct Exchange<'r> {
    shared: Arc<Shared>,
    last_hop: bool,
    req: HttpRequest<'r>,
    now: Timestamp,
    request_id: String,
    request_id_is_trace: bool,
    /// The caller's trace context: its `traceparent` header, else (MCP) `params._meta`.
    caller_trace: Option<TraceParent>,
    /// Ours: the caller's trace (or a new one) and this hop's span id.
    traceparent: TraceParent,
    endpoint: Option<Endpoint>,
    /// How the request is read and answered.
    binding: Binding,
    caller: Option<Caller>,
    message: Option<Message>,
    call: Option<Call>,
    decision: Option<RateDecision>,
    generation: Option<u64>,
    cache_key: Option<CacheKey>,
    cache_status: CacheStatus,
    /// What the span reports: a signature checked (not a remembered verdict), the origin's answer.
    signature_checked: bool,
    origin: OriginOutcome,
    state: State,
}

/// Whether and how the origin answered, for the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginOutcome {
    NotAsked,
    Answered(StatusCode),
    Unreachable,
}

/// A request target without its query.
fn path_of(path_and_query: &str) -> &str {
    path_and_query.split_once('?').map_or(path_and_query, |(p, _)| p)
}

impl<'r> Exchange<'r> {
    pub(super) fn new(
        shared: Arc<Shared>,
        last_hop: bool,
        req: HttpRequest<'r>,
        now: Timestamp,
        ids: super::Ids,
    ) -> Self {
        Self {
            shared,
            last_hop,
            req,
            now,
            request_id: ids.request_id,
            request_id_is_trace: ids.request_id_is_trace,
            caller_trace: ids.caller,
            traceparent: ids.next_hop,
            endpoint: None,
            binding: Binding::of(last_hop, path_of(req.path_and_query)),
            caller: None,
            message: None,
            call: None,
            decision: None,
            generation: None,
            cache_key: None,
            cache_status: CacheStatus::Bypass,
            signature_checked: false,
            origin: OriginOutcome::NotAsked,
            state: State::Done,
        }
    }

    pub(super) fn reply_with(mut self, reply: Reply) -> Self {
        self.state = State::Reply(reply);
        self
    }

    /// A request for a public path: forwarded as it is, with no caller.
    pub(super) fn passthrough(mut self) -> Self {
        self.state = State::Admitted;
        self
    }

    pub(super) fn needs_signature(mut self, endpoint: Endpoint, token: UnverifiedToken) -> Self {
        self.endpoint = Some(endpoint);
        self.state = State::Signature(Box::new(token));
        self
    }

    pub(super) fn authenticated(mut self, endpoint: Endpoint, principal: Principal, token: TokenDigest) -> Self {
        self.endpoint = Some(endpoint);
        self.set_caller(principal, token);
        self
    }

    fn set_caller(&mut self, principal: Principal, token: TokenDigest) {
        let quota = self.shared.config.tiers.quota(principal.tier.as_deref()).copied();
        self.caller = Some(Caller { principal, token, quota });
        self.state = State::Checks;
    }

    /// The next thing to do. See [`Step`].
    pub fn poll(&mut self) -> Step<'_> {
        self.advance();
        match self.state {
            State::Signature(_)
            | State::Admission(_)
            | State::Body
            | State::Generation(_)
            | State::Cache(_)
            | State::Forward
            | State::OriginBody(_) => self.awaited_step(),
            _ => self.take_step(),
        }
    }

    /// Runs the decisions that need nothing from the shell.
    fn advance(&mut self) {
        loop {
            self.state = match std::mem::replace(&mut self.state, State::Done) {
                State::Checks => self.checks(),
                State::Admitted => self.after_admission(),
                other => {
                    self.state = other;
                    return;
                }
            };
        }
    }

    /// A step that waits for the shell's answer; it is repeated until that answer comes.
    fn awaited_step(&self) -> Step<'_> {
        match &self.state {
            State::Signature(t) => Step::VerifySignature(&t.check),
            State::Admission(check) => Step::Admit(*check),
            State::Body => Step::ReadBody { max_bytes: self.shared.config.limits.max_body_bytes },
            State::Generation(tenant) => Step::ReadGeneration(*tenant),
            State::Cache(key) => Step::LookupCache(key),
            State::Forward => Step::Forward(self.forward()),
            State::OriginBody(_) => Step::ReadOriginBody,
            _ => Step::Reply(self.finished()),
        }
    }

    /// A step handed out once.
    fn take_step(&mut self) -> Step<'static> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Reply(r) => Step::Reply(match self.binding {
                Binding::JsonRpc => r,
                Binding::Rest => rest_reply(r),
                Binding::Grpc => crate::a2a_grpc::reply(r),
            }),
            State::Evict(key) => {
                self.state = State::Forward;
                Step::EvictCache(key)
            }
            State::Finish(mut f) => {
                if let Some(tenant) = f.bump.take() {
                    self.state = State::Finish(f);
                    Step::BumpGeneration(tenant)
                } else if let Some(entry) = f.store.take() {
                    self.state = State::Finish(f);
                    Step::StoreCache(entry)
                } else {
                    Step::Respond(f.head)
                }
            }
            _ => Step::Reply(self.finished()),
        }
    }

    /// Polled after the exchange ended: a shell bug, answered rather than panicked on.
    fn finished(&self) -> Reply {
        let e = ErrorObject::new(code::INTERNAL_ERROR, "Internal error: request already answered");
        self.builder().jsonrpc_error(StatusCode::INTERNAL_SERVER_ERROR, None, &e)
    }

    /// The verdict on [`Step::VerifySignature`]. `gateway` completes the token's claims and
    /// remembers a good one; it is needed only for this call, so a shell that shares its gateway
    /// checks signatures outside any lock.
    pub fn handle_signature(&mut self, gateway: &mut Gateway, signature_ok: bool) {
        let State::Signature(_) = self.state else { return };
        let State::Signature(token) = std::mem::replace(&mut self.state, State::Done) else { return };
        self.signature_checked = true;
        match gateway.auth.settle(*token, signature_ok, self.now) {
            Ok((principal, digest)) => self.set_caller(principal, digest),
            Err(e) => self.state = State::Reply(self.auth_reply(&AuthError::from(e), None)),
        }
    }

    /// The limiter's answer to [`Step::Admit`] and the generation of the same tenant record.
    pub fn handle_admission(&mut self, decision: RateDecision, generation: u64) {
        let State::Admission(_) = self.state else { return };
        self.decision = Some(decision);
        self.generation = Some(generation);
        self.state = if decision.allowed {
            State::Checks
        } else {
            // The 429 answers the call when its id is cheap to read; a large body is not parsed,
            // and one not read yet is not read.
            let id = self.req.body.and_then(|b| jsonrpc::peek_id(b, PEEK_ID_MAX_BYTES));
            State::Reply(self.builder().rate_limited(id.as_ref(), &decision))
        };
    }

    /// The body asked for by [`Step::ReadBody`].
    pub fn handle_body(&mut self, body: &'r [u8]) {
        let State::Body = self.state else { return };
        self.req.body = Some(body);
        self.state = State::Checks;
    }

    /// The body asked for by [`Step::ReadBody`] is longer than its `max_bytes`: a 413.
    pub fn handle_body_too_large(&mut self) {
        let State::Body = self.state else { return };
        let mut r = self.builder().payload_too_large(self.shared.config.limits.max_body_bytes);
        self.add_response_headers(&mut r.headers);
        self.state = State::Reply(r);
    }

    /// The answer to [`Step::ReadGeneration`].
    pub fn handle_generation(&mut self, generation: u64) {
        let State::Generation(_) = self.state else { return };
        self.generation = Some(generation);
        self.state = State::Admitted;
    }

    /// The answer to [`Step::LookupCache`]: the stored bytes, if any.
    pub fn handle_cache(&mut self, stored: Option<&[u8]>) {
        let State::Cache(_) = self.state else { return };
        let State::Cache(key) = std::mem::replace(&mut self.state, State::Forward) else { return };
        let Some(stored) = stored else { return };
        let entry = CacheEntry::read(stored, self.now);
        match (entry, self.call.as_ref().and_then(|c| c.id.as_ref())) {
            (Some(entry), Some(id)) => {
                self.cache_status = CacheStatus::Hit;
                let mut r = self.builder().json_body(StatusCode::OK, entry.response_for(id));
                self.add_response_headers(&mut r.headers);
                self.state = State::Reply(r);
            }
            _ => self.state = State::Evict(key),
        }
    }

    /// The origin's status and headers after [`Step::Forward`].
    pub fn handle_origin_head(&mut self, status: StatusCode, mut headers: HeaderMap) {
        let State::Forward = self.state else { return };
        self.origin = OriginOutcome::Answered(status);
        let declared_len = super::content_length(&headers);
        for name in ORIGIN_HOP_HEADERS {
            headers.remove(*name);
        }
        let head = ResponseHead { status, headers, bump_after_body: None };
        self.state =
            if self.wants_body(&head, declared_len) { State::OriginBody(head) } else { self.finish(head, None) };
    }

    /// The origin's buffered body after [`Step::ReadOriginBody`].
    pub fn handle_origin_body(&mut self, body: &[u8]) {
        let State::OriginBody(_) = self.state else { return };
        let State::OriginBody(head) = std::mem::replace(&mut self.state, State::Done) else { return };
        self.state = self.finish(head, Some(body));
    }

    /// The origin could not be reached, or its answer could not be read: a 502 with the JSON-RPC
    /// id echoed, so the client can match the failure to its call.
    pub fn handle_origin_failed(&mut self) {
        let (State::Forward | State::OriginBody(_)) = self.state else { return };
        self.origin = OriginOutcome::Unreachable;
        let id = self.call.as_ref().and_then(|c| c.id.as_ref());
        let e = ErrorObject::new(code::ORIGIN_UNAVAILABLE, "Origin unavailable");
        let mut r = self.builder().jsonrpc_error(StatusCode::BAD_GATEWAY, id, &e);
        self.add_response_headers(&mut r.headers);
        self.state = State::Reply(r);
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn traceparent(&self) -> &TraceParent {
        &self.traceparent
    }

    /// This hop's span, ended at `end` with `status`: what an edge exports (`crate::otlp`). Its
    /// id is the one the forwarded `traceparent` names, so the next hop's spans are its children.
    pub fn span(&self, end: Timestamp, status: StatusCode) -> crate::otlp::SpanRecord {
        let path = path_of(self.req.path_and_query);
        let method = self.call.as_ref().and_then(|c| c.method.as_deref());
        let mut attributes = vec![
            ("http.request.method", self.req.method.as_str().to_owned()),
            ("url.path", path.to_owned()),
            ("http.response.status_code", status.as_u16().to_string()),
            ("agentplane.request_id", self.request_id.clone()),
        ];
        if let Some(m) = method {
            attributes.push(("rpc.method", m.to_owned()));
        }
        // What the edge did on the way: the token (a signature checked, or a verdict it
        // remembered), the limiter, the cache, the origin.
        let auth = match (&self.caller, self.signature_checked) {
            (None, _) => "none",
            (Some(_), true) => "signature",
            (Some(_), false) => "memo",
        };
        let limit = match self.decision {
            None => "none",
            Some(d) if d.allowed => "admitted",
            Some(_) => "refused",
        };
        let origin = match self.origin {
            OriginOutcome::NotAsked => "not asked".to_owned(),
            OriginOutcome::Answered(s) => s.as_u16().to_string(),
            OriginOutcome::Unreachable => "unreachable".to_owned(),
        };
        attributes.push(("agentplane.auth", auth.to_owned()));
        attributes.push(("agentplane.limit", limit.to_owned()));
        attributes.push(("agentplane.cache", self.cache_status.as_str().to_owned()));
        attributes.push(("agentplane.origin", origin));
        crate::otlp::SpanRecord {
            span: self.traceparent,
            parent: self.caller_trace.map(|t| t.parent_id),
            name: format!("edge {}", method.unwrap_or(path)),
            start: self.now,
            end,
            attributes,
            status: status.as_u16(),
        }
    }

    /// The caller's trace context (its span is our span's parent), if it sent one.
    pub fn caller_trace(&self) -> Option<&TraceParent> {
        self.caller_trace.as_ref()
    }

    /// The verified caller, once the token has been checked.
    pub fn principal(&self) -> Option<&Principal> {
        self.caller.as_ref().map(|c| &c.principal)
    }

    /// Until when a remembered verdict on the caller's token may be used: its expiry plus the
    /// verifier's leeway.
    pub fn verdict_valid_until(&self) -> Option<Timestamp> {
        Some(self.principal()?.valid_until(self.shared.config.auth.leeway_secs))
    }

    /// The parsed JSON-RPC message, once the checks have passed.
    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }

    /// The protocol and version the request speaks, once the checks have passed.
    pub fn dialect(&self) -> Option<Dialect> {
        self.call.as_ref().map(|c| c.dialect)
    }

    /// The JSON-RPC method, when the request is a JSON-RPC call.
    pub fn method(&self) -> Option<&str> {
        self.call.as_ref().and_then(|c| c.method.as_deref())
    }

    /// The tool of a `tools/call`.
    pub fn tool(&self) -> Option<&str> {
        self.call.as_ref().and_then(|c| c.tool.as_deref())
    }

    pub fn streaming(&self) -> Streaming {
        match &self.call {
            Some(c) => c.streaming,
            // MCP's GET stream; public paths are plain documents the adapter may stream anyway.
            None => Streaming::Negotiated,
        }
    }

    /// Hands what was decided over to the origin's handlers, ending the exchange.
    pub fn into_admitted(self) -> Admitted {
        let call = self.call;
        Admitted {
            request_id: self.request_id,
            caller_trace: self.caller_trace,
            principal: self.caller.map(|c| c.principal),
            message: self.message,
            dialect: call.as_ref().map(|c| c.dialect),
            method: call.as_ref().and_then(|c| c.method.clone()),
            tool: call.as_ref().and_then(|c| c.tool.clone()),
            a2a: call.and_then(|c| c.a2a),
        }
    }

    /// The limiter, then content type, envelope, protocol version, route and scope: everything
    /// about the request that needs no I/O but the body, run after authentication so nobody
    /// unauthenticated costs a parse. A body the shell has not read is asked for only here,
    /// after admission and the header checks.
    fn checks(&mut self) -> State {
        let Some(endpoint) = self.endpoint else { return State::Admitted };
        let Some(caller) = &self.caller else { return State::Admitted };
        if self.decision.is_none()
            && let Some(quota) = caller.quota
        {
            return State::Admission(RateLimitCheck { tenant: caller.principal.tenant, quota });
        }
        let config = &self.shared.config;
        let method = self.req.method;
        if endpoint == Endpoint::Mcp && (method == Method::GET || method == Method::DELETE) {
            // MCP's GET stream and session DELETE carry no JSON-RPC body; the origin owns them.
            return State::Admitted;
        }
        if endpoint == Endpoint::Console {
            // Who the session is, or signing in: the token and the limit are all there is to check.
            return State::Admitted;
        }
        let reply = self.builder();
        // A REST read or delete has no body to look at; a gRPC call's is protobuf, the origin's.
        let bodiless = match self.binding {
            Binding::JsonRpc => false,
            Binding::Rest => method != Method::POST,
            Binding::Grpc => true,
        };
        let content_type = super::header_str(self.req.headers, http::header::CONTENT_TYPE.as_str());
        if self.binding == Binding::Grpc && !content_type.is_some_and(crate::a2a_grpc::is_grpc_content_type) {
            let e = ErrorObject::new(code::A2A_CONTENT_TYPE_NOT_SUPPORTED, "Content-Type must be application/grpc");
            return State::Reply(reply.jsonrpc_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, &e));
        }
        if let Some(ct) = content_type
            && !bodiless
            && !is_json_content_type(ct)
        {
            // A2A has an error of its own for this (ContentTypeNotSupportedError).
            let code =
                if endpoint == Endpoint::A2a { code::A2A_CONTENT_TYPE_NOT_SUPPORTED } else { code::INVALID_REQUEST };
            let e = ErrorObject::new(code, "Invalid Request: Content-Type must be application/json");
            return State::Reply(reply.jsonrpc_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, &e));
        }
        // MCP's transport answers a request it cannot take with 400; A2A's JSON-RPC binding
        // answers every JSON-RPC error with 200.
        let invalid = if endpoint == Endpoint::A2a { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        let body = if bodiless { Some(&b""[..]) } else { self.req.body };
        let Some(body) = body else { return State::Body };
        let parsed = match self.binding {
            Binding::Rest => match self.rest_call(body) {
                Ok(m) => Ok(m),
                Err(r) => return State::Reply(*r),
            },
            Binding::Grpc => Ok(crate::a2a_grpc::request(path_of(self.req.path_and_query))),
            Binding::JsonRpc => jsonrpc::parse(body, &config.limits),
        };
        let message = match parsed {
            Ok(m) => m,
            Err(e) => {
                let status = if e.http_status() == StatusCode::BAD_REQUEST { invalid } else { e.http_status() };
                return State::Reply(reply.jsonrpc_error(status, e.id.as_ref(), &e.to_error_object()));
            }
        };
        let id = message.id().cloned();
        let bad_request = |e: ErrorObject| State::Reply(reply.jsonrpc_error(invalid, id.as_ref(), &e));
        let dialect = match endpoint {
            Endpoint::Mcp => match mcp_revision(self.req.headers) {
                Ok(rev) => Dialect::Mcp(rev),
                Err(e) => return bad_request(e),
            },
            // gRPC exists in 1.0 only (0.3's is another service); no version header means 1.0.
            Endpoint::A2a if self.binding == Binding::Grpc => {
                match super::header_str(self.req.headers, header::A2A_VERSION).map(str::trim) {
                    None | Some("") => Dialect::A2a(A2aVersion::V1_0),
                    v @ Some(_) => match A2aVersion::from_header(v) {
                        Ok(A2aVersion::V1_0) => Dialect::A2a(A2aVersion::V1_0),
                        Ok(A2aVersion::V0_3) | Err(_) => {
                            let e = ErrorObject::new(
                                code::A2A_VERSION_NOT_SUPPORTED,
                                "A2A version not supported over gRPC; supported: 1.0",
                            );
                            return bad_request(e);
                        }
                    },
                }
            }
            Endpoint::A2a => match self.a2a_version() {
                Ok(v) => Dialect::A2a(v),
                Err(e) => return bad_request(e),
            },
            Endpoint::Console => return State::Admitted,
        };
        if let Dialect::Mcp(Some(rev)) = dialect
            && rev.is_stateless()
            && let Err(e) = check_mcp_headers(self.req.headers, &message)
        {
            return bad_request(e);
        }
        let route = match catalogue::route(&message, dialect, &config.tools) {
            Ok(r) => r,
            Err(e) => {
                // 2026-07-28 answers an unknown method with 404; earlier revisions and A2A with a
                // JSON-RPC error in a 200.
                let status = match (e.code, dialect) {
                    (code::METHOD_NOT_FOUND, Dialect::Mcp(Some(r))) if r.is_stateless() => StatusCode::NOT_FOUND,
                    _ => StatusCode::OK,
                };
                return State::Reply(reply.jsonrpc_error(status, id.as_ref(), &e));
            }
        };
        if let Some(required) = route.scope
            && !caller.principal.scopes.contains(required)
        {
            let e = AuthError::InsufficientScope { required: required.to_owned() };
            return State::Reply(self.auth_reply(&e, id.as_ref()));
        }
        // A gRPC call's parameters are in protobuf, which the origin reads.
        if let (Some(op), Dialect::A2a(version)) = (route.a2a, dialect)
            && self.binding != Binding::Grpc
            && let Err(e) = catalogue::check_a2a_params(op, version, message.params())
        {
            return State::Reply(reply.jsonrpc_error(invalid, id.as_ref(), &e));
        }
        let call = Call::of(&route, id);
        self.call = Some(call);
        if self.caller_trace.is_none()
            && let Some(meta) = crate::trace::from_meta(message.params())
        {
            self.join_trace(meta);
        }
        self.message = Some(message);
        State::Admitted
    }

    /// Joins the trace a request's `_meta` names (SEP-414) when no header named one: our span
    /// stays, its trace (and a request id drawn from it) become the caller's.
    fn join_trace(&mut self, caller: TraceParent) {
        self.traceparent = TraceParent { trace_id: caller.trace_id, flags: caller.flags, ..self.traceparent };
        if self.request_id_is_trace {
            self.request_id = self.traceparent.trace_id_hex();
        }
        self.caller_trace = Some(caller);
    }

    /// The `A2A-Version` a request asks for, by header or query parameter.
    fn a2a_version(&self) -> Result<A2aVersion, ErrorObject> {
        let query = self.req.path_and_query.split_once('?').map(|(_, q)| q);
        let v = super::header_str(self.req.headers, header::A2A_VERSION)
            .or_else(|| query.and_then(|q| query_param(q, "A2A-Version")));
        A2aVersion::from_header(v)
    }

    /// The JSON-RPC call a REST request stands for, or the reply refusing it.
    fn rest_call(&self, body: &[u8]) -> Result<Message, Box<Reply>> {
        let reply = self.builder();
        let version =
            self.a2a_version().map_err(|e| Box::new(reply.jsonrpc_error(StatusCode::BAD_REQUEST, None, &e)))?;
        let (path, query) = match self.req.path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (self.req.path_and_query, None),
        };
        crate::a2a_rest::request(self.req.method, path, query, body, version, &self.shared.config.limits).map_err(|e| {
            let (status, error) = e.to_error();
            let mut r = reply.jsonrpc_error(status, None, &error);
            if status == StatusCode::METHOD_NOT_ALLOWED
                && let Ok(allow) = HeaderValue::from_str(&crate::a2a_rest::allowed(path))
            {
                r.headers.insert(http::header::ALLOW, allow);
            }
            Box::new(r)
        })
    }

    /// After the limiter: `ping` answered here, then the cache, then the origin. The origin
    /// itself (the last hop) answers and caches nothing here.
    fn after_admission(&mut self) -> State {
        if self.last_hop {
            return State::Forward;
        }
        let Some(call) = &self.call else { return State::Forward };
        if call.target == Target::EdgePong
            && let Some(id) = &call.id
        {
            let mut r = self.builder().result(id, &serde_json::json!({}));
            self.add_response_headers(&mut r.headers);
            return State::Reply(r);
        }
        let (Some(rule), Some(_), Some(caller)) = (call.cache, &call.id, &self.caller) else { return State::Forward };
        let Some(generation) = self.generation else { return State::Generation(caller.principal.tenant) };
        let Some(method) = call.method.as_deref() else { return State::Forward };
        let params = self.message.as_ref().and_then(Message::params);
        let key = cache::cache_key(&KeyParts {
            tenant: caller.principal.tenant,
            generation,
            dialect: call.dialect,
            method,
            params,
            scope: rule.scope,
            token: &caller.token,
        });
        self.cache_key = Some(key.clone());
        self.cache_status = CacheStatus::Miss;
        State::Cache(key)
    }

    /// The request to send to the origin: the client's headers less hop-by-hop and forged ones,
    /// plus the request id, the next `traceparent`, and the verified principal for the origin's logs.
    fn forward(&self) -> Forward {
        let incoming = self.req.headers;
        let mut headers = HeaderMap::with_capacity(incoming.len() + 4);
        for (name, value) in incoming {
            let n = name.as_str();
            if DROPPED.contains(&n) || n.starts_with("x-agentplane-") {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        reply::set(&mut headers, header::REQUEST_ID, &self.request_id);
        reply::set(&mut headers, header::TRACEPARENT, &self.traceparent.to_string());
        if let Some(p) = self.principal() {
            reply::set(&mut headers, header::TENANT, &p.tenant.to_string());
            if let Ok(v) = HeaderValue::from_str(&p.subject) {
                headers.insert(HeaderName::from_static(header::SUBJECT), v);
            }
        }
        Forward {
            method: self.req.method.clone(),
            path_and_query: self.req.path_and_query.to_owned(),
            headers,
            retryable: self.retryable(),
        }
    }

    /// See [`Forward::retryable`]. A request that is no JSON-RPC call (an MCP stream's `GET`, a
    /// session's `DELETE`) repeats harmlessly unless it is a `POST`.
    fn retryable(&self) -> bool {
        let Some(call) = &self.call else { return self.req.method != Method::POST };
        match call.dialect {
            Dialect::Mcp(_) => match call.method.as_deref() {
                // Only a cacheable tool promises a call without effects.
                Some("tools/call") => call.cache.is_some(),
                // Acted on by a first origin whose answer was lost, a repeat would report a
                // failure for what succeeded.
                Some("tasks/cancel" | "tasks/update") => false,
                Some(_) => !call.writes,
                // A client's answer to a server request: the waiting call takes the first.
                None => false,
            },
            Dialect::A2a(_) => matches!(
                call.a2a,
                Some(
                    A2aOperation::GetTask
                        | A2aOperation::ListTasks
                        | A2aOperation::SubscribeToTask
                        | A2aOperation::GetPushConfig
                        | A2aOperation::ListPushConfigs
                        | A2aOperation::GetExtendedCard
                )
            ),
        }
    }

    /// Only a cacheable call answered with a JSON 200 is buffered, and not one whose declared
    /// length is already over the cache's entry size; any other body streams straight through.
    fn wants_body(&self, head: &ResponseHead, declared_len: Option<usize>) -> bool {
        self.cache_key.is_some()
            && head.status == StatusCode::OK
            && declared_len.is_none_or(|n| n <= self.shared.config.max_cache_entry_bytes)
            && head
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json_content_type)
    }

    /// What the origin's answer changes at the edge.
    fn finish(&self, mut head: ResponseHead, body: Option<&[u8]>) -> State {
        self.add_response_headers(&mut head.headers);
        let writes = self.call.as_ref().is_some_and(|c| c.writes);
        let bump = self.principal().map(|p| p.tenant).filter(|_| writes && head.status.is_success());
        // An event stream's head comes before the write commits; a JSON answer's after it.
        let streamed = body.is_none() && super::is_event_stream(&head.headers);
        head.bump_after_body = bump.filter(|_| streamed);
        let store = self.storable(head.status, body);
        State::Finish(Box::new(Finish { bump, store, head }))
    }

    fn storable(&self, status: StatusCode, body: Option<&[u8]>) -> Option<StoreEntry> {
        let key = self.cache_key.clone()?;
        let rule = self.call.as_ref()?.cache?;
        if status != StatusCode::OK {
            return None;
        }
        let result =
            match jsonrpc::parse(body?, &jsonrpc::Limits { max_body_bytes: usize::MAX, max_depth: 256 }).ok()? {
                Message::Response(r) => r.outcome.ok()?,
                _ => return None,
            };
        // A tool failure is a result too, but not one to repeat to the next caller.
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            return None;
        }
        let ttl_ms = cache::storable_ttl_ms(rule, CacheHints::from_result(&result))?;
        let bytes = CacheEntry::new(result, self.now, ttl_ms).to_vec();
        (bytes.len() <= self.shared.config.max_cache_entry_bytes).then_some(StoreEntry { key, bytes, ttl_ms })
    }

    fn add_response_headers(&self, headers: &mut HeaderMap) {
        reply::set(headers, header::REQUEST_ID, &self.request_id);
        reply::set(headers, header::CACHE, self.cache_status.as_str());
        if let Some(d) = &self.decision {
            reply::set_rate_headers(headers, d);
        }
    }

    fn auth_reply(&self, e: &AuthError, id: Option<&Id>) -> Reply {
        self.builder().auth(e, id)
    }

    fn builder(&self) -> ReplyBuilder<'_> {
        ReplyBuilder { request_id: &self.request_id, metadata_url: &self.shared.metadata_url }
    }
}

impl Call {
    fn of(route: &Route<'_>, id: Option<Id>) -> Self {
        Self {
            id,
            dialect: route.dialect,
            method: route.method.map(str::to_owned),
            target: route.target,
            streaming: route.streaming,
            cache: route.cache,
            writes: route.writes,
            tool: route.tool.map(str::to_owned),
            a2a: route.a2a,
        }
    }
}

/// How a request is read and its refusals written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// MCP, and A2A's JSON-RPC binding.
    JsonRpc,
    /// A2A's HTTP+JSON binding ([`crate::a2a_rest`]).
    Rest,
    /// A2A's gRPC binding ([`crate::a2a_grpc`]), at the origin only.
    Grpc,
}

impl Binding {
    fn of(last_hop: bool, path: &str) -> Self {
        if crate::a2a_rest::is_rest_path(path) {
            Binding::Rest
        } else if last_hop && crate::a2a_grpc::is_grpc_path(path) {
            Binding::Grpc
        } else {
            Binding::JsonRpc
        }
    }
}

/// A reply made for a JSON-RPC call, in the HTTP+JSON binding's form.
fn rest_reply(mut r: Reply) -> Reply {
    if let Some((status, body)) = crate::a2a_rest::convert(r.status, &r.body) {
        r.status = status;
        r.body = body;
    }
    r
}

fn is_json_content_type(ct: &str) -> bool {
    ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn mcp_revision(headers: &HeaderMap) -> Result<Option<McpRevision>, ErrorObject> {
    let Some(value) = headers.get(header::MCP_PROTOCOL_VERSION) else { return Ok(None) };
    let requested = value.to_str().unwrap_or_default().trim();
    McpRevision::parse(requested).map(Some).ok_or_else(|| {
        let supported: Vec<&str> = McpRevision::ALL.iter().map(|r| r.as_str()).collect();
        ErrorObject::new(
            code::MCP_UNSUPPORTED_PROTOCOL_VERSION,
            format!("Unsupported MCP-Protocol-Version; supported: {}", supported.join(", ")),
        )
        .with_data(
            serde_json::json!({ "supported": supported, "requested": requested.chars().take(32).collect::<String>() }),
        )
    })
}

/// MCP 2026-07-28: `Mcp-Method` must mirror the body's method on requests, and `Mcp-Name` the
/// tool name, prompt name or resource URI. Values may be sent as `=?base64?...?=`.
fn check_mcp_headers(headers: &HeaderMap, message: &Message) -> Result<(), ErrorObject> {
    let Some(method) = message.method() else { return Ok(()) };
    let mismatch = |what: &str| ErrorObject::new(code::MCP_HEADER_MISMATCH, format!("Header mismatch: {what}"));
    let header_method = headers.get(header::MCP_METHOD).map(|v| decode_header_value(v.as_bytes()));
    match (header_method, message) {
        (None, Message::Request(_)) => return Err(mismatch("Mcp-Method is required")),
        (Some(None), _) => return Err(mismatch("Mcp-Method is not a valid header value")),
        (Some(Some(h)), _) if h != method => return Err(mismatch("Mcp-Method differs from the body's method")),
        _ => {}
    }
    let body_name = catalogue::mcp_name_param(method, message.params());
    let header_name = headers.get(header::MCP_NAME).map(|v| decode_header_value(v.as_bytes()));
    match (body_name, header_name) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(mismatch("Mcp-Name is required for this method")),
        (Some(_), Some(None)) => Err(mismatch("Mcp-Name is not a valid header value")),
        (Some(b), Some(Some(h))) if b != h => Err(mismatch("Mcp-Name differs from the body")),
        _ => Ok(()),
    }
}

/// A header value as text: plain visible ASCII, or the `=?base64?<b64>?=` form for anything
/// else. `None` when it is neither.
pub(super) fn decode_header_value(raw: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(inner) = text.strip_prefix("=?base64?").and_then(|t| t.strip_suffix("?=")) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
        return String::from_utf8(bytes).ok();
    }
    text.bytes().all(|b| (0x20..0x7f).contains(&b)).then(|| text.to_owned())
}
