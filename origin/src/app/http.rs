//! The HTTP surface (`/mcp`, `/a2a`, the agent card, health, keys) behind the gate, and
//! `/metrics` outside it: `fn app(state) -> Router`, so tests can drive it without a socket.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::health::{DatabaseHealth, Readiness, check_readiness};
use super::{AppError, gate};
use crate::data::db::Database;
use crate::protocol::a2a::A2a;
use crate::protocol::mcp::McpState;

#[derive(Debug, Clone)]
pub struct AppState {
    pub gate: Arc<gate::Gate>,
    pub db: Database,
    /// The JWKS this server publishes (the dev key's), if any.
    pub jwks: Option<Arc<Value>>,
    /// The public half of the agent card's signing key; apart from `jwks`, so it is never taken
    /// for a token key.
    pub card_jwks: Arc<Value>,
    pub embedding: Option<Embedding>,
    pub metrics: Arc<crate::app::metrics::Metrics>,
    /// The database's readiness, probed in the background; `/ready` answers from it.
    pub readiness: Arc<DatabaseHealth>,
    /// The bearer credential of `/ready/details` (`operator_token`); `None` turns it off.
    pub operator_token: Option<Arc<str>>,
    /// The budgets, whose standings `/metrics` reports.
    pub budgets: crate::models::budget::BudgetConfig,
    /// The rate-limit tiers, as the operator's page lists them.
    pub tiers: agentplane_core::ratelimit::Tiers,
}

/// The embedding provider and its back-fill, as `/ready/details` reports them.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub embedder: crate::models::embed::Embedder,
    pub backfill: Arc<crate::models::embed::backfill::Progress>,
}

pub fn app(
    state: AppState,
    mcp: Arc<McpState>,
    sessions: crate::protocol::mcp::SessionSettings,
    a2a: Arc<A2a>,
    allowed_hosts: &[String],
    cancel: tokio_util::sync::CancellationToken,
) -> Router {
    let card = get(crate::protocol::a2a::agent_card).with_state(a2a.clone());
    let protocols = Router::new()
        .route("/a2a", post(crate::protocol::a2a::handle).with_state(a2a.clone()))
        // Clients join the card's interface URL and `/`.
        .route("/a2a/", post(crate::protocol::a2a::handle).with_state(a2a.clone()))
        // A2A's HTTP+JSON binding; the gate reads each request as the call it stands for.
        .route("/a2a/v1/{*operation}", axum::routing::any(crate::protocol::a2a::rest::handle).with_state(a2a.clone()))
        // A2A's gRPC binding (HTTP/2); the gate authenticates and limits each call by its path.
        .route("/lf.a2a.v1.A2AService/{method}", post(crate::protocol::a2a::grpc::handle).with_state(a2a))
        .nest_service("/mcp", crate::protocol::mcp::service(mcp, sessions, allowed_hosts, cancel))
        .layer(axum::middleware::from_fn(super::rpc_errors::as_jsonrpc))
        // Outside the rewrite above, so it reads the answer the client gets.
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), crate::app::metrics::observe_rpc));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/.well-known/jwks.json", get(jwks))
        .route(crate::protocol::a2a::card::JWKS_PATH, get(card_jwks))
        .route("/.well-known/agent-card.json", card.clone())
        // The 0.2 name of the card, still fetched by older clients.
        .route("/.well-known/agent.json", card)
        .merge(protocols)
        // The console's pages, and its session: behind the gate like every other route.
        .merge(super::console::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::guard))
        .with_state(state.clone())
        // Outside the gate, for operators at the origin itself (no edge passes them on):
        // metrics are scraped without a token; the readiness details check the operator's.
        .route("/ready/details", get(ready_details).with_state(state.clone()))
        .route("/metrics", get(crate::app::metrics::serve).with_state(state.clone()))
        .layer(axum::middleware::from_fn_with_state(state.metrics, crate::app::metrics::count))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and every migration has been applied; 503 otherwise. Public
/// and free: the background probe's last answer, which says nothing about the deployment (see
/// `/ready/details`).
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let readiness = state.readiness.readiness();
    let document = json!({ "status": readiness.as_str() });
    match readiness {
        Readiness::Ready => Ok(Json(document)),
        Readiness::Migrating | Readiness::Unavailable => Err(AppError::Unavailable(document)),
    }
}

/// For operators (`Authorization: Bearer <operator_token>`): readiness with the lexical backend,
/// index segments, the embedding provider, its circuit and the back-fill's backlog.
async fn ready_details(State(state): State<AppState>, headers: http::HeaderMap) -> Result<Json<Value>, AppError> {
    state.check_operator(bearer(&headers).unwrap_or_default())?;
    Ok(Json(readiness_details(&state).await))
}

impl AppState {
    /// Whether `given` is the operator's credential: 404 when none is configured (the operator
    /// endpoints are off), 401 when it is not this one.
    #[allow(clippy::result_large_err)] // the error is the response, built once per refusal
    pub fn check_operator(&self, given: &str) -> Result<(), AppError> {
        let Some(expected) = &self.operator_token else {
            return Err(AppError::NotFound("no operator_token is configured"));
        };
        // Digests, so the comparison's time says nothing about the token.
        if Sha256::digest(given.as_bytes()) != Sha256::digest(expected.as_bytes()) {
            return Err(AppError::OperatorUnauthorized);
        }
        Ok(())
    }
}

/// The token of a request's `Authorization: Bearer` header, for handlers that check a credential
/// themselves (the operator's); the gate reads callers' tokens in the core.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    agentplane_core::auth::bearer_token(value).ok()
}

/// What `/ready/details` and the console's operator page show.
pub async fn readiness_details(state: &AppState) -> Value {
    let (readiness, migrations) = check_readiness(&state.db).await;
    let segments = match state.db.lexical() {
        crate::data::db::LexicalBackend::PgSearchBm25 => {
            crate::data::db::maintenance::segments(state.db.pool()).await.ok()
        }
        crate::data::db::LexicalBackend::TsRankCd => None,
    };
    let embedding = match &state.embedding {
        Some(e) => json!({
            "provider": e.embedder.provider(),
            "model": e.embedder.model(),
            "dimensions": e.embedder.dimensions(),
            "circuit": e.embedder.breaker(),
            "backfill": e.backfill.report(&state.db).await.ok(),
        }),
        None => Value::Null,
    };
    json!({
        "status": readiness.as_str(),
        "database": if readiness == Readiness::Unavailable { "unreachable" } else { "ok" },
        "migrations": migrations,
        "lexical_backend": state.db.lexical().name(),
        "lexical_index_segments": segments,
        "embedding": embedding,
    })
}

async fn card_jwks(State(state): State<AppState>) -> Response {
    ([(http::header::CACHE_CONTROL, "public, max-age=300")], Json(state.card_jwks.as_ref().clone())).into_response()
}

async fn jwks(State(state): State<AppState>) -> Result<Response, AppError> {
    match &state.jwks {
        Some(doc) => {
            Ok(([(http::header::CACHE_CONTROL, "public, max-age=300")], Json(doc.as_ref().clone())).into_response())
        }
        None => Err(AppError::NotFound("this server publishes no keys")),
    }
}
