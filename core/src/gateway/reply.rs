//! Replies the gateway makes itself: errors, challenges, `ping`, metadata, cache hits.

use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use super::header;
use crate::auth::AuthError;
use crate::jsonrpc::{self, ErrorObject, Id, code};
use crate::ratelimit::RateDecision;

/// A complete HTTP response for the adapter to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The JSON-RPC error code in the body, if the body is a JSON-RPC error.
    pub fn jsonrpc_error_code(&self) -> Option<i64> {
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        v.get("error")?.get("code")?.as_i64()
    }
}

pub(crate) fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    // Every value set here is built from checked ASCII; one that is not is dropped, never a panic.
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

pub(crate) fn set_rate_headers(headers: &mut HeaderMap, d: &RateDecision) {
    set(headers, header::RATELIMIT_LIMIT, &d.limit.to_string());
    set(headers, header::RATELIMIT_REMAINING, &d.remaining.to_string());
    set(headers, header::RATELIMIT_RESET, &d.reset_after_secs().to_string());
}

pub(crate) struct ReplyBuilder<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) metadata_url: &'a str,
}

impl ReplyBuilder<'_> {
    pub(crate) fn json_body(&self, status: StatusCode, body: Vec<u8>) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        set(&mut headers, header::REQUEST_ID, self.request_id);
        Reply { status, headers, body }
    }

    pub(crate) fn jsonrpc_error(&self, status: StatusCode, id: Option<&Id>, error: &ErrorObject) -> Reply {
        self.json_body(status, jsonrpc::error_bytes(id, error))
    }

    pub(crate) fn result(&self, id: &Id, result: &Value) -> Reply {
        self.json_body(StatusCode::OK, jsonrpc::success_bytes(id, result))
    }

    pub(crate) fn auth(&self, error: &AuthError, id: Option<&Id>) -> Reply {
        let mut r = self.jsonrpc_error(error.status(), id, &error.to_error_object());
        if error.status() != StatusCode::BAD_REQUEST
            && let Ok(v) = HeaderValue::from_str(&error.challenge(self.metadata_url))
        {
            r.headers.insert(WWW_AUTHENTICATE, v);
        }
        r
    }

    pub(crate) fn rate_limited(&self, id: Option<&Id>, decision: &RateDecision) -> Reply {
        let error = ErrorObject::new(code::RATE_LIMITED, "Rate limit exceeded")
            .with_data(serde_json::json!({ "retryAfterMs": decision.retry_after_millis() }));
        let mut r = self.jsonrpc_error(StatusCode::TOO_MANY_REQUESTS, id, &error);
        r.headers.insert(RETRY_AFTER, HeaderValue::from(decision.retry_after_secs()));
        set_rate_headers(&mut r.headers, decision);
        r
    }

    /// The 413 for a body longer than `max_bytes`.
    pub(crate) fn payload_too_large(&self, max_bytes: usize) -> Reply {
        let e = ErrorObject::new(code::INVALID_REQUEST, format!("Invalid Request: body exceeds {max_bytes} bytes"));
        self.jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, None, &e)
    }

    /// A path nothing is served at. Like every refusal, a JSON-RPC error object: a client that
    /// got the URL wrong reads why in the shape it reads every other error.
    pub(crate) fn not_found(&self, path: &str) -> Reply {
        let shown: String = path.chars().take(128).collect();
        let e = ErrorObject::new(
            code::INVALID_REQUEST,
            format!("Not found: nothing is served at {shown:?}; MCP is at /mcp, A2A at /a2a"),
        );
        self.jsonrpc_error(StatusCode::NOT_FOUND, None, &e)
    }

    pub(crate) fn method_not_allowed(&self, allow: &str) -> Reply {
        let e = ErrorObject::new(code::INVALID_REQUEST, format!("Method not allowed here; allowed: {allow}"));
        let mut r = self.jsonrpc_error(StatusCode::METHOD_NOT_ALLOWED, None, &e);
        if let Ok(v) = HeaderValue::from_str(allow) {
            r.headers.insert(ALLOW, v);
        }
        r
    }

    pub(crate) fn metadata(&self, doc: &Value) -> Reply {
        let mut r = self.json_body(StatusCode::OK, serde_json::to_vec(doc).unwrap_or_default());
        r.headers.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
        r
    }
}
