//! The request pipeline that the edge adapters (and the origin, as a second line) drive.
//!
//! It is a sequence of decisions with the caller doing the I/O in between, in the manner of
//! `quinn-proto`:
//!
//! ```text
//! Gateway::begin(request, now, entropy)
//!   ├─ Begin::Respond(reply)            refused or answered: send `reply`
//!   └─ Begin::Proceed(pending)
//!        pending.rate_limit()            → the caller runs TenantState::admit in its store
//!        pending.admit(decision)         → Err(reply): 429
//!        pending.local_reply()           → Some(reply): answered at the edge (`ping`)
//!        pending.cache_key(generation)   → the caller looks the key up
//!        pending.reply_from_cache(bytes) → Some(reply): a hit
//!        pending.forward_headers(..)     → the caller sends the request to the origin
//!        pending.on_origin_response(..)  → what to store, whether to bump the generation
//! ```

mod config;
mod edge;
mod pending;
mod reply;
pub mod settings;
mod tenant;

use std::num::NonZeroUsize;

use http::{HeaderMap, Method, StatusCode};

pub use config::GatewayConfig;
pub use edge::EdgeGateway;
use pending::Caller;
pub use pending::{CacheStatus, Forward, OriginOutcome, Pending, RateLimitCheck, StoreEntry};
pub use reply::Reply;
pub use settings::{EdgeSettings, KeySource, SettingsError};
pub use tenant::TenantState;

use crate::auth::{
    AuthError, Authenticator, KeySet, Lookup, MemoOutcome, Principal, TokenDigest, UnverifiedToken, Verifier,
    bearer_token,
};
use crate::catalogue::{self, A2aVersion, Dialect, McpRevision};
use crate::jsonrpc::{self, ErrorObject, Id, Message, code};
use crate::time::Timestamp;
use crate::trace::{self, TraceParent};

/// Where RFC 9728 metadata is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Headers the gateway sets on requests and replies.
pub mod header {
    pub const REQUEST_ID: &str = "x-request-id";
    pub const TRACEPARENT: &str = "traceparent";
    pub const CACHE: &str = "x-agentplane-cache";
    pub const TENANT: &str = "x-agentplane-tenant";
    pub const SUBJECT: &str = "x-agentplane-subject";
    pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";
    pub const MCP_METHOD: &str = "mcp-method";
    pub const MCP_NAME: &str = "mcp-name";
    pub const A2A_VERSION: &str = "a2a-version";
    pub const RATELIMIT_LIMIT: &str = "ratelimit-limit";
    pub const RATELIMIT_REMAINING: &str = "ratelimit-remaining";
    pub const RATELIMIT_RESET: &str = "ratelimit-reset";
}

/// Configuration errors found when building a [`Gateway`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error(transparent)]
    Verifier(#[from] crate::auth::VerifierConfigError),
    #[error(transparent)]
    Tiers(#[from] crate::ratelimit::TiersError),
    #[error("memo_capacity must be above zero")]
    MemoCapacity,
}

/// The gateway's state: configuration, the token verifier and its memo. One per isolate or
/// process; it holds no per-tenant state (that lives with the caller, in [`TenantState`]).
#[derive(Debug)]
pub struct Gateway {
    config: GatewayConfig,
    auth: Authenticator,
    metadata_url: String,
}

/// Per-request inputs that the core cannot make itself.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub now: Timestamp,
    /// Fresh random bytes from the caller, for trace and span ids.
    pub entropy: [u8; 24],
}

/// An incoming HTTP request, borrowed from the adapter's own types.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    /// Path and query, e.g. `/a2a?A2A-Version=1.0`.
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The first decision on a request.
#[derive(Debug)]
#[must_use]
pub enum Begin {
    Respond(Reply),
    Proceed(Box<Pending>),
}

/// The first decision on a request from [`Gateway::begin_deferring`].
#[derive(Debug)]
#[must_use]
pub enum SignatureStep {
    Decided(Begin),
    /// The token is new and its signature is the caller's to check; report the verdict with
    /// [`Gateway::resume`].
    Verify(Box<UnverifiedToken>),
}

impl Gateway {
    pub fn new(config: GatewayConfig, keys: KeySet) -> Result<Self, GatewayError> {
        config.tiers.validate()?;
        let verifier = Verifier::new(config.auth.clone(), keys)?;
        let capacity = NonZeroUsize::new(config.memo_capacity).ok_or(GatewayError::MemoCapacity)?;
        let metadata_url = config.resource_metadata_url();
        Ok(Self { auth: Authenticator::new(verifier, capacity), metadata_url, config })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The token verifier, for adapters that look a token's signature check up themselves.
    pub fn verifier(&self) -> &Verifier {
        self.auth.verifier()
    }

    /// [`Gateway::begin`], except that the signature of a token the memo does not know is left to
    /// the caller when its key has a public JWK: for runtimes whose own crypto beats the core's
    /// compiled to WebAssembly (WebCrypto in workerd).
    pub fn begin_deferring(&mut self, req: &HttpRequest<'_>, ctx: RequestContext) -> SignatureStep {
        match self.begin_with(req, ctx, true) {
            Ok(begin) => SignatureStep::Decided(begin),
            Err(token) => SignatureStep::Verify(token),
        }
    }

    /// Continues [`Gateway::begin_deferring`] for the same request with the caller's verdict on
    /// the signature it asked for.
    pub fn resume(
        &mut self,
        req: &HttpRequest<'_>,
        ctx: RequestContext,
        token: UnverifiedToken,
        signature_ok: bool,
    ) -> Begin {
        self.auth.settle(token, signature_ok, ctx.now);
        self.begin(req, ctx)
    }

    /// Forgets every remembered token, so each is verified again on its next use.
    pub fn forget_tokens(&mut self) {
        self.auth.forget_tokens();
    }

    /// Installs a refreshed key set; memoised tokens are forgotten.
    pub fn replace_keys(&mut self, keys: KeySet) -> Result<(), GatewayError> {
        Ok(self.auth.replace_keys(keys)?)
    }

    /// Verifies a bearer token through the memo. Exposed for the origin, which checks tokens
    /// itself without the rest of the pipeline.
    pub fn authenticate(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<(Principal, TokenDigest, MemoOutcome), AuthError> {
        Ok(self.auth.authenticate(token, now)?)
    }

    /// The largest request body [`Gateway::begin`] accepts. Adapters stop reading a body past
    /// this many bytes and answer with [`Gateway::payload_too_large`] instead of buffering it.
    pub fn max_body_bytes(&self) -> usize {
        self.config.limits.max_body_bytes
    }

    /// The 413 for a body longer than [`Gateway::max_body_bytes`], for adapters that find out
    /// while reading it (so `begin` never sees the body).
    pub fn payload_too_large(&self, headers: &HeaderMap, ctx: RequestContext) -> Reply {
        let (_, request_id) = ids(headers, &ctx);
        let reply = reply::ReplyBuilder { request_id: &request_id, metadata_url: &self.metadata_url };
        let e = ErrorObject::new(
            code::INVALID_REQUEST,
            format!("Invalid Request: body exceeds {} bytes", self.config.limits.max_body_bytes),
        );
        reply.jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, &e)
    }

    /// Takes the first decisions on a request: where it goes, who sent it, whether it is well
    /// formed and allowed.
    pub fn begin(&mut self, req: &HttpRequest<'_>, ctx: RequestContext) -> Begin {
        match self.begin_with(req, ctx, false) {
            Ok(begin) => begin,
            // Without deferral the lookup checks signatures itself and never lands here; if it
            // did, the answer would still be the core's own check.
            Err(token) => {
                let ok = token.check.verify_in_core().unwrap_or(false);
                self.resume(req, ctx, *token, ok)
            }
        }
    }

    fn begin_with(
        &mut self,
        req: &HttpRequest<'_>,
        ctx: RequestContext,
        defer: bool,
    ) -> Result<Begin, Box<UnverifiedToken>> {
        let (traceparent, request_id) = ids(req.headers, &ctx);
        let reply = reply::ReplyBuilder { request_id: &request_id, metadata_url: &self.metadata_url };
        match begin_inner(&self.config, &mut self.auth, req, ctx.now, defer, &reply, &traceparent) {
            Ok(pending) => Ok(Begin::Proceed(Box::new(pending))),
            Err(Stop::Reply(r)) => Ok(Begin::Respond(r)),
            Err(Stop::VerifySignature(t)) => Err(t),
        }
    }
}

/// The next-hop `traceparent` and the request id of a request.
fn ids(headers: &HeaderMap, ctx: &RequestContext) -> (TraceParent, String) {
    let incoming_trace = header_str(headers, header::TRACEPARENT).and_then(TraceParent::parse);
    let traceparent = TraceParent::next_hop(incoming_trace.as_ref(), &ctx.entropy);
    let request_id = trace::request_id(header_str(headers, header::REQUEST_ID), &traceparent);
    (traceparent, request_id)
}

/// Why [`begin_inner`] stopped short of a [`Pending`].
enum Stop {
    Reply(Reply),
    VerifySignature(Box<UnverifiedToken>),
}

impl From<Reply> for Stop {
    fn from(r: Reply) -> Self {
        Stop::Reply(r)
    }
}

// Replies are this function's ordinary output, not an exceptional path; boxing them buys nothing.
#[allow(clippy::result_large_err)]
fn begin_inner(
    config: &GatewayConfig,
    auth: &mut Authenticator,
    req: &HttpRequest<'_>,
    now: Timestamp,
    defer_signature: bool,
    reply: &reply::ReplyBuilder<'_>,
    traceparent: &TraceParent,
) -> Result<Pending, Stop> {
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path_and_query, None),
    };
    let endpoint = match path {
        "/mcp" => catalogue::Endpoint::Mcp,
        "/a2a" => catalogue::Endpoint::A2a,
        p if p == METADATA_PATH || p.starts_with(concat!("/.well-known/oauth-protected-resource", "/")) => {
            if req.method != Method::GET && req.method != Method::HEAD {
                return Err(reply.method_not_allowed("GET, HEAD").into());
            }
            return Err(reply.metadata(&config.resource_metadata()).into());
        }
        p if config.public_paths.iter().any(|pp| pp == p) => {
            if req.method != Method::GET && req.method != Method::HEAD {
                return Err(reply.method_not_allowed("GET, HEAD").into());
            }
            return Ok(Pending::passthrough(reply.request_id, *traceparent, None, req.path_and_query));
        }
        _ => return Err(reply.not_found().into()),
    };
    check_origin(config, req.headers, reply)?;

    let allowed = match endpoint {
        catalogue::Endpoint::Mcp => "POST, GET, DELETE",
        catalogue::Endpoint::A2a => "POST",
    };
    let is_stream_or_session =
        endpoint == catalogue::Endpoint::Mcp && (req.method == Method::GET || req.method == Method::DELETE);
    if req.method != Method::POST && !is_stream_or_session {
        return Err(reply.method_not_allowed(allowed).into());
    }

    let (principal, token) = match authenticate_request(auth, req.headers, now, defer_signature) {
        Ok(Lookup::Verified(principal, digest, _)) => (principal, digest),
        Ok(Lookup::NeedsSignature(t)) => return Err(Stop::VerifySignature(Box::new(t))),
        Err(e) => return Err(reply.auth(&e, None).into()),
    };
    let quota = config.tiers.quota(principal.tier.as_deref()).copied();

    if is_stream_or_session {
        // MCP's GET stream and session DELETE carry no JSON-RPC body; the origin owns them.
        return Ok(Pending::passthrough(
            reply.request_id,
            *traceparent,
            Some(Caller { principal, token, quota }),
            req.path_and_query,
        ));
    }

    if let Some(ct) = header_str(req.headers, http::header::CONTENT_TYPE.as_str())
        && !is_json_content_type(ct)
    {
        return Err(reply
            .jsonrpc_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                &ErrorObject::new(code::INVALID_REQUEST, "Invalid Request: Content-Type must be application/json"),
            )
            .into());
    }
    let message = jsonrpc::parse(req.body, &config.limits)
        .map_err(|e| reply.jsonrpc_error(e.http_status(), e.id.as_ref(), &e.to_error_object()))?;
    let id = message.id().cloned();

    let dialect = match endpoint {
        catalogue::Endpoint::Mcp => Dialect::Mcp(
            mcp_revision(req.headers).map_err(|e| reply.jsonrpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e))?,
        ),
        catalogue::Endpoint::A2a => {
            let v = header_str(req.headers, header::A2A_VERSION)
                .or_else(|| query.and_then(|q| query_param(q, "A2A-Version")));
            Dialect::A2a(
                A2aVersion::from_header(v)
                    .map_err(|e| reply.jsonrpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e))?,
            )
        }
    };
    if let Dialect::Mcp(Some(rev)) = dialect
        && rev.is_stateless()
    {
        check_mcp_headers(req.headers, &message)
            .map_err(|e| reply.jsonrpc_error(StatusCode::BAD_REQUEST, id.as_ref(), &e))?;
    }

    let route = catalogue::route(&message, dialect, &config.tools).map_err(|e| {
        // 2026-07-28 answers an unknown method with 404; earlier revisions and A2A with a
        // JSON-RPC error in a 200.
        let status = match (e.code, dialect) {
            (code::METHOD_NOT_FOUND, Dialect::Mcp(Some(r))) if r.is_stateless() => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        };
        reply.jsonrpc_error(status, id.as_ref(), &e)
    })?;
    if let Some(required) = route.scope
        && !principal.scopes.contains(required)
    {
        let e = AuthError::InsufficientScope { required: required.to_owned() };
        return Err(reply.auth(&e, id.as_ref()).into());
    }
    let caller = Caller { principal, token, quota };
    Ok(Pending::jsonrpc(reply.request_id, *traceparent, caller, req.path_and_query, &message, &route))
}

#[allow(clippy::result_large_err)]
fn check_origin(config: &GatewayConfig, headers: &HeaderMap, reply: &reply::ReplyBuilder<'_>) -> Result<(), Reply> {
    let Some(origin) = headers.get(http::header::ORIGIN) else { return Ok(()) };
    let ok = origin.to_str().is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o));
    if ok {
        Ok(())
    } else {
        Err(reply.jsonrpc_error(StatusCode::FORBIDDEN, None, &ErrorObject::new(code::FORBIDDEN, "Origin not allowed")))
    }
}

fn authenticate_request(
    auth: &mut Authenticator,
    headers: &HeaderMap,
    now: Timestamp,
    defer_signature: bool,
) -> Result<Lookup, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if headers.contains_key(http::header::AUTHORIZATION) {
            AuthError::NotBearer
        } else {
            AuthError::Missing
        });
    };
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
    let token = bearer_token(value)?;
    Ok(auth.lookup(token, now, defer_signature)?)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
fn decode_header_value(raw: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(inner) = text.strip_prefix("=?base64?").and_then(|t| t.strip_suffix("?=")) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(inner).ok()?;
        return String::from_utf8(bytes).ok();
    }
    text.bytes().all(|b| (0x20..0x7f).contains(&b)).then(|| text.to_owned())
}

/// The id to echo in errors for a message, if it has one.
pub(crate) fn message_id(message: &Message) -> Option<Id> {
    message.id().cloned()
}

#[cfg(test)]
mod tests;
