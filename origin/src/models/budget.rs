//! Spending limits: what a tenant (by its tier) and one user may spend on model calls per UTC
//! day, read from the usage ledger. Checked before an A2A task starts and before each step that
//! would call a paid model.

use std::collections::BTreeMap;

use serde::Deserialize;
use sqlx::{Postgres, Transaction};

/// `[budgets]` in the configuration. Amounts are millionths of a currency unit per UTC day;
/// a tier not listed, and a `per_user_micros` of 0, have no limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub tiers: BTreeMap<String, u64>,
    pub per_user_micros: u64,
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

impl BudgetConfig {
    /// Whether the transaction's tenant, and `subject` within it, may spend more today.
    pub async fn check(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        tier: &str,
        subject: &str,
    ) -> Result<Result<(), Exceeded>, sqlx::Error> {
        if let Some(&limit) = self.tiers.get(tier) {
            let spent = spent_today(tx, None).await?;
            if spent >= limit {
                return Ok(Err(Exceeded::Tenant { tier: tier.to_owned(), limit }));
            }
        }
        if self.per_user_micros > 0 {
            let spent = spent_today(tx, Some(subject)).await?;
            if spent >= self.per_user_micros {
                return Ok(Err(Exceeded::User { limit: self.per_user_micros }));
            }
        }
        Ok(Ok(()))
    }
}

/// The ledger's cost since the start of the UTC day, for the transaction's tenant (row-level
/// security scopes the sum) or one subject in it.
async fn spent_today(tx: &mut Transaction<'static, Postgres>, subject: Option<&str>) -> Result<u64, sqlx::Error> {
    let micros: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(cost_micros), 0)::bigint FROM usage_ledger \
         WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
           AND ($1::text IS NULL OR subject = $1)",
    )
    .bind(subject)
    .fetch_one(&mut **tx)
    .await?;
    Ok(u64::try_from(micros).unwrap_or(0))
}
