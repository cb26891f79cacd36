//! The usage ledger: every model call (embeddings, chat completions) with its tokens and price,
//! per tenant.

use sqlx::{Postgres, Transaction};

use crate::models::embed::Usage;

/// The price of a call: each `(tokens, price per million tokens)` pair priced in millionths of a
/// currency unit, summed, then rounded up once (a call is never free because it was small).
pub fn micros(priced: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    let micros: u128 = priced.into_iter().map(|(tokens, per_mtok)| u128::from(tokens) * u128::from(per_mtok)).sum();
    u64::try_from(micros.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Records one chat completion for the transaction's tenant, with its price.
pub async fn record_chat(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    model: &str,
    completion: &crate::models::chat::Completion,
) -> Result<(), sqlx::Error> {
    let c = completion;
    record(tx, subject, "chat", "openai-compatible", model, [c.input_tokens, c.output_tokens, c.cost_micros]).await
}

/// Records one embedding call for the transaction's tenant, with its price.
pub async fn record_embedding(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    usage: &Usage,
) -> Result<(), sqlx::Error> {
    record(tx, subject, "embedding", usage.provider, &usage.model, [usage.tokens, 0, usage.cost_micros]).await
}

/// One ledger row: subject, kind, provider, model, input tokens, output tokens, cost in micros
/// (the tenant comes from the transaction's setting). Shared with ingest's COPY connection.
pub const LEDGER_INSERT: &str = "INSERT INTO usage_ledger \
     (subject, kind, provider, model, input_tokens, output_tokens, cost_micros) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// One ledger row; `[input tokens, output tokens, cost in micros]`.
async fn record(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    kind: &str,
    provider: &str,
    model: &str,
    [input, output, cost]: [u64; 3],
) -> Result<(), sqlx::Error> {
    crate::data::db::ensure_tenant(tx).await?;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(LEDGER_INSERT)
        .bind(subject)
        .bind(kind)
        .bind(provider)
        .bind(model)
        .bind(n(input))
        .bind(n(output))
        .bind(n(cost))
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
