//! What one isolate keeps between requests: the core's `EdgeGateway` (the `Gateway` with its memo
//! of verified tokens, which is what makes per-request verification cheap, the origin's URL and
//! the key schedule).
//!
//! An isolate runs one request at a time between `await` points, so a thread-local `RefCell` is
//! enough; it is only ever borrowed inside synchronous closures, never across an `await`.

use std::cell::RefCell;

use agentplane_core::Gateway;
use agentplane_core::auth::KeySet;
use agentplane_core::gateway::{EdgeGateway, EdgeSettings, KeySource, Origins};
use agentplane_core::time::Timestamp;
use worker::{Env, Fetch, Url, console_warn};

thread_local! {
    static ISOLATE: RefCell<Option<EdgeGateway>> = const { RefCell::new(None) };
}

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

/// Makes sure the isolate has a gateway with current keys; builds it on the first request and
/// refreshes fetched keys when the core's schedule says they are due.
pub(crate) async fn ensure(env: &Env, now: Timestamp) -> Result<(), EdgeError> {
    let due = ISOLATE.with_borrow_mut(|i| i.as_mut().map(|i| i.keys_due(now)));
    match due {
        None => build(env, now).await,
        Some(None) => Ok(()),
        Some(Some(url)) => match fetch_jwks(&url).await {
            Ok(keys) => ISOLATE.with_borrow_mut(|i| match i {
                Some(i) => Ok(i.keys_fetched(keys, now)?),
                None => Ok(()),
            }),
            Err(e) => {
                console_warn!("agentplane edge: JWKS refresh failed, keeping the current keys: {e}");
                Ok(())
            }
        },
    }
}

async fn build(env: &Env, now: Timestamp) -> Result<(), EdgeError> {
    let settings = EdgeSettings::from_vars(|name| worker_var(env, name))?;
    let keys = match &settings.keys {
        KeySource::Jwks(doc) => KeySet::from_jwks(doc.as_bytes()).map_err(|e| EdgeError::Keys(e.to_string()))?,
        KeySource::JwksUrl { url, .. } => fetch_jwks(url).await?,
    };
    let edge = EdgeGateway::new(settings, keys, now)?;
    // Another request may have built one while this one awaited the JWKS; either will do.
    ISOLATE.set(Some(edge));
    Ok(())
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
        Some(i) => Ok(f(i.gateway())),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}

/// Where this edge sends its spans, if anywhere (`AGENTPLANE_OTLP_ENDPOINT`).
pub(crate) fn otlp_traces_url() -> Option<String> {
    ISOLATE.with_borrow(|i| i.as_ref().and_then(|i| i.otlp_traces_url().map(str::to_owned)))
}

/// The origins, as this isolate last found them.
pub(crate) fn origins() -> Result<Origins, EdgeError> {
    ISOLATE.with_borrow(|i| match i {
        Some(i) => Ok(i.origins().clone()),
        None => Err(EdgeError::Keys("gateway not initialised".into())),
    })
}

/// Remembers for the isolate's next requests whether `origin` could be reached.
pub(crate) fn origin_reached(origin: &str, reached: bool, now: Timestamp) {
    ISOLATE.with_borrow_mut(|i| {
        if let Some(i) = i {
            if reached { i.origins_mut().answered(origin) } else { i.origins_mut().failed(origin, now) }
        }
    });
}
