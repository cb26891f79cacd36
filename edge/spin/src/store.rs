//! Spin key-value (the `default` store) as the adapter's store: the per-tenant `TenantState`, the
//! core's cache entries, the fetched JWKS and good token-signature verdicts. Nothing may rely on
//! instance memory surviving a request (see `instance.rs`).
//!
//! The tenant record is read and written through `wasi:keyvalue/atomics` compare-and-swap (Spin
//! offers it on the same stores as `spin:key-value`, which has no CAS): two requests of one tenant
//! racing on the limiter would otherwise both be admitted on the same state and let a burst
//! through above its allowance. Everything else is last-writer-wins and goes through spin-sdk's
//! `key_value`.

use agentplane_core::TenantState;
use agentplane_core::cache::CacheKey;
use agentplane_core::gateway::StoreEntry;
use agentplane_core::ratelimit::{Quota, RateDecision};
use agentplane_core::time::Timestamp;
use http_body_util::BodyExt as _;
use serde::{Deserialize, Serialize};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store as wasi_kv};
use spin_sdk::key_value::Store;
use uuid::Uuid;

use crate::EdgeError;

/// The store's label in `spin.toml` (`key_value_stores`).
const LABEL: &str = "default";

/// Compare-and-swap rounds before a tenant update gives up. Each failed round means another
/// request of the same tenant committed in between, so this only runs out under a pile-up.
const MAX_CAS_ROUNDS: usize = 32;

/// Spin key-value as one request uses it. Each interface's handle to the store is opened on first
/// use and then kept, so a request that admits, checks a token verdict, reads the cache and
/// stores an answer opens each once.
#[derive(Default)]
pub(crate) struct Kv {
    store: Option<Store>,
    bucket: Option<wasi_kv::Bucket>,
}

fn store_err(e: wasi_kv::Error) -> EdgeError {
    EdgeError::Store(format!("{e:?}"))
}

fn tenant_key(tenant: Uuid) -> String {
    format!("tenant:{tenant}")
}

fn decode_tenant(bytes: Option<Vec<u8>>) -> TenantState {
    // An unreadable record starts afresh rather than failing every request of the tenant.
    bytes.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

impl Kv {
    fn bucket(&mut self) -> Result<&wasi_kv::Bucket, EdgeError> {
        let bucket = match &mut self.bucket {
            Some(bucket) => bucket,
            slot @ None => slot.insert(wasi_kv::open(LABEL).map_err(store_err)?),
        };
        Ok(bucket)
    }

    /// Applies `f` to the tenant's record atomically: if another request changes the record
    /// between the read and the write, the write fails and `f` runs again on the new record.
    /// Answers what `f` answered and the record as stored.
    fn update_tenant<R>(
        &mut self,
        tenant: Uuid,
        mut f: impl FnMut(&mut TenantState) -> R,
    ) -> Result<(R, TenantState), EdgeError> {
        let mut cas = atomics::Cas::new(self.bucket()?, &tenant_key(tenant)).map_err(store_err)?;
        for _ in 0..MAX_CAS_ROUNDS {
            let before = decode_tenant(cas.current().map_err(store_err)?);
            let mut record = before;
            let answer = f(&mut record);
            if record == before {
                return Ok((answer, record));
            }
            let bytes = serde_json::to_vec(&record).map_err(|e| EdgeError::Store(e.to_string()))?;
            match atomics::swap(cas, &bytes) {
                Ok(()) => return Ok((answer, record)),
                Err(atomics::CasError::CasFailed(next)) => cas = next,
                Err(atomics::CasError::StoreError(e)) => return Err(store_err(e)),
            }
        }
        Err(EdgeError::Store(format!("tenant {tenant}: {MAX_CAS_ROUNDS} compare-and-swap rounds lost")))
    }

    /// Decides one request for `tenant`; answers the decision and the data generation.
    pub(crate) fn admit(
        &mut self,
        tenant: Uuid,
        quota: &Quota,
        now: Timestamp,
    ) -> Result<(RateDecision, u64), EdgeError> {
        let (decision, record) = self.update_tenant(tenant, |r| r.admit(now, quota))?;
        Ok((decision, record.generation))
    }

    /// The tenant's data generation: a plain read, nothing to swap.
    pub(crate) fn generation(&mut self, tenant: Uuid) -> Result<u64, EdgeError> {
        Ok(decode_tenant(self.bucket()?.get(&tenant_key(tenant)).map_err(store_err)?).generation)
    }

    /// A write succeeded: retire every cached result of the tenant.
    pub(crate) fn bump(&mut self, tenant: Uuid) -> Result<(), EdgeError> {
        self.update_tenant(tenant, TenantState::bump_generation).map(|_| ())
    }
}

fn cache_key(key: &str) -> String {
    format!("cache:{key}")
}

#[derive(Serialize, Deserialize)]
struct StoredJwks {
    fetched_ms: u64,
    body: String,
}

/// Which copy of the JWKS will do.
pub(crate) enum Freshness {
    /// The stored copy while it is younger than this many seconds.
    Within(u64),
    /// Only a new fetch (the keys are due).
    Refetch,
}

impl Kv {
    async fn store(&mut self) -> Result<&Store, EdgeError> {
        let store = match &mut self.store {
            Some(store) => store,
            slot @ None => slot.insert(Store::open(LABEL).await.map_err(|e| EdgeError::Store(format!("{e:?}")))?),
        };
        Ok(store)
    }

    /// A stored entry, if any. Failures are misses: the cache never fails a request.
    pub(crate) async fn cached(&mut self, key: &CacheKey) -> Option<Vec<u8>> {
        self.store().await.ok()?.get(cache_key(key.as_str())).await.ok().flatten()
    }

    /// Removes an entry the core found expired; key-value has no expiry of its own.
    pub(crate) async fn drop_cached(&mut self, key: &CacheKey) {
        if let Ok(store) = self.store().await {
            let _ = store.delete(cache_key(key.as_str())).await;
        }
    }

    pub(crate) async fn put_cached(&mut self, entry: StoreEntry) {
        let Ok(store) = self.store().await else { return };
        if let Err(e) = store.set(cache_key(entry.key.as_str()), entry.bytes).await {
            eprintln!("agentplane edge: cache store failed: {e:?}");
        }
    }

    /// Whether a good verdict on this signature (named by `SignatureCheck::fingerprint`, which is
    /// the key) is remembered and not yet past the token's expiry.
    pub(crate) async fn signature_known(&mut self, fingerprint: &str, now: Timestamp) -> bool {
        let Ok(store) = self.store().await else { return false };
        let Ok(Some(bytes)) = store.get(fingerprint).await else { return false };
        let until = std::str::from_utf8(&bytes).ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        if until > now.as_unix_millis() {
            return true;
        }
        let _ = store.delete(fingerprint).await;
        false
    }

    /// Remembers a good signature until `until_ms`, when the token itself expires.
    pub(crate) async fn remember_signature(&mut self, fingerprint: &str, until_ms: u64) {
        let Ok(store) = self.store().await else { return };
        if let Err(e) = store.set(fingerprint, until_ms.to_string()).await {
            eprintln!("agentplane edge: token memo store failed: {e:?}");
        }
    }

    /// The JWKS at `url` and when that copy was fetched: from key-value if `freshness` allows,
    /// else fetched and stored for the next instance.
    pub(crate) async fn jwks(
        &mut self,
        url: &str,
        freshness: Freshness,
        now: Timestamp,
    ) -> Result<(Vec<u8>, Timestamp), EdgeError> {
        let store = self.store().await?;
        let key = format!("jwks:{url}");
        let now_ms = now.as_unix_millis();
        if let Freshness::Within(secs) = freshness
            && let Ok(Some(bytes)) = store.get(&key).await
            && let Ok(stored) = serde_json::from_slice::<StoredJwks>(&bytes)
            && now_ms.saturating_sub(stored.fetched_ms) < secs.saturating_mul(1000)
        {
            return Ok((stored.body.into_bytes(), Timestamp::from_unix_millis(stored.fetched_ms)));
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
        Ok((body.into_bytes(), now))
    }
}
