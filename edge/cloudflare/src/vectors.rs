//! The core's shared test vectors, run inside workerd (feature `test-vectors`, never deployed):
//! `GET /__vectors` answers `{"cases": n, "failures": [...]}`, with status 200 only when every
//! vector passed, so a test script needs nothing but the status.

use worker::{Headers, Response};

pub(crate) const PATH: &str = "/__vectors";

pub(crate) fn serve() -> worker::Result<Response> {
    let (cases, failures) = agentplane_core::testkit::vectors::run_builtin();
    let status = if failures.is_empty() && cases > 0 { 200 } else { 500 };
    let body = serde_json::json!({ "cases": cases, "failures": failures });
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    Ok(Response::builder().with_status(status).with_headers(headers).fixed(body.to_string().into_bytes()))
}
