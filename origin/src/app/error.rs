//! `AppError`: every error response the origin builds itself, in one place. Handlers return
//! `Result<_, AppError>` and use `?`; the status and body of each kind of failure are decided here.
//!
//! The replies the core makes for the gate (refusals, challenges, rate limits) pass through
//! [`AppError::Core`] exactly as the core built them. Not here: rmcp's MCP errors, and A2A errors
//! inside an open SSE stream.

use agentplane_core::gateway::Reply;
use agentplane_core::jsonrpc::{self, ErrorObject, Id, ParseError, code};
use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Value, json};

#[derive(Debug)]
pub enum AppError {
    /// A reply the core built for the gate: a refusal, a challenge, a 429, or the 413 of
    /// `Gateway::payload_too_large` for a body the gate stopped reading. Sent as it is.
    Core(Reply),
    /// An MCP session id the token's tenant and subject did not open: 404 with the JSON-RPC error
    /// of an unknown session, so another tenant's session id reveals nothing.
    SessionNotFound,
    /// A JSON-RPC error: under 200 when it answers a call, under the transport's status (400, 413)
    /// when the body was no request.
    Rpc { status: StatusCode, id: Option<Id>, error: ErrorObject },
    /// Something this server does not have: 404, `{"error": ...}`.
    NotFound(&'static str),
    /// Not ready to serve: 503 with the readiness document.
    Unavailable(Value),
    /// An operator endpoint without the operator's credential: 401 with a Bearer challenge.
    OperatorUnauthorized,
    /// Not now, later: a per-tenant cap is reached (429) or the database does not answer (503).
    /// The status, `Retry-After`, and the error answering the call.
    RetryLater { status: StatusCode, id: Option<Id>, error: ErrorObject, retry_after_secs: u64 },
    /// A failure the caller may not see the cause of: 500, no body.
    Internal,
}

impl AppError {
    /// The error `error` answering a call (`id`), under HTTP 200 as JSON-RPC requires.
    pub fn rpc(id: Option<&Id>, error: ErrorObject) -> Self {
        AppError::Rpc { status: StatusCode::OK, id: id.cloned(), error }
    }
}

/// A body that is no JSON-RPC request gets the status the parser names (400, or 413 past its limit).
impl From<ParseError> for AppError {
    fn from(e: ParseError) -> Self {
        AppError::Rpc { status: e.http_status(), error: e.to_error_object(), id: e.id }
    }
}

fn rpc_response(status: StatusCode, id: Option<&Id>, error: &ErrorObject) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], jsonrpc::error_bytes(id, error)).into_response()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Core(reply) => {
                let mut response = Response::new(Body::from(reply.body));
                *response.status_mut() = reply.status;
                *response.headers_mut() = reply.headers;
                response
            }
            AppError::SessionNotFound => {
                rpc_response(StatusCode::NOT_FOUND, None, &ErrorObject::new(code::INVALID_REQUEST, "Session not found"))
            }
            AppError::Rpc { status, id, error } => rpc_response(status, id.as_ref(), &error),
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, Json(json!({ "error": message }))).into_response(),
            AppError::Unavailable(document) => (StatusCode::SERVICE_UNAVAILABLE, Json(document)).into_response(),
            AppError::OperatorUnauthorized => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Bearer realm="agentplane-operator""#)],
                Json(json!({ "error": "this endpoint needs the operator token" })),
            )
                .into_response(),
            AppError::RetryLater { status, id, error, retry_after_secs } => {
                let mut r = rpc_response(status, id.as_ref(), &error);
                r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_secs));
                r
            }
            AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(e: AppError) -> (StatusCode, Option<String>, Value) {
        let response = e.into_response();
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn each_kind_keeps_its_status_and_body() {
        let (status, ct, body) = parts(AppError::SessionNotFound).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(
            body,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Session not found"}})
        );

        let id = Id::from(7);
        let (status, _, body) = parts(AppError::rpc(Some(&id), ErrorObject::method_not_found("nope"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], 7);
        assert_eq!(body["error"]["code"], -32601);

        let parse = jsonrpc::parse(b"{", &jsonrpc::Limits::default()).unwrap_err();
        let (status, _, body) = parts(parse.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], -32700);

        let (status, ct, body) = parts(AppError::NotFound("this server publishes no keys")).await;
        assert_eq!((status, ct.as_deref()), (StatusCode::NOT_FOUND, Some("application/json")));
        assert_eq!(body, json!({"error": "this server publishes no keys"}));

        let (status, _, body) = parts(AppError::Unavailable(json!({"status": "migrating"}))).await;
        assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "migrating"})));

        assert_eq!(parts(AppError::Internal).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
