//! A fixed amount of the edge's per-request core work, for timing it where the runtime cannot
//! time itself: workerd stops its clocks while code runs, so a Worker runs this for `n`
//! requests inside one HTTP request and the caller times the whole request from outside (see
//! `scripts/bench-edge`). Natively, `cargo bench -p agentplane-core` times the same function.

use http::{HeaderMap, HeaderValue, Method};

use super::{AUDIENCE, ISSUER, RESOURCE};
use crate::auth::{KeySet, SignatureCheck};
use crate::gateway::{Exchange, Gateway, GatewayConfig, HttpRequest, RequestContext, Step, TenantState};
use crate::ratelimit::{Quota, Tiers};
use crate::time::Timestamp;

/// The request every iteration decides: a 300-byte `hybrid_search` call.
pub const TOOLS_CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":"does vitamin D reduce fracture risk in older adults","limit":10,"bm25_weight":1.0,"vector_weight":1.0,"filter":{"source":"scifact"}},"_meta":{"progressToken":"p-42"}}}"#;

const NOW_SECS: u64 = 1_767_225_600;

/// Whether each request's token is already in the memo, and if not, whose signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// One token, verified once before the loop: a hash and a lookup per request.
    MemoHit,
    /// The memo is emptied before each request, so each one verifies the test key `kid`'s token
    /// (`rsa-1` RS256, `ec-1` ES256, `ed-1` EdDSA) with the core's own crypto.
    MemoMiss(&'static str),
}

impl Tokens {
    /// `hit`, `rs256`, `es256` or `eddsa`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "hit" => Tokens::MemoHit,
            "rs256" => Tokens::MemoMiss("rsa-1"),
            "es256" => Tokens::MemoMiss("ec-1"),
            "eddsa" => Tokens::MemoMiss("ed-1"),
            _ => return None,
        })
    }
}

/// One gateway with its tenant state and request headers, ready to decide requests.
pub struct Workload {
    gateway: Gateway,
    tenant: TenantState,
    headers: HeaderMap,
    tokens: Tokens,
    now_ms: u64,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

impl Workload {
    pub fn new(tokens: Tokens) -> Result<Self, String> {
        let keys = KeySet::from_jwks(&super::jwks().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let mut config = GatewayConfig::new(ISSUER, AUDIENCE, RESOURCE);
        // A tier no run exhausts: every iteration is admitted and runs the whole pipeline.
        let unlimited = Quota::new(u32::MAX, 1, u32::MAX).map_err(|e| e.to_string())?;
        config.tiers = Tiers { tiers: [("bench".to_owned(), unlimited)].into(), default_tier: "bench".into() };
        let gateway = Gateway::new(config, keys).map_err(|e| e.to_string())?;
        let kid = match tokens {
            Tokens::MemoHit => "rsa-1",
            Tokens::MemoMiss(kid) => kid,
        };
        let mut claims = super::claims(NOW_SECS, "search:read docs:write");
        claims["tier"] = "bench".into();
        let token = super::mint(kid, &claims).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        headers.insert(http::header::AUTHORIZATION, bearer);
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("mcp-protocol-version", HeaderValue::from_static("2025-11-25"));
        Ok(Self { gateway, tenant: TenantState::default(), headers, tokens, now_ms: NOW_SECS * 1000 })
    }

    /// Decides one request as an edge does up to the origin call: token, parse, route, scope,
    /// rate limit, cache key, forward headers. Returns whether it was forwarded.
    pub fn request(&mut self) -> bool {
        let mut run = self.begin();
        let ok = run.signature().is_some_and(|check| check.verify_in_core().unwrap_or(false));
        run.finish(ok)
    }

    /// Starts the next request, for a caller that checks signatures itself (the Worker, with
    /// WebCrypto): [`Run::signature`], then [`Run::finish`].
    pub fn begin(&mut self) -> Run<'_> {
        self.next_request();
        let ctx = self.context();
        let exchange = self.gateway.begin(http_request(&self.headers), ctx);
        Run { exchange, gateway: &mut self.gateway, tenant: &mut self.tenant, now: ctx.now }
    }

    fn next_request(&mut self) {
        self.now_ms += 1;
        if let Tokens::MemoMiss(_) = self.tokens {
            self.gateway.forget_tokens();
        }
    }

    fn context(&self) -> RequestContext {
        RequestContext { now: Timestamp::from_unix_millis(self.now_ms), entropy: [7; 24] }
    }

    /// Runs `n` requests after one warm-up request (which fills the memo for [`Tokens::MemoHit`]);
    /// returns how many were forwarded, which must be `n`.
    pub fn run(&mut self, n: u32) -> u32 {
        self.request();
        (0..n).map(|_| u32::from(self.request())).sum()
    }
}

/// One request of a [`Workload`] in flight.
#[derive(Debug)]
pub struct Run<'w> {
    exchange: Exchange<'w>,
    gateway: &'w mut Gateway,
    tenant: &'w mut TenantState,
    now: Timestamp,
}

impl Run<'_> {
    /// The signature the request waits for, if its token is new.
    pub fn signature(&mut self) -> Option<&SignatureCheck> {
        match self.exchange.poll() {
            Step::VerifySignature(check) => Some(check),
            _ => None,
        }
    }

    /// Drives the request to its forward, with `signature_ok` as the verdict on the signature
    /// [`Run::signature`] asked for. Returns whether it was forwarded.
    pub fn finish(mut self, signature_ok: bool) -> bool {
        loop {
            match self.exchange.poll() {
                Step::VerifySignature(_) => self.exchange.handle_signature(self.gateway, signature_ok),
                Step::Admit(check) => {
                    let decision = self.tenant.admit(self.now, &check.quota);
                    self.exchange.handle_admission(decision, self.tenant.generation);
                }
                Step::ReadGeneration(_) => self.exchange.handle_generation(self.tenant.generation),
                Step::LookupCache(_) => self.exchange.handle_cache(None),
                Step::Forward(forward) => return !forward.path_and_query.is_empty(),
                Step::EvictCache(_) | Step::BumpGeneration(_) | Step::StoreCache(_) => {}
                // The body was handed over at `begin`, so it is never asked for.
                Step::ReadBody { .. } | Step::ReadOriginBody | Step::Respond(_) | Step::Reply(_) => return false,
            }
        }
    }
}

fn http_request(headers: &HeaderMap) -> HttpRequest<'_> {
    HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers, body: Some(TOOLS_CALL) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_of_every_workload_is_forwarded() {
        for name in ["hit", "rs256", "es256", "eddsa"] {
            let mut w = Workload::new(Tokens::parse(name).unwrap()).unwrap();
            assert_eq!(w.run(300), 300, "{name}");
        }
    }

    #[test]
    fn each_signature_is_asked_for_when_the_memo_is_emptied() {
        let mut w = Workload::new(Tokens::MemoMiss("ec-1")).unwrap();
        for _ in 0..5 {
            let mut run = w.begin();
            let ok = run.signature().expect("no signature asked for").verify_in_core().unwrap();
            assert!(run.finish(ok));
        }
        let mut w = Workload::new(Tokens::MemoHit).unwrap();
        assert!(w.request());
        let mut run = w.begin();
        assert!(run.signature().is_none());
        assert!(run.finish(false));
    }
}
