//! The core's shared test vectors, run inside the component (feature `test-vectors`, never
//! deployed): `GET /__vectors` answers `{"cases": n, "failures": [...]}`, with status 200 only
//! when every vector passed, so a test script needs nothing but the status.

use spin_sdk::http::{BoxBody, Response};

use crate::json_response;

pub(crate) const PATH: &str = "/__vectors";

pub(crate) fn serve() -> Response<BoxBody> {
    let (cases, failures) = agentplane_core::testkit::vectors::run_builtin();
    let status =
        if failures.is_empty() && cases > 0 { http::StatusCode::OK } else { http::StatusCode::INTERNAL_SERVER_ERROR };
    json_response(status, &serde_json::json!({ "cases": cases, "failures": failures }))
}
