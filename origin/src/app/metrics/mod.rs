//! This process's Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Requests are counted by the outermost layer, before the gate, so a request the gate refuses is
//! counted too: "the origin served N requests on /mcp" is then a fact an operator (or the edge's
//! runtime test) can read, not an inference from logs. `/metrics` is not among the edge's public
//! paths, so it is only reachable at the origin itself.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppError;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    source: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    search_phases: Family<PhaseLabels, Histogram>,
    session_lookups: Family<LookupLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("agentplane");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by endpoint and status", requests.clone());
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
        Self { registry, requests, search_phases, session_lookups }
    }
}

impl Metrics {
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
    pub fn observe_session_lookup(&self, database: bool, d: std::time::Duration) {
        let source = if database { "database" } else { "cache" };
        self.session_lookups.get_or_create(&LookupLabels { source }).observe(d.as_secs_f64());
    }

    fn count(&self, endpoint: &'static str, status: StatusCode) {
        self.requests.get_or_create(&RequestLabels { endpoint, status: status.as_u16() }).inc();
    }

    fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// A bounded set of label values: paths are client-chosen, so they are never labels themselves.
fn endpoint(path: &str) -> &'static str {
    match path {
        "/mcp" => "mcp",
        "/a2a" | "/a2a/" => "a2a",
        p if agentplane_core::a2a_rest::is_rest_path(p) => "a2a_rest",
        "/health" | "/ready" => "health",
        "/metrics" => "metrics",
        p if p.starts_with("/.well-known/") => "well_known",
        _ => "other",
    }
}

/// The counting layer; wrap it around everything else.
pub async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint(request.uri().path());
    let response = next.run(request).await;
    metrics.count(endpoint, response.status());
    response
}

pub async fn serve(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.render() {
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

    #[test]
    fn requests_are_counted_by_endpoint_and_status() {
        let m = Metrics::default();
        m.count(endpoint("/mcp"), StatusCode::OK);
        m.count(endpoint("/mcp"), StatusCode::OK);
        m.count(endpoint("/a2a"), StatusCode::UNAUTHORIZED);
        m.count(endpoint("/anything/else"), StatusCode::NOT_FOUND);
        let text = m.render().unwrap();
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="mcp",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="a2a",status="401"} 1"#), "{text}");
        assert!(text.contains(r#"agentplane_http_requests_total{endpoint="other",status="404"} 1"#), "{text}");
    }
}
