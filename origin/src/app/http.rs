//! The HTTP surface (`/mcp`, `/a2a`, the agent card, health, keys) behind the gate, and
//! `/metrics` outside it: `fn app(state) -> Router`, so tests can drive it without a socket.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

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
    pub embedding: Option<Embedding>,
    pub metrics: Arc<crate::app::metrics::Metrics>,
}

/// The embedding provider and its back-fill, as `/ready` reports them.
#[derive(Debug, Clone)]
pub struct Embedding {
    pub embedder: crate::models::embed::Embedder,
    pub backfill: Arc<crate::models::embed::backfill::Progress>,
}

pub fn app(
    state: AppState,
    mcp: Arc<McpState>,
    a2a: Arc<A2a>,
    allowed_hosts: &[String],
    cancel: tokio_util::sync::CancellationToken,
) -> Router {
    let card = get(crate::protocol::a2a::agent_card).with_state(a2a.clone());
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/agent-card.json", card.clone())
        // The 0.2 name of the card, still fetched by older clients.
        .route("/.well-known/agent.json", card)
        .route("/a2a", post(crate::protocol::a2a::handle).with_state(a2a))
        .nest_service("/mcp", crate::protocol::mcp::service(mcp, allowed_hosts, cancel))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::guard))
        .with_state(state.clone())
        // Outside the gate: scraped directly at the origin, without a token.
        .route("/metrics", get(crate::app::metrics::serve).with_state(state.metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(state.metrics, crate::app::metrics::count))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers and every migration has been applied. Names the lexical
/// backend in use.
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let expected = crate::data::db::MIGRATOR.iter().count();
    match state.db.readiness().await {
        Ok(applied) if applied >= expected => {
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
            Ok(Json(json!({
                "status": "ready",
                "database": "ok",
                "migrations": { "applied": applied, "expected": expected },
                "lexical_backend": state.db.lexical().name(),
                "lexical_index_segments": segments,
                "embedding": embedding,
            })))
        }
        Ok(applied) => Err(AppError::Unavailable(
            json!({ "status": "migrating", "migrations": { "applied": applied, "expected": expected } }),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(AppError::Unavailable(json!({ "status": "unavailable", "database": "unreachable" })))
        }
    }
}

async fn jwks(State(state): State<AppState>) -> Result<Response, AppError> {
    match &state.jwks {
        Some(doc) => {
            Ok(([(http::header::CACHE_CONTROL, "public, max-age=300")], Json(doc.as_ref().clone())).into_response())
        }
        None => Err(AppError::NotFound("this server publishes no keys")),
    }
}
