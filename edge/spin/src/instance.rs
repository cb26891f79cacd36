//! What one component instance keeps between requests: the core's `EdgeGateway` (the `Gateway`
//! with its in-memory token memo, the origin's URL and the key schedule).
//!
//! Spin documents a fresh instance per request, and `wasi:http@0.3` hosts may reuse an instance
//! for several (Wasmtime does). So this is an optimisation only: a fresh instance builds it on its
//! first request, from the variables and the JWKS copy in key-value (`Kv::jwks`), and the
//! token verdicts that must outlive instances live in key-value too (`lib.rs`, `begin`).
//!
//! Requests of one instance may run concurrently, but only one at a time between `await` points:
//! the thread-local is borrowed only inside synchronous closures, never across an `await`.

use std::cell::RefCell;

use agentplane_core::Gateway;
use agentplane_core::auth::KeySet;
use agentplane_core::gateway::settings::var;
use agentplane_core::gateway::{EdgeGateway, EdgeSettings, KeySource, Origins};
use agentplane_core::time::Timestamp;

use crate::EdgeError;
use crate::store::{Freshness, Kv};

thread_local! {
    static INSTANCE: RefCell<Option<EdgeGateway>> = const { RefCell::new(None) };
}

/// Makes sure the instance has a gateway with current keys; builds it on the first request and
/// refreshes fetched keys when the core's schedule says they are due.
pub(crate) async fn ensure(now: Timestamp, kv: &mut Kv) -> Result<(), EdgeError> {
    let due = INSTANCE.with_borrow_mut(|i| i.as_mut().map(|i| i.keys_due(now)));
    match due {
        None => build(now, kv).await,
        Some(None) => Ok(()),
        Some(Some(url)) => match kv.jwks(&url, Freshness::Refetch, now).await.and_then(|(b, _)| keys_from(&b)) {
            Ok(keys) => INSTANCE.with_borrow_mut(|i| match i {
                Some(i) => Ok(i.keys_fetched(keys, now)?),
                None => Ok(()),
            }),
            Err(e) => {
                eprintln!("agentplane edge: JWKS refresh failed, keeping the current keys: {e}");
                Ok(())
            }
        },
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

async fn build(now: Timestamp, kv: &mut Kv) -> Result<(), EdgeError> {
    let settings = settings().await?;
    let (keys, fetched_at) = match &settings.keys {
        KeySource::Jwks(doc) => (keys_from(doc.as_bytes())?, now),
        KeySource::JwksUrl { url, refresh_secs } => {
            // The copy another instance stored, while younger than the refresh period; its age
            // carries over, so keys are due when the copy is, not a period after this instance.
            let (bytes, fetched_at) = kv.jwks(url, Freshness::Within(*refresh_secs), now).await?;
            (keys_from(&bytes)?, fetched_at)
        }
    };
    let edge = EdgeGateway::new(settings, keys, fetched_at)?;
    // Another request may have built one while this one awaited; either will do.
    INSTANCE.set(Some(edge));
    Ok(())
}

/// Runs `f` with the instance's gateway. [`ensure`] must have succeeded first.
pub(crate) fn with_gateway<T>(f: impl FnOnce(&mut Gateway) -> T) -> Result<T, EdgeError> {
    INSTANCE.with_borrow_mut(|i| match i {
        Some(i) => Ok(f(i.gateway())),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}

/// Where this edge sends its spans, if anywhere (the `otlp_endpoint` variable).
pub(crate) fn otlp_traces_url() -> Option<String> {
    INSTANCE.with_borrow(|i| i.as_ref().and_then(|i| i.otlp_traces_url().map(str::to_owned)))
}

/// The origins' base URLs.
pub(crate) fn origins() -> Result<Origins, EdgeError> {
    INSTANCE.with_borrow(|i| match i {
        Some(i) => Ok(i.origins().clone()),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}
