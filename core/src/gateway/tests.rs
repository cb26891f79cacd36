//! Pipeline behaviour the vectors cannot express: the order of calls and what each returns.

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::*;
use crate::testkit::{self, AUDIENCE, ISSUER, RESOURCE};

const NOW_MS: u64 = 1_767_225_600_000;

fn gateway() -> Gateway {
    let keys = KeySet::from_jwks(&testkit::jwks().unwrap()).unwrap();
    Gateway::new(GatewayConfig::new(ISSUER, AUDIENCE, RESOURCE), keys).unwrap()
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

fn ctx() -> RequestContext {
    RequestContext { now: Timestamp::from_unix_millis(NOW_MS), entropy: [9; 24] }
}

#[test]
fn configuration_errors_are_reported() {
    let keys = KeySet::from_jwks(&testkit::jwks().unwrap()).unwrap();
    let mut config = GatewayConfig::new(ISSUER, AUDIENCE, RESOURCE);
    config.memo_capacity = 0;
    assert!(matches!(Gateway::new(config, keys.clone()), Err(GatewayError::MemoCapacity)));
    let mut config = GatewayConfig::new(ISSUER, AUDIENCE, RESOURCE);
    config.tiers.default_tier = "nope".into();
    assert!(matches!(Gateway::new(config, keys), Err(GatewayError::Tiers(_))));
}

#[test]
fn a_search_walks_the_whole_pipeline() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":"q"}}}"#;
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body };
    let Begin::Proceed(mut p) = gw.begin(&req, ctx()) else { panic!("refused") };
    assert_eq!(p.method(), Some("tools/call"));
    assert_eq!(p.tool(), Some("hybrid_search"));
    let check = p.rate_limit().unwrap();
    let mut tenant = TenantState::default();
    assert!(p.admit(tenant.admit(ctx().now, &check.quota)).is_none());
    assert!(p.local_reply().is_none());
    let key = p.cache_key(tenant.generation).unwrap();
    let fwd = p.forward(&h);
    assert_eq!(fwd.path_and_query, "/mcp");
    assert_eq!(fwd.headers.get("traceparent").unwrap().to_str().unwrap().len(), 55);
    let mut origin_headers = HeaderMap::new();
    origin_headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    assert!(p.wants_body(StatusCode::OK, &origin_headers));
    let origin_body = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
    let out = p.on_origin_response(StatusCode::OK, Some(origin_body), ctx().now);
    assert!(!out.bump_generation);
    let store = out.store.unwrap();
    assert_eq!((store.key, store.ttl_ms), (key, 30_000));
    assert_eq!(out.headers.get(header::CACHE).unwrap(), "miss");
}

#[test]
fn the_memo_is_used_across_requests() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    assert_eq!(gw.authenticate(&token, ctx().now).unwrap().2, MemoOutcome::Miss);
    let h = headers(&token);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body };
    assert!(matches!(gw.begin(&req, ctx()), Begin::Proceed(_)));
    assert_eq!(gw.authenticate(&token, ctx().now).unwrap().2, MemoOutcome::Hit);
}

#[test]
fn duplicate_authorization_headers_are_refused() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    let mut h = headers(&token);
    h.append(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer other"));
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: b"{}" };
    let Begin::Respond(r) = gw.begin(&req, ctx()) else { panic!("accepted") };
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[test]
fn header_values_decode() {
    assert_eq!(decode_header_value(b"tools/call").as_deref(), Some("tools/call"));
    assert_eq!(decode_header_value(b"=?base64?w6k=?=").as_deref(), Some("\u{e9}"));
    assert_eq!(decode_header_value(b"=?base64?!!?="), None);
    assert_eq!(decode_header_value(b"tab\there"), None);
}

#[test]
fn an_oversized_body_gets_a_413_with_a_request_id() {
    let gw = gateway();
    let mut h = HeaderMap::new();
    h.insert("x-request-id", HeaderValue::from_static("req-7"));
    let r = gw.payload_too_large(&h, ctx());
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.jsonrpc_error_code(), Some(i64::from(code::INVALID_REQUEST)));
    assert_eq!(r.headers.get("x-request-id").unwrap(), "req-7");
    assert_eq!(gw.max_body_bytes(), 1024 * 1024);
}

#[test]
fn an_unreachable_origin_gets_a_502_echoing_the_id() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let body = br#"{"jsonrpc":"2.0","id":"c-1","method":"tools/list"}"#;
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body };
    let Begin::Proceed(p) = gw.begin(&req, ctx()) else { panic!("refused") };
    let r = p.origin_unavailable();
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert_eq!(r.jsonrpc_error_code(), Some(i64::from(code::ORIGIN_UNAVAILABLE)));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["id"], "c-1");
    assert!(r.headers.contains_key("x-request-id"));
}

fn list_request(h: &HeaderMap) -> HttpRequest<'_> {
    HttpRequest {
        method: &Method::POST,
        path_and_query: "/mcp",
        headers: h,
        body: br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    }
}

#[test]
fn a_deferred_signature_is_asked_for_once_and_a_good_verdict_is_remembered() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let req = list_request(&h);
    let SignatureStep::Verify(t) = gw.begin_deferring(&req, ctx()) else { panic!("expected a signature request") };
    assert_eq!(t.check.algorithm(), crate::auth::Algorithm::RS256);
    assert_eq!(t.check.kid(), Some("rsa-1"));
    let jwk: serde_json::Value = serde_json::from_str(t.check.public_jwk().unwrap()).unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert!(jwk.get("d").is_none() && jwk.get("n").is_some());
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert_eq!(t.check.signing_input(), signed.as_bytes());
    assert_eq!(t.check.signature().len(), 256);
    assert!(t.check.verify_in_core().unwrap());
    assert!(matches!(gw.resume(&req, ctx(), *t, true), Begin::Proceed(_)));
    // The memo now holds the token: no second signature request.
    assert!(matches!(gw.begin_deferring(&req, ctx()), SignatureStep::Decided(Begin::Proceed(_))));
}

#[test]
fn a_failed_deferred_signature_is_a_401_and_is_not_remembered() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let req = list_request(&h);
    let SignatureStep::Verify(t) = gw.begin_deferring(&req, ctx()) else { panic!("expected a signature request") };
    let Begin::Respond(r) = gw.resume(&req, ctx(), *t, false) else { panic!("expected a refusal") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("www-authenticate").unwrap().to_str().unwrap().contains("invalid_token"));
    assert!(matches!(gw.begin_deferring(&req, ctx()), SignatureStep::Verify(_)));
}

#[test]
fn a_good_signature_on_an_expired_token_is_still_refused() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000 - 7200, "search:read")).unwrap();
    let h = headers(&token);
    let req = list_request(&h);
    let SignatureStep::Verify(t) = gw.begin_deferring(&req, ctx()) else { panic!("expected a signature request") };
    let Begin::Respond(r) = gw.resume(&req, ctx(), *t, true) else { panic!("expected a refusal") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn without_deferral_the_core_checks_signatures_itself() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    assert!(matches!(gw.begin(&list_request(&h), ctx()), Begin::Proceed(_)));
}
