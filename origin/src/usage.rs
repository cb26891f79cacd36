//! The usage ledger: every model call (embeddings now, chat later) with its tokens, per tenant.

use sqlx::{Postgres, Transaction};

use crate::embed::Usage;

/// Records one embedding call for the transaction's tenant.
pub async fn record_embedding(
    tx: &mut Transaction<'static, Postgres>,
    subject: &str,
    usage: &Usage,
) -> Result<(), sqlx::Error> {
    crate::db::ensure_tenant(tx).await?;
    sqlx::query(
        "INSERT INTO usage_ledger (subject, kind, provider, model, input_tokens) VALUES ($1, 'embedding', $2, $3, $4)",
    )
    .bind(subject)
    .bind(usage.provider)
    .bind(&usage.model)
    .bind(i64::try_from(usage.tokens).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
