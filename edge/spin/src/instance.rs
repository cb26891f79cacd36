//! What one component instance keeps between requests: the settings, the core's `Gateway` (with
//! its in-memory token memo) and when its keys are due for a refresh.
//!
//! Spin documents a fresh instance per request, and `wasi:http@0.3` hosts may reuse an instance
//! for several (Wasmtime does). So this is an optimisation only: a fresh instance builds it on its
//! first request, from the variables and the JWKS kept in key-value (`store::jwks`), and the
//! token verdicts that must survive instances live in key-value too (`tokens.rs`).
//!
//! Requests of one instance may run concurrently, but only one at a time between `await` points:
//! the thread-local is borrowed only inside synchronous closures, never across an `await`.

use std::cell::RefCell;

use agentplane_core::Gateway;
use agentplane_core::auth::KeySet;
use agentplane_core::gateway::settings::var;
use agentplane_core::gateway::{EdgeSettings, KeySource};
use agentplane_core::time::Timestamp;

use crate::{EdgeError, store};

thread_local! {
    static INSTANCE: RefCell<Option<Instance>> = const { RefCell::new(None) };
}

struct Instance {
    gateway: Gateway,
    origin_url: String,
    /// The JWKS URL and its refresh period, when keys are fetched.
    jwks_url: Option<(String, u64)>,
    /// When fetched keys are due for a refresh (Unix ms); `None` for inline keys.
    refresh_at_ms: Option<u64>,
}

/// After a failed key refresh the old keys stay in use and the next try waits this long.
const RETRY_AFTER_FAILED_REFRESH_MS: u64 = 30_000;

/// Makes sure the instance has a gateway with current keys; builds it on the first request.
pub(crate) async fn ensure(now: Timestamp) -> Result<(), EdgeError> {
    let now_ms = now.as_unix_millis();
    let refresh = INSTANCE.with_borrow(|i| match i {
        None => Err(()),
        Some(i) => Ok(i.jwks_url.clone().filter(|_| i.refresh_at_ms.is_some_and(|at| now_ms >= at))),
    });
    match refresh {
        Err(()) => build(now).await,
        Ok(None) => Ok(()),
        Ok(Some((url, refresh_secs))) => {
            // Push the deadline out first so concurrent requests do not all refetch.
            set_refresh_at(now_ms.saturating_add(RETRY_AFTER_FAILED_REFRESH_MS));
            match store::jwks(&url, refresh_secs, now).await.and_then(|b| keys_from(&b)) {
                Ok(keys) => INSTANCE.with_borrow_mut(|i| {
                    if let Some(i) = i {
                        i.gateway.replace_keys(keys)?;
                        i.refresh_at_ms = Some(now_ms.saturating_add(refresh_secs.saturating_mul(1000)));
                    }
                    Ok(())
                }),
                Err(e) => {
                    eprintln!("agentplane edge: JWKS refresh failed, keeping the current keys: {e}");
                    Ok(())
                }
            }
        }
    }
}

/// Spin variables are read asynchronously and the core's settings reader is synchronous: read
/// every name first.
async fn settings() -> Result<EdgeSettings, EdgeError> {
    let mut values = Vec::with_capacity(var::ALL.len());
    for name in var::ALL {
        values.push((*name, spin_sdk::variables::get(name).await.ok()));
    }
    Ok(EdgeSettings::from_vars(|name| values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.clone()))?)
}

fn keys_from(jwks: &[u8]) -> Result<KeySet, EdgeError> {
    KeySet::from_jwks(jwks).map_err(|e| EdgeError::Keys(e.to_string()))
}

async fn build(now: Timestamp) -> Result<(), EdgeError> {
    let now_ms = now.as_unix_millis();
    let settings = settings().await?;
    let (keys, jwks_url, refresh_at_ms) = match &settings.keys {
        KeySource::Jwks(doc) => (keys_from(doc.as_bytes())?, None, None),
        KeySource::JwksUrl { url, refresh_secs } => {
            let (bytes, fetched_ms) = store::jwks_with_age(url, *refresh_secs, now).await?;
            // Due when the copy in key-value is, not a full period after this instance started.
            let due = fetched_ms.saturating_add(refresh_secs.saturating_mul(1000)).max(now_ms);
            (keys_from(&bytes)?, Some((url.clone(), *refresh_secs)), Some(due))
        }
    };
    let gateway = Gateway::new(settings.gateway, keys)?;
    // Another request may have built one while this one awaited; either will do.
    INSTANCE.set(Some(Instance { gateway, origin_url: settings.origin_url, jwks_url, refresh_at_ms }));
    Ok(())
}

fn set_refresh_at(at: u64) {
    INSTANCE.with_borrow_mut(|i| {
        if let Some(i) = i {
            i.refresh_at_ms = Some(at);
        }
    });
}

/// Runs `f` with the instance's gateway. [`ensure`] must have succeeded first.
pub(crate) fn with_gateway<T>(f: impl FnOnce(&mut Gateway) -> T) -> Result<T, EdgeError> {
    INSTANCE.with_borrow_mut(|i| match i {
        Some(i) => Ok(f(&mut i.gateway)),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}

/// The origin's base URL.
pub(crate) fn origin_url() -> Result<String, EdgeError> {
    INSTANCE.with_borrow(|i| match i {
        Some(i) => Ok(i.origin_url.clone()),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}
