//! The request pipeline that the edge adapters (and the origin, as a second line) drive.
//!
//! [`Gateway`] is what a process or isolate keeps between requests: configuration, the token
//! verifier and its memo. [`Gateway::begin`] makes an [`Exchange`] for one request, a state
//! machine in the manner of `quinn-proto`: the shell polls it for the next [`Step`], does that
//! one piece of I/O, and reports back with the matching `handle_*` method.
//!
//! ```text
//! begin ─▶ VerifySignature? ─▶ Admit ─▶ ReadBody? ─▶ (envelope, version, route, scope) ─▶ ping? ─▶
//!          ReadGeneration? ─▶ LookupCache? ─▶ Forward ─▶ ReadOriginBody? ─▶
//!          BumpGeneration? ─▶ StoreCache? ─▶ Respond          (any stage may end in Reply)
//! ```
//!
//! `begin` itself decides the path (`/mcp`, `/a2a`, the RFC 9728 metadata, public paths, else
//! 404), the `Origin` allow-list, the HTTP method and the bearer token (the memo first, else
//! `Step::VerifySignature`). The request sent on at `Step::Forward` carries the client's own body;
//! only headers change: hop-by-hop, recomputed and client-sent `x-agentplane-*` ones are dropped,
//! and the request id, the next `traceparent` and the verified tenant and subject are set.
//!
//! Here: [`Gateway`] (this file), [`Exchange`], its [`Step`]s and the request checks it runs
//! (`exchange.rs`), the replies the gateway makes itself (`reply.rs`), the per-tenant record
//! (`tenant.rs`), [`GatewayConfig`] (`config.rs`), the edges' variables (`settings.rs`) and what
//! an edge keeps between requests (`edge.rs`). `testkit::vectors::World::drive` is the reference shell, over in-memory stores.

mod config;
mod edge;
mod exchange;
mod origins;
mod reply;
pub mod settings;
mod tenant;

use std::num::NonZeroUsize;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};

pub use config::GatewayConfig;
pub use edge::EdgeGateway;
pub use exchange::{Admitted, CacheStatus, Exchange, Forward, RateLimitCheck, ResponseHead, Step, StoreEntry};
pub use origins::{Origins, OriginsError};
pub use reply::Reply;
pub use settings::{EdgeSettings, KeySource, SettingsError};
pub use tenant::TenantState;

use crate::auth::{
    AuthError, Authenticator, KeySet, Lookup, MemoOutcome, Principal, TokenDigest, Verifier, bearer_token,
};
use crate::catalogue::Endpoint;
use crate::jsonrpc::{ErrorObject, code};
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
    shared: Arc<Shared>,
    auth: Authenticator,
    last_hop: bool,
}

/// What every [`Exchange`] reads and none changes.
#[derive(Debug)]
struct Shared {
    config: GatewayConfig,
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
    /// The body, or `None` when the adapter has not read it yet: the exchange then asks for it
    /// with [`Step::ReadBody`] once the caller is authenticated and admitted, so a refused
    /// request costs no read (the origin defers; an edge runtime hands the body it has).
    pub body: Option<&'a [u8]>,
}

impl Gateway {
    pub fn new(config: GatewayConfig, keys: KeySet) -> Result<Self, GatewayError> {
        config.tiers.validate()?;
        let verifier = Verifier::new(config.auth.clone(), keys)?;
        let capacity = NonZeroUsize::new(config.memo_capacity).ok_or(GatewayError::MemoCapacity)?;
        let metadata_url = config.resource_metadata_url();
        Ok(Self {
            auth: Authenticator::new(verifier, capacity),
            shared: Arc::new(Shared { metadata_url, config }),
            last_hop: false,
        })
    }

    /// The gateway of the origin, the last hop: it answers nothing itself and caches nothing; an
    /// admitted request goes straight to [`Step::Forward`], which there means its handler.
    pub fn last_hop(mut self) -> Self {
        self.last_hop = true;
        self
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// The token verifier, for adapters that look a token's signature check up themselves.
    pub fn verifier(&self) -> &Verifier {
        self.auth.verifier()
    }

    /// Forgets every remembered token, so each is verified again on its next use.
    pub fn forget_tokens(&mut self) {
        self.auth.forget_tokens();
    }

    /// Installs a refreshed key set; memoised tokens are forgotten.
    pub fn replace_keys(&mut self, keys: KeySet) -> Result<(), GatewayError> {
        Ok(self.auth.replace_keys(keys)?)
    }

    /// Verifies a bearer token through the memo, with the core's own crypto, outside any
    /// request.
    pub fn authenticate(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<(Principal, TokenDigest, MemoOutcome), AuthError> {
        Ok(self.auth.authenticate(token, now)?)
    }

    /// The largest request body [`Gateway::begin`] accepts. Adapters stop reading a body past
    /// this many bytes and answer with [`Gateway::payload_too_large`] (or, for a body read at
    /// [`Step::ReadBody`], [`Exchange::handle_body_too_large`]) instead of buffering it.
    pub fn max_body_bytes(&self) -> usize {
        self.shared.config.limits.max_body_bytes
    }

    /// The 413 for a body longer than [`Gateway::max_body_bytes`], for adapters that find out
    /// while reading it (so `begin` never sees the body).
    pub fn payload_too_large(&self, headers: &HeaderMap, ctx: RequestContext) -> Reply {
        let Ids { request_id, .. } = ids(headers, &ctx);
        let reply = reply::ReplyBuilder { request_id: &request_id, metadata_url: &self.shared.metadata_url };
        reply.payload_too_large(self.shared.config.limits.max_body_bytes)
    }

    /// Starts a request: where it goes, whether its method is allowed there, and who sent it as
    /// far as the memo knows. The rest happens as the returned [`Exchange`] is polled.
    pub fn begin<'r>(&mut self, req: HttpRequest<'r>, ctx: RequestContext) -> Exchange<'r> {
        let ids = ids(req.headers, &ctx);
        let exchange = Exchange::new(Arc::clone(&self.shared), self.last_hop, req, ctx.now, ids);
        let config = &self.shared.config;
        let reply = reply::ReplyBuilder { request_id: exchange.request_id(), metadata_url: &self.shared.metadata_url };
        let path = req.path_and_query.split_once('?').map_or(req.path_and_query, |(p, _)| p);
        let read_only = req.method == Method::GET || req.method == Method::HEAD;
        let endpoint = match path {
            "/mcp" => Endpoint::Mcp,
            // Clients join the card's interface URL and `/`.
            "/a2a" | "/a2a/" => Endpoint::A2a,
            p if crate::a2a_rest::is_rest_path(p) => Endpoint::A2a,
            // gRPC needs HTTP/2 trailers, which the edge runtimes do not pass: the origin only.
            p if self.last_hop && crate::a2a_grpc::is_grpc_path(p) => Endpoint::A2a,
            p if p == METADATA_PATH || p.starts_with(concat!("/.well-known/oauth-protected-resource", "/")) => {
                let r = if read_only {
                    reply.metadata(&config.resource_metadata())
                } else {
                    reply.method_not_allowed("GET, HEAD")
                };
                return exchange.reply_with(r);
            }
            crate::catalogue::CONSOLE_SESSION_PATH => match *req.method {
                // Signing out only clears the cookie, so it works with an expired token too.
                Method::DELETE => return exchange.passthrough(),
                Method::GET | Method::POST => Endpoint::Console,
                _ => {
                    let r = reply.method_not_allowed("GET, POST, DELETE");
                    return exchange.reply_with(r);
                }
            },
            // The operator's page reads `/ready/details` and the metrics, which live at the
            // origin only; an edge does not pass it on.
            p if is_console_operator_path(p) => {
                if self.last_hop {
                    // The origin's handlers check the operator's credential themselves.
                    return exchange.passthrough();
                }
                let r = reply.not_found(path);
                return exchange.reply_with(r);
            }
            // The console's pages and assets: public, like the agent card; everything they show
            // comes from calls that pass the checks below.
            p if is_console_path(p) => {
                if !read_only {
                    let r = reply.method_not_allowed("GET, HEAD");
                    return exchange.reply_with(r);
                }
                return exchange.passthrough();
            }
            p if config.public_paths.iter().any(|pp| pp == p) => {
                if !read_only {
                    let r = reply.method_not_allowed("GET, HEAD");
                    return exchange.reply_with(r);
                }
                return exchange.passthrough();
            }
            _ => {
                let r = reply.not_found(path);
                return exchange.reply_with(r);
            }
        };
        if let Err(r) = check_origin(config, req.headers, &reply) {
            return exchange.reply_with(r);
        }
        let get_or_delete = req.method == Method::GET || req.method == Method::DELETE;
        let (allowed, not_post_ok) = match endpoint {
            Endpoint::Mcp => ("POST, GET, DELETE".into(), get_or_delete),
            Endpoint::A2a if crate::a2a_rest::is_rest_path(path) => (crate::a2a_rest::allowed(path), get_or_delete),
            Endpoint::A2a => ("POST".into(), false),
            Endpoint::Console => ("GET, POST, DELETE".into(), true),
        };
        if req.method != Method::POST && !not_post_ok {
            let r = reply.method_not_allowed(&allowed);
            return exchange.reply_with(r);
        }
        match authenticate_request(&mut self.auth, req.headers, ctx.now) {
            Ok(Lookup::Verified(principal, digest, _)) => exchange.authenticated(endpoint, principal, digest),
            Ok(Lookup::NeedsSignature(token)) => exchange.needs_signature(endpoint, token),
            Err(e) => {
                let r = reply.auth(&e, None);
                exchange.reply_with(r)
            }
        }
    }
}

/// A request's trace identity: the caller's `traceparent`, the next hop's (our span), and the
/// request id.
pub(crate) struct Ids {
    pub caller: Option<TraceParent>,
    pub next_hop: TraceParent,
    pub request_id: String,
    /// Whether the request id is the trace id (the client sent none usable).
    pub request_id_is_trace: bool,
}

fn ids(headers: &HeaderMap, ctx: &RequestContext) -> Ids {
    let caller = header_str(headers, header::TRACEPARENT).and_then(TraceParent::parse);
    let next_hop = TraceParent::next_hop(caller.as_ref(), &ctx.entropy);
    let request_id = trace::request_id(header_str(headers, header::REQUEST_ID), &next_hop);
    let request_id_is_trace = request_id == next_hop.trace_id_hex();
    Ids { caller, next_hop, request_id, request_id_is_trace }
}

#[allow(clippy::result_large_err)]
fn check_origin(config: &GatewayConfig, headers: &HeaderMap, reply: &reply::ReplyBuilder<'_>) -> Result<(), Reply> {
    let Some(origin) = headers.get(http::header::ORIGIN) else { return Ok(()) };
    // The server's own public origin (its console's pages) is always allowed.
    let ok = origin
        .to_str()
        .is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o) || own_origin(&config.resource) == Some(o));
    if ok {
        Ok(())
    } else {
        Err(reply.jsonrpc_error(StatusCode::FORBIDDEN, None, &ErrorObject::new(code::FORBIDDEN, "Origin not allowed")))
    }
}

fn authenticate_request(auth: &mut Authenticator, headers: &HeaderMap, now: Timestamp) -> Result<Lookup, AuthError> {
    if !headers.contains_key(http::header::AUTHORIZATION)
        && let Some(token) = crate::auth::console::session_token(headers)
    {
        return Ok(auth.lookup(token, now)?);
    }
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
    Ok(auth.lookup(token, now)?)
}

/// `scheme://authority` of a URL, as browsers write it in `Origin`.
fn own_origin(resource: &str) -> Option<&str> {
    let (scheme, rest) = resource.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    (!scheme.is_empty() && !authority.is_empty()).then(|| &resource[..scheme.len() + 3 + authority.len()])
}

/// The console's pages and assets: `/console` and everything under it.
fn is_console_path(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// The operator's part of the console, served at the origin only.
fn is_console_operator_path(path: &str) -> bool {
    path == "/console/operator" || path.starts_with("/console/operator/")
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The body length a message's `Content-Length` declares, if it declares a valid one.
pub fn content_length(headers: &HeaderMap) -> Option<usize> {
    header_str(headers, http::header::CONTENT_LENGTH.as_str())?.trim().parse().ok()
}

/// Whether a message's body is an event stream (SSE).
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    header_str(headers, http::header::CONTENT_TYPE.as_str()).is_some_and(|v| v.starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests;
