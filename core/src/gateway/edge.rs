//! What an edge keeps between requests in one isolate (Workers) or component instance (Spin):
//! the [`Gateway`], the origins, and when keys fetched from a JWKS URL are due again. The
//! adapter does the fetching; this decides when, so both edges refresh keys the same way.

use super::{EdgeSettings, Gateway, GatewayError, KeySource, Origins};
use crate::auth::KeySet;
use crate::time::Timestamp;

/// After a failed or started refresh, the next try waits this long: the old keys stay in use, and
/// a JWKS outage (or a burst of concurrent requests) does not put a fetch in front of every
/// request.
const RETRY_MS: u64 = 30_000;

#[derive(Debug)]
enum Refresh {
    /// Inline keys: never refreshed.
    Never,
    Fetched {
        url: String,
        period_ms: u64,
        due_ms: u64,
    },
}

/// An edge's gateway with its key schedule.
#[derive(Debug)]
pub struct EdgeGateway {
    gateway: Gateway,
    origins: Origins,
    refresh: Refresh,
    otlp_traces_url: Option<String>,
}

impl EdgeGateway {
    /// Builds the gateway from `settings` with `keys`, read from `settings.keys`: the inline
    /// document, or the JWKS URL's answer as fetched at `fetched_at` (which may be earlier than
    /// now, when the adapter kept a copy).
    pub fn new(settings: EdgeSettings, keys: KeySet, fetched_at: Timestamp) -> Result<Self, GatewayError> {
        let refresh = match settings.keys {
            KeySource::Jwks(_) => Refresh::Never,
            KeySource::JwksUrl { url, refresh_secs } => {
                let period_ms = refresh_secs.saturating_mul(1000);
                Refresh::Fetched { url, period_ms, due_ms: fetched_at.as_unix_millis().saturating_add(period_ms) }
            }
        };
        Ok(Self {
            gateway: Gateway::new(settings.gateway, keys)?,
            origins: settings.origins,
            refresh,
            otlp_traces_url: settings.otlp_traces_url,
        })
    }

    /// The URL to fetch keys from now, if they are due. Asking moves the due time on by the retry
    /// interval, so only one of several concurrent requests fetches, and a failed fetch is not
    /// retried at once; [`EdgeGateway::keys_fetched`] then sets the next full period.
    pub fn keys_due(&mut self, now: Timestamp) -> Option<String> {
        let now_ms = now.as_unix_millis();
        match &mut self.refresh {
            Refresh::Fetched { url, due_ms, .. } if now_ms >= *due_ms => {
                *due_ms = now_ms.saturating_add(RETRY_MS);
                Some(url.clone())
            }
            _ => None,
        }
    }

    /// Installs freshly fetched keys (memoised tokens are forgotten); the next refresh is a full
    /// period from `now`.
    pub fn keys_fetched(&mut self, keys: KeySet, now: Timestamp) -> Result<(), GatewayError> {
        self.gateway.replace_keys(keys)?;
        if let Refresh::Fetched { period_ms, due_ms, .. } = &mut self.refresh {
            *due_ms = now.as_unix_millis().saturating_add(*period_ms);
        }
        Ok(())
    }

    /// Where this edge sends its spans (OTLP/HTTP JSON, [`crate::otlp::export_json`]), if anywhere.
    pub fn otlp_traces_url(&self) -> Option<&str> {
        self.otlp_traces_url.as_deref()
    }

    pub fn gateway(&mut self) -> &mut Gateway {
        &mut self.gateway
    }

    /// The origins requests go to, with which of them this isolate or instance found down.
    pub fn origins(&self) -> &Origins {
        &self.origins
    }

    pub fn origins_mut(&mut self) -> &mut Origins {
        &mut self.origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn settings(vars: &[(&'static str, &str)]) -> EdgeSettings {
        let mut all = vec![
            ("origin_url", "http://o.test/"),
            ("issuer", testkit::ISSUER),
            ("audience", testkit::AUDIENCE),
            ("resource", testkit::RESOURCE),
        ];
        all.extend_from_slice(vars);
        EdgeSettings::from_vars(|name| all.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())).unwrap()
    }

    fn keys() -> KeySet {
        KeySet::from_jwks(&testkit::jwks().unwrap()).unwrap()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_unix_secs(secs)
    }

    #[test]
    fn fetched_keys_are_due_a_period_after_they_were_fetched_and_once_per_retry() {
        let s = settings(&[("jwks_url", "http://o.test/jwks"), ("jwks_refresh_secs", "300")]);
        let mut e = EdgeGateway::new(s, keys(), at(1000)).unwrap();
        assert_eq!(e.origins().all(), ["http://o.test"]);
        assert_eq!(e.keys_due(at(1299)), None);
        assert_eq!(e.keys_due(at(1300)).as_deref(), Some("http://o.test/jwks"));
        // A concurrent request, or the one after a failed fetch, does not fetch again at once.
        assert_eq!(e.keys_due(at(1301)), None);
        assert_eq!(e.keys_due(at(1330)).as_deref(), Some("http://o.test/jwks"));
        e.keys_fetched(keys(), at(1331)).unwrap();
        assert_eq!(e.keys_due(at(1630)), None);
        assert!(e.keys_due(at(1631)).is_some());
    }

    #[test]
    fn a_copy_older_than_the_period_is_due_at_once_and_inline_keys_never() {
        let s = settings(&[("jwks_url", "http://o.test/jwks"), ("jwks_refresh_secs", "60")]);
        assert!(EdgeGateway::new(s, keys(), at(0)).unwrap().keys_due(at(61)).is_some());
        let inline = String::from_utf8(testkit::jwks().unwrap()).unwrap();
        let mut e = EdgeGateway::new(settings(&[("jwks", &inline)]), keys(), at(0)).unwrap();
        assert_eq!(e.keys_due(at(u64::MAX / 2_000_000_000)), None);
    }
}
