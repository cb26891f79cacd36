//! The drive loop: a `match` over the core's `Step`s, with the Durable Object, the Cache API,
//! WebCrypto and `fetch` for the I/O. `agentplane_core::testkit::vectors::World::drive` is the
//! same loop over in-memory stores.

use agentplane_core::gateway::{Forward, HttpRequest, RequestContext, ResponseHead, Step};
use agentplane_core::time::Timestamp;
use futures_util::StreamExt as _;
use http::{HeaderMap, StatusCode};
use worker::js_sys::Uint8Array;
use worker::{Context, Date, Env, Fetch, Request, RequestInit, Response, console_warn};

use crate::isolate::{self, EdgeError};
use crate::tenant::{self, TenantOp};
use crate::{cache, convert, webcrypto};

pub(crate) async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response, EdgeError> {
    let now = Timestamp::from_unix_millis(Date::now().as_millis());
    let mut entropy = [0u8; 24];
    // crypto.getRandomValues, through getrandom's `js` backend.
    getrandom::getrandom(&mut entropy).map_err(|e| EdgeError::Keys(format!("entropy: {e}")))?;
    // Which origin replica takes this request, drawn per request: no state between requests.
    let spread = u64::from_le_bytes([
        entropy[0], entropy[1], entropy[2], entropy[3], entropy[4], entropy[5], entropy[6], entropy[7],
    ]);
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

    let http_request =
        HttpRequest { method: &method, path_and_query: &path_and_query, headers: &headers, body: Some(&body) };
    let mut exchange = isolate::with_gateway(|g| g.begin(http_request, rctx))?;
    let mut origin = None;
    let mut buffered = None;
    loop {
        match exchange.poll() {
            Step::VerifySignature(check) => {
                let ok = webcrypto::verify(check).await?;
                isolate::with_gateway(|g| exchange.handle_signature(g, ok))?;
            }
            Step::Admit(check) => {
                let answer = tenant::call(env, check.tenant, &TenantOp::Admit { quota: check.quota }).await?;
                let decision =
                    answer.decision.ok_or_else(|| EdgeError::Tenant("admit answered without a decision".into()))?;
                exchange.handle_admission(decision, answer.generation);
            }
            // Not asked: the body was handed over at `begin`.
            Step::ReadBody { .. } => exchange.handle_body(&body),
            Step::ReadGeneration(t) => {
                exchange.handle_generation(tenant::call(env, t, &TenantOp::Read).await?.generation)
            }
            Step::LookupCache(key) => {
                let stored = cache::lookup(key).await;
                exchange.handle_cache(stored.as_deref());
            }
            // Cache API entries expire at the TTL they were stored with.
            Step::EvictCache(_) => {}
            Step::Forward(fwd) => match send(&fwd, &body, spread, now).await? {
                Some(response) => {
                    let status = StatusCode::from_u16(response.status_code()).unwrap_or(StatusCode::BAD_GATEWAY);
                    exchange.handle_origin_head(status, convert::header_map(response.headers()));
                    origin = Some(response);
                }
                None => exchange.handle_origin_failed(),
            },
            // A cacheable JSON answer: small, and the core needs it whole to decide what to store.
            Step::ReadOriginBody => match origin.as_mut().map(Response::bytes) {
                Some(read) => match read.await {
                    Ok(bytes) => {
                        exchange.handle_origin_body(&bytes);
                        buffered = Some(bytes);
                    }
                    Err(_) => exchange.handle_origin_failed(),
                },
                None => exchange.handle_origin_failed(),
            },
            // Awaited, not deferred: the tenant's next read must already see the new generation.
            Step::BumpGeneration(t) => {
                tenant::call(env, t, &TenantOp::Bump).await?;
            }
            Step::StoreCache(entry) => ctx.wait_until(cache::store(entry)),
            Step::Respond(head) => {
                export_span(&exchange, head.status, ctx);
                return respond(head, origin, buffered, env);
            }
            Step::Reply(reply) => {
                export_span(&exchange, reply.status, ctx);
                return Ok(convert::reply(reply)?);
            }
        }
    }
}

/// Sends this request's edge span to the collector, if one is configured, after the response
/// (`waitUntil`): the client never waits for it, and a collector that fails costs a log line.
/// A streamed answer's span ends at its head.
fn export_span(exchange: &agentplane_core::gateway::Exchange<'_>, status: StatusCode, ctx: &Context) {
    let Some(url) = isolate::otlp_traces_url() else { return };
    let end = Timestamp::from_unix_millis(Date::now().as_millis());
    let body = agentplane_core::otlp::export_json(SERVICE_NAME, &[exchange.span(end, status)]);
    ctx.wait_until(async move {
        let sent = async {
            let headers = worker::Headers::new();
            headers.set("content-type", "application/json")?;
            let mut init = RequestInit::new();
            init.with_method(worker::Method::Post)
                .with_headers(headers)
                .with_body(Some(Uint8Array::from(&body[..]).into()));
            Fetch::Request(Request::new_with_init(&url, &init)?).send().await
        };
        match sent.await {
            Ok(r) if r.status_code() < 300 => {}
            Ok(r) => console_warn!("agentplane edge: the trace collector answered {}", r.status_code()),
            Err(e) => console_warn!("agentplane edge: the trace collector is unreachable: {e}"),
        }
    });
}

/// The `service.name` of the edges' spans.
const SERVICE_NAME: &str = "agentplane-edge";

/// Reads the request body, or `None` when it is longer than `limit`: reading stops there, so an
/// oversized body is never buffered whole.
async fn read_body(req: &mut Request, headers: &HeaderMap, limit: usize) -> Result<Option<Vec<u8>>, EdgeError> {
    let declared = agentplane_core::gateway::content_length(headers);
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

/// The origin's answer, or `None` when no origin could be reached: the replica `spread` picks,
/// then, for a request that repeats harmlessly, one other (`Origins::attempts`).
async fn send(fwd: &Forward, body: &[u8], spread: u64, now: Timestamp) -> Result<Option<Response>, EdgeError> {
    let origins = isolate::origins()?;
    for origin in origins.attempts(spread, fwd.retryable, now) {
        let url = format!("{origin}{}", fwd.path_and_query);
        let mut init = RequestInit::new();
        init.with_method(worker::Method::from(fwd.method.as_str().to_owned()));
        init.with_headers(convert::headers(&fwd.headers)?);
        if !body.is_empty() {
            init.with_body(Some(Uint8Array::from(body).into()));
        }
        match Fetch::Request(Request::new_with_init(&url, &init)?).send().await {
            Ok(r) => {
                isolate::origin_reached(origin, true, now);
                return Ok(Some(r));
            }
            Err(e) => {
                console_warn!("agentplane edge: origin {origin} unreachable: {e}");
                isolate::origin_reached(origin, false, now);
            }
        }
    }
    Ok(None)
}

/// The client's response: the core's status and headers, with the body buffered for the cache or,
/// SSE included, the origin's ReadableStream passed on chunk by chunk. A write's stream ends only
/// after the tenant's generation is bumped again (`ResponseHead::bump_after_body`).
fn respond(
    head: ResponseHead,
    origin: Option<Response>,
    buffered: Option<Vec<u8>>,
    env: &Env,
) -> Result<Response, EdgeError> {
    let builder = Response::builder().with_status(head.status.as_u16()).with_headers(convert::headers(&head.headers)?);
    Ok(match (buffered, origin, head.bump_after_body) {
        (Some(bytes), _, _) => builder.fixed(bytes),
        (None, Some(mut origin), Some(t)) => {
            let env = env.clone();
            let bump = futures_util::stream::once(async move {
                // The client is told nothing new: a failed bump leaves entries that die at their TTL.
                if let Err(e) = tenant::call(&env, t, &TenantOp::Bump).await {
                    console_warn!("agentplane edge: generation bump after a write: {e}");
                }
                Ok::<Vec<u8>, worker::Error>(Vec::new())
            });
            builder.from_stream(origin.stream()?.chain(bump))?
        }
        (None, Some(origin), None) => builder.body(origin.body().clone()),
        (None, None, _) => return Ok(convert::internal_error()?),
    })
}
