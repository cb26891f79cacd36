//! Assembling the server from configuration: keys, gateway, MCP state, router.

use std::sync::Arc;

use agentplane_core::gateway::Gateway;
use anyhow::Context as _;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::app::config::{Config, EmbeddingProvider};
use crate::app::gate::Gate;
use crate::app::keys::Keys;
use crate::data::db::Database;
use crate::models::embed::{Embedder, Engine, LocalModel, RemoteEmbedder};
use crate::protocol::mcp::McpState;

/// The configured embedding provider, loaded and checked against the database's vector column.
pub async fn embedder(config: &Config, db: &Database) -> anyhow::Result<Option<Embedder>> {
    let engine = match config.embedding {
        EmbeddingProvider::None => return Ok(None),
        EmbeddingProvider::Local => {
            let dir = config.model_dir.clone();
            let model = tokio::task::spawn_blocking(move || LocalModel::load(&dir)).await??;
            Engine::Local(model)
        }
        EmbeddingProvider::Openai => Engine::Remote(RemoteEmbedder::new(config.remote_embedding.clone())?),
    };
    let embedder = Embedder::new(engine, config.query_cache_entries);
    let column = db.embedding_dimensions().await?;
    anyhow::ensure!(
        column == embedder.dimensions(),
        "embedding model {} makes {} dimensions but documents.embedding holds {column}: choose a {column}-dimension model",
        embedder.model(),
        embedder.dimensions()
    );
    Ok(Some(embedder))
}

/// Builds the router and starts this process's A2A executor; `cancel` ends MCP and A2A streams
/// and the executor on shutdown.
pub fn router(
    config: &Config,
    db: Database,
    keys: Keys,
    embedder: Option<Embedder>,
    cancel: CancellationToken,
) -> anyhow::Result<Router> {
    let gateway_config = config.gateway();
    let tools = gateway_config.tools.clone();
    let metrics = Arc::new(crate::app::metrics::Metrics::new(&gateway_config.tiers, embedder.as_ref()));
    let gateway = Gateway::new(gateway_config, keys.trusted).context("gateway configuration")?;
    #[cfg(not(feature = "dev-tools"))]
    anyhow::ensure!(
        !config.conformance_fixtures && !config.a2a.tck_fixtures,
        "this agentplane is built without the test fixtures: build it with --features dev-tools"
    );
    anyhow::ensure!(
        !config.a2a.tck_fixtures || config.listen.ip().is_loopback(),
        "the A2A compatibility kit's fixtures only run on a loopback address"
    );
    let health = crate::app::health::DatabaseHealth::watch(db.clone(), cancel.child_token());
    let sessions = Arc::new(
        crate::protocol::mcp::sessions::Sessions::new(db.clone(), config.mcp.session_cache_entries)
            .with_metrics(metrics.clone()),
    );
    let gate =
        Gate::new(gateway, crate::app::streams::StreamSlots::new(config.max_streams_per_tenant), sessions.clone())
            .with_database_health(health.clone());
    #[cfg(feature = "dev-tools")]
    let gate = gate.with_anonymous(crate::dev::conformance::anonymous_principal(config)?);
    let gate = Arc::new(gate);
    if config.jwks.is_some() {
        tokio::spawn(crate::app::keys::refresh(config.clone(), gate.clone(), cancel.child_token()));
    }
    let backfill = Arc::new(crate::models::embed::backfill::Progress::default());
    if let Some(e) = &embedder
        && config.backfill
    {
        let idle = std::time::Duration::from_secs(config.backfill_idle_secs.max(1));
        tokio::spawn(crate::models::embed::backfill::run(
            db.clone(),
            e.clone(),
            backfill.clone(),
            idle,
            cancel.child_token(),
        ));
    }
    let embedding = embedder.clone().map(|embedder| crate::app::http::Embedding { embedder, backfill });
    let card_key =
        crate::app::local_key::LocalKey::load_or_create_at(&config.card_key_path(), crate::protocol::a2a::card::KEY_ID)
            .context("the agent card's signing key")?;
    let state = AppState {
        gate,
        db: db.clone(),
        jwks: keys.published.map(Arc::new),
        card_jwks: Arc::new(card_key.jwks()),
        embedding,
        metrics: metrics.clone(),
        readiness: health,
        operator_token: config.operator_token.as_deref().map(Arc::from),
        budgets: config.budgets.clone(),
        tiers: config.gateway.tiers.clone(),
    };
    // Every origin process runs A2A executors: tasks survive any one process.
    // One LISTEN connection for every channel the process follows.
    let mut listener = crate::data::db::listen::Listener::new();
    let timing = crate::data::db::listen::Timing::of(config);
    let a2a = crate::protocol::a2a::start(
        config,
        db.clone(),
        embedder.clone(),
        &card_key,
        &mut listener,
        metrics.clone(),
        cancel.child_token(),
    );
    let hubs = crate::protocol::mcp::Hubs::register(&mut listener, timing);
    listener.start(db.pool(), cancel.child_token());
    let mcp = McpState::new(db, tools, embedder, a2a.clone()).with_metrics(metrics);
    #[cfg(feature = "dev-tools")]
    let mcp = if config.conformance_fixtures { mcp.with_conformance_fixtures() } else { mcp };
    let mcp = Arc::new(mcp);
    let sessions = crate::protocol::mcp::SessionSettings {
        sessions,
        idle: std::time::Duration::from_secs(config.mcp.session_idle_secs.max(1)),
        hubs,
    };
    Ok(crate::app::http::app(state, mcp, sessions, a2a, &config.allowed_hosts, cancel))
}
