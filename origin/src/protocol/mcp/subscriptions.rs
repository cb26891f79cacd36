//! Resource subscriptions: `resources/subscribe` of the 2025 revisions (rows of
//! `mcp_session_subscriptions`, which the database's triggers on `documents` turn into
//! notifications in the session's stream log) and `subscriptions/listen` of 2026-07-28 (a stream
//! that follows the tenant's change feed, `mcp_resource_changes`). Either way a change made by
//! any replica or by `agentplane ingest` reaches the subscriber, and only the changing tenant's.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    ResourceListChangedNotification, ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification,
    SubscriptionFilter,
};
use rmcp::service::SubscriptionContext;
use serde_json::json;
use uuid::Uuid;

use super::db_error;
use crate::data::db::listen::{Cursor, Hub, Pending, announcement};
use crate::data::db::{Database, TenantId};
use crate::settled;

/// Announces a change-feed row as `tenant:id`.
pub const CHANGES_CHANNEL: &str = "mcp_resource_changes";

/// The most resources one session (or one `subscriptions/listen`) follows.
pub const MAX_PER_SESSION: usize = 1000;

/// The longest URI a subscription may name (the table's limit).
const MAX_URI: usize = 2048;

/// Feed rows read at a time.
const BATCH: i64 = 256;

fn check_uri(uri: &str) -> Result<(), McpError> {
    if uri.is_empty() || uri.len() > MAX_URI {
        return Err(McpError::invalid_params(
            format!("uri must be 1 to {MAX_URI} bytes"),
            Some(json!({ "field": "uri" })),
        ));
    }
    Ok(())
}

/// `resources/subscribe`: the session follows `uri` until it unsubscribes or ends.
pub async fn subscribe(db: &Database, tenant: TenantId, session: Uuid, uri: &str) -> Result<(), McpError> {
    check_uri(uri)?;
    let mut tx = db.tenant_tx(tenant).await.map_err(|e| db_error(&e))?;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM mcp_session_subscriptions WHERE session_id = $1")
        .bind(session)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(&e))?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= MAX_PER_SESSION {
        return Err(McpError::invalid_params(
            format!("a session follows at most {MAX_PER_SESSION} resources; unsubscribe from some first"),
            Some(json!({ "field": "uri", "limit": MAX_PER_SESSION })),
        ));
    }
    sqlx::query("INSERT INTO mcp_session_subscriptions (session_id, uri) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(session)
        .bind(uri)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(&e))?;
    tx.commit().await.map_err(|e| db_error(&e))
}

/// `resources/unsubscribe`; unsubscribing from what the session does not follow is no error.
pub async fn unsubscribe(db: &Database, tenant: TenantId, session: Uuid, uri: &str) -> Result<(), McpError> {
    check_uri(uri)?;
    let mut tx = db.tenant_tx(tenant).await.map_err(|e| db_error(&e))?;
    sqlx::query("DELETE FROM mcp_session_subscriptions WHERE session_id = $1 AND uri = $2")
        .bind(session)
        .bind(uri)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(&e))?;
    tx.commit().await.map_err(|e| db_error(&e))
}

/// What a `subscriptions/listen` stream is given of what it asked for: resource changes, and no
/// more resources than a session may follow.
pub fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut filter = SubscriptionFilter::new();
    filter.resources_list_changed = requested.resources_list_changed.filter(|on| *on);
    filter.resource_subscriptions = requested.resource_subscriptions.as_ref().map(|uris| {
        uris.iter().filter(|u| !u.is_empty() && u.len() <= MAX_URI).take(MAX_PER_SESSION).cloned().collect()
    });
    filter
}

/// One change-feed row.
struct Change {
    at: Cursor,
    uris: Vec<String>,
    list_changed: bool,
}

/// Where the tenant's change feed ends now (settled rows only).
async fn newest(db: &Database, tenant: TenantId) -> Result<Cursor, sqlx::Error> {
    let mut tx = db.tenant_tx(tenant).await?;
    let newest: Option<(i64, i64)> = sqlx::query_as(concat!(
        "SELECT xid::text::bigint, id FROM mcp_resource_changes WHERE ",
        settled!(),
        " ORDER BY xid DESC, id DESC LIMIT 1"
    ))
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(newest.map(|(xid, id)| Cursor { xid, id }).unwrap_or_default())
}

async fn changes_after(db: &Database, tenant: TenantId, after: Cursor) -> Result<Vec<Change>, sqlx::Error> {
    let mut tx = db.tenant_tx(tenant).await?;
    let rows: Vec<(i64, i64, Vec<String>, bool)> = sqlx::query_as(concat!(
        "SELECT xid::text::bigint, id, uris, list_changed FROM mcp_resource_changes \
         WHERE (xid, id) > ($1::bigint::text::xid8, $2) AND ",
        settled!(),
        " ORDER BY xid, id LIMIT $3"
    ))
    .bind(after.xid)
    .bind(after.id)
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(xid, id, uris, list_changed)| Change { at: Cursor { xid, id }, uris, list_changed })
        .collect())
}

/// Runs one `subscriptions/listen` stream: every change of the tenant's documents from now on
/// that the accepted filter covers, until the client cancels the request or leaves.
pub async fn listen(
    db: &Database,
    feed: &Arc<Hub>,
    tenant: TenantId,
    ctx: SubscriptionContext,
) -> Result<(), McpError> {
    let mut wake = feed.subscribe();
    let mut after = newest(db, tenant).await.map_err(|e| db_error(&e))?;
    let accepted = ctx.accepted().clone();
    let list_changed = accepted.resources_list_changed == Some(true);
    let followed = accepted.resource_subscriptions.unwrap_or_default();
    let mut pending = Pending::default();
    let mut full = false;
    loop {
        if !full {
            let wait = pending.wait(feed.timing.fallback_poll);
            tokio::select! {
                () = ctx.cancelled() => return Ok(()),
                id = announcement(&mut wake, tenant.as_uuid()) => if let Some(id) = id { pending.announced(id) },
                () = tokio::time::sleep(wait) => {}
            }
        }
        let batch = changes_after(db, tenant, after).await.map_err(|e| db_error(&e))?;
        full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= BATCH;
        for change in batch {
            after = change.at;
            pending.read(change.at.id);
            let mut notes = Vec::new();
            if list_changed && change.list_changed {
                notes.push(ServerNotification::ResourceListChangedNotification(
                    ResourceListChangedNotification::default(),
                ));
            }
            for uri in change.uris.iter().filter(|u| followed.contains(u)) {
                notes.push(ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(
                    ResourceUpdatedNotificationParam::new(uri.clone()),
                )));
            }
            for note in notes {
                if ctx.sink().send(note).await.is_err() {
                    // The request ended (cancelled, or the client left).
                    return Ok(());
                }
            }
        }
    }
}
