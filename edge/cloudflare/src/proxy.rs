//! The drive loop: the order of calls is the one `agentplane_core::gateway` documents and
//! `agentplane_core::testkit::vectors::World::drive` runs over in-memory stores.

use agentplane_core::gateway::{Begin, HttpRequest, OriginOutcome, Pending, RequestContext, SignatureStep};
use agentplane_core::time::Timestamp;
use futures_util::StreamExt as _;
use http::{HeaderMap, StatusCode};
use worker::js_sys::Uint8Array;
use worker::{Context, Date, Env, Fetch, Request, RequestInit, Response, console_warn};

use crate::isolate::{self, EdgeError};
use crate::tenant::{self, TenantOp};
use crate::{cache, convert, webcrypto};

/// Response headers that describe the origin's connection or encoding of the body rather than
/// the body itself; the Workers runtime sets its own when the body is passed on.
const ORIGIN_HOP_HEADERS: &[&str] = &["connection", "keep-alive", "transfer-encoding", "content-length"];

pub(crate) async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, EdgeError> {
    let now_ms = Date::now().as_millis();
    let now = Timestamp::from_unix_millis(now_ms);
    let mut entropy = [0u8; 24];
    // crypto.getRandomValues, through getrandom's `js` backend.
    getrandom::getrandom(&mut entropy).map_err(|e| EdgeError::Keys(format!("entropy: {e}")))?;
    let rctx = RequestContext { now, entropy };

    isolate::ensure(env, now).await?;

    // The raw method: `worker::Method` maps methods it does not know to GET.
    let method = http::Method::from_bytes(req.inner().method().as_bytes()).unwrap_or(http::Method::GET);
    let url = req.url()?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let headers = convert::header_map(req.headers());

    let max_body = isolate::with_gateway(|g| g.max_body_bytes())?;
    let Some(body) = read_body(&mut req, &headers, max_body).await? else {
        return Ok(convert::reply(isolate::with_gateway(|g| g.payload_too_large(&headers, rctx))?)?);
    };

    let http_request = HttpRequest { method: &method, path_and_query: &path_and_query, headers: &headers, body: &body };
    let begin = match isolate::with_gateway(|g| g.begin_deferring(&http_request, rctx))? {
        SignatureStep::Decided(begin) => begin,
        SignatureStep::Verify(token) => {
            let ok = webcrypto::verify(&token.check).await?;
            isolate::with_gateway(|g| g.resume(&http_request, rctx, *token, ok))?
        }
    };
    let mut pending = match begin {
        Begin::Respond(reply) => return Ok(convert::reply(reply)?),
        Begin::Proceed(p) => p,
    };

    let tenant = pending.principal().map(|p| p.tenant);
    let mut generation = None;
    if let Some(check) = pending.rate_limit() {
        let answer = tenant::call(env, check.tenant, &TenantOp::Admit { quota: check.quota }).await?;
        generation = Some(answer.generation);
        let Some(decision) = answer.decision else {
            return Err(EdgeError::Tenant("admit answered without a decision".into()));
        };
        if let Some(reply) = pending.admit(decision) {
            return Ok(convert::reply(reply)?);
        }
    }
    if let Some(reply) = pending.local_reply() {
        return Ok(convert::reply(reply)?);
    }
    if let (None, Some(t)) = (generation, tenant) {
        generation = Some(tenant::call(env, t, &TenantOp::Read).await?.generation);
    }
    if let Some(key) = pending.cache_key(generation.unwrap_or(0))
        && let Some(stored) = cache::lookup(&key).await
        && let Some(reply) = pending.reply_from_cache(&stored, now)
    {
        return Ok(convert::reply(reply)?);
    }

    forward(&pending, &method, &headers, body, env, ctx, now).await
}

/// Reads the request body, or `None` when it is longer than `limit`: reading stops there, so an
/// oversized body is never buffered whole.
async fn read_body(req: &mut Request, headers: &HeaderMap, limit: usize) -> Result<Option<Vec<u8>>, EdgeError> {
    let declared = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let mut stream = req.stream()?;
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

async fn forward(
    pending: &Pending,
    method: &http::Method,
    incoming: &HeaderMap,
    body: Vec<u8>,
    env: &Env,
    ctx: &Context,
    now: Timestamp,
) -> Result<Response, EdgeError> {
    let fwd = pending.forward(incoming);
    let url = format!("{}{}", isolate::origin_url()?, fwd.path_and_query);
    let mut init = RequestInit::new();
    init.with_method(worker::Method::from(method.as_str().to_owned())).with_headers(convert::headers(&fwd.headers)?);
    if !body.is_empty() {
        init.with_body(Some(Uint8Array::from(body.as_slice()).into()));
    }
    let origin_request = Request::new_with_init(&url, &init)?;
    let mut origin = match Fetch::Request(origin_request).send().await {
        Ok(r) => r,
        Err(e) => {
            console_warn!("agentplane edge: origin unreachable: {e}");
            return Ok(convert::reply(pending.origin_unavailable())?);
        }
    };
    let status = StatusCode::from_u16(origin.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response_headers = convert::header_map(origin.headers());
    for name in ORIGIN_HOP_HEADERS {
        response_headers.remove(*name);
    }

    if pending.wants_body(status, &response_headers) {
        // A cacheable JSON answer: small, and the core needs it whole to decide what to store.
        let Ok(bytes) = origin.bytes().await else {
            return Ok(convert::reply(pending.origin_unavailable())?);
        };
        let outcome = pending.on_origin_response(status, Some(&bytes), now);
        let response_headers = apply(outcome, response_headers, pending, env, ctx).await?;
        return Ok(Response::builder()
            .with_status(status.as_u16())
            .with_headers(convert::headers(&response_headers)?)
            .fixed(bytes));
    }

    // Everything else, SSE included, streams through: the origin's ReadableStream becomes the
    // client's body, chunk by chunk, with nothing buffered here.
    let outcome = pending.on_origin_response(status, None, now);
    let response_headers = apply(outcome, response_headers, pending, env, ctx).await?;
    Ok(Response::builder()
        .with_status(status.as_u16())
        .with_headers(convert::headers(&response_headers)?)
        .body(origin.body().clone()))
}

/// Carries out what the core decided about the origin's answer; returns the client's headers.
async fn apply(
    outcome: OriginOutcome,
    mut headers: HeaderMap,
    pending: &Pending,
    env: &Env,
    ctx: &Context,
) -> Result<HeaderMap, EdgeError> {
    if outcome.bump_generation
        && let Some(p) = pending.principal()
    {
        // Awaited, not deferred: the tenant's next read must already see the new generation.
        tenant::call(env, p.tenant, &TenantOp::Bump).await?;
    }
    if let Some(entry) = outcome.store {
        ctx.wait_until(cache::store(entry));
    }
    headers.extend(outcome.headers);
    Ok(headers)
}
