//! Spin key-value (the `default` store) as the adapter's store: the per-tenant `TenantState`, the
//! core's cache entries, the fetched JWKS and good token-signature verdicts. Nothing may rely on
//! instance memory surviving a request (see `instance.rs`).
//!
//! The tenant record is read and written through `wasi:keyvalue/atomics` compare-and-swap (Spin
//! offers it on the same stores as `spin:key-value`, which has no CAS): two requests of one tenant
//! racing on the limiter would otherwise both be admitted on the same state and let a burst
//! through above its allowance. Everything else is last-writer-wins and goes through spin-sdk's
//! `key_value`.
//!
//! Key-value has no expiry of its own, and an entry nobody reads again (a result of a retired
//! data generation, the verdict on an expired token) would stay forever. So each cache entry and
//! token verdict is indexed by when it dies, in buckets of [`EXPIRY_BUCKET_MS`]
//! (`expiry:<bucket>`, the keys that die in it; `expiry:buckets`, the buckets that have any), and
//! the request that stores something also deletes what is in the buckets that have passed.
//! Each index update is a compare-and-swap; an entry that cannot be indexed is not stored.

use agentplane_core::TenantState;
use agentplane_core::cache::CacheKey;
use agentplane_core::gateway::StoreEntry;
use agentplane_core::ratelimit::{Quota, RateDecision};
use agentplane_core::time::Timestamp;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
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

fn decode<T: DeserializeOwned + Default>(bytes: Option<Vec<u8>>) -> T {
    // An unreadable record starts afresh rather than failing every request that needs it.
    bytes.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// The width of an expiry bucket. Test builds use a short one so that the runtime test sees a
/// sweep within seconds.
#[cfg(not(feature = "test-vectors"))]
const EXPIRY_BUCKET_MS: u64 = 60_000;
#[cfg(feature = "test-vectors")]
const EXPIRY_BUCKET_MS: u64 = 2_000;

/// The most keys one bucket indexes; past it, entries that would die in that bucket are not
/// stored (a cache miss, never an unbounded record).
const MAX_KEYS_PER_BUCKET: usize = 4096;

const EXPIRY_BUCKETS_KEY: &str = "expiry:buckets";

/// The bucket of an entry that dies at `expires_ms`: its end is at or after that time, so a
/// bucket whose end has passed holds only dead entries.
fn expiry_bucket(expires_ms: u64) -> u64 {
    expires_ms / EXPIRY_BUCKET_MS + 1
}

fn expiry_bucket_key(bucket: u64) -> String {
    format!("expiry:{bucket}")
}

impl Kv {
    fn bucket(&mut self) -> Result<&wasi_kv::Bucket, EdgeError> {
        let bucket = match &mut self.bucket {
            Some(bucket) => bucket,
            slot @ None => slot.insert(wasi_kv::open(LABEL).map_err(store_err)?),
        };
        Ok(bucket)
    }

    /// Applies `f` to the JSON record under `key` atomically: if another request changes the
    /// record between the read and the write, the write fails and `f` runs again on the new
    /// record. Answers what `f` answered and the record as stored.
    fn update<T, R>(&mut self, key: &str, mut f: impl FnMut(&mut T) -> R) -> Result<(R, T), EdgeError>
    where
        T: Serialize + DeserializeOwned + Default + Clone + PartialEq,
    {
        let mut cas = atomics::Cas::new(self.bucket()?, key).map_err(store_err)?;
        for _ in 0..MAX_CAS_ROUNDS {
            let before: T = decode(cas.current().map_err(store_err)?);
            let mut record = before.clone();
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
        Err(EdgeError::Store(format!("{key}: {MAX_CAS_ROUNDS} compare-and-swap rounds lost")))
    }

    fn update_tenant<R>(
        &mut self,
        tenant: Uuid,
        f: impl FnMut(&mut TenantState) -> R,
    ) -> Result<(R, TenantState), EdgeError> {
        self.update(&tenant_key(tenant), f)
    }

    /// Indexes `key` as dying at `expires_ms`. `false` when it could not be (its bucket is full
    /// or the store failed): the caller then does not store the entry.
    fn index_expiry(&mut self, key: &str, expires_ms: u64) -> bool {
        let bucket = expiry_bucket(expires_ms);
        let added = self.update(&expiry_bucket_key(bucket), |keys: &mut Vec<String>| {
            if keys.iter().any(|k| k == key) {
                Some(false)
            } else if keys.len() < MAX_KEYS_PER_BUCKET {
                keys.push(key.to_owned());
                Some(keys.len() == 1)
            } else {
                None
            }
        });
        let first_in_bucket = match added {
            Ok((Some(first), _)) => first,
            Ok((None, _)) => return false,
            Err(e) => {
                eprintln!("agentplane edge: expiry index: {e}");
                return false;
            }
        };
        if first_in_bucket
            && let Err(e) = self.update(EXPIRY_BUCKETS_KEY, |buckets: &mut Vec<u64>| {
                if !buckets.contains(&bucket) {
                    buckets.push(bucket);
                }
            })
        {
            eprintln!("agentplane edge: expiry index: {e}");
            return false;
        }
        true
    }

    /// Deletes every indexed key of the buckets that have passed. The buckets are claimed with a
    /// compare-and-swap first, so concurrent requests never sweep the same one twice.
    fn sweep_expired(&mut self, now: Timestamp) {
        let passed = now.as_unix_millis() / EXPIRY_BUCKET_MS;
        let claimed = self.update(EXPIRY_BUCKETS_KEY, |buckets: &mut Vec<u64>| {
            let (due, later): (Vec<u64>, Vec<u64>) = buckets.iter().partition(|b| **b <= passed);
            *buckets = later;
            due
        });
        let due = match claimed {
            Ok((due, _)) => due,
            Err(e) => {
                eprintln!("agentplane edge: expiry sweep: {e}");
                return;
            }
        };
        let Ok(store) = self.bucket() else { return };
        for bucket in due {
            let index_key = expiry_bucket_key(bucket);
            let keys: Vec<String> = decode(store.get(&index_key).ok().flatten());
            for key in keys {
                let _ = store.delete(&key);
            }
            let _ = store.delete(&index_key);
        }
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
        Ok(decode::<TenantState>(self.bucket()?.get(&tenant_key(tenant)).map_err(store_err)?).generation)
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

    /// Stores an entry until its TTL, then sweeps what has died since the last sweep.
    pub(crate) async fn put_cached(&mut self, entry: StoreEntry, now: Timestamp) {
        let key = cache_key(entry.key.as_str());
        if self.index_expiry(&key, now.as_unix_millis().saturating_add(entry.ttl_ms)) {
            let Ok(store) = self.store().await else { return };
            if let Err(e) = store.set(key, entry.bytes).await {
                eprintln!("agentplane edge: cache store failed: {e:?}");
            }
        }
        self.sweep_expired(now);
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
    pub(crate) async fn remember_signature(&mut self, fingerprint: &str, until_ms: u64, now: Timestamp) {
        if self.index_expiry(fingerprint, until_ms) {
            let Ok(store) = self.store().await else { return };
            if let Err(e) = store.set(fingerprint, until_ms.to_string()).await {
                eprintln!("agentplane edge: token memo store failed: {e:?}");
            }
        }
        self.sweep_expired(now);
    }

    /// How many cache entries are stored, and how many of those are past their TTL (the
    /// runtime test's view of the sweep).
    #[cfg(feature = "test-vectors")]
    pub(crate) async fn count_cached(&mut self, now: Timestamp) -> Result<(usize, usize), EdgeError> {
        let store = self.store().await?;
        let keys = store.get_keys().await.collect().await.map_err(|e| EdgeError::Store(format!("{e:?}")))?;
        let (mut stored, mut expired) = (0, 0);
        for key in keys.iter().filter(|k| k.starts_with("cache:")) {
            let Ok(Some(bytes)) = store.get(key).await else { continue };
            stored += 1;
            if agentplane_core::cache::CacheEntry::read(&bytes, now).is_none() {
                expired += 1;
            }
        }
        Ok((stored, expired))
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
