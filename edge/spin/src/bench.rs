//! `GET /__bench?tokens=hit|rs256|es256|eddsa&n=N` (feature `test-vectors`, never deployed): runs
//! the core's per-request work `n` times in this instance (`testkit::workload`) and answers how
//! many requests were forwarded and the time the loop took on the host's monotonic clock. With
//! `rs256`, `es256` or `eddsa` every request's token is verified again by the core, as a fresh
//! instance without a remembered verdict would.

use agentplane_core::testkit::workload::{Tokens, Workload};
use spin_sdk::http::{BoxBody, Response};

use crate::json_response;

pub(crate) const PATH: &str = "/__bench";

/// At most this many iterations per request.
const MAX_N: u32 = 100_000;

pub(crate) fn serve(uri: &http::Uri) -> Response<BoxBody> {
    let bad = |msg: String| json_response(http::StatusCode::BAD_REQUEST, &serde_json::json!({ "error": msg }));
    let param = |name: &str| {
        uri.query()?.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
    };
    let Some(tokens) = Tokens::parse(param("tokens").as_deref().unwrap_or("hit")) else {
        return bad("tokens must be hit, rs256, es256 or eddsa".into());
    };
    let n = match param("n").map(|n| n.parse::<u32>()) {
        None => 1000,
        Some(Ok(n)) if n <= MAX_N => n,
        Some(_) => return bad(format!("n must be an integer up to {MAX_N}")),
    };
    let mut workload = match Workload::new(tokens) {
        Ok(w) => w,
        Err(e) => {
            return json_response(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({ "error": e.to_string() }),
            );
        }
    };
    let clock = spin_sdk::wasip3::clocks::monotonic_clock::now;
    let start = clock();
    let forwarded = workload.run(n);
    let elapsed_ns = clock().saturating_sub(start);
    json_response(
        http::StatusCode::OK,
        &serde_json::json!({ "n": n, "forwarded": forwarded, "elapsed_ns": elapsed_ns }),
    )
}
