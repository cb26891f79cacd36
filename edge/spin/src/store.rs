//! Spin key-value (the `default` store) as the adapter's store: the per-tenant `TenantState`, the
//! core's cache entries, and the fetched JWKS (a component instance lives for one request, so
//! nothing survives in memory).
//!
//! Spin's key-value interface has no compare-and-swap, so two concurrent requests of one tenant
//! can read the same limiter state; see EDGE-STATUS.md.

use agentplane_core::TenantState;
use agentplane_core::cache::CacheKey;
use agentplane_core::gateway::StoreEntry;
use agentplane_core::ratelimit::{Quota, RateDecision};
use agentplane_core::time::Timestamp;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use spin_sdk::key_value::Store;
use uuid::Uuid;

use crate::EdgeError;

async fn open() -> Result<Store, EdgeError> {
    Store::open_default().await.map_err(|e| EdgeError::Store(format!("{e:?}")))
}

fn tenant_key(tenant: Uuid) -> String {
    format!("tenant:{tenant}")
}

async fn read_tenant(store: &Store, tenant: Uuid) -> Result<TenantState, EdgeError> {
    match store.get(tenant_key(tenant)).await.map_err(|e| EdgeError::Store(format!("{e:?}")))? {
        // An unreadable record is treated as a fresh one rather than failing every request.
        Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
        None => Ok(TenantState::default()),
    }
}

async fn write_tenant(store: &Store, tenant: Uuid, state: &TenantState) -> Result<(), EdgeError> {
    let bytes = serde_json::to_vec(state).map_err(|e| EdgeError::Store(e.to_string()))?;
    store.set(tenant_key(tenant), bytes).await.map_err(|e| EdgeError::Store(format!("{e:?}")))
}

/// Decides one request for `tenant`; answers the decision and the data generation.
pub(crate) async fn admit(tenant: Uuid, quota: &Quota, now: Timestamp) -> Result<(RateDecision, u64), EdgeError> {
    let store = open().await?;
    let before = read_tenant(&store, tenant).await?;
    let mut state = before;
    let decision = state.admit(now, quota);
    if state != before {
        write_tenant(&store, tenant, &state).await?;
    }
    Ok((decision, state.generation))
}

pub(crate) async fn generation(tenant: Uuid) -> Result<u64, EdgeError> {
    Ok(read_tenant(&open().await?, tenant).await?.generation)
}

pub(crate) async fn bump(tenant: Uuid) -> Result<(), EdgeError> {
    let store = open().await?;
    let mut state = read_tenant(&store, tenant).await?;
    state.bump_generation();
    write_tenant(&store, tenant, &state).await
}

fn cache_key(key: &str) -> String {
    format!("cache:{key}")
}

/// A stored entry, if any. Failures are misses: the cache never fails a request.
pub(crate) async fn cached(key: &CacheKey) -> Option<Vec<u8>> {
    let store = open().await.ok()?;
    store.get(cache_key(key.as_str())).await.ok().flatten()
}

pub(crate) async fn put_cached(entry: StoreEntry) {
    let Ok(store) = open().await else { return };
    if let Err(e) = store.set(cache_key(entry.key.as_str()), entry.bytes).await {
        eprintln!("agentplane edge: cache store failed: {e:?}");
    }
}

#[derive(Serialize, Deserialize)]
struct StoredJwks {
    fetched_ms: u64,
    body: String,
}

/// The JWKS at `url`, from key-value while younger than `refresh_secs`, else fetched and stored.
pub(crate) async fn jwks(url: &str, refresh_secs: u64, now: Timestamp) -> Result<Vec<u8>, EdgeError> {
    let store = open().await?;
    let key = format!("jwks:{url}");
    let now_ms = now.as_unix_millis();
    if let Ok(Some(bytes)) = store.get(&key).await
        && let Ok(stored) = serde_json::from_slice::<StoredJwks>(&bytes)
        && now_ms.saturating_sub(stored.fetched_ms) < refresh_secs.saturating_mul(1000)
    {
        return Ok(stored.body.into_bytes());
    }
    let response = spin_sdk::http::get(url).await.map_err(|e| EdgeError::Keys(format!("JWKS fetch: {e:?}")))?;
    if response.status() != http::StatusCode::OK {
        return Err(EdgeError::Keys(format!("JWKS fetch answered {}", response.status())));
    }
    let body = response.into_body().collect().await.map_err(|e| EdgeError::Keys(format!("JWKS read: {e:?}")))?;
    let body = String::from_utf8(body.to_bytes().to_vec()).map_err(|e| EdgeError::Keys(e.to_string()))?;
    let stored = serde_json::to_vec(&StoredJwks { fetched_ms: now_ms, body: body.clone() })
        .map_err(|e| EdgeError::Store(e.to_string()))?;
    if let Err(e) = store.set(&key, stored).await {
        eprintln!("agentplane edge: JWKS store failed: {e:?}");
    }
    Ok(body.into_bytes())
}
