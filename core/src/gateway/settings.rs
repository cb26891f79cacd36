//! What an edge deployment is configured with, read from named string variables: Worker vars and
//! secrets, or Spin variables. Both adapters read the same names through this one function, so a
//! deployment means the same thing on either runtime; each adapter only maps the name to its
//! platform's spelling (`AGENTPLANE_ORIGIN_URL` in a Worker, `origin_url` in Spin).

use crate::catalogue::ToolPolicies;
use crate::ratelimit::Tiers;

use super::GatewayConfig;
use super::origins::Origins;

/// The variable names, in Spin's spelling (lower case; Spin allows nothing else).
pub mod var {
    /// Where requests go that the edge does not answer, e.g. `https://origin.example.com`.
    pub const ORIGIN_URL: &str = "origin_url";
    pub const ISSUER: &str = "issuer";
    /// One audience, or several separated by commas.
    pub const AUDIENCE: &str = "audience";
    /// This protected resource's identifier (RFC 9728): the URL clients call the edge at.
    pub const RESOURCE: &str = "resource";
    /// A JWKS document, inline. Takes precedence over `jwks_url`.
    pub const JWKS: &str = "jwks";
    /// Where to fetch the JWKS from; re-fetched every `jwks_refresh_secs`.
    pub const JWKS_URL: &str = "jwks_url";
    pub const JWKS_REFRESH_SECS: &str = "jwks_refresh_secs";
    /// The rate-limit tiers as JSON (the shape of [`crate::ratelimit::Tiers`]).
    pub const TIERS: &str = "tiers";
    /// Per-tool scope, cache and write policies as JSON (the shape of
    /// [`crate::catalogue::ToolPolicies`]).
    pub const TOOLS: &str = "tools";
    /// Browser origins allowed to call, comma-separated.
    pub const ALLOWED_ORIGINS: &str = "allowed_origins";
    pub const MAX_BODY_BYTES: &str = "max_body_bytes";
    /// The deepest JSON nesting a request body may have.
    pub const MAX_DEPTH: &str = "max_depth";
    /// How many verified tokens an isolate or instance remembers.
    pub const MEMO_CAPACITY: &str = "memo_capacity";
    /// The largest answer kept in the edge cache, in bytes.
    pub const MAX_CACHE_ENTRY_BYTES: &str = "max_cache_entry_bytes";
    /// An OTLP/HTTP collector's base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`): each request's edge
    /// span is sent to `<it>/v1/traces`. Unset: spans are not sent, `traceparent` still goes on.
    pub const OTLP_ENDPOINT: &str = "otlp_endpoint";

    /// Every name, for runtimes that must read variables before parsing (Spin reads them
    /// asynchronously).
    pub const ALL: &[&str] = &[
        ORIGIN_URL,
        ISSUER,
        AUDIENCE,
        RESOURCE,
        JWKS,
        JWKS_URL,
        JWKS_REFRESH_SECS,
        TIERS,
        TOOLS,
        ALLOWED_ORIGINS,
        MAX_BODY_BYTES,
        MAX_DEPTH,
        MEMO_CAPACITY,
        MAX_CACHE_ENTRY_BYTES,
        OTLP_ENDPOINT,
    ];
}

/// Where the token keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS document given inline.
    Jwks(String),
    /// A JWKS fetched from a URL and kept for `refresh_secs`.
    JwksUrl { url: String, refresh_secs: u64 },
}

/// An edge deployment's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSettings {
    pub gateway: GatewayConfig,
    /// The origins' base URLs: one, or several replicas the edge spreads requests over.
    pub origins: Origins,
    pub keys: KeySource,
    /// Where edge spans go (`<endpoint>/v1/traces`), if anywhere.
    pub otlp_traces_url: Option<String>,
}

/// A variable that is missing or unusable. Configuration errors, reported on the first request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("variable {0} is required")]
    Missing(&'static str),
    #[error("variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("one of the variables {} or {} is required", var::JWKS, var::JWKS_URL)]
    NoKeys,
}

const DEFAULT_JWKS_REFRESH_SECS: u64 = 300;

impl EdgeSettings {
    /// Reads the settings through `get`, which returns a variable's value by its name in [`var`]
    /// (empty values count as unset).
    pub fn from_vars(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &'static str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(SettingsError::Missing(name));
        let invalid = |name: &'static str, reason: String| SettingsError::Invalid { name, reason };

        let origins = Origins::parse(&required(var::ORIGIN_URL)?)
            .map_err(|e| invalid(var::ORIGIN_URL, format!("must be one or more http(s) URLs, comma-separated: {e}")))?;
        let audiences: Vec<String> =
            required(var::AUDIENCE)?.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
        let Some(first_audience) = audiences.first() else { return Err(SettingsError::Missing(var::AUDIENCE)) };
        let mut gateway = GatewayConfig::new(&required(var::ISSUER)?, first_audience, &required(var::RESOURCE)?);
        gateway.auth.audience = audiences;
        if let Some(t) = get(var::TIERS) {
            let tiers: Tiers = serde_json::from_str(&t).map_err(|e| invalid(var::TIERS, e.to_string()))?;
            tiers.validate().map_err(|e| invalid(var::TIERS, e.to_string()))?;
            gateway.tiers = tiers;
        }
        if let Some(t) = get(var::TOOLS) {
            gateway.tools = serde_json::from_str::<ToolPolicies>(&t).map_err(|e| invalid(var::TOOLS, e.to_string()))?;
        }
        if let Some(o) = get(var::ALLOWED_ORIGINS) {
            gateway.allowed_origins = o.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(n) = get(var::MAX_BODY_BYTES) {
            gateway.limits.max_body_bytes =
                n.parse().map_err(|_| invalid(var::MAX_BODY_BYTES, format!("{n:?} is not a byte count")))?;
        }
        if let Some(n) = get(var::MAX_DEPTH) {
            gateway.limits.max_depth =
                n.parse().map_err(|_| invalid(var::MAX_DEPTH, format!("{n:?} is not a nesting depth")))?;
        }
        if let Some(n) = get(var::MEMO_CAPACITY) {
            gateway.memo_capacity =
                n.parse().map_err(|_| invalid(var::MEMO_CAPACITY, format!("{n:?} is not a count")))?;
        }
        if let Some(n) = get(var::MAX_CACHE_ENTRY_BYTES) {
            gateway.max_cache_entry_bytes =
                n.parse().map_err(|_| invalid(var::MAX_CACHE_ENTRY_BYTES, format!("{n:?} is not a byte count")))?;
        }
        let keys = match (get(var::JWKS), get(var::JWKS_URL)) {
            (Some(jwks), _) => KeySource::Jwks(jwks),
            (None, Some(url)) => {
                let refresh_secs = match get(var::JWKS_REFRESH_SECS) {
                    None => DEFAULT_JWKS_REFRESH_SECS,
                    Some(s) => s
                        .parse()
                        .map_err(|_| invalid(var::JWKS_REFRESH_SECS, format!("{s:?} is not a number of seconds")))?,
                };
                KeySource::JwksUrl { url, refresh_secs }
            }
            (None, None) => return Err(SettingsError::NoKeys),
        };
        let otlp_traces_url = match get(var::OTLP_ENDPOINT) {
            None => None,
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => {
                Some(format!("{}/v1/traces", e.trim_end_matches('/')))
            }
            Some(e) => return Err(invalid(var::OTLP_ENDPOINT, format!("{e:?} is not an http(s) URL"))),
        };
        Ok(Self { gateway, origins, keys, otlp_traces_url })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<EdgeSettings, SettingsError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        EdgeSettings::from_vars(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 5] = [
        ("origin_url", "http://127.0.0.1:8080/"),
        ("issuer", "agentplane-dev"),
        ("audience", "agentplane, other"),
        ("resource", "http://127.0.0.1:8787"),
        ("jwks_url", "http://127.0.0.1:8080/.well-known/jwks.json"),
    ];

    #[test]
    fn an_otlp_endpoint_names_where_spans_go() {
        assert_eq!(read(&BASE).unwrap().otlp_traces_url, None);
        let mut vars = BASE.to_vec();
        vars.push(("otlp_endpoint", "http://127.0.0.1:4318/"));
        assert_eq!(read(&vars).unwrap().otlp_traces_url.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        vars.pop();
        vars.push(("otlp_endpoint", "collector:4318"));
        assert!(matches!(read(&vars), Err(SettingsError::Invalid { name: "otlp_endpoint", .. })));
    }

    #[test]
    fn reads_a_minimal_deployment() {
        let s = read(&BASE).unwrap();
        assert_eq!(s.origins.all(), ["http://127.0.0.1:8080"]);
        assert_eq!(s.gateway.auth.audience, ["agentplane", "other"]);
        assert_eq!(s.gateway.resource, "http://127.0.0.1:8787");
        assert_eq!(
            s.keys,
            KeySource::JwksUrl { url: "http://127.0.0.1:8080/.well-known/jwks.json".into(), refresh_secs: 300 }
        );
    }

    #[test]
    fn inline_jwks_wins_and_overrides_apply() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("jwks", "{\"keys\":[]}"),
            ("max_body_bytes", "2048"),
            ("allowed_origins", "https://a.test, https://b.test"),
            ("tiers", r#"{"tiers":{"t":{"count":5,"period_secs":1,"burst":5}},"default_tier":"t"}"#),
        ]);
        let s = read(&vars).unwrap();
        assert_eq!(s.keys, KeySource::Jwks("{\"keys\":[]}".into()));
        assert_eq!(s.gateway.limits.max_body_bytes, 2048);
        assert_eq!(s.gateway.allowed_origins, ["https://a.test", "https://b.test"]);
        assert_eq!(s.gateway.tiers.default_tier, "t");
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(read(&BASE[1..]).unwrap_err(), SettingsError::Missing(var::ORIGIN_URL));
        assert_eq!(read(&BASE[..4]).unwrap_err(), SettingsError::NoKeys);
        let mut vars = BASE.to_vec();
        vars.push(("max_body_bytes", "lots"));
        assert!(matches!(read(&vars), Err(SettingsError::Invalid { name: "max_body_bytes", .. })));
        let mut vars = BASE.to_vec();
        vars.push(("tiers", r#"{"tiers":{},"default_tier":"gold"}"#));
        assert!(matches!(read(&vars), Err(SettingsError::Invalid { name: "tiers", .. })));
        let mut vars = BASE.to_vec();
        vars[0] = ("origin_url", "ftp://x");
        assert!(matches!(read(&vars), Err(SettingsError::Invalid { name: "origin_url", .. })));
    }
}
