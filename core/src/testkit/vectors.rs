//! The shared test vectors: request + time + configuration -> expected decision.
//!
//! Each file under `core/tests/vectors/` is a list of cases; a case is a sequence of steps run
//! against one in-memory world (tenant records, an edge cache, a fake origin). The runner below
//! is the reference drive loop: it calls the pipeline exactly as an edge adapter does, so a
//! vector that passes here and inside a runtime proves the adapter adds no policy of its own.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::KeySet;
use crate::gateway::{self, Gateway, GatewayConfig, HttpRequest, RequestContext, TenantState};
use crate::time::Timestamp;

/// The vector files, compiled in so that runtimes without a file system can run them.
pub const BUILTIN: &[(&str, &str)] = &[
    ("auth.json", include_str!("../../tests/vectors/auth.json")),
    ("jsonrpc.json", include_str!("../../tests/vectors/jsonrpc.json")),
    ("routing.json", include_str!("../../tests/vectors/routing.json")),
    ("ratelimit.json", include_str!("../../tests/vectors/ratelimit.json")),
    ("cache.json", include_str!("../../tests/vectors/cache.json")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile {
    pub description: String,
    /// Merged over the default test configuration.
    #[serde(default)]
    pub config: Option<Value>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub now_ms: u64,
    pub request: VectorRequest,
    /// What the fake origin answers if the request reaches it.
    #[serde(default)]
    pub origin: Option<OriginAnswer>,
    pub expect: Expect,
    /// Repeat the step this many times; `expect` applies to the last one.
    #[serde(default = "one")]
    pub repeat: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorRequest {
    #[serde(default = "post")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A token minted at run time: these claims are merged over valid defaults (a `null` removes
    /// a claim), signed by `kid` (default `rsa-1`).
    #[serde(default)]
    pub token: Option<TokenSpec>,
    #[serde(default)]
    pub body: Option<Value>,
    /// A raw body, for malformed JSON.
    #[serde(default)]
    pub body_text: Option<String>,
}

fn post() -> String {
    "POST".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub claims: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginAnswer {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default = "json_type")]
    pub content_type: String,
    pub body: Value,
}

fn ok() -> u16 {
    200
}

fn json_type() -> String {
    "application/json".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `reply` (answered by the gateway) or `forward` (answered by the origin).
    pub outcome: String,
    pub status: u16,
    #[serde(default)]
    pub error_code: Option<i64>,
    /// The response's `result`, compared whole.
    #[serde(default)]
    pub result: Option<Value>,
    /// The response's `id`.
    #[serde(default)]
    pub id: Option<Value>,
    /// Response headers that must have exactly these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response headers whose value must contain these texts.
    #[serde(default)]
    pub headers_contain: BTreeMap<String, String>,
    /// Headers that must reach the origin.
    #[serde(default)]
    pub forwarded_headers: Vec<String>,
    /// Headers that must not reach the origin.
    #[serde(default)]
    pub not_forwarded_headers: Vec<String>,
    /// Headers that must reach the origin containing these texts.
    #[serde(default)]
    pub forwarded_contain: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_path: Option<String>,
    /// The tenant's data generation after the step.
    #[serde(default)]
    pub generation: Option<u64>,
}

/// What the client saw, and what reached the origin.
#[derive(Debug)]
struct Observed {
    outcome: &'static str,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    forwarded: Option<(String, HeaderMap)>,
}

/// One in-memory deployment: the gateway plus the state an adapter would keep in its stores.
pub struct World {
    gateway: Gateway,
    tenants: BTreeMap<Uuid, TenantState>,
    cache: BTreeMap<String, Vec<u8>>,
    steps: u64,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("tenants", &self.tenants.len()).field("cache", &self.cache.len()).finish()
    }
}

/// The configuration every vector file starts from.
pub fn base_config() -> Value {
    let config = GatewayConfig::new(super::ISSUER, super::AUDIENCE, super::RESOURCE);
    serde_json::to_value(config).unwrap_or(Value::Null)
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

impl World {
    pub fn new(config_overrides: Option<&Value>) -> Result<Self, String> {
        let mut config = base_config();
        if let Some(o) = config_overrides {
            merge(&mut config, o);
        }
        let config: GatewayConfig = serde_json::from_value(config).map_err(|e| format!("config: {e}"))?;
        let jwks = super::jwks().map_err(|e| e.to_string())?;
        let keys = KeySet::from_jwks(&jwks).map_err(|e| e.to_string())?;
        let gateway = Gateway::new(config, keys).map_err(|e| e.to_string())?;
        Ok(Self { gateway, tenants: BTreeMap::new(), cache: BTreeMap::new(), steps: 0 })
    }

    /// Runs one request through the pipeline, as an edge adapter would.
    fn drive(&mut self, step: &Step) -> Result<Observed, String> {
        self.steps += 1;
        let now = Timestamp::from_unix_millis(step.now_ms);
        let req = &step.request;
        let method = Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            headers.append(name, HeaderValue::from_str(v).map_err(|e| e.to_string())?);
        }
        if let Some(spec) = &req.token {
            let token = mint_spec(spec, step.now_ms / 1000)?;
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let body = match (&req.body, &req.body_text) {
            (Some(v), _) => serde_json::to_vec(v).map_err(|e| e.to_string())?,
            (None, Some(t)) => t.clone().into_bytes(),
            (None, None) => Vec::new(),
        };
        let mut entropy = [0u8; 24];
        entropy[..8].copy_from_slice(&self.steps.to_be_bytes());
        entropy[16..].copy_from_slice(&self.steps.to_be_bytes());
        // Handed over at `begin`, as both edges do (the origin defers it: `Step::ReadBody`, whose
        // path the gateway's unit tests walk).
        let http_req = HttpRequest { method: &method, path_and_query: &req.path, headers: &headers, body: Some(&body) };
        let answer = step.origin.as_ref();
        let origin_body = answer.map(|a| serde_json::to_vec(&a.body)).transpose().map_err(|e| e.to_string())?;
        let mut forwarded = None;
        let mut exchange = self.gateway.begin(http_req, RequestContext { now, entropy });
        // The reference shell: every edge adapter is this loop over its own stores.
        loop {
            match exchange.poll() {
                gateway::Step::VerifySignature(check) => {
                    let ok = check.verify_in_core().unwrap_or(false);
                    exchange.handle_signature(&mut self.gateway, ok);
                }
                gateway::Step::Admit(check) => {
                    let state = self.tenants.entry(check.tenant).or_default();
                    let decision = state.admit(now, &check.quota);
                    exchange.handle_admission(decision, state.generation);
                }
                gateway::Step::ReadBody { .. } => exchange.handle_body(&body),
                gateway::Step::ReadGeneration(tenant) => {
                    exchange.handle_generation(self.tenants.get(&tenant).map_or(0, |s| s.generation));
                }
                gateway::Step::LookupCache(key) => {
                    let stored = self.cache.get(key.as_str()).cloned();
                    exchange.handle_cache(stored.as_deref());
                }
                gateway::Step::EvictCache(key) => {
                    self.cache.remove(key.as_str());
                }
                gateway::Step::Forward(fwd) => {
                    let answer = answer.ok_or("request reached the origin but the step has no origin answer")?;
                    let status = StatusCode::from_u16(answer.status).map_err(|e| e.to_string())?;
                    let mut origin_headers = HeaderMap::new();
                    let content_type = HeaderValue::from_str(&answer.content_type).map_err(|e| e.to_string())?;
                    origin_headers.insert(http::header::CONTENT_TYPE, content_type);
                    forwarded = Some((fwd.path_and_query, fwd.headers));
                    exchange.handle_origin_head(status, origin_headers);
                }
                gateway::Step::ReadOriginBody => {
                    exchange.handle_origin_body(origin_body.as_deref().unwrap_or_default())
                }
                gateway::Step::BumpGeneration(tenant) => self.tenants.entry(tenant).or_default().bump_generation(),
                gateway::Step::StoreCache(entry) => {
                    self.cache.insert(entry.key.as_str().to_owned(), entry.bytes);
                }
                gateway::Step::Respond(head) => {
                    // The origin's body is passed on at once here, so its end is now.
                    if let Some(tenant) = head.bump_after_body {
                        self.tenants.entry(tenant).or_default().bump_generation();
                    }
                    return Ok(Observed {
                        outcome: "forward",
                        status: head.status,
                        headers: head.headers,
                        body: origin_body.unwrap_or_default(),
                        forwarded,
                    });
                }
                gateway::Step::Reply(r) => return Ok(reply(r)),
            }
        }
    }

    fn generation(&self, step: &Step) -> u64 {
        let tenant = step
            .request
            .token
            .as_ref()
            .and_then(|t| t.claims.get("tenant_id"))
            .and_then(Value::as_str)
            .unwrap_or(super::TENANT_A);
        Uuid::try_parse(tenant).ok().and_then(|t| self.tenants.get(&t)).map_or(0, |s| s.generation)
    }
}

fn reply(r: crate::gateway::Reply) -> Observed {
    Observed { outcome: "reply", status: r.status, headers: r.headers, body: r.body, forwarded: None }
}

fn mint_spec(spec: &TokenSpec, now_secs: u64) -> Result<String, String> {
    let mut claims = super::claims(now_secs, spec.scope.as_deref().unwrap_or("search:read docs:write tasks:run"));
    if let Value::Object(map) = &mut claims {
        for (k, v) in &spec.claims {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    super::mint(spec.kid.as_deref().unwrap_or("rsa-1"), &claims).map_err(|e| e.to_string())
}

fn check(expect: &Expect, got: &Observed, generation: u64) -> Vec<String> {
    let mut failures = Vec::new();
    if got.outcome != expect.outcome {
        failures.push(format!("outcome: expected {}, got {}", expect.outcome, got.outcome));
    }
    if got.status.as_u16() != expect.status {
        failures.push(format!("status: expected {}, got {}", expect.status, got.status.as_u16()));
    }
    let body: Value = serde_json::from_slice(&got.body).unwrap_or(Value::Null);
    if let Some(code) = expect.error_code {
        let actual = body.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64);
        if actual != Some(code) {
            failures.push(format!("error code: expected {code}, got {actual:?} in {body}"));
        }
    }
    if let Some(result) = &expect.result
        && body.get("result") != Some(result)
    {
        failures.push(format!("result: expected {result}, got {:?}", body.get("result")));
    }
    if let Some(id) = &expect.id
        && body.get("id") != Some(id)
    {
        failures.push(format!("id: expected {id}, got {:?}", body.get("id")));
    }
    let header = |name: &str| got.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    for (name, want) in &expect.headers {
        if header(name).as_deref() != Some(want) {
            failures.push(format!("header {name}: expected {want:?}, got {:?}", header(name)));
        }
    }
    for (name, part) in &expect.headers_contain {
        if !header(name).is_some_and(|v| v.contains(part.as_str())) {
            failures.push(format!("header {name}: expected to contain {part:?}, got {:?}", header(name)));
        }
    }
    match &got.forwarded {
        Some((path, headers)) => {
            if let Some(want) = &expect.forward_path
                && want != path
            {
                failures.push(format!("forward path: expected {want}, got {path}"));
            }
            for name in &expect.forwarded_headers {
                if !headers.contains_key(name.as_str()) {
                    failures.push(format!("header {name} was not forwarded"));
                }
            }
            for (name, part) in &expect.forwarded_contain {
                let value = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
                if !value.is_some_and(|v| v.contains(part.as_str())) {
                    failures.push(format!("forwarded header {name}: expected to contain {part:?}, got {value:?}"));
                }
            }
            for name in &expect.not_forwarded_headers {
                if headers.contains_key(name.as_str()) {
                    failures.push(format!("header {name} was forwarded"));
                }
            }
        }
        None => {
            if expect.forward_path.is_some() || !expect.forwarded_headers.is_empty() {
                failures.push("expected a forward, but the gateway replied".to_owned());
            }
        }
    }
    if let Some(g) = expect.generation
        && g != generation
    {
        failures.push(format!("generation: expected {g}, got {generation}"));
    }
    failures
}

/// Runs every case of a vector file; returns one line per failed expectation.
pub fn run_file(name: &str, text: &str) -> Vec<String> {
    let file: VectorFile = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return vec![format!("{name}: cannot read: {e}")],
    };
    let mut failures = Vec::new();
    for case in &file.cases {
        let mut world = match World::new(file.config.as_ref()) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{name} / {}: {e}", case.name));
                continue;
            }
        };
        for (i, step) in case.steps.iter().enumerate() {
            let mut last = None;
            for _ in 0..step.repeat.max(1) {
                last = Some(world.drive(step));
            }
            match last {
                Some(Ok(observed)) => {
                    let generation = world.generation(step);
                    for f in check(&step.expect, &observed, generation) {
                        failures.push(format!("{name} / {} / step {}: {f}", case.name, i + 1));
                    }
                }
                Some(Err(e)) => failures.push(format!("{name} / {} / step {}: {e}", case.name, i + 1)),
                None => {}
            }
        }
    }
    failures
}

/// Runs every built-in vector file: `(cases run, failures)`.
pub fn run_builtin() -> (usize, Vec<String>) {
    let mut cases = 0;
    let mut failures = Vec::new();
    for (name, text) in BUILTIN {
        cases += serde_json::from_str::<VectorFile>(text).map_or(0, |f| f.cases.len());
        failures.extend(run_file(name, text));
    }
    (cases, failures)
}
