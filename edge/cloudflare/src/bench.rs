//! `GET /__bench?tokens=hit|rs256|es256|eddsa&signatures=core|webcrypto&n=N` (feature
//! `test-vectors`, never deployed): runs the core's per-request work `n` times in this isolate
//! (`testkit::workload`) and answers how many requests were forwarded. With `rs256`, `es256` or
//! `eddsa` every request's token is verified again, by the core or through WebCrypto as the
//! Worker does in production. workerd stops `Date.now()` and `performance.now()` while code runs,
//! so the time is taken from outside: `bench/edge.py` times `n = N` against `n = 0`.

use agentplane_core::testkit::workload::{Tokens, Workload};
use worker::{Request, Response};

use crate::isolate::EdgeError;
use crate::webcrypto;

pub(crate) const PATH: &str = "/__bench";

/// At most this many iterations per request, so one request stays well inside workerd's limits.
const MAX_N: u32 = 100_000;

pub(crate) async fn serve(req: &Request) -> worker::Result<Response> {
    let url = req.url()?;
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let Some(tokens) = Tokens::parse(param("tokens").as_deref().unwrap_or("hit")) else {
        return Response::error("tokens must be hit, rs256, es256 or eddsa", 400);
    };
    let webcrypto = match param("signatures").as_deref() {
        None | Some("core") => false,
        Some("webcrypto") => true,
        Some(_) => return Response::error("signatures must be core or webcrypto", 400),
    };
    let n = match param("n").map(|n| n.parse::<u32>()) {
        None => 1000,
        Some(Ok(n)) if n <= MAX_N => n,
        Some(_) => return Response::error(format!("n must be an integer up to {MAX_N}"), 400),
    };
    let mut workload = match Workload::new(tokens) {
        Ok(w) => w,
        Err(e) => return Response::error(format!("workload: {e}"), 500),
    };
    let forwarded = if webcrypto {
        match run_with_webcrypto(&mut workload, n).await {
            Ok(f) => f,
            Err(e) => return Response::error(format!("webcrypto: {e}"), 500),
        }
    } else {
        workload.run(n)
    };
    Response::from_json(&serde_json::json!({ "n": n, "forwarded": forwarded }))
}

async fn run_with_webcrypto(workload: &mut Workload, n: u32) -> Result<u32, EdgeError> {
    let mut forwarded = 0;
    // One warm-up request first, as `Workload::run` does: it imports the key.
    for i in 0..=n {
        let mut run = workload.begin();
        let ok = match run.signature() {
            Some(check) => webcrypto::verify(check).await?,
            None => false,
        };
        if run.finish(ok) && i > 0 {
            forwarded += 1;
        }
    }
    Ok(forwarded)
}
