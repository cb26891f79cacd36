//! The core's shared test vectors, run inside workerd (feature `test-vectors`, never deployed):
//! `GET /__vectors` answers `{"cases": n, "failures": [...]}`, with status 200 only when every
//! vector passed, so a test script needs nothing but the status.
//!
//! Besides the core's vectors it checks the WebCrypto path against the core's own verifier: a
//! good token of each test key (RS256, ES256, EdDSA) must pass, and the same signature over a
//! changed payload must fail.

use agentplane_core::auth::{KeySet, Verifier, VerifierConfig};
use agentplane_core::testkit::{self, AUDIENCE, ISSUER, KEYS};
use worker::{Headers, Response};

use crate::webcrypto;

pub(crate) const PATH: &str = "/__vectors";

pub(crate) async fn serve() -> worker::Result<Response> {
    let (mut cases, mut failures) = agentplane_core::testkit::vectors::run_builtin();
    let (webcrypto_cases, webcrypto_failures) = webcrypto_cases().await;
    cases += webcrypto_cases;
    failures.extend(webcrypto_failures);
    let status = if failures.is_empty() && cases > 0 { 200 } else { 500 };
    let body = serde_json::json!({ "cases": cases, "failures": failures });
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::builder().with_status(status).with_headers(headers).fixed(body.to_string().into_bytes()))
}

async fn webcrypto_cases() -> (usize, Vec<String>) {
    let verifier = match testkit::jwks()
        .map_err(|e| e.to_string())
        .and_then(|jwks| KeySet::from_jwks(&jwks).map_err(|e| e.to_string()))
        .and_then(|keys| Verifier::new(VerifierConfig::new(ISSUER, AUDIENCE), keys).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return (1, vec![format!("webcrypto: test verifier: {e}")]),
    };
    let mut cases = 0;
    let mut failures = Vec::new();
    for (kid, alg, _) in KEYS {
        let good = testkit::mint(kid, &testkit::claims(1_767_225_600, "search:read"));
        let other = testkit::mint(kid, &testkit::claims(1_767_225_601, "docs:write"));
        let (Ok(good), Ok(other)) = (good, other) else {
            failures.push(format!("webcrypto {alg:?}: cannot mint"));
            continue;
        };
        // The good token's signature on the other token's header and payload.
        let forged = match (good.rsplit_once('.'), other.rsplit_once('.')) {
            (Some((_, sig)), Some((signed, _))) => format!("{signed}.{sig}"),
            _ => String::new(),
        };
        for (token, expected, what) in [(good, true, "good token"), (forged, false, "forged payload")] {
            cases += 1;
            let outcome = match verifier.prepare(&token) {
                Ok(check) => webcrypto::verify(&check).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if outcome != Ok(expected) {
                failures.push(format!("webcrypto {alg:?} {what}: expected {expected}, got {outcome:?}"));
            }
        }
    }
    (cases, failures)
}
