//! The Spin edge of agentplane: a spin-sdk 7 HTTP component (`wasm32-wasip2`, `wasi:http@0.3.0`)
//! driving `agentplane-core`, with Spin key-value for the per-tenant record, the cache and
//! remembered token verdicts, and Spin variables for the settings.
//!
//! Per request: settings and keys (`instance.rs`), then each `Step` of the core's `Exchange`
//! answered: a new token's signature checked once and the verdict remembered in key-value until
//! the token expires, admission against the tenant's record (compare-and-swap, `store.rs`), cache
//! lookups, the origin over outbound HTTP with the body streamed back. Every decision is the
//! core's.
//!
//! Natively this crate is empty (see `Cargo.toml`). The root `spin.toml` deploys it;
//! `scripts/build-edge-spin` builds it, test builds (feature `test-vectors`) into
//! `target/edge-spin-test`, so `spin deploy` never ships them.
#![cfg(all(target_arch = "wasm32", target_os = "wasi"))]

#[cfg(feature = "test-vectors")]
mod bench;
mod instance;
mod store;
#[cfg(feature = "test-vectors")]
mod vectors;

use agentplane_core::gateway::{HttpRequest, Reply, RequestContext, Step};
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

#[http_service]
async fn handle(req: Request) -> Response<BoxBody> {
    #[cfg(feature = "test-vectors")]
    let req = match req.uri().path() {
        vectors::PATH => return vectors::serve(),
        bench::PATH => return bench::serve(req.uri()),
        vectors::TOKEN_MEMO_PATH => return vectors::serve_token_memo(&req).await.unwrap_or_else(internal_error),
        vectors::CACHE_COUNT_PATH => return vectors::serve_cache_count().await.unwrap_or_else(internal_error),
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

/// The origin's answer, or `None` when no origin could be reached: the replica `spread` picks,
/// then, for a request that repeats harmlessly, one other (`Origins::attempts`).
async fn forward(
    fwd: agentplane_core::gateway::Forward,
    body: &bytes::Bytes,
    spread: u64,
    now: Timestamp,
) -> Result<Option<(http::response::Parts, BoxBody)>, EdgeError> {
    // A Spin instance may serve one request only, so no origin is remembered as down between
    // requests: each spreads anew, and a retryable one still gets its second origin.
    let origins = instance::origins()?;
    for origin in origins.attempts(spread, fwd.retryable, now) {
        let mut outgoing = http::Request::builder()
            .method(fwd.method.clone())
            .uri(format!("{origin}{}", fwd.path_and_query))
            .body(Full::new(body.clone()))
            .map_err(|e| EdgeError::Http(e.to_string()))?;
        *outgoing.headers_mut() = fwd.headers.clone();
        match send(outgoing).await {
            Ok(answer) => {
                let (head, b) = answer.into_parts();
                return Ok(Some((head, box_body(b))));
            }
            Err(e) => eprintln!("agentplane edge: origin {origin} unreachable: {e:?}"),
        }
    }
    Ok(None)
}

async fn drive(req: Request) -> Result<Response<BoxBody>, EdgeError> {
    let now = now();
    let entropy = entropy();
    // Which origin replica takes this request, drawn per request: no state between requests.
    let spread = u64::from_le_bytes([
        entropy[0], entropy[1], entropy[2], entropy[3], entropy[4], entropy[5], entropy[6], entropy[7],
    ]);
    let ctx = RequestContext { now, entropy };
    let mut kv = Kv::default();
    instance::ensure(now, &mut kv).await?;

    let (parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let max_body = instance::with_gateway(|g| g.max_body_bytes())?;
    let Ok(collected) = Limited::new(body, max_body).collect().await else {
        return Ok(reply(instance::with_gateway(|g| g.payload_too_large(&parts.headers, ctx))?));
    };
    let body = collected.to_bytes();
    let http_request = HttpRequest {
        method: &parts.method,
        path_and_query: &path_and_query,
        headers: &parts.headers,
        body: Some(&body),
    };
    let mut exchange = instance::with_gateway(|g| g.begin(http_request, ctx))?;
    let mut origin_body = None;
    loop {
        match exchange.poll() {
            Step::VerifySignature(check) => {
                // A verdict another instance reached is remembered under the key and signed bytes.
                let fingerprint = check.fingerprint();
                let known = match &fingerprint {
                    Some(f) => kv.signature_known(f, now).await,
                    None => false,
                };
                let ok = known || check.verify_in_core().unwrap_or(false);
                instance::with_gateway(|g| exchange.handle_signature(g, ok))?;
                if let (false, Some(f), Some(until)) = (known, &fingerprint, exchange.verdict_valid_until()) {
                    kv.remember_signature(f, until.as_unix_millis(), now).await;
                }
            }
            Step::Admit(check) => {
                let (decision, generation) = kv.admit(check.tenant, &check.quota, now)?;
                exchange.handle_admission(decision, generation);
            }
            // Not asked: the body was handed over at `begin`.
            Step::ReadBody { .. } => exchange.handle_body(&body),
            Step::ReadGeneration(t) => exchange.handle_generation(kv.generation(t)?),
            Step::LookupCache(key) => {
                let stored = kv.cached(key).await;
                exchange.handle_cache(stored.as_deref());
            }
            Step::EvictCache(key) => kv.drop_cached(&key).await,
            Step::Forward(fwd) => match forward(fwd, &body, spread, now).await? {
                Some((head, b)) => {
                    exchange.handle_origin_head(head.status, head.headers);
                    origin_body = Some(b);
                }
                None => exchange.handle_origin_failed(),
            },
            // A cacheable JSON answer: small, and the core needs it whole to decide what to store.
            Step::ReadOriginBody => match read_all(origin_body.take()).await {
                Some(bytes) => {
                    exchange.handle_origin_body(&bytes);
                    origin_body = Some(box_body(Full::new(bytes)));
                }
                None => exchange.handle_origin_failed(),
            },
            // Before the answer goes out: the tenant's next read must already see the new generation.
            Step::BumpGeneration(t) => kv.bump(t)?,
            Step::StoreCache(entry) => kv.put_cached(entry, now).await,
            Step::Respond(head) => {
                let span = span_export(&exchange, head.status);
                // Everything not buffered above, SSE included, streams through frame by frame.
                let body = origin_body.unwrap_or_else(|| box_body(Full::new(bytes::Bytes::new())));
                // After the body: a write's stream ends only once the generation is bumped again
                // (it may have committed after its head; a failed bump leaves entries to their
                // TTL), and the span goes to the collector.
                let bump = head.bump_after_body;
                let body = if bump.is_some() || span.is_some() {
                    box_body(body.with_trailers(async move {
                        if let Some(t) = bump
                            && let Err(e) = Kv::default().bump(t)
                        {
                            eprintln!("agentplane edge: generation bump after a write: {e}");
                        }
                        if let Some(span) = span {
                            span.send().await;
                        }
                        None
                    }))
                } else {
                    body
                };
                let mut response = Response::new(body);
                *response.status_mut() = head.status;
                *response.headers_mut() = head.headers;
                return Ok(response);
            }
            Step::Reply(r) => {
                let Some(span) = span_export(&exchange, r.status) else { return Ok(reply(r)) };
                let mut response = reply(r);
                let body = std::mem::replace(response.body_mut(), box_body(Full::new(bytes::Bytes::new())));
                *response.body_mut() = box_body(body.with_trailers(async move {
                    span.send().await;
                    None
                }));
                return Ok(response);
            }
        }
    }
}

/// This request's edge span, ready for the collector, if one is configured.
struct SpanExport {
    url: String,
    body: Vec<u8>,
}

fn span_export(exchange: &agentplane_core::gateway::Exchange<'_>, status: http::StatusCode) -> Option<SpanExport> {
    let url = instance::otlp_traces_url()?;
    let body = agentplane_core::otlp::export_json("agentplane-edge", &[exchange.span(now(), status)]);
    Some(SpanExport { url, body })
}

impl SpanExport {
    /// Sends the span once the client has the body (from the body's trailers): the client never
    /// waits for the collector, and a collector that fails costs a log line. The collector's host
    /// must be in `allowed_outbound_hosts`.
    async fn send(self) {
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            // A length, not chunks: not every collector reads a chunked body.
            .header(http::header::CONTENT_LENGTH, self.body.len())
            .body(Full::new(bytes::Bytes::from(self.body)));
        match request {
            Ok(request) => match send(request).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => eprintln!("agentplane edge: the trace collector answered {}", r.status()),
                Err(e) => eprintln!("agentplane edge: the trace collector is unreachable: {e:?}"),
            },
            Err(e) => eprintln!("agentplane edge: the trace collector's URL: {e}"),
        }
    }
}

async fn read_all(body: Option<BoxBody>) -> Option<bytes::Bytes> {
    Some(body?.collect().await.ok()?.to_bytes())
}
