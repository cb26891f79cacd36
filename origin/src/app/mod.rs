//! The process: configuration, token keys, the gate every request passes, the router, metrics and
//! logs, and assembling them into a server.

pub mod config;
mod console;
mod error;
pub mod gate;
pub mod health;
pub mod http;
pub mod keys;
pub mod local_key;
pub mod metrics;
mod rpc_errors;
pub mod runtime;
pub mod server;
pub mod streams;
pub mod telemetry;

pub use error::AppError;
pub use http::AppState;
