//! The usage ledger: every model call (embeddings, chat completions) with its tokens and price,
//! per tenant.

use sqlx::{Postgres, Transaction};

use crate::embed::Usage;

/// Records one chat completion for the transaction's tenant, with its price.
pub async fn record_chat(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    model: &str,
    completion: &crate::chat::Completion,
) -> Result<(), sqlx::Error> {
    crate::db::ensure_tenant(tx).await?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO usage_ledger (subject, kind, provider, model, input_tokens, output_tokens, cost_micros) \
         VALUES ($1, 'chat', 'openai-compatible', $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(model)
    .bind(n(completion.input_tokens))
    .bind(n(completion.output_tokens))
    .bind(n(completion.cost_micros))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records one embedding call for the transaction's tenant, with its price.
pub async fn record_embedding(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    usage: &Usage,
) -> Result<(), sqlx::Error> {
    crate::db::ensure_tenant(tx).await?;
    sqlx::query(
        "INSERT INTO usage_ledger (subject, kind, provider, model, input_tokens, cost_micros) \
         VALUES ($1, 'embedding', $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(usage.provider)
    .bind(&usage.model)
    .bind(i64::try_from(usage.tokens).unwrap_or(i64::MAX))
    .bind(i64::try_from(usage.cost_micros).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One row of the spend report: a UTC day, a model, and what its calls used and cost.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct Spend {
    pub day: String,
    pub kind: String,
    pub provider: String,
    pub model: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

/// The transaction's tenant's spend over the last `days` UTC days (today included), newest first,
/// by day, kind and model.
pub async fn spend_by_day(tx: &mut Transaction<'static, Postgres>, days: i64) -> Result<Vec<Spend>, sqlx::Error> {
    sqlx::query_as(
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, kind, provider, model, \
                count(*) AS calls, sum(input_tokens)::bigint AS input_tokens, \
                sum(output_tokens)::bigint AS output_tokens, sum(cost_micros)::bigint AS cost_micros \
         FROM usage_ledger \
         WHERE created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1::int - 1) \
         GROUP BY 1, 2, 3, 4 ORDER BY 1 DESC, 2, 4, 3",
    )
    .bind(days)
    .fetch_all(&mut **tx)
    .await
}
