//! Spending limits: what a tenant (by its tier) and one user may spend on model calls per UTC
//! day, read from the usage ledger and the open reservations. Checked before an A2A task starts;
//! a paid model call reserves its most possible cost first, so concurrent tasks of a tenant
//! cannot all pass on one total.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// `[budgets]` in the configuration. Amounts are millionths of a currency unit per UTC day;
/// a tier not listed, and a `per_user_micros` of 0, have no limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub tiers: BTreeMap<String, u64>,
    pub per_user_micros: u64,
    /// What the checks of this process saw, for `/metrics`; shared by the config's clones.
    #[serde(skip)]
    pub standings: Arc<Standings>,
}

/// One limit and today's spending against it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BudgetStanding {
    /// `tenant` (the tier's daily budget) or `user` (`per_user_micros`).
    pub scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    pub limit_micros: u64,
    /// The day's ledger plus open reservations.
    pub spent_micros: u64,
    /// When the UTC day, and with it the budget, turns.
    pub renews_at: Option<chrono::DateTime<Utc>>,
}

/// Which limit was reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error("the tenant's daily budget for tier {tier} ({limit} micros) is spent")]
    Tenant { tier: String, limit: u64 },
    #[error("this user's daily budget ({limit} micros) is spent")]
    User { limit: u64 },
}

impl Exceeded {
    /// The error's `data`: which limit, and when it renews.
    pub fn data(&self) -> serde_json::Value {
        let (scope, limit) = match self {
            Exceeded::Tenant { limit, .. } => ("tenant", limit),
            Exceeded::User { limit } => ("user", limit),
        };
        serde_json::json!({ "scope": scope, "limit_micros": limit, "period": "UTC day" })
    }
}

/// A paid call's hold on the budgets, from [`BudgetConfig::reserve`] until
/// [`BudgetConfig::release`]. `None` when no limit applies: nothing was written.
#[derive(Debug)]
#[must_use = "a reservation holds budget until it is released"]
pub struct Reservation(Option<uuid::Uuid>);

impl BudgetConfig {
    /// Whether the transaction's tenant, and `subject` within it, may spend more today: the
    /// day's ledger plus the open reservations are under each limit that applies.
    pub async fn check(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        tier: &str,
        subject: &str,
    ) -> Result<Result<(), Exceeded>, sqlx::Error> {
        if let Some(&limit) = self.tiers.get(tier) {
            let (tenant, spent) = tenant_committed_today(tx).await?;
            self.standings.record(tenant, tier, spent, limit, Utc::now().date_naive());
            if spent >= limit {
                return Ok(Err(Exceeded::Tenant { tier: tier.to_owned(), limit }));
            }
        }
        if self.per_user_micros > 0 && committed_today(tx, Some(subject)).await? >= self.per_user_micros {
            return Ok(Err(Exceeded::User { limit: self.per_user_micros }));
        }
        Ok(Ok(()))
    }

    /// Each limit that applies to the transaction's tenant in `tier` and to `subject`, with what
    /// today's ledger and open reservations have taken of it: what the console draws as bars.
    pub async fn standings(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        tier: &str,
        subject: &str,
    ) -> Result<Vec<BudgetStanding>, sqlx::Error> {
        let renews_at = (Utc::now().date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let mut out = Vec::new();
        if let Some(&limit) = self.tiers.get(tier) {
            let (_, spent) = tenant_committed_today(tx).await?;
            out.push(BudgetStanding {
                scope: "tenant",
                tier: Some(tier.to_owned()),
                limit_micros: limit,
                spent_micros: spent,
                renews_at,
            });
        }
        if self.per_user_micros > 0 {
            let spent = committed_today(tx, Some(subject)).await?;
            out.push(BudgetStanding {
                scope: "user",
                tier: None,
                limit_micros: self.per_user_micros,
                spent_micros: spent,
                renews_at,
            });
        }
        Ok(out)
    }

    /// Holds `micros` (what a paid call may cost) for `subject` until `ttl` passes or
    /// [`BudgetConfig::release`], if [`BudgetConfig::check`] passes. The check and the hold are
    /// one step under the tenant's budget lock, so concurrent calls of one tenant each see the
    /// others' holds: a limit is overshot by at most one call, as with calls one after another.
    pub async fn reserve(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        tier: &str,
        subject: &str,
        micros: u64,
        ttl: std::time::Duration,
    ) -> Result<Result<Reservation, Exceeded>, sqlx::Error> {
        if !self.tiers.contains_key(tier) && self.per_user_micros == 0 {
            return Ok(Ok(Reservation(None)));
        }
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('budget:' || app_current_tenant()::text, 0))")
            .execute(&mut **tx)
            .await?;
        if let Err(exceeded) = self.check(tx, tier, subject).await? {
            return Ok(Err(exceeded));
        }
        crate::data::db::ensure_tenant(tx).await?;
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO budget_reservations (subject, micros, expires_at) \
             VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING id",
        )
        .bind(subject)
        .bind(i64::try_from(micros).unwrap_or(i64::MAX))
        .bind(ttl.as_secs_f64())
        .fetch_one(&mut **tx)
        .await?;
        Ok(Ok(Reservation(Some(id))))
    }

    /// Ends a hold, in the transaction that records what the call cost (or that it failed).
    pub async fn release(&self, tx: &mut Transaction<'static, Postgres>, r: Reservation) -> Result<(), sqlx::Error> {
        if let Reservation(Some(id)) = r {
            sqlx::query("DELETE FROM budget_reservations WHERE id = $1").bind(id).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// The ledger's cost since the start of the UTC day plus the open reservations, for the
/// transaction's tenant (row-level security scopes both) or one subject in it; and the tenant.
const COMMITTED_TODAY: &str = "SELECT app_current_tenant(), \
       ((SELECT coalesce(sum(cost_micros), 0) FROM usage_ledger \
          WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
            AND ($1::text IS NULL OR subject = $1)) \
      + (SELECT coalesce(sum(micros), 0) FROM budget_reservations \
          WHERE expires_at > now() AND ($1::text IS NULL OR subject = $1)))::bigint";

async fn committed_today(tx: &mut Transaction<'static, Postgres>, subject: Option<&str>) -> Result<u64, sqlx::Error> {
    let (_, micros): (Uuid, i64) = sqlx::query_as(COMMITTED_TODAY).bind(subject).fetch_one(&mut **tx).await?;
    Ok(u64::try_from(micros).unwrap_or(0))
}

async fn tenant_committed_today(tx: &mut Transaction<'static, Postgres>) -> Result<(Uuid, u64), sqlx::Error> {
    let (tenant, micros): (Uuid, i64) = sqlx::query_as(COMMITTED_TODAY).bind(None::<&str>).fetch_one(&mut **tx).await?;
    Ok((tenant, u64::try_from(micros).unwrap_or(0)))
}

/// The most tenants [`Standings`] keeps: past it, new tenants are not recorded until the day
/// turns (the figures then undercount, and say so in a log line, rather than grow without bound).
const MAX_STANDINGS: usize = 100_000;

/// How far each tenant seen today is into its tier's budget, as last checked in this process.
/// A fleet's view is the maximum over its replicas (each sees the tenants it served).
#[derive(Debug, Default)]
pub struct Standings {
    seen: Mutex<HashMap<Uuid, Standing>>,
}

#[derive(Debug, Clone)]
struct Standing {
    tier: String,
    ratio: f64,
    day: NaiveDate,
}

/// One tier's tenants by how much of their budget they have spent today.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierStanding {
    /// The highest spent/limit among them.
    pub max_ratio: f64,
    /// Under 50 %, 50-80 %, 80-100 %, and spent.
    pub bands: [u64; 4],
}

/// The band names of [`TierStanding::bands`], in order.
pub const BANDS: [&str; 4] = ["under_50", "50_to_80", "80_to_100", "exhausted"];

impl Standings {
    fn record(&self, tenant: Uuid, tier: &str, spent: u64, limit: u64, day: NaiveDate) {
        let ratio = if limit == 0 { 1.0 } else { spent as f64 / limit as f64 };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_STANDINGS && !seen.contains_key(&tenant) {
            seen.retain(|_, s| s.day == day);
            if seen.len() >= MAX_STANDINGS {
                tracing::warn!(max = MAX_STANDINGS, "budget standings are full; a tenant is left out of /metrics");
                return;
            }
        }
        seen.insert(tenant, Standing { tier: tier.to_owned(), ratio, day });
    }

    /// Today's standings per tier, for every tier with a limit (an empty one as zeros); earlier
    /// days are forgotten.
    pub fn by_tier(&self, config: &BudgetConfig, today: NaiveDate) -> BTreeMap<String, TierStanding> {
        let mut out: BTreeMap<String, TierStanding> =
            config.tiers.keys().map(|t| (t.clone(), TierStanding::default())).collect();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, s| s.day == today);
        for s in seen.values() {
            let Some(t) = out.get_mut(&s.tier) else { continue };
            t.max_ratio = t.max_ratio.max(s.ratio);
            let band = match s.ratio {
                r if r >= 1.0 => 3,
                r if r >= 0.8 => 2,
                r if r >= 0.5 => 1,
                _ => 0,
            };
            t.bands[band] += 1;
        }
        out
    }
}
