//! Gateway settings, as adapters read them from Worker vars, Spin variables or the origin's file.

use serde::{Deserialize, Serialize};

use crate::auth::VerifierConfig;
use crate::catalogue::{SCOPE_DOCS_WRITE, SCOPE_SEARCH_READ, SCOPE_TASKS_RUN, ToolPolicies};
use crate::jsonrpc::Limits;
use crate::ratelimit::Tiers;

/// The gateway's settings: what both edges build from their variables (`EdgeSettings`) and the
/// origin reads as its `[gateway]` section, so an edge and its origin share one schema. Fields a
/// file leaves out take their defaults; the issuer, audience and resource have none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    pub auth: VerifierConfig,
    /// This protected resource's identifier (RFC 9728), e.g. `https://agents.example.com`.
    pub resource: String,
    /// Where clients get tokens, listed in the protected-resource metadata.
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default = "default_scopes")]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub tiers: Tiers,
    #[serde(default)]
    pub tools: ToolPolicies,
    #[serde(default)]
    pub limits: Limits,
    /// How many verified tokens to remember.
    #[serde(default = "default_memo_capacity")]
    pub memo_capacity: usize,
    /// The largest answer an edge keeps in its cache, in bytes as stored; a larger one is passed
    /// on and not kept, so one tenant's large results cannot crowd the cache or its memory.
    #[serde(default = "default_max_cache_entry_bytes")]
    pub max_cache_entry_bytes: usize,
    /// Browser origins allowed to call; a request with any other `Origin` header is refused (403)
    /// against DNS rebinding. Requests without `Origin` (non-browser clients) pass.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Paths forwarded without a token or a rate limit (cards, key sets, health).
    #[serde(default = "default_public_paths")]
    pub public_paths: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    [SCOPE_SEARCH_READ, SCOPE_DOCS_WRITE, SCOPE_TASKS_RUN].map(String::from).to_vec()
}

fn default_memo_capacity() -> usize {
    4096
}

fn default_max_cache_entry_bytes() -> usize {
    256 * 1024
}

fn default_public_paths() -> Vec<String> {
    [
        "/.well-known/agent-card.json",
        "/.well-known/agent.json",
        "/.well-known/agent-card-jwks.json",
        "/.well-known/jwks.json",
        "/health",
        "/ready",
    ]
    .map(String::from)
    .to_vec()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        let mut config = Self::new("", "", "");
        config.auth.audience.clear();
        config.authorization_servers.clear();
        config
    }
}

impl GatewayConfig {
    /// A configuration with every default, for the given issuer, audience and resource URL.
    pub fn new(issuer: &str, audience: &str, resource: &str) -> Self {
        Self {
            auth: VerifierConfig::new(issuer, audience),
            resource: resource.to_owned(),
            authorization_servers: vec![issuer.to_owned()],
            scopes_supported: default_scopes(),
            tiers: Tiers::default(),
            tools: ToolPolicies::default(),
            limits: Limits::default(),
            memo_capacity: default_memo_capacity(),
            max_cache_entry_bytes: default_max_cache_entry_bytes(),
            allowed_origins: Vec::new(),
            public_paths: default_public_paths(),
        }
    }

    /// The URL of the protected-resource metadata, named in every `WWW-Authenticate` challenge.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}{}", self.resource.trim_end_matches('/'), super::METADATA_PATH)
    }

    /// The RFC 9728 metadata document.
    pub fn resource_metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "scopes_supported": self.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": "agentplane",
        })
    }
}
