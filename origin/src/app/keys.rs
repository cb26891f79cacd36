//! Where the origin's token-verification keys come from: a JWKS file or URL from the
//! authorization server, and (in development) the local dev key.

use agentplane_core::auth::KeySet;
use anyhow::Context as _;
use serde_json::Value;

use crate::app::config::Config;
use crate::app::local_key::LocalKey;

/// The keys to trust, and the JWKS document this server publishes (the dev key's, if trusted).
#[derive(Debug)]
pub struct Keys {
    pub trusted: KeySet,
    pub published: Option<Value>,
}

pub async fn load(config: &Config) -> anyhow::Result<Keys> {
    let mut trusted = KeySet::default();
    let mut published = None;
    if let Some(source) = &config.jwks {
        let bytes = if source.starts_with("https://") || source.starts_with("http://") {
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?
                .get(source)
                .send()
                .await
                .with_context(|| format!("fetching JWKS from {source}"))?
                .error_for_status()
                .with_context(|| format!("fetching JWKS from {source}"))?;
            response.bytes().await?.to_vec()
        } else {
            std::fs::read(source).with_context(|| format!("reading JWKS file {source} (AGENTPLANE_JWKS)"))?
        };
        trusted.extend(KeySet::from_jwks(&bytes).with_context(|| format!("loading JWKS from {source}"))?);
    }
    if config.trusts_dev_key() {
        let dev = LocalKey::load_or_create(&config.data_dir)?;
        let jwks = dev.jwks();
        trusted.extend(KeySet::from_jwks(jwks.to_string().as_bytes()).context("loading the dev key")?);
        tracing::warn!("trusting the development signing key (set AGENTPLANE_JWKS for a real issuer)");
        published = Some(jwks);
    }
    anyhow::ensure!(
        !trusted.is_empty(),
        "no token keys configured: set AGENTPLANE_JWKS, or AGENTPLANE_TRUST_DEV_KEY=true for development"
    );
    Ok(Keys { trusted, published })
}

/// Re-reads the key sources every `jwks_refresh_secs`, so an issuer's key rotation reaches this
/// server without a restart, and installs the result; a failed read keeps the keys in force and
/// is retried next time.
pub async fn refresh(
    config: Config,
    gate: std::sync::Arc<crate::app::gate::Gate>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let every = std::time::Duration::from_secs(config.jwks_refresh_secs.max(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match load(&config).await {
            Ok(keys) => match gate.replace_keys(keys.trusted) {
                Ok(()) => tracing::debug!("token keys refreshed"),
                Err(e) => tracing::warn!(error = %e, "refreshed keys rejected; keeping the old ones"),
            },
            Err(e) => tracing::warn!(error = format!("{e:#}"), "reading token keys failed; keeping the old ones"),
        }
    }
}
