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
