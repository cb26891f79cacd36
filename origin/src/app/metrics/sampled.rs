//! Gauges read when `/metrics` is scraped, from the state they describe: the pool, the A2A queue
//! (one query across tenants through `a2a_queue_stats()`, counts only), open streams, the
//! embedding circuit, budget standings, readiness. Sampling at scrape time keeps them exact for
//! the moment Prometheus records, and costs nothing between scrapes.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::app::health::Readiness;
use crate::app::streams::StreamKind;
use crate::models::breaker::Status;
use crate::models::budget::BANDS;

/// How long a scrape waits for the queue query; past it the queue gauges keep their last values
/// (a down database shows as `agentplane_ready 0`, not as a hung scrape).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    tier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BandLabels {
    tier: String,
    band: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Default)]
pub(super) struct Gauges {
    ready: Gauge,
    pool: Family<StateLabels, Gauge>,
    pool_max: Gauge,
    queue_depth: Gauge,
    queue_age: FloatGauge,
    streams: Family<KindLabels, Gauge>,
    breaker: Family<ProviderLabels, Gauge>,
    budget_ratio: Family<TierLabels, FloatGauge>,
    budget_tenants: Family<BandLabels, Gauge>,
}

impl Gauges {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let g = Self::default();
        registry.register("ready", "1 when /ready answers 200: the database answers and is migrated", g.ready.clone());
        registry.register(
            "db_pool_connections",
            "Pooled database connections, by state (idle, in_use)",
            g.pool.clone(),
        );
        registry.register("db_pool_max_connections", "The pool's configured size", g.pool_max.clone());
        registry.register(
            "task_queue_depth",
            "A2A tasks (all tenants) that could run and wait for an executor",
            g.queue_depth.clone(),
        );
        registry.register(
            "task_queue_oldest_age_seconds",
            "How long the longest-waiting of those has waited (0 when none)",
            g.queue_age.clone(),
        );
        registry.register(
            "streams_open",
            "Open SSE and gRPC streams on this replica, by kind (mcp, a2a)",
            g.streams.clone(),
        );
        registry.register(
            "embedding_breaker_state",
            "The embedding provider's circuit: 0 closed, 1 half-open, 2 open (a local model has none: 0)",
            g.breaker.clone(),
        );
        registry.register(
            "budget_consumption_ratio",
            "The highest share of its daily budget any tenant of the tier has spent, as this replica last checked it",
            g.budget_ratio.clone(),
        );
        registry.register(
            "budget_tenants",
            "Tenants of the tier by share of the daily budget spent (under_50, 50_to_80, 80_to_100, exhausted), as this replica saw them today",
            g.budget_tenants.clone(),
        );
        g
    }

    pub(super) async fn sample(&self, state: &AppState) {
        self.ready.set(i64::from(state.readiness.readiness() == Readiness::Ready));
        let pool = state.db.pool();
        let (size, idle) = (pool.size(), pool.num_idle());
        self.pool.get_or_create(&StateLabels { state: "idle" }).set(idle as i64);
        self.pool.get_or_create(&StateLabels { state: "in_use" }).set(i64::from(size).saturating_sub(idle as i64));
        self.pool_max.set(i64::from(pool.options().get_max_connections()));
        for kind in StreamKind::ALL {
            self.streams
                .get_or_create(&KindLabels { kind: kind.as_str() })
                .set(state.gate.streams().open_of(kind) as i64);
        }
        if let Some(e) = &state.embedding {
            let value = match e.embedder.breaker() {
                None | Some(Status::Closed) => 0,
                Some(Status::HalfOpen) => 1,
                Some(Status::Open) => 2,
            };
            self.breaker.get_or_create(&ProviderLabels { provider: e.embedder.provider() }).set(value);
        }
        let today = chrono::Utc::now().date_naive();
        for (tier, standing) in state.budgets.standings.by_tier(&state.budgets, today) {
            self.budget_ratio.get_or_create(&TierLabels { tier: tier.clone() }).set(standing.max_ratio);
            for (band, n) in BANDS.into_iter().zip(standing.bands) {
                self.budget_tenants.get_or_create(&BandLabels { tier: tier.clone(), band }).set(n as i64);
            }
        }
        match tokio::time::timeout(QUERY_TIMEOUT, crate::protocol::a2a::store::queue_stats(pool)).await {
            Ok(Ok((depth, age))) => {
                self.queue_depth.set(depth);
                self.queue_age.set(age);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "the A2A queue's figures are unavailable"),
            Err(_) => tracing::debug!("the A2A queue's figures took too long"),
        }
    }
}
