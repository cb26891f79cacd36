//! A request that passed the first checks, and the decisions still to take on it.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::header;
use super::reply::{self, Reply, ReplyBuilder};
use crate::auth::{Principal, TokenDigest};
use crate::cache::{self, CacheEntry, CacheHints, CacheKey, CacheRule, KeyParts};
use crate::catalogue::{Dialect, Route, Streaming, Target};
use crate::jsonrpc::{self, ErrorObject, Id, Message, code};
use crate::ratelimit::{Quota, RateDecision};
use crate::time::Timestamp;
use crate::trace::TraceParent;

/// The limiter question the caller must answer with [`super::TenantState::admit`].
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
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// A result to keep in the edge cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    pub key: CacheKey,
    pub bytes: Vec<u8>,
    pub ttl_ms: u64,
}

/// What to do once the origin has answered.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct OriginOutcome {
    pub store: Option<StoreEntry>,
    /// The call wrote tenant data: bump [`super::TenantState::generation`].
    pub bump_generation: bool,
    /// Headers to add to the response sent to the client.
    pub headers: HeaderMap,
}

/// The verified caller of a request and its tier's quota.
#[derive(Debug)]
pub(super) struct Caller {
    pub(super) principal: Principal,
    pub(super) token: TokenDigest,
    pub(super) quota: Option<Quota>,
}

#[derive(Debug)]
struct Call {
    id: Option<Id>,
    dialect: Dialect,
    method: Option<String>,
    params: Option<Value>,
    target: Target,
    streaming: Streaming,
    cache: Option<CacheRule>,
    writes: bool,
    tool: Option<String>,
}

/// A request admitted so far. See the module documentation of [`super`] for the order of calls.
#[derive(Debug)]
pub struct Pending {
    request_id: String,
    traceparent: TraceParent,
    principal: Option<Principal>,
    token: Option<TokenDigest>,
    quota: Option<Quota>,
    path_and_query: String,
    call: Option<Call>,
    decision: Option<RateDecision>,
    cache_key: Option<CacheKey>,
    cache_status: CacheStatus,
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

impl Pending {
    pub(super) fn passthrough(
        request_id: &str,
        traceparent: TraceParent,
        caller: Option<Caller>,
        path_and_query: &str,
    ) -> Self {
        let (principal, token, quota) = match caller {
            Some(c) => (Some(c.principal), Some(c.token), c.quota),
            None => (None, None, None),
        };
        Self {
            request_id: request_id.to_owned(),
            traceparent,
            principal,
            token,
            quota,
            path_and_query: path_and_query.to_owned(),
            call: None,
            decision: None,
            cache_key: None,
            cache_status: CacheStatus::Bypass,
        }
    }

    pub(super) fn jsonrpc(
        request_id: &str,
        traceparent: TraceParent,
        caller: Caller,
        path_and_query: &str,
        message: &Message,
        route: &Route<'_>,
    ) -> Self {
        let call = Call {
            id: super::message_id(message),
            dialect: route.dialect,
            method: route.method.map(str::to_owned),
            params: route.cache.and(message.params().cloned()),
            target: route.target,
            streaming: route.streaming,
            cache: route.cache,
            writes: route.writes,
            tool: route.tool.map(str::to_owned),
        };
        let mut p = Self::passthrough(request_id, traceparent, Some(caller), path_and_query);
        p.call = Some(call);
        p
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn traceparent(&self) -> &TraceParent {
        &self.traceparent
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
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

    /// The limiter question, for authenticated requests.
    pub fn rate_limit(&self) -> Option<RateLimitCheck> {
        Some(RateLimitCheck { tenant: self.principal.as_ref()?.tenant, quota: self.quota? })
    }

    /// Applies the limiter's answer: `Some` is the 429 to send.
    pub fn admit(&mut self, decision: RateDecision) -> Option<Reply> {
        self.decision = Some(decision);
        if decision.allowed {
            return None;
        }
        let id = self.call.as_ref().and_then(|c| c.id.as_ref());
        Some(self.builder().rate_limited(id, &decision))
    }

    /// A reply the edge makes itself (`ping`), if this is such a call.
    pub fn local_reply(&self) -> Option<Reply> {
        let call = self.call.as_ref()?;
        if call.target != Target::EdgePong {
            return None;
        }
        let id = call.id.as_ref()?;
        let mut r = self.builder().result(id, &serde_json::json!({}));
        self.add_response_headers(&mut r.headers);
        Some(r)
    }

    /// The cache key to look up, if the call is cacheable, for the tenant's current `generation`.
    pub fn cache_key(&mut self, generation: u64) -> Option<CacheKey> {
        let call = self.call.as_ref()?;
        let rule = call.cache?;
        let (principal, token) = (self.principal.as_ref()?, self.token.as_ref()?);
        call.id.as_ref()?;
        let key = cache::cache_key(&KeyParts {
            tenant: principal.tenant,
            generation,
            dialect: call.dialect,
            method: call.method.as_deref()?,
            params: call.params.as_ref(),
            scope: rule.scope,
            token,
        });
        self.cache_key = Some(key.clone());
        self.cache_status = CacheStatus::Miss;
        Some(key)
    }

    /// Turns a stored entry into the reply, if it is alive at `now`.
    pub fn reply_from_cache(&mut self, stored: &[u8], now: Timestamp) -> Option<Reply> {
        let id = self.call.as_ref()?.id.as_ref()?;
        let entry = CacheEntry::read(stored, now)?;
        self.cache_status = CacheStatus::Hit;
        let mut r = self.builder().json_body(StatusCode::OK, entry.response_for(id));
        self.add_response_headers(&mut r.headers);
        Some(r)
    }

    /// The request to send to the origin: the client's headers less hop-by-hop and forged ones,
    /// plus the request id, the next `traceparent`, and the verified principal for the origin's logs.
    pub fn forward(&self, incoming: &HeaderMap) -> Forward {
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
        if let Some(p) = &self.principal {
            reply::set(&mut headers, header::TENANT, &p.tenant.to_string());
            if let Ok(v) = HeaderValue::from_str(&p.subject) {
                headers.insert(HeaderName::from_static(header::SUBJECT), v);
            }
        }
        Forward { path_and_query: self.path_and_query.clone(), headers }
    }

    /// The 502 to send when the origin cannot be reached or its answer cannot be read. The
    /// JSON-RPC id is echoed so the client can match the failure to its call.
    pub fn origin_unavailable(&self) -> Reply {
        let id = self.call.as_ref().and_then(|c| c.id.as_ref());
        let e = ErrorObject::new(code::ORIGIN_UNAVAILABLE, "Origin unavailable");
        let mut r = self.builder().jsonrpc_error(StatusCode::BAD_GATEWAY, id, &e);
        self.add_response_headers(&mut r.headers);
        r
    }

    /// Whether the adapter should buffer the origin's body and hand it to
    /// [`Pending::on_origin_response`]: only for a cacheable call answered with a JSON 200. Any
    /// other body streams straight through.
    pub fn wants_body(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        self.cache_key.is_some()
            && status == StatusCode::OK
            && headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(super::is_json_content_type)
    }

    /// Decides what the origin's answer changes at the edge. `body` is the buffered body when
    /// [`Pending::wants_body`] said so.
    pub fn on_origin_response(&self, status: StatusCode, body: Option<&[u8]>, now: Timestamp) -> OriginOutcome {
        let mut headers = HeaderMap::new();
        self.add_response_headers(&mut headers);
        let writes = self.call.as_ref().is_some_and(|c| c.writes);
        OriginOutcome {
            store: self.storable(status, body, now),
            bump_generation: writes && status.is_success(),
            headers,
        }
    }

    fn storable(&self, status: StatusCode, body: Option<&[u8]>, now: Timestamp) -> Option<StoreEntry> {
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
        Some(StoreEntry { key, bytes: CacheEntry::new(result, now, ttl_ms).to_vec(), ttl_ms })
    }

    fn add_response_headers(&self, headers: &mut HeaderMap) {
        reply::set(headers, header::REQUEST_ID, &self.request_id);
        reply::set(headers, header::CACHE, self.cache_status.as_str());
        if let Some(d) = &self.decision {
            reply::set_rate_headers(headers, d);
        }
    }

    fn builder(&self) -> ReplyBuilder<'_> {
        // Rate-limit and local replies carry no challenge, so the metadata URL is not needed.
        ReplyBuilder { request_id: &self.request_id, metadata_url: "" }
    }
}
