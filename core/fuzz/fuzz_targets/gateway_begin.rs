//! Arbitrary method, path, headers and body through the whole first stage of the pipeline.
#![no_main]

use std::sync::{Mutex, OnceLock};

use agentplane_core::auth::KeySet;
use agentplane_core::gateway::{Gateway, GatewayConfig, HttpRequest, RequestContext, Step};
use agentplane_core::testkit;
use agentplane_core::time::Timestamp;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

fn gateway() -> &'static Mutex<Gateway> {
    static GW: OnceLock<Mutex<Gateway>> = OnceLock::new();
    GW.get_or_init(|| {
        let keys = KeySet::from_jwks(&testkit::jwks().expect("test JWKS")).expect("test keys load");
        let config = GatewayConfig::new(testkit::ISSUER, testkit::AUDIENCE, testkit::RESOURCE);
        Mutex::new(Gateway::new(config, keys).expect("valid config"))
    })
}

fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        testkit::mint("rsa-1", &testkit::claims(1_767_225_600, "search:read docs:write tasks:run")).expect("mint")
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: selector byte, then "path\nname:value\n...\n\nbody".
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let path = lines.next().unwrap_or("/mcp");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((n, v)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.trim().as_bytes()), HeaderValue::from_str(v.trim()))
        {
            headers.append(n, v);
        }
    }
    if selector & 1 == 1 {
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", token())).expect("ascii"));
    }
    let method = [Method::POST, Method::GET, Method::DELETE, Method::PUT][usize::from(selector >> 1) % 4].clone();
    let req = HttpRequest { method: &method, path_and_query: path, headers: &headers, body: Some(body.as_bytes()) };
    let ctx = RequestContext { now: Timestamp::from_unix_secs(1_767_225_600), entropy: [selector; 24] };
    let mut gw = gateway().lock().unwrap_or_else(|e| e.into_inner());
    let mut exchange = gw.begin(req, ctx);
    // Drive every step an edge would, with a signature judged good and empty stores.
    for _ in 0..16 {
        match exchange.poll() {
            Step::VerifySignature(_) => exchange.handle_signature(&mut gw, true),
            Step::Admit(check) => {
                let decision = agentplane_core::TenantState::default().admit(ctx.now, &check.quota);
                exchange.handle_admission(decision, 0);
            }
            Step::ReadGeneration(_) => exchange.handle_generation(0),
            Step::LookupCache(_) => exchange.handle_cache(None),
            Step::Forward(_) => exchange.handle_origin_head(http::StatusCode::OK, HeaderMap::new()),
            Step::ReadOriginBody => exchange.handle_origin_body(b"{}"),
            Step::EvictCache(_) | Step::BumpGeneration(_) | Step::StoreCache(_) => {}
            Step::Respond(_) | Step::Reply(_) => break,
        }
    }
});
