//! The Spin edge of agentplane: a spin-sdk 7 HTTP component (`wasm32-wasip2`, `wasi:http@0.3.0`)
//! driving `agentplane-core`, with Spin key-value for the per-tenant record, the cache and
//! remembered token verdicts, and Spin variables for the settings.
//!
//! Per request: settings and keys (`instance.rs`) ▸ `Gateway::begin_deferring` (a new token's
//! signature checked once, then remembered in key-value until the token expires) ▸ admit the
//! request against the tenant's record (compare-and-swap, `store.rs`) ▸ answer `ping` locally ▸
//! look the core's cache key up ▸ otherwise forward to the origin, streaming the body back ▸
//! carry out the core's `OriginOutcome`. Every decision is the core's.
//!
//! Natively this crate is empty (see `Cargo.toml`).
#![cfg(all(target_arch = "wasm32", target_os = "wasi"))]

#[cfg(feature = "test-vectors")]
mod bench;
mod instance;
mod store;
#[cfg(feature = "test-vectors")]
mod vectors;

use agentplane_core::gateway::{Begin, HttpRequest, Reply, RequestContext, SignatureStep};
use agentplane_core::jsonrpc::{self, ErrorObject, code};
use agentplane_core::time::Timestamp;
use http_body_util::{BodyExt as _, Full, Limited};
use spin_sdk::http::{BoxBody, Request, Response, box_body, send};
use spin_sdk::http_service;
use store::Kv;

/// Failures of the edge itself; answered with an opaque 500, logged to stderr.
#[derive(Debug, thiserror::Error)]
enum EdgeError {
    #[error("configuration: {0}")]
    Settings(#[from] agentplane_core::gateway::SettingsError),
    #[error("gateway: {0}")]
    Gateway(#[from] agentplane_core::gateway::GatewayError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("key-value: {0}")]
    Store(String),
    #[error("http: {0}")]
    Http(String),
}

/// Response headers that describe the origin's connection or encoding rather than the body.
const ORIGIN_HOP_HEADERS: &[&str] = &["connection", "keep-alive", "transfer-encoding", "content-length"];

#[http_service]
async fn handle(req: Request) -> Response<BoxBody> {
    #[cfg(feature = "test-vectors")]
    let req = match req.uri().path() {
        vectors::PATH => return vectors::serve(),
        bench::PATH => return bench::serve(req.uri()),
        vectors::TOKEN_MEMO_PATH => return vectors::serve_token_memo(&req).await.unwrap_or_else(internal_error),
        _ => req,
    };
    drive(req).await.unwrap_or_else(internal_error)
}

/// The opaque 500 for failures of the edge itself (configuration, platform errors); details go
/// to the log only.
fn internal_error(e: EdgeError) -> Response<BoxBody> {
    eprintln!("agentplane edge: {e}");
    let body = jsonrpc::error_bytes(None, &ErrorObject::new(code::INTERNAL_ERROR, "Internal error at the edge"));
    let mut r = Response::new(box_body(Full::new(bytes::Bytes::from(body))));
    *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn now() -> Timestamp {
    let t = spin_sdk::wasip3::clocks::system_clock::now();
    let secs = u64::try_from(t.seconds).unwrap_or(0);
    Timestamp::from_unix_nanos(secs.saturating_mul(1_000_000_000).saturating_add(u64::from(t.nanoseconds)))
}

fn entropy() -> [u8; 24] {
    let mut out = [0u8; 24];
    let bytes = spin_sdk::wasip3::random::random::get_random_bytes(24);
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
    out
}

#[cfg(feature = "test-vectors")]
fn json_response(status: http::StatusCode, body: &serde_json::Value) -> Response<BoxBody> {
    let mut r = Response::new(box_body(Full::new(bytes::Bytes::from(body.to_string()))));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn reply(r: Reply) -> Response<BoxBody> {
    let mut out = Response::new(box_body(Full::new(bytes::Bytes::from(r.body))));
    *out.status_mut() = r.status;
    *out.headers_mut() = r.headers;
    out
}

/// `begin_deferring`, with a new token's signature checked by the core once and then remembered
/// in key-value (keyed by the key and the signed bytes) until the token expires, so the next
/// instance that sees the token skips the signature math.
async fn begin(http_request: &HttpRequest<'_>, ctx: RequestContext, kv: &mut Kv) -> Result<Begin, EdgeError> {
    let token = match instance::with_gateway(|g| g.begin_deferring(http_request, ctx))? {
        SignatureStep::Decided(begin) => return Ok(begin),
        SignatureStep::Verify(token) => token,
    };
    let fingerprint = token.check.fingerprint();
    let known = match &fingerprint {
        Some(f) => kv.signature_known(f, ctx.now).await,
        None => false,
    };
    let ok = known || token.check.verify_in_core().unwrap_or(false);
    let (begin, leeway) =
        instance::with_gateway(|g| (g.resume(http_request, ctx, *token, ok), g.config().auth.leeway_secs))?;
    if ok
        && !known
        && let (Some(f), Begin::Proceed(p)) = (&fingerprint, &begin)
        && let Some(principal) = p.principal()
    {
        kv.remember_signature(f, principal.expires_at.saturating_add(leeway).saturating_mul(1000)).await;
    }
    Ok(begin)
}

async fn drive(req: Request) -> Result<Response<BoxBody>, EdgeError> {
    let now = now();
    let ctx = RequestContext { now, entropy: entropy() };
    let mut kv = Kv::default();
    instance::ensure(now, &mut kv).await?;

    let (parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let max_body = instance::with_gateway(|g| g.max_body_bytes())?;
    let Ok(collected) = Limited::new(body, max_body).collect().await else {
        return Ok(reply(instance::with_gateway(|g| g.payload_too_large(&parts.headers, ctx))?));
    };
    let body = collected.to_bytes();
    let http_request =
        HttpRequest { method: &parts.method, path_and_query: &path_and_query, headers: &parts.headers, body: &body };
    let mut pending = match begin(&http_request, ctx, &mut kv).await? {
        Begin::Respond(r) => return Ok(reply(r)),
        Begin::Proceed(p) => p,
    };

    let tenant = pending.principal().map(|p| p.tenant);
    let mut generation = None;
    if let Some(check) = pending.rate_limit() {
        let (decision, g) = kv.admit(check.tenant, &check.quota, now)?;
        generation = Some(g);
        if let Some(r) = pending.admit(decision) {
            return Ok(reply(r));
        }
    }
    if let Some(r) = pending.local_reply() {
        return Ok(reply(r));
    }
    if let (None, Some(t)) = (generation, tenant) {
        generation = Some(kv.generation(t)?);
    }
    if let Some(key) = pending.cache_key(generation.unwrap_or(0))
        && let Some(stored) = kv.cached(&key).await
    {
        match pending.reply_from_cache(&stored, now) {
            Some(r) => return Ok(reply(r)),
            None => kv.drop_cached(&key).await,
        }
    }

    let fwd = pending.forward(&parts.headers);
    let mut outgoing = http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{}", instance::origin_url()?, fwd.path_and_query))
        .body(Full::new(body))
        .map_err(|e| EdgeError::Http(e.to_string()))?;
    *outgoing.headers_mut() = fwd.headers;
    let origin = match send(outgoing).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentplane edge: origin unreachable: {e:?}");
            return Ok(reply(pending.origin_unavailable()));
        }
    };
    let (mut origin_parts, origin_body) = origin.into_parts();
    for name in ORIGIN_HOP_HEADERS {
        origin_parts.headers.remove(*name);
    }
    let status = origin_parts.status;
    let (outcome, body) = if pending.wants_body(status, &origin_parts.headers) {
        // A cacheable JSON answer: small, and the core needs it whole to decide what to store.
        let Ok(collected) = origin_body.collect().await else { return Ok(reply(pending.origin_unavailable())) };
        let bytes = collected.to_bytes();
        let outcome = pending.on_origin_response(status, Some(&bytes), now);
        (outcome, box_body(Full::new(bytes)))
    } else {
        // Everything else, SSE included, streams through frame by frame; nothing is buffered.
        (pending.on_origin_response(status, None, now), box_body(origin_body))
    };
    if outcome.bump_generation
        && let Some(t) = tenant
    {
        // Before the answer goes out: the tenant's next read must already see the new generation.
        kv.bump(t)?;
    }
    if let Some(entry) = outcome.store {
        kv.put_cached(entry).await;
    }
    origin_parts.headers.extend(outcome.headers);
    Ok(Response::from_parts(origin_parts, body))
}
