//! Pipeline behaviour the vectors cannot express: the order of calls and what each returns.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::exchange::decode_header_value;
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

/// The limiter's answer to a tenant that has spent its whole burst.
fn over_quota(check: &RateLimitCheck) -> crate::ratelimit::RateDecision {
    let mut tenant = TenantState::default();
    std::iter::repeat_with(|| tenant.admit(ctx().now, &check.quota)).find(|d| !d.allowed).unwrap()
}

/// Polls until the exchange asks for something other than a signature (checked by the core).
fn past_signature<'e>(gw: &mut Gateway, ex: &'e mut Exchange<'_>) -> Step<'e> {
    if let Step::VerifySignature(check) = ex.poll() {
        let ok = check.verify_in_core().unwrap();
        ex.handle_signature(gw, ok);
    }
    ex.poll()
}

#[test]
fn a_search_walks_the_whole_pipeline() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":"q"}}}"#;
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(body) };
    let mut ex = gw.begin(req, ctx());
    // The limiter comes before the body is read: nothing is parsed for a tenant over quota.
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    assert_eq!(ex.method(), None);
    let mut tenant = TenantState::default();
    ex.handle_admission(tenant.admit(ctx().now, &check.quota), tenant.generation);
    let Step::LookupCache(key) = ex.poll() else { panic!("no cache lookup") };
    let key = key.clone();
    assert_eq!(ex.method(), Some("tools/call"));
    assert_eq!(ex.tool(), Some("hybrid_search"));
    ex.handle_cache(None);
    let Step::Forward(fwd) = ex.poll() else { panic!("not forwarded") };
    assert_eq!((fwd.method, fwd.path_and_query.as_str()), (Method::POST, "/mcp"));
    assert_eq!(fwd.headers.get("traceparent").unwrap().to_str().unwrap().len(), 55);
    let fwd_traceparent = fwd.headers["traceparent"].to_str().unwrap().to_owned();
    let mut origin_headers = HeaderMap::new();
    origin_headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    origin_headers.insert(http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
    ex.handle_origin_head(StatusCode::OK, origin_headers);
    assert!(matches!(ex.poll(), Step::ReadOriginBody));
    ex.handle_origin_body(br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#);
    let Step::StoreCache(store) = ex.poll() else { panic!("nothing to store") };
    assert_eq!((store.key, store.ttl_ms), (key, 30_000));
    let Step::Respond(head) = ex.poll() else { panic!("no response") };
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers.get(header::CACHE).unwrap(), "miss");
    assert!(head.headers.get(http::header::CONNECTION).is_none());
    // The edge's span says what happened on the way, under the id it forwarded.
    let span = ex.span(ctx().now, StatusCode::OK);
    assert_eq!(span.span.to_string(), fwd_traceparent);
    let attr = |k: &str| span.attributes.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
    assert_eq!(
        [attr("agentplane.auth"), attr("agentplane.limit"), attr("agentplane.cache"), attr("agentplane.origin")],
        [Some("signature"), Some("admitted"), Some("miss"), Some("200")]
    );
    assert_eq!((span.name.as_str(), attr("rpc.method")), ("edge tools/call", Some("tools/call")));
}

/// A shell that begins without the body (the origin) is asked for it only once the caller is
/// admitted: a refused caller's body is never read, and one too long ends in a 413.
#[test]
fn a_deferred_body_is_read_only_after_admission() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: None };
    let mut ex = gw.begin(req, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(over_quota(&check), 0);
    let Step::Reply(r) = ex.poll() else { panic!("an over-quota caller was asked for its body") };
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    let mut ex = gw.begin(req, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    let Step::ReadBody { max_bytes } = ex.poll() else { panic!("no body asked for") };
    assert_eq!(max_bytes, gw.max_body_bytes());
    ex.handle_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert!(matches!(ex.poll(), Step::LookupCache(_)));
    assert_eq!(ex.method(), Some("tools/list"));

    let mut ex = gw.begin(req, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::ReadBody { .. }));
    ex.handle_body_too_large();
    let Step::Reply(r) = ex.poll() else { panic!("no reply") };
    assert_eq!((r.status, r.jsonrpc_error_code()), (StatusCode::PAYLOAD_TOO_LARGE, Some(-32600)));
    assert!(r.headers.contains_key(header::RATELIMIT_REMAINING));
}

#[test]
fn a_step_is_repeated_until_it_is_answered_and_answers_out_of_turn_are_ignored() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    ex.handle_cache(Some(b"{}"));
    ex.handle_origin_failed();
    assert!(matches!(ex.poll(), Step::VerifySignature(_)));
    assert!(matches!(ex.poll(), Step::VerifySignature(_)));
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    assert!(matches!(ex.poll(), Step::Admit(_)));
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::LookupCache(_)));
    ex.handle_origin_head(StatusCode::OK, HeaderMap::new());
    ex.handle_cache(None);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    ex.handle_origin_failed();
    let Step::Reply(r) = ex.poll() else { panic!("no reply") };
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    // Polled after the end: an internal error, not a panic.
    let Step::Reply(r) = ex.poll() else { panic!("no reply") };
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn a_write_bumps_the_generation_before_the_response() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "docs:write")).unwrap();
    let h = headers(&token);
    let (mut ex, tenant) = streamed_write(&mut gw, &h, &mut TenantState::default());
    assert!(matches!(ex.poll(), Step::BumpGeneration(t) if t == tenant));
    // Streamed, so it may commit after its head: the generation is bumped again after the body.
    assert!(matches!(ex.poll(), Step::Respond(h) if h.bump_after_body == Some(tenant)));
}

/// An `upsert_document` by the token in `h`, admitted against `tenant` and forwarded, whose answer
/// has begun as an event stream; and the token's tenant.
fn streamed_write<'h>(gw: &mut Gateway, h: &'h HeaderMap, tenant: &mut TenantState) -> (Exchange<'h>, uuid::Uuid) {
    let body = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"upsert_document","arguments":{}}}"#;
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: h, body: Some(body) }, ctx());
    let Step::Admit(check) = past_signature(gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(tenant.admit(ctx().now, &check.quota), tenant.generation);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    let mut sse = HeaderMap::new();
    sse.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    ex.handle_origin_head(StatusCode::OK, sse);
    (ex, check.tenant)
}

#[test]
fn a_dead_cache_entry_is_evicted_and_the_request_forwarded() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    let Step::LookupCache(key) = ex.poll() else { panic!("no cache lookup") };
    let key = key.clone();
    ex.handle_cache(Some(b"not an entry"));
    assert!(matches!(ex.poll(), Step::EvictCache(k) if k == key));
    assert!(matches!(ex.poll(), Step::Forward(_)));
}

#[test]
fn the_last_hop_neither_answers_ping_nor_caches() {
    let mut gw = gateway().last_hop();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    for body in
        [&br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#[..], br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#]
    {
        let mut ex = gw
            .begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(body) }, ctx());
        let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
        ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
        assert!(matches!(ex.poll(), Step::Forward(_)));
        assert!(ex.message().is_some());
    }
}

#[test]
fn the_memo_is_used_across_requests() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    assert_eq!(gw.authenticate(&token, ctx().now).unwrap().2, MemoOutcome::Miss);
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    assert!(matches!(ex.poll(), Step::Admit(_)));
    assert_eq!(gw.authenticate(&token, ctx().now).unwrap().2, MemoOutcome::Hit);
}

#[test]
fn duplicate_authorization_headers_are_refused() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    let mut h = headers(&token);
    h.append(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer other"));
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(b"{}") };
    let Step::Reply(r) = gw.begin(req, ctx()).poll() else { panic!("accepted") };
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
    let body = br#"{"jsonrpc":"2.0","id":"c-1","method":"initialize","params":{}}"#;
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(body) }, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    ex.handle_origin_failed();
    let Step::Reply(r) = ex.poll() else { panic!("no reply") };
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
        body: Some(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
    }
}

#[test]
fn a_new_signature_is_asked_for_once_and_a_good_verdict_is_remembered() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    let Step::VerifySignature(check) = ex.poll() else { panic!("expected a signature request") };
    assert_eq!(check.algorithm(), crate::auth::Algorithm::RS256);
    assert_eq!(check.kid(), Some("rsa-1"));
    let jwk: serde_json::Value = serde_json::from_str(check.public_jwk().unwrap()).unwrap();
    assert_eq!(jwk["kty"], "RSA");
    assert!(jwk.get("d").is_none() && jwk.get("n").is_some());
    let (signed, _) = token.rsplit_once('.').unwrap();
    assert_eq!(check.signing_input(), signed.as_bytes());
    assert_eq!(check.signature().len(), 256);
    assert!(check.verify_in_core().unwrap());
    ex.handle_signature(&mut gw, true);
    assert!(matches!(ex.poll(), Step::Admit(_)));
    // The memo now holds the token: no second signature request.
    assert!(matches!(gw.begin(list_request(&h), ctx()).poll(), Step::Admit(_)));
}

#[test]
fn a_failed_signature_is_a_401_and_is_not_remembered() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    assert!(matches!(ex.poll(), Step::VerifySignature(_)));
    ex.handle_signature(&mut gw, false);
    let Step::Reply(r) = ex.poll() else { panic!("expected a refusal") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("www-authenticate").unwrap().to_str().unwrap().contains("invalid_token"));
    assert!(matches!(gw.begin(list_request(&h), ctx()).poll(), Step::VerifySignature(_)));
}

#[test]
fn a_good_signature_on_an_expired_token_is_still_refused() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000 - 7200, "search:read")).unwrap();
    let h = headers(&token);
    let mut ex = gw.begin(list_request(&h), ctx());
    assert!(matches!(ex.poll(), Step::VerifySignature(_)));
    ex.handle_signature(&mut gw, true);
    let Step::Reply(r) = ex.poll() else { panic!("expected a refusal") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Drives one `hybrid_search` against `tenant` and `cache` as an edge would, the origin
/// answering `answer`; returns whether it was a cache hit.
fn search_through(
    gw: &mut Gateway,
    tenant: &mut TenantState,
    cache: &mut HashMap<String, Vec<u8>>,
    answer: &str,
) -> bool {
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read docs:write")).unwrap();
    let h = headers(&token);
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":"q"}}}"#;
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(body) }, ctx());
    loop {
        match ex.poll() {
            Step::VerifySignature(check) => {
                let ok = check.verify_in_core().unwrap();
                ex.handle_signature(gw, ok);
            }
            Step::Admit(check) => ex.handle_admission(tenant.admit(ctx().now, &check.quota), tenant.generation),
            Step::LookupCache(key) => {
                let stored = cache.get(key.as_str()).cloned();
                ex.handle_cache(stored.as_deref());
            }
            Step::Forward(_) => {
                let mut origin = HeaderMap::new();
                origin.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                ex.handle_origin_head(StatusCode::OK, origin);
            }
            Step::ReadOriginBody => ex.handle_origin_body(answer.as_bytes()),
            Step::StoreCache(entry) => {
                cache.insert(entry.key.as_str().to_owned(), entry.bytes);
            }
            Step::Respond(_) => return false,
            Step::Reply(r) => {
                assert_eq!(r.status, StatusCode::OK);
                return true;
            }
            other => panic!("a search asked for {other:?}"),
        }
    }
}

/// Issue 12, point 7: a write answered as a stream commits after its response head. A read that
/// runs in between misses (the head's bump), reaches the origin before the commit and caches
/// the old answer under the new generation; the bump after the write's body retires it.
#[test]
fn a_read_during_a_streamed_write_is_retired_when_the_write_ends() {
    let mut gw = gateway();
    let mut tenant = TenantState::default();
    let mut cache = HashMap::new();
    let old = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"old"}]}}"#;
    assert!(!search_through(&mut gw, &mut tenant, &mut cache, old));
    assert!(search_through(&mut gw, &mut tenant, &mut cache, old));

    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "docs:write")).unwrap();
    let h = headers(&token);
    let (mut write, writer) = streamed_write(&mut gw, &h, &mut tenant);
    let Step::BumpGeneration(t) = write.poll() else { panic!("no bump at the head") };
    assert_eq!(t, writer);
    tenant.bump_generation();
    let Step::Respond(head) = write.poll() else { panic!("no response") };

    // Before the write commits: a miss that caches the old answer again.
    assert!(!search_through(&mut gw, &mut tenant, &mut cache, old));
    // The write's stream ends (it has committed).
    assert_eq!(head.bump_after_body, Some(writer));
    tenant.bump_generation();
    let new = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"new"}]}}"#;
    assert!(!search_through(&mut gw, &mut tenant, &mut cache, new), "a stale answer was served from the cache");
}

#[test]
fn only_requests_that_repeat_harmlessly_may_go_to_a_second_origin() {
    let mut gw = gateway().last_hop();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read docs:write tasks:run")).unwrap();
    let h = headers(&token);
    let cases: [(&str, &[u8], bool); 9] = [
        ("/mcp", br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, true),
        (
            "/mcp",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hybrid_search","arguments":{}}}"#,
            true,
        ),
        (
            "/mcp",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"upsert_document","arguments":{}}}"#,
            false,
        ),
        // Not cacheable, and it starts a task.
        (
            "/mcp",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"research","arguments":{}}}"#,
            false,
        ),
        ("/mcp", br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, false),
        ("/a2a", br#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{}}}"#, false),
        ("/a2a", br#"{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"x"}}"#, true),
        // Done by a first origin whose answer was lost, a repeat would report a failure.
        ("/a2a", br#"{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","params":{"id":"x"}}"#, false),
        ("/mcp", br#"{"jsonrpc":"2.0","id":1,"method":"tasks/cancel","params":{"taskId":"x"}}"#, false),
    ];
    for (path, body, retryable) in cases {
        let mut ex =
            gw.begin(HttpRequest { method: &Method::POST, path_and_query: path, headers: &h, body: Some(body) }, ctx());
        let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
        ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
        let Step::Forward(fwd) = ex.poll() else { panic!("{path} {}: not forwarded", String::from_utf8_lossy(body)) };
        assert_eq!(fwd.retryable, retryable, "{path} {}", String::from_utf8_lossy(body));
    }
}

/// What the edge answers `body` sent to `path` with `content_type`, once admitted.
fn refused_after_admission(path: &str, content_type: &'static str, body: &[u8]) -> Reply {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "tasks:run")).unwrap();
    let mut h = headers(&token);
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: path, headers: &h, body: Some(body) }, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    let mut tenant = TenantState::default();
    ex.handle_admission(tenant.admit(ctx().now, &check.quota), tenant.generation);
    match ex.poll() {
        Step::Reply(r) => r.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a2a_errors_are_jsonrpc_under_200_and_its_trailing_slash_is_served() {
    // A2A's JSON-RPC binding answers JSON-RPC errors with 200; MCP's transport with 400.
    let r = refused_after_admission("/a2a/", "application/json", b"{not json");
    assert_eq!((r.status, r.jsonrpc_error_code()), (StatusCode::OK, Some(i64::from(code::PARSE_ERROR))));
    let r = refused_after_admission("/mcp", "application/json", b"{not json");
    assert_eq!((r.status, r.jsonrpc_error_code()), (StatusCode::BAD_REQUEST, Some(i64::from(code::PARSE_ERROR))));
    // A2A has its own error for a content type it does not take.
    let r = refused_after_admission("/a2a", "text/plain", b"x");
    assert_eq!((r.status, r.jsonrpc_error_code()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(-32005)));
    let r = refused_after_admission("/mcp", "text/plain", b"x");
    assert_eq!(r.jsonrpc_error_code(), Some(i64::from(code::INVALID_REQUEST)));
}

#[test]
fn every_refusal_body_is_a_jsonrpc_error() {
    let mut gw = gateway();
    let h = HeaderMap::new();
    let Step::Reply(r) = gw
        .begin(HttpRequest { method: &Method::POST, path_and_query: "/nowhere", headers: &h, body: None }, ctx())
        .poll()
    else {
        panic!("served")
    };
    assert_eq!((r.status, r.jsonrpc_error_code()), (StatusCode::NOT_FOUND, Some(i64::from(code::INVALID_REQUEST))));
    let Step::Reply(r) =
        gw.begin(HttpRequest { method: &Method::GET, path_and_query: "/a2a/", headers: &h, body: None }, ctx()).poll()
    else {
        panic!("served")
    };
    assert_eq!(
        (r.status, r.jsonrpc_error_code()),
        (StatusCode::METHOD_NOT_ALLOWED, Some(i64::from(code::INVALID_REQUEST)))
    );
    assert_eq!(r.headers.get(http::header::ALLOW).unwrap(), "POST");
    // An HTTP+JSON route's `Allow` names what that route takes.
    for (path, allow) in [
        ("/a2a/v1/message:send", "POST"),
        ("/a2a/v1/tasks", "GET"),
        ("/a2a/v1/tasks/t:subscribe", "GET, POST"),
        ("/a2a/v1/tasks/t/pushNotificationConfigs/c", "GET, DELETE"),
    ] {
        let Step::Reply(r) =
            gw.begin(HttpRequest { method: &Method::PUT, path_and_query: path, headers: &h, body: None }, ctx()).poll()
        else {
            panic!("served")
        };
        assert_eq!(
            (r.status, r.headers.get(http::header::ALLOW).unwrap().to_str().unwrap()),
            (StatusCode::METHOD_NOT_ALLOWED, allow),
            "{path}"
        );
    }
}

#[test]
fn grpc_is_the_origin_s_alone_and_refused_in_grpc_s_shape() {
    let path = "/lf.a2a.v1.A2AService/GetTask";
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "tasks:run")).unwrap();
    let mut h = headers(&token);
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    let request = |h| HttpRequest { method: &Method::POST, path_and_query: path, headers: h, body: None };
    // An edge serves no gRPC.
    let mut edge = gateway();
    let Step::Reply(r) = edge.begin(request(&h), ctx()).poll() else { panic!("the edge forwarded gRPC") };
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The origin admits a call without reading its (protobuf) body, as the operation its path names.
    let mut gw = gateway().last_hop();
    let mut ex = gw.begin(request(&h), ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    assert_eq!(ex.into_admitted().a2a, Some(crate::catalogue::A2aOperation::GetTask));
    // The method is the path's last segment, whatever query follows it.
    let with_query = HttpRequest {
        method: &Method::POST,
        path_and_query: "/lf.a2a.v1.A2AService/GetTask?x=1",
        headers: &h,
        body: None,
    };
    let mut ex = gw.begin(with_query, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    assert_eq!(ex.into_admitted().a2a, Some(crate::catalogue::A2aOperation::GetTask));

    // Without a token: a trailers-only UNAUTHENTICATED, the challenge kept.
    let mut anonymous = h.clone();
    anonymous.remove(http::header::AUTHORIZATION);
    let Step::Reply(r) = gw.begin(request(&anonymous), ctx()).poll() else { panic!("admitted without a token") };
    assert_eq!((r.status, r.headers["grpc-status"].to_str().unwrap()), (StatusCode::OK, "16"));
    assert!(r.headers.contains_key(http::header::WWW_AUTHENTICATE) && r.body.is_empty());

    // An unknown method is UNIMPLEMENTED; a version other than 1.0 is refused.
    let mut ex = gw.begin(
        HttpRequest { method: &Method::POST, path_and_query: "/lf.a2a.v1.A2AService/Nope", headers: &h, body: None },
        ctx(),
    );
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    let Step::Reply(r) = ex.poll() else { panic!("an unknown method was forwarded") };
    assert_eq!(r.headers["grpc-status"], "12");
    let mut old = h.clone();
    old.insert("a2a-version", HeaderValue::from_static("0.3"));
    let mut ex = gw.begin(request(&old), ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    let Step::Reply(r) = ex.poll() else { panic!("0.3 over gRPC was forwarded") };
    assert_eq!(r.headers["grpc-status"], "12");
}

#[test]
fn an_mcp_request_joins_the_trace_its_meta_names_unless_a_header_names_one() {
    const META: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"hybrid_search","arguments":{{"query":"q"}},"_meta":{{"traceparent":"{META}"}}}}}}"#
    );
    let forwarded = |gw: &mut Gateway, h: &HeaderMap| {
        let req =
            HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: h, body: Some(body.as_bytes()) };
        let mut ex = gw.begin(req, ctx());
        let Step::Admit(check) = past_signature(gw, &mut ex) else { panic!("no admission asked for") };
        ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
        if let Step::LookupCache(_) = ex.poll() {
            ex.handle_cache(None);
        }
        let Step::Forward(fwd) = ex.poll() else { panic!("not forwarded") };
        let sent = TraceParent::parse(fwd.headers["traceparent"].to_str().unwrap()).unwrap();
        let request_id = fwd.headers[header::REQUEST_ID].to_str().unwrap().to_owned();
        (sent, request_id, ex.caller_trace().copied())
    };
    let meta = TraceParent::parse(META).unwrap();
    let (sent, request_id, caller) = forwarded(&mut gw, &headers(&token));
    assert_eq!((sent.trace_id, caller), (meta.trace_id, Some(meta)), "the trace of _meta, under a span of ours");
    assert_ne!(sent.parent_id, meta.parent_id);
    assert_eq!(request_id, sent.trace_id_hex(), "the request id follows the trace it joined");
    // A header wins: behind an edge, its span is the parent, whatever the client put in _meta.
    let edge = TraceParent::parse("00-11111111111111111111111111111111-2222222222222222-01").unwrap();
    let mut h = headers(&token);
    h.insert("traceparent", HeaderValue::from_str(&edge.to_string()).unwrap());
    let (sent, _, caller) = forwarded(&mut gw, &h);
    assert_eq!((sent.trace_id, caller), (edge.trace_id, Some(edge)));
}

fn console_headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::COOKIE, HeaderValue::from_str(&format!("agentplane_session={token}")).unwrap());
    h.insert(crate::auth::console::CONSOLE_HEADER, HeaderValue::from_static("1"));
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

#[test]
fn the_console_s_cookie_authenticates_only_with_its_header_and_passes_the_same_checks() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "search:read")).unwrap();
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"hybrid_search","arguments":{"query":"q"}}}"#;
    let h = console_headers(&token);
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(body) }, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("the cookie was not taken") };
    // The limiter is the tenant's, as for a bearer header.
    ex.handle_admission(over_quota(&check), 0);
    let Step::Reply(r) = ex.poll() else { panic!("over quota, yet forwarded") };
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(check.tenant, ex.principal().unwrap().tenant);

    // The same cookie without the console's header (a cross-site form) is no credential.
    let mut forged = h.clone();
    forged.remove(crate::auth::console::CONSOLE_HEADER);
    let req = HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &forged, body: Some(body) };
    let Step::Reply(r) = gw.begin(req, ctx()).poll() else { panic!("a bare cookie authenticated") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Scopes still apply: a search-only session cannot write.
    let write = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"delete_document","arguments":{"id":"00000000-0000-0000-0000-000000000000"}}}"#;
    let mut ex =
        gw.begin(HttpRequest { method: &Method::POST, path_and_query: "/mcp", headers: &h, body: Some(write) }, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("no admission asked for") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    let Step::Reply(r) = ex.poll() else { panic!("a write passed a read-only session") };
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[test]
fn console_routes_pages_are_public_the_session_is_checked_the_operator_s_is_the_origin_s() {
    let mut gw = gateway();
    let none = HeaderMap::new();
    let get = |path| HttpRequest { method: &Method::GET, path_and_query: path, headers: &none, body: None };
    for path in ["/console", "/console/", "/console/console.js"] {
        assert!(matches!(gw.begin(get(path), ctx()).poll(), Step::Forward(_)), "{path}");
    }
    let Step::Reply(r) = gw.begin(HttpRequest { method: &Method::POST, ..get("/console") }, ctx()).poll() else {
        panic!("a POST to a page was forwarded")
    };
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Who the session is needs the session.
    let Step::Reply(r) = gw.begin(get("/console/session"), ctx()).poll() else { panic!("anonymous whoami") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Signing out needs nothing.
    let delete = HttpRequest { method: &Method::DELETE, ..get("/console/session") };
    assert!(matches!(gw.begin(delete, ctx()).poll(), Step::Forward(_)));
    // The operator's page is not passed on by an edge, and is left to the origin's handler.
    let Step::Reply(r) = gw.begin(get("/console/operator/details"), ctx()).poll() else { panic!("edge forwarded") };
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let mut origin = gateway().last_hop();
    assert!(matches!(origin.begin(get("/console/operator/details"), ctx()).poll(), Step::Forward(_)));

    // Signing in: the pasted token in `Authorization`, checked and limited like any call.
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    let h = headers(&token);
    let post = HttpRequest { method: &Method::POST, path_and_query: "/console/session", headers: &h, body: None };
    let mut ex = gw.begin(post, ctx());
    let Step::Admit(check) = past_signature(&mut gw, &mut ex) else { panic!("sign-in skipped the limiter") };
    ex.handle_admission(TenantState::default().admit(ctx().now, &check.quota), 0);
    assert!(matches!(ex.poll(), Step::Forward(_)));
    let bad = headers("not-a-token");
    let post = HttpRequest { method: &Method::POST, path_and_query: "/console/session", headers: &bad, body: None };
    let Step::Reply(r) = gw.begin(post, ctx()).poll() else { panic!("a bad token signed in") };
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_server_s_own_origin_is_allowed_and_others_are_not() {
    let mut gw = gateway();
    let token = testkit::mint("rsa-1", &testkit::claims(NOW_MS / 1000, "")).unwrap();
    let own = RESOURCE.split('/').take(3).collect::<Vec<_>>().join("/");
    for (origin, allowed) in [(own.as_str(), true), ("https://evil.example", false)] {
        let mut h = headers(&token);
        h.insert(http::header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        let mut ex = gw.begin(list_request(&h), ctx());
        let step = past_signature(&mut gw, &mut ex);
        assert_eq!(!matches!(step, Step::Reply(_)), allowed, "{origin}");
    }
    assert_eq!(own_origin("https://a.example:8443/base/path?q"), Some("https://a.example:8443"));
    assert_eq!(own_origin("http://127.0.0.1:8787"), Some("http://127.0.0.1:8787"));
    assert_eq!(own_origin("not a url"), None);
}
