//! The Spin edge of agentplane: a spin-sdk 7 HTTP component (`wasm32-wasip2`, `wasi:http@0.3.0`)
//! driving `agentplane-core`, with Spin key-value for the per-tenant record and the cache and
//! Spin variables for the settings.
//!
//! The drive loop is the one `agentplane_core::gateway` documents, as in the Cloudflare adapter.
//! Natively this crate is empty (see `Cargo.toml`).
//!
//! Status: compiles; not yet run in a runtime (see EDGE-STATUS.md).
#![cfg(all(target_arch = "wasm32", target_os = "wasi"))]

mod store;

use agentplane_core::Gateway;
use agentplane_core::auth::KeySet;
use agentplane_core::gateway::settings::var;
use agentplane_core::gateway::{Begin, EdgeSettings, HttpRequest, KeySource, Reply, RequestContext};
use agentplane_core::jsonrpc::{self, ErrorObject, code};
use agentplane_core::time::Timestamp;
use http_body_util::{BodyExt as _, Full, Limited};
use spin_sdk::http::{BoxBody, Request, Response, box_body, send};
use spin_sdk::http_service;

/// Errors of the edge itself; answered with an opaque 500, logged to stderr.
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

#[http_service]
async fn handle(req: Request) -> Response<BoxBody> {
    match drive(req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentplane edge: {e}");
            let body =
                jsonrpc::error_bytes(None, &ErrorObject::new(code::INTERNAL_ERROR, "Internal error at the edge"));
            let mut r = Response::new(box_body(Full::new(bytes::Bytes::from(body))));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            r
        }
    }
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

/// Spin variables are read asynchronously, the core's settings reader is synchronous: read every
/// name first.
async fn settings() -> Result<EdgeSettings, EdgeError> {
    let mut values = Vec::with_capacity(var::ALL.len());
    for name in var::ALL {
        values.push((*name, spin_sdk::variables::get(name).await.ok()));
    }
    Ok(EdgeSettings::from_vars(|name| values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone()))?)
}

async fn keys(source: &KeySource) -> Result<KeySet, EdgeError> {
    let bytes = match source {
        KeySource::Jwks(doc) => doc.clone().into_bytes(),
        // A component instance lives for one request, so the fetched JWKS is kept in key-value.
        KeySource::JwksUrl { url, refresh_secs } => store::jwks(url, *refresh_secs, now()).await?,
    };
    KeySet::from_jwks(&bytes).map_err(|e| EdgeError::Keys(e.to_string()))
}

fn reply(r: Reply) -> Response<BoxBody> {
    let mut out = Response::new(box_body(Full::new(bytes::Bytes::from(r.body))));
    *out.status_mut() = r.status;
    *out.headers_mut() = r.headers;
    out
}

async fn drive(req: Request) -> Result<Response<BoxBody>, EdgeError> {
    let now = now();
    let ctx = RequestContext { now, entropy: entropy() };
    let settings = settings().await?;
    let keys = keys(&settings.keys).await?;
    let origin_url = settings.origin_url.clone();
    let mut gateway = Gateway::new(settings.gateway, keys)?;

    let (parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let Ok(collected) = Limited::new(body, gateway.max_body_bytes()).collect().await else {
        return Ok(reply(gateway.payload_too_large(&parts.headers, ctx)));
    };
    let body = collected.to_bytes();
    let http_request =
        HttpRequest { method: &parts.method, path_and_query: &path_and_query, headers: &parts.headers, body: &body };
    let mut pending = match gateway.begin(&http_request, ctx) {
        Begin::Respond(r) => return Ok(reply(r)),
        Begin::Proceed(p) => p,
    };

    let tenant = pending.principal().map(|p| p.tenant);
    let mut generation = 0;
    if let Some(check) = pending.rate_limit() {
        let (decision, g) = store::admit(check.tenant, &check.quota, now).await?;
        generation = g;
        if let Some(r) = pending.admit(decision) {
            return Ok(reply(r));
        }
    } else if let Some(t) = tenant {
        generation = store::generation(t).await?;
    }
    if let Some(r) = pending.local_reply() {
        return Ok(reply(r));
    }
    if let Some(key) = pending.cache_key(generation)
        && let Some(stored) = store::cached(&key).await
        && let Some(r) = pending.reply_from_cache(&stored, now)
    {
        return Ok(reply(r));
    }

    let fwd = pending.forward(&parts.headers);
    let mut outgoing = http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("{origin_url}{}", fwd.path_and_query))
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
    for name in ["connection", "keep-alive", "transfer-encoding", "content-length"] {
        origin_parts.headers.remove(name);
    }
    let status = origin_parts.status;
    let (outcome, body) = if pending.wants_body(status, &origin_parts.headers) {
        let Ok(collected) = origin_body.collect().await else { return Ok(reply(pending.origin_unavailable())) };
        let bytes = collected.to_bytes();
        let outcome = pending.on_origin_response(status, Some(&bytes), now);
        (outcome, box_body(Full::new(bytes)))
    } else {
        // Streams through frame by frame (SSE included); nothing is buffered here.
        (pending.on_origin_response(status, None, now), box_body(origin_body))
    };
    if outcome.bump_generation
        && let Some(t) = tenant
    {
        store::bump(t).await?;
    }
    if let Some(entry) = outcome.store {
        store::put_cached(entry).await;
    }
    origin_parts.headers.extend(outcome.headers);
    Ok(Response::from_parts(origin_parts, body))
}
