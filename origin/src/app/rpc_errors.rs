//! Every refusal of `/mcp` and `/a2a` is a JSON-RPC error object, whoever wrote it: rmcp answers
//! some requests it cannot take (a missing `Accept`, a missing session id) in plain text, and a
//! client reads errors in one shape only. The status stays; a body that is not JSON becomes the
//! error's message, with the request's id when the gate parsed one.

use agentplane_core::gateway::Admitted;
use agentplane_core::jsonrpc::{self, ErrorObject, code};
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, header};

/// The most of a plain-text refusal carried into the message.
const MAX_MESSAGE_BYTES: usize = 4096;

pub async fn as_jsonrpc(request: Request, next: Next) -> Response {
    let id = match request.extensions().get::<Admitted>().and_then(|a| a.message.as_ref()) {
        Some(message) => message.id().cloned(),
        None => None,
    };
    let rest = agentplane_core::a2a_rest::is_rest_path(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (mut head, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("Error").to_owned() } else { text };
    let code = if status.is_server_error() { code::INTERNAL_ERROR } else { code::INVALID_REQUEST };
    let error = ErrorObject::new(code, message);
    let body = if rest {
        let (status, body) = agentplane_core::a2a_rest::error_reply(status, &error);
        head.status = status;
        body
    } else {
        jsonrpc::error_bytes(id.as_ref(), &error)
    };
    head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(body))
}
