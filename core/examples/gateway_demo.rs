//! A walk through the gateway pipeline with scripted requests, simulated time and an in-memory
//! "origin": the calls an edge adapter makes, in order, with nothing but the core.
//!
//! `cargo run -p agentplane-core --features test-vectors --example gateway_demo`

use std::collections::BTreeMap;

use agentplane_core::auth::KeySet;
use agentplane_core::gateway::{Gateway, GatewayConfig, HttpRequest, Reply, RequestContext, Step, TenantState};
use agentplane_core::testkit::{self, AUDIENCE, ISSUER, RESOURCE};
use agentplane_core::time::Timestamp;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

const NOW_MS: u64 = 1_767_225_600_000;

struct Demo {
    gateway: Gateway,
    tenants: BTreeMap<Uuid, TenantState>,
    cache: BTreeMap<String, Vec<u8>>,
    origin_calls: u32,
}

impl Demo {
    /// The drive loop an edge adapter runs, with maps for its stores and a canned origin.
    fn send(&mut self, now_ms: u64, token: Option<&str>, body: &Value) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-protocol-version", HeaderValue::from_static("2025-11-25"));
        if let Some(t) = token
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}"))
        {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        let body = body.to_string();
        let req = HttpRequest {
            method: &Method::POST,
            path_and_query: "/mcp",
            headers: &headers,
            body: Some(body.as_bytes()),
        };
        let now = Timestamp::from_unix_millis(now_ms);
        let ctx = RequestContext { now, entropy: [now_ms.to_le_bytes()[0]; 24] };
        let origin_body = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "ok"}]}});
        let bytes = origin_body.to_string().into_bytes();
        let mut exchange = self.gateway.begin(req, ctx);
        let mut bumped = false;
        let mut forwarded = String::new();
        loop {
            match exchange.poll() {
                Step::VerifySignature(check) => {
                    let ok = check.verify_in_core().unwrap_or(false);
                    exchange.handle_signature(&mut self.gateway, ok);
                }
                Step::Admit(check) => {
                    let tenant = self.tenants.entry(check.tenant).or_default();
                    let decision = tenant.admit(now, &check.quota);
                    exchange.handle_admission(decision, tenant.generation);
                }
                // Not asked: the body was handed over at `begin`.
                Step::ReadBody { .. } => exchange.handle_body(body.as_bytes()),
                Step::ReadGeneration(t) => exchange.handle_generation(self.tenants.get(&t).map_or(0, |t| t.generation)),
                Step::LookupCache(key) => {
                    let stored = self.cache.get(key.as_str()).cloned();
                    exchange.handle_cache(stored.as_deref());
                }
                Step::EvictCache(key) => {
                    self.cache.remove(key.as_str());
                }
                Step::Forward(forward) => {
                    self.origin_calls += 1;
                    forwarded = format!("{} (traceparent {})", forward.path_and_query, exchange.traceparent());
                    let mut origin_headers = HeaderMap::new();
                    origin_headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    exchange.handle_origin_head(StatusCode::OK, origin_headers);
                }
                Step::ReadOriginBody => exchange.handle_origin_body(&bytes),
                Step::BumpGeneration(t) => {
                    self.tenants.entry(t).or_default().bump_generation();
                    bumped = true;
                }
                Step::StoreCache(entry) => {
                    self.cache.insert(entry.key.as_str().to_owned(), entry.bytes);
                }
                Step::Respond(head) => {
                    return format!(
                        "forwarded to origin {forwarded}; cache {}{}",
                        head.headers.get("x-agentplane-cache").and_then(|v| v.to_str().ok()).unwrap_or("-"),
                        if bumped { "; tenant data generation bumped" } else { "" },
                    );
                }
                Step::Reply(r) => {
                    let what = match r.headers.get("x-agentplane-cache").and_then(|v| v.to_str().ok()) {
                        Some("hit") => "served from the edge cache",
                        _ if r.status == StatusCode::TOO_MANY_REQUESTS => "rate-limited",
                        _ if r.status.is_success() && r.jsonrpc_error_code().is_none() => "answered at the edge",
                        _ => "refused or answered at the edge",
                    };
                    return describe(what, &r);
                }
            }
        }
    }
}

fn describe(what: &str, r: &Reply) -> String {
    let code = r.jsonrpc_error_code().map(|c| format!(", JSON-RPC {c}")).unwrap_or_default();
    let extra = ["www-authenticate", "retry-after", "x-agentplane-cache"]
        .iter()
        .filter_map(|h| r.headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| format!("; {h}: {v}")))
        .collect::<String>();
    format!("{what}: HTTP {}{code}{extra}", r.status.as_u16())
}

fn call(id: u32, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = KeySet::from_jwks(&testkit::jwks()?)?;
    let gateway = Gateway::new(GatewayConfig::new(ISSUER, AUDIENCE, RESOURCE), keys)?;
    let mut demo = Demo { gateway, tenants: BTreeMap::new(), cache: BTreeMap::new(), origin_calls: 0 };
    let secs = NOW_MS / 1000;
    let reader = testkit::mint("rsa-1", &testkit::claims(secs, "search:read"))?;
    let writer = testkit::mint("ed-1", &testkit::claims(secs, "search:read docs:write"))?;
    let mut expired_claims = testkit::claims(secs, "search:read");
    expired_claims["exp"] = json!(secs - 120);
    let expired = testkit::mint("ec-1", &expired_claims)?;
    let mut other_claims = testkit::claims(secs, "search:read");
    other_claims["tenant_id"] = json!(testkit::TENANT_B);
    let other_tenant = testkit::mint("rsa-1", &other_claims)?;
    let search = call(1, "tools/call", json!({"name": "hybrid_search", "arguments": {"query": "fever"}}));

    let script: Vec<(&str, u64, Option<&str>, Value)> = vec![
        ("tools/list without a token", 0, None, call(1, "tools/list", json!({}))),
        ("tools/list with an expired token", 0, Some(&expired), call(1, "tools/list", json!({}))),
        ("a JSON string instead of a JSON-RPC object", 0, Some(&reader), json!("{not json")),
        ("ping", 0, Some(&reader), call(1, "ping", json!({}))),
        ("hybrid_search", 1, Some(&reader), search.clone()),
        ("the same hybrid_search again", 2, Some(&reader), search.clone()),
        (
            "upsert_document with a read-only token",
            3,
            Some(&reader),
            call(2, "tools/call", json!({"name": "upsert_document", "arguments": {}})),
        ),
        (
            "upsert_document with docs:write",
            4,
            Some(&writer),
            call(2, "tools/call", json!({"name": "upsert_document", "arguments": {"title": "t", "content": "c"}})),
        ),
        ("hybrid_search after the write", 5, Some(&reader), search.clone()),
        ("a method nobody serves", 6, Some(&reader), call(3, "tools/explode", json!({}))),
    ];
    println!("agentplane core: the gateway pipeline on scripted requests (simulated clock, in-memory origin)\n");
    for (i, (label, dt, token, body)) in script.into_iter().enumerate() {
        println!("{:>2}. {label}\n    -> {}", i + 1, demo.send(NOW_MS + dt, token, &body));
    }
    println!("\nA burst of 12 `prompts/get` calls from a second, free-tier tenant (10 a minute, burst 10):");
    let mut outcomes = Vec::new();
    for i in 0..12 {
        outcomes.push(demo.send(
            NOW_MS + 1_000 + i,
            Some(&other_tenant),
            &call(9, "prompts/get", json!({"name": "p"})),
        ));
    }
    for (i, o) in outcomes.iter().enumerate().skip(8) {
        println!("    call {:>2}: {o}", i + 1);
    }
    println!("\nThe origin was called {} times.", demo.origin_calls);
    Ok(())
}
