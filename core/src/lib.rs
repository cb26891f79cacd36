//! The sans-IO core of agentplane.
//!
//! Everything here is a pure function of its inputs: bytes, headers, the current time and caller
//! entropy go in; decisions come out. No sockets, no clock, no randomness, no globals. That is what
//! lets one crate run unchanged in a Cloudflare Worker (`wasm32-unknown-unknown`), a Spin component
//! (`wasm32-wasip2`) and the native origin.
//!
//! - [`jsonrpc`]: one JSON-RPC 2.0 message in, under size and depth limits; errors out.
//! - [`catalogue`]: every MCP and A2A method and its route; [`a2a_rest`]: A2A's HTTP+JSON
//!   binding as the JSON-RPC calls it stands for; [`a2a_grpc`]: its gRPC binding's paths and
//!   refusals (origin only).
//! - [`auth`]: JWT verification, the verified-token memo, `WWW-Authenticate` challenges.
//! - [`ratelimit`]: GCRA over caller-held state.
//! - [`cache`]: what may be cached, for how long, under which tenant-scoped key.
//! - [`trace`]: request ids and W3C `traceparent`.
//! - [`time`]: [`Timestamp`], time as a value the caller hands in.
//! - [`gateway`]: the pipeline tying these together.
//! - `testkit` (feature `test-vectors`): test keys, token minting, the shared vectors' runner.

pub mod a2a_grpc;
pub mod a2a_rest;
pub mod auth;
pub mod cache;
pub mod catalogue;
mod digest;
pub mod gateway;
pub mod jsonrpc;
pub mod otlp;
pub mod ratelimit;
#[cfg(feature = "test-vectors")]
pub mod testkit;
pub mod time;
pub mod trace;

#[cfg(test)]
mod testing;

pub use gateway::{Exchange, Gateway, GatewayConfig, HttpRequest, RequestContext, Step, TenantState};
pub use time::Timestamp;
