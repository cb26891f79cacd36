//! The Cache API as the store for the core's cache entries. Keys are the core's (tenant, data
//! generation and, for private results, token digest inside); the bytes are the core's
//! `CacheEntry`, which carries its own expiry, so a stale Cache API entry is still refused.
//!
//! A cache failure is never the client's problem: lookups that fail are misses, stores that fail
//! are logged.

use agentplane_core::cache::CacheKey;
use agentplane_core::gateway::StoreEntry;
use worker::{Cache, Headers, Response, console_warn};

/// Cache API keys must be URLs. This host is never resolved (`.invalid` is reserved), and the key
/// is safe as a path segment.
fn url(key: &str) -> String {
    format!("https://edge-cache.agentplane.invalid/{key}")
}

pub(crate) async fn lookup(key: &CacheKey) -> Option<Vec<u8>> {
    let found = Cache::default().get(url(key.as_str()), false).await;
    match found {
        Ok(Some(mut response)) => response.bytes().await.ok(),
        Ok(None) => None,
        Err(e) => {
            console_warn!("agentplane edge: cache lookup failed: {e}");
            None
        }
    }
}

pub(crate) async fn store(entry: StoreEntry) {
    if let Err(e) = try_store(entry).await {
        console_warn!("agentplane edge: cache store failed: {e}");
    }
}

async fn try_store(entry: StoreEntry) -> worker::Result<()> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    // The Cache API only keeps responses with a lifetime; round up so it never drops an entry
    // the core still considers alive (the core checks the real expiry on every hit).
    headers.set("cache-control", &format!("max-age={}", entry.ttl_ms.div_ceil(1000).max(1)))?;
    let response = Response::builder().with_status(200).with_headers(headers).fixed(entry.bytes);
    Cache::default().put(url(entry.key.as_str()), response).await
}
