//! The Cloudflare Workers edge of agentplane: a drive loop over `agentplane-core`.
//!
//! Per request (`proxy.rs`): convert the `fetch` event into the core's `HttpRequest`, then answer
//! each `Step` of the core's `Exchange`: a new token's signature through WebCrypto, admission and
//! the data generation through the tenant's Durable Object, cache lookups and stores through the
//! Cache API, the origin through `fetch` with the body streamed back. Every decision is the
//! core's; this crate only moves bytes between it and the Workers APIs.
//!
//! Everything is compiled for `wasm32` only: natively this crate is empty, so the workspace's
//! native build and clippy do not compile the Workers SDK (see `scripts/test` for the wasm32
//! lint of this crate).
//!
//! Deployed by the root `wrangler.toml`: built through `scripts/build-edge-cloudflare`, the
//! `TENANTS` Durable Object binding, the settings as `AGENTPLANE_*` vars (`isolate.rs`).
#![cfg(target_arch = "wasm32")]

#[cfg(feature = "test-vectors")]
mod bench;
mod cache;
mod convert;
mod isolate;
mod proxy;
mod tenant;
#[cfg(feature = "test-vectors")]
mod vectors;
mod webcrypto;

pub use tenant::TenantObject;

use worker::{Context, Env, Request, Response, console_error, event};

/// The Worker's only entry point. Errors that escape the drive loop are bugs or platform
/// failures: they are logged and answered with an opaque JSON-RPC internal error, never with
/// their text.
#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    #[cfg(feature = "test-vectors")]
    if req.path() == vectors::PATH {
        return vectors::serve().await;
    }
    #[cfg(feature = "test-vectors")]
    if req.path() == bench::PATH {
        return bench::serve(&req).await;
    }
    match proxy::handle(req, &env, &ctx).await {
        Ok(response) => Ok(response),
        Err(e) => {
            console_error!("agentplane edge: {e}");
            convert::internal_error()
        }
    }
}
