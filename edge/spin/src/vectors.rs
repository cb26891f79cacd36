//! Test endpoints (feature `test-vectors`, never deployed).
//!
//! `GET /__vectors` runs the core's shared test vectors inside the component and answers
//! `{"cases": n, "failures": [...]}`, with status 200 only when every vector passed, so a test
//! script needs nothing but the status.
//!
//! `GET /__token-memo` with a bearer token answers `{"remembered": bool}`: whether a good verdict
//! on the token's signature is in key-value, so a runtime test can see the memo work across
//! instances.
//!
//! `GET /__cache-count` answers `{"stored": n, "expired": m}`: the cache entries in key-value and
//! how many of them are past their TTL, so a runtime test can see expired entries swept.

use agentplane_core::auth::bearer_token;
use spin_sdk::http::{BoxBody, Request, Response};

use crate::store::Kv;
use crate::{EdgeError, instance, json_response};

pub(crate) const PATH: &str = "/__vectors";
pub(crate) const TOKEN_MEMO_PATH: &str = "/__token-memo";
pub(crate) const CACHE_COUNT_PATH: &str = "/__cache-count";

pub(crate) async fn serve_cache_count() -> Result<Response<BoxBody>, EdgeError> {
    let (stored, expired) = Kv::default().count_cached(crate::now()).await?;
    Ok(json_response(http::StatusCode::OK, &serde_json::json!({ "stored": stored, "expired": expired })))
}

pub(crate) async fn serve_token_memo(req: &Request) -> Result<Response<BoxBody>, EdgeError> {
    let now = crate::now();
    let mut kv = Kv::default();
    instance::ensure(now, &mut kv).await?;
    let header = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let check = match bearer_token(header) {
        Ok(token) => instance::with_gateway(|g| g.verifier().prepare(token).map_err(|e| e.to_string()))?,
        Err(e) => Err(e.to_string()),
    };
    let fingerprint = match check {
        Ok(check) => check.fingerprint(),
        Err(e) => return Ok(json_response(http::StatusCode::BAD_REQUEST, &serde_json::json!({ "error": e }))),
    };
    let remembered = match fingerprint {
        Some(f) => kv.signature_known(&f, now).await,
        None => false,
    };
    Ok(json_response(http::StatusCode::OK, &serde_json::json!({ "remembered": remembered })))
}

pub(crate) fn serve() -> Response<BoxBody> {
    let (cases, failures) = agentplane_core::testkit::vectors::run_builtin();
    let status =
        if failures.is_empty() && cases > 0 { http::StatusCode::OK } else { http::StatusCode::INTERNAL_SERVER_ERROR };
    json_response(status, &serde_json::json!({ "cases": cases, "failures": failures }))
}
