//! Conversions between the Workers types and the `http` types the core speaks.

use agentplane_core::gateway::Reply;
use agentplane_core::jsonrpc::{self, ErrorObject, code};
use http::{HeaderMap, HeaderName, HeaderValue};
use worker::{Headers, Response};

/// A JS `Headers` as a `HeaderMap`. A name or value `http` cannot represent is left out: the
/// core then sees the request as if the header were absent, which refuses rather than admits
/// (a missing `Authorization` is a 401).
pub(crate) fn header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            map.append(n, v);
        }
    }
    map
}

/// A `HeaderMap` as JS `Headers`. Values that are not visible ASCII cannot have come from a JS
/// string round trip and are skipped.
pub(crate) fn headers(map: &HeaderMap) -> worker::Result<Headers> {
    let out = Headers::new();
    for (name, value) in map {
        if let Ok(v) = value.to_str() {
            out.append(name.as_str(), v)?;
        }
    }
    Ok(out)
}

/// A reply the core made, as a Worker response.
pub(crate) fn reply(r: Reply) -> worker::Result<Response> {
    Ok(Response::builder().with_status(r.status.as_u16()).with_headers(headers(&r.headers)?).fixed(r.body))
}

/// The opaque 500 for failures of the edge itself (configuration, platform errors). Details go to
/// the log only.
pub(crate) fn internal_error() -> worker::Result<Response> {
    let body = jsonrpc::error_bytes(None, &ErrorObject::new(code::INTERNAL_ERROR, "Internal error at the edge"));
    let h = Headers::new();
    h.set("content-type", "application/json")?;
    Ok(Response::builder().with_status(500).with_headers(h).fixed(body))
}
