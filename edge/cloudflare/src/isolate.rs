//! What one isolate keeps between requests: the settings, the core's `Gateway` (with its memo of
//! verified tokens, which is what makes per-request verification cheap) and when its keys were
//! fetched.
//!
//! An isolate runs one request at a time between `await` points, so a thread-local `RefCell` is
//! enough; it is only ever borrowed inside synchronous closures, never across an `await`.

use std::cell::RefCell;

use agentplane_core::Gateway;
use agentplane_core::auth::KeySet;
use agentplane_core::gateway::{EdgeSettings, KeySource};
use worker::{Env, Fetch, Url, console_warn};

thread_local! {
    static ISOLATE: RefCell<Option<Isolate>> = const { RefCell::new(None) };
}

struct Isolate {
    gateway: Gateway,
    origin_url: String,
    /// The JWKS URL and its refresh period, when keys are fetched.
    jwks_url: Option<(String, u64)>,
    /// When fetched keys are due for a refresh (Unix ms); `None` for inline keys.
    refresh_at_ms: Option<u64>,
}

/// After a failed key refresh the old keys stay in use and the next try waits this long, so a
/// JWKS outage does not put a fetch in front of every request.
const RETRY_AFTER_FAILED_REFRESH_MS: u64 = 30_000;

/// Platform and configuration failures of the edge itself.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EdgeError {
    #[error("configuration: {0}")]
    Settings(#[from] agentplane_core::gateway::SettingsError),
    #[error("gateway: {0}")]
    Gateway(#[from] agentplane_core::gateway::GatewayError),
    #[error("keys: {0}")]
    Keys(String),
    #[error("workers runtime: {0}")]
    Worker(#[from] worker::Error),
    #[error("durable object: {0}")]
    Tenant(String),
    #[error("webcrypto: {0}")]
    Crypto(String),
}

/// The Worker spelling of a settings variable: `origin_url` is `AGENTPLANE_ORIGIN_URL`.
fn worker_var(env: &Env, name: &str) -> Option<String> {
    let name = format!("AGENTPLANE_{}", name.to_ascii_uppercase());
    // Secrets and plain vars are both strings on `env`; `var` reads either.
    env.var(&name).ok().map(|v| v.to_string())
}

/// Makes sure the isolate has a gateway with current keys; builds it on the first request.
pub(crate) async fn ensure(env: &Env, now_ms: u64) -> Result<(), EdgeError> {
    let refresh = ISOLATE.with_borrow(|i| match i {
        None => Err(()),
        Some(i) => Ok(i.jwks_url.clone().filter(|_| i.refresh_at_ms.is_some_and(|at| now_ms >= at))),
    });
    match refresh {
        Err(()) => build(env, now_ms).await,
        Ok(None) => Ok(()),
        Ok(Some((url, refresh_secs))) => {
            // Push the deadline out first so concurrent requests do not all refetch.
            set_refresh_at(now_ms.saturating_add(RETRY_AFTER_FAILED_REFRESH_MS));
            match fetch_jwks(&url).await {
                Ok(keys) => ISOLATE.with_borrow_mut(|i| {
                    if let Some(i) = i {
                        i.gateway.replace_keys(keys)?;
                        i.refresh_at_ms = Some(now_ms.saturating_add(refresh_secs.saturating_mul(1000)));
                    }
                    Ok(())
                }),
                Err(e) => {
                    console_warn!("agentplane edge: JWKS refresh failed, keeping the current keys: {e}");
                    Ok(())
                }
            }
        }
    }
}

async fn build(env: &Env, now_ms: u64) -> Result<(), EdgeError> {
    let settings = EdgeSettings::from_vars(|name| worker_var(env, name))?;
    let (keys, jwks_url, refresh_at_ms) = match &settings.keys {
        KeySource::Jwks(doc) => {
            (KeySet::from_jwks(doc.as_bytes()).map_err(|e| EdgeError::Keys(e.to_string()))?, None, None)
        }
        KeySource::JwksUrl { url, refresh_secs } => (
            fetch_jwks(url).await?,
            Some((url.clone(), *refresh_secs)),
            Some(now_ms.saturating_add(refresh_secs.saturating_mul(1000))),
        ),
    };
    let gateway = Gateway::new(settings.gateway, keys)?;
    // Another request may have built one while this one awaited the JWKS; either will do.
    ISOLATE.set(Some(Isolate { gateway, origin_url: settings.origin_url, jwks_url, refresh_at_ms }));
    Ok(())
}

fn set_refresh_at(at: u64) {
    ISOLATE.with_borrow_mut(|i| {
        if let Some(i) = i {
            i.refresh_at_ms = Some(at);
        }
    });
}

async fn fetch_jwks(url: &str) -> Result<KeySet, EdgeError> {
    let url = Url::parse(url).map_err(|e| EdgeError::Keys(format!("jwks_url: {e}")))?;
    let mut response = Fetch::Url(url).send().await?;
    if response.status_code() != 200 {
        return Err(EdgeError::Keys(format!("JWKS fetch answered {}", response.status_code())));
    }
    let body = response.bytes().await?;
    KeySet::from_jwks(&body).map_err(|e| EdgeError::Keys(e.to_string()))
}

/// Runs `f` with the isolate's gateway. [`ensure`] must have succeeded first.
pub(crate) fn with_gateway<T>(f: impl FnOnce(&mut Gateway) -> T) -> Result<T, EdgeError> {
    ISOLATE.with_borrow_mut(|i| match i {
        Some(i) => Ok(f(&mut i.gateway)),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}

/// The origin's base URL.
pub(crate) fn origin_url() -> Result<String, EdgeError> {
    ISOLATE.with_borrow(|i| match i {
        Some(i) => Ok(i.origin_url.clone()),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}
