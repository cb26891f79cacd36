//! This process's Prometheus metrics, served at `/metrics` in the OpenMetrics text format; the
//! names and what alerts on them are in `deploy/observability/` (`metrics.txt` lists every
//! family, and a test holds this module to it).
//!
//! Three kinds of figure: requests, counted by the outermost layer before the gate (so a refused
//! request counts too) and by an RPC layer inside it (method and tier, which only the gate
//! knows); events recorded where they happen (tool calls, refusals, search phases, embedding
//! calls); and gauges sampled when scraped (`sampled.rs`: pool, queue, streams, budgets,
//! readiness). `/metrics` is not among the edge's public paths, so it is only reachable at the
//! origin itself.

mod labels;
mod sampled;
pub mod tenants;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentplane_core::auth::Principal;
use agentplane_core::gateway::Admitted;
use agentplane_core::ratelimit::Tiers;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::labels::*;
pub use self::labels::{Outcome, Refusal};
use super::{AppError, AppState};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The configured tier names: a token's `tier` claim outside them is counted as the default.
    tiers: BTreeSet<String>,
    default_tier: String,
    requests: Family<RequestLabels, Counter>,
    request_time: Family<EndpointLabels, Histogram>,
    rpcs: Family<RpcLabels, Counter>,
    rpc_time: Family<RpcTimeLabels, Histogram>,
    tools: Family<ToolLabels, Counter>,
    tool_time: Family<ToolTimeLabels, Histogram>,
    refusals: Family<RefusalLabels, Counter>,
    search_phases: Family<PhaseLabels, Histogram>,
    session_lookups: Family<LookupLabels, Histogram>,
    sampled: sampled::Gauges,
    /// Calls per tenant, for the operator's page (never a label here).
    pub tenants: tenants::TenantActivity,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&Tiers::default(), None)
    }
}

/// 1 ms to about 30 s: a cached answer to a research task's blocking send.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1e-3, 2.0, 16))
}

impl Metrics {
    /// The registry of a process with these `tiers`, and its embedder's call latencies if it has
    /// one.
    pub fn new(tiers: &Tiers, embedder: Option<&crate::models::embed::Embedder>) -> Self {
        let mut registry = Registry::with_prefix("agentplane");
        let requests = Family::default();
        registry.register("http_requests", "HTTP requests answered, by endpoint and status", requests.clone());
        let request_time: Family<EndpointLabels, Histogram> = Family::new_with_constructor(call_buckets);
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head (a stream's body runs on), by endpoint",
            request_time.clone(),
        );
        let rpcs = Family::default();
        registry.register(
            "rpc_requests",
            "Admitted JSON-RPC and A2A calls, by endpoint, method, tier and outcome (ok, client_error, server_error)",
            rpcs.clone(),
        );
        let rpc_time: Family<RpcTimeLabels, Histogram> = Family::new_with_constructor(call_buckets);
        registry.register(
            "rpc_request_duration_seconds",
            "Time to the response head of an admitted call, by endpoint, method and tier",
            rpc_time.clone(),
        );
        let tools = Family::default();
        registry.register("tool_calls", "MCP tool calls, by tool, tier and outcome (ok, error)", tools.clone());
        let tool_time: Family<ToolTimeLabels, Histogram> = Family::new_with_constructor(call_buckets);
        registry.register("tool_call_duration_seconds", "MCP tool call time, by tool and tier", tool_time.clone());
        let refusals = Family::default();
        registry.register(
            "gate_refusals",
            "Requests refused before any work, by reason and tier (empty before the token is known)",
            refusals.clone(),
        );
        // 100 µs to about 3 s: a cached query vector to a query queued behind a loaded model.
        let search_phases = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-4, 2.0, 16))
        });
        registry.register(
            "search_phase_seconds",
            "Where hybrid_search spends its time: embed, lexical, vector, hydrate, and total (the tool call)",
            search_phases.clone(),
        );
        // 1 µs to about 0.5 s: a cached session to a database round trip under load.
        let session_lookups = Family::<LookupLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-6, 2.0, 20))
        });
        registry.register(
            "mcp_session_lookup_seconds",
            "The gate's check of an MCP session (2025 revisions) on each request, by source: cache or database",
            session_lookups.clone(),
        );
        if let Some(e) = embedder {
            registry.register(
                "embedding_request_duration_seconds",
                "Embedding calls (a batch is one), by provider and outcome",
                e.latency().clone(),
            );
        }
        let sampled = sampled::Gauges::register(&mut registry);
        Self {
            registry,
            tiers: tiers.tiers.keys().cloned().collect(),
            default_tier: tiers.default_tier.clone(),
            requests,
            request_time,
            rpcs,
            rpc_time,
            tools,
            tool_time,
            refusals,
            search_phases,
            session_lookups,
            sampled,
            tenants: tenants::TenantActivity::default(),
        }
    }

    /// The tier label of a caller: its token's tier when configured, else the default tier (the
    /// one its limits come from).
    pub fn tier(&self, principal: Option<&Principal>) -> String {
        match principal {
            None => String::new(),
            Some(p) => match p.tier.as_deref() {
                Some(t) if self.tiers.contains(t) => t.to_owned(),
                _ => self.default_tier.clone(),
            },
        }
    }

    /// Records one search's phases.
    pub fn observe_search(&self, t: &crate::data::search::Timings) {
        for (phase, d) in [
            ("embed", t.embed),
            ("lexical", t.lexical),
            ("vector", t.vector),
            ("hydrate", t.hydrate),
            ("total", t.total),
        ] {
            self.search_phases.get_or_create(&PhaseLabels { phase }).observe(d.as_secs_f64());
        }
    }

    /// Records one session check; `database` when it went to the database.
    pub fn observe_session_lookup(&self, database: bool, d: Duration) {
        let source = if database { "database" } else { "cache" };
        self.session_lookups.get_or_create(&LookupLabels { source }).observe(d.as_secs_f64());
    }

    /// Records one tool call; `tool` is one this server offers (or "other").
    pub fn observe_tool(&self, tool: &str, principal: &Principal, ok: bool, d: Duration) {
        let (tool, tier) = (tool.to_owned(), self.tier(Some(principal)));
        let outcome = if ok { "ok" } else { "error" };
        self.tools.get_or_create(&ToolLabels { tool: tool.clone(), tier: tier.clone(), outcome }).inc();
        self.tool_time.get_or_create(&ToolTimeLabels { tool, tier }).observe(d.as_secs_f64());
    }

    /// Records a refusal before any work was done; `tier` from [`Metrics::tier`].
    pub fn refused(&self, reason: Refusal, tier: String) {
        self.refusals.get_or_create(&RefusalLabels { reason: reason.as_str(), tier }).inc();
    }

    fn observe_rpc(&self, endpoint: &'static str, method: String, tier: String, outcome: Outcome, d: Duration) {
        let labels = RpcLabels { endpoint, method: method.clone(), tier: tier.clone(), outcome: outcome.as_str() };
        self.rpcs.get_or_create(&labels).inc();
        self.rpc_time.get_or_create(&RpcTimeLabels { endpoint, method, tier }).observe(d.as_secs_f64());
    }

    fn count(&self, endpoint: &'static str, status: StatusCode, d: Duration) {
        self.requests.get_or_create(&RequestLabels { endpoint, status: status.as_u16() }).inc();
        self.request_time.get_or_create(&EndpointLabels { endpoint }).observe(d.as_secs_f64());
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The counting layer; wrap it around everything else.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.count(endpoint, response.status(), started.elapsed());
    response
}

/// The largest JSON answer whose JSON-RPC outcome is read for the RPC counts; larger ones (a
/// long document, a big search page) are results, never errors, in practice.
const MAX_PEEK_BYTES: u64 = 256 * 1024;

/// The RPC layer, inside the gate: each admitted call by method, tier and outcome. A JSON-RPC
/// error travels under 200, so a small JSON answer's `error.code` decides its outcome; a gRPC
/// refusal's is its `grpc-status`; a stream that started is `ok`.
pub async fn observe_rpc(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let Some(admitted) = request.extensions().get::<Admitted>() else { return next.run(request).await };
    let endpoint = endpoint(request.uri().path());
    let method = admitted.method.clone().unwrap_or_else(|| request.method().as_str().to_owned());
    let tier = metrics.tier(admitted.principal.as_ref());
    let tenant = admitted.principal.as_ref().map(|p| p.tenant);
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let (response, outcome) = outcome(response).await;
    if let Some(tenant) = tenant {
        metrics.tenants.record(tenant, outcome != Outcome::Ok);
    }
    metrics.observe_rpc(endpoint, method, tier, outcome, elapsed);
    response
}

async fn outcome(response: Response) -> (Response, Outcome) {
    let status = Outcome::of_status(response.status());
    if status != Outcome::Ok {
        return (response, status);
    }
    let headers = response.headers();
    if let Some(grpc) = headers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<u32>().ok()) {
        return (response, Outcome::of_grpc_status(grpc));
    }
    let json = headers.get(http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let small = axum::body::HttpBody::size_hint(response.body()).upper().is_some_and(|n| n <= MAX_PEEK_BYTES);
    if !(json && small) {
        return (response, Outcome::Ok);
    }
    let (head, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_PEEK_BYTES as usize).await {
        Ok(bytes) => {
            let outcome = jsonrpc_error_code(&bytes).map_or(Outcome::Ok, Outcome::of_jsonrpc_code);
            (Response::from_parts(head, Body::from(bytes)), outcome)
        }
        // The handler's body failed as it was read: the client gets a broken answer either way.
        Err(_) => (Response::from_parts(head, Body::empty()), Outcome::ServerError),
    }
}

/// `error.code` of a JSON-RPC error answer, read without building the rest of the document.
fn jsonrpc_error_code(body: &[u8]) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        code: i64,
    }
    serde_json::from_slice::<Answer>(body).ok()?.error.map(|e| e.code)
}

pub async fn serve(State(state): State<AppState>) -> Response {
    state.metrics.sampled.sample(&state).await;
    match state.metrics.render() {
        Ok(text) => {
            ([(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Err(_) => AppError::Internal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tier: Option<&str>) -> Principal {
        Principal {
            tenant: uuid::Uuid::new_v4(),
            subject: "s".into(),
            scopes: Default::default(),
            tier: tier.map(str::to_owned),
            token_id: None,
            expires_at: 0,
        }
    }

    #[test]
    fn requests_are_counted_by_endpoint_and_status() {
        let m = Metrics::default();
        m.count(endpoint("/mcp"), StatusCode::OK, Duration::ZERO);
        m.count(endpoint("/mcp"), StatusCode::OK, Duration::ZERO);
        m.count(endpoint("/a2a"), StatusCode::UNAUTHORIZED, Duration::ZERO);
        m.count(endpoint("/anything/else"), StatusCode::NOT_FOUND, Duration::ZERO);
        m.count(endpoint("/lf.a2a.v1.A2AService/GetTask"), StatusCode::OK, Duration::ZERO);
        let text = m.render().unwrap();
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="mcp",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="a2a",status="401"} 1"#), "{text}");
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="other",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="a2a_grpc",status="200"} 1"#), "{text}");
    }

    #[test]
    fn a_tier_outside_the_configuration_is_counted_as_the_default() {
        let m = Metrics::default();
        assert_eq!(m.tier(Some(&principal(Some("pro")))), "pro");
        assert_eq!(m.tier(Some(&principal(Some("made-up-by-an-issuer")))), "free");
        assert_eq!(m.tier(Some(&principal(None))), "free");
        assert_eq!(m.tier(None), "");
    }

    #[tokio::test]
    async fn a_jsonrpc_error_under_200_is_an_error_and_its_body_survives() {
        let answer = |body: &'static str| {
            Response::builder().header(http::header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap()
        };
        let internal = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"boom"}}"#;
        let (response, o) = outcome(answer(internal)).await;
        assert_eq!(o, Outcome::ServerError);
        assert_eq!(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap(), internal.as_bytes());
        let (_, o) = outcome(answer(r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#)).await;
        assert_eq!(o, Outcome::ClientError);
        let (_, o) = outcome(answer(r#"{"jsonrpc":"2.0","id":1,"result":{"error":"a field of a result"}}"#)).await;
        assert_eq!(o, Outcome::Ok);
        let grpc = Response::builder().header("grpc-status", "14").body(Body::empty()).unwrap();
        assert_eq!(outcome(grpc).await.1, Outcome::ServerError);
    }
}
