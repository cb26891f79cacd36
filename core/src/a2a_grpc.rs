//! A2A's gRPC binding (service `lf.a2a.v1.A2AService` of the official `a2a.proto`), at the origin
//! only: the edges' runtimes pass no HTTP/2 trailers, so they answer its paths with 404 and the
//! card names the origin for it. A call's body is protobuf, which the core does not read: the
//! path names the operation (its 1.0 method name), so the gateway authenticates, limits and
//! scopes it like any other call, and the origin checks its parameters. Refusals are gRPC's
//! trailers-only responses: HTTP 200, `grpc-status` and a percent-encoded `grpc-message`.

use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::gateway::Reply;
use crate::jsonrpc::{Message, Request};

/// The path prefix of the service's methods.
pub const PREFIX: &str = "/lf.a2a.v1.A2AService/";

/// Whether `path` is one of the service's.
pub fn is_grpc_path(path: &str) -> bool {
    path.strip_prefix(PREFIX).is_some_and(|m| !m.is_empty() && !m.contains('/'))
}

/// Whether a `Content-Type` is gRPC's (`application/grpc`, `application/grpc+proto`).
pub fn is_grpc_content_type(ct: &str) -> bool {
    ct.split(';').next().is_some_and(|m| {
        let m = m.trim();
        m.eq_ignore_ascii_case("application/grpc") || m.to_ascii_lowercase().starts_with("application/grpc+")
    })
}

/// The call a gRPC request stands for: the method its path names, parameters left to the origin.
pub fn request(path: &str) -> Message {
    let method = path.strip_prefix(PREFIX).unwrap_or_default().to_owned();
    Message::Request(Request { id: crate::a2a_rest::call_id(), method, params: None })
}

/// The gRPC status code of an A2A error code sent under `status` (A2A 1.0 section 5.4).
pub fn status_code(code: i32, status: StatusCode) -> u8 {
    if code == crate::jsonrpc::code::METHOD_NOT_FOUND {
        return 12;
    }
    match crate::a2a_rest::grpc_status(code, crate::a2a_rest::status_of_error(code, status)) {
        "INVALID_ARGUMENT" => 3,
        "NOT_FOUND" => 5,
        "PERMISSION_DENIED" => 7,
        "RESOURCE_EXHAUSTED" => 8,
        "FAILED_PRECONDITION" => 9,
        "ABORTED" => 10,
        "UNIMPLEMENTED" => 12,
        "UNAVAILABLE" => 14,
        "UNAUTHENTICATED" => 16,
        _ => 13,
    }
}

/// Bytes `grpc-message` carries percent-encoded: controls, `%` and everything past ASCII.
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// A reply made for a JSON-RPC call as gRPC's trailers-only response; the challenge and
/// `Retry-After` headers stay.
pub fn reply(r: Reply) -> Reply {
    let (code, message) = match crate::jsonrpc::outcome_of(&r.body) {
        Some(Err(e)) => (status_code(e.code, r.status), e.message),
        // A successful answer made by the gateway (none today) has nothing to say in gRPC.
        Some(Ok(_)) | None => (13, "internal error: no gRPC answer".to_owned()),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &r.headers {
        if name != http::header::CONTENT_TYPE {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(v) = HeaderValue::from_str(&utf8_percent_encode(&message, MESSAGE_ESCAPES).to_string()) {
        headers.insert("grpc-message", v);
    }
    Reply { status: StatusCode::OK, headers, body: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::ErrorObject;

    #[test]
    fn paths_and_codes() {
        assert!(is_grpc_path("/lf.a2a.v1.A2AService/GetTask"));
        assert!(!is_grpc_path("/lf.a2a.v1.A2AService/") && !is_grpc_path("/lf.a2a.v1.A2AService/a/b"));
        assert!(is_grpc_content_type("application/grpc") && is_grpc_content_type("application/grpc+proto"));
        assert!(!is_grpc_content_type("application/json"));
        assert_eq!(status_code(-32001, StatusCode::OK), 5);
        assert_eq!(status_code(-32010, StatusCode::UNAUTHORIZED), 16);
        assert_eq!(status_code(-32012, StatusCode::TOO_MANY_REQUESTS), 8);
        assert_eq!(status_code(-32601, StatusCode::OK), 12);
        assert_eq!(status_code(-32602, StatusCode::OK), 3);
    }

    #[test]
    fn refusals_are_trailers_only() {
        let body = crate::jsonrpc::error_bytes(None, &ErrorObject::new(-32010, "Unauthorized: 100% missing"));
        let mut headers = HeaderMap::new();
        headers.insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        let r = reply(Reply { status: StatusCode::UNAUTHORIZED, headers, body });
        assert_eq!((r.status, r.body.len()), (StatusCode::OK, 0));
        assert_eq!(r.headers["grpc-status"], "16");
        assert_eq!(r.headers["grpc-message"], "Unauthorized: 100%25 missing");
        assert_eq!(r.headers["content-type"], "application/grpc");
        assert!(r.headers.contains_key("www-authenticate"));
    }
}
