//! The agentplane origin: MCP over Streamable HTTP at `/mcp`, A2A at `/a2a`, backed by PostgreSQL with row-level
//! security, hybrid search, and the CLI around it. See ARCHITECTURE.md for the map.
//!
//! One folder per layer: `app` (the process: configuration, keys, the gate, the router, metrics),
//! `protocol` (MCP and A2A), `data` (PostgreSQL, documents, search, ingest), `models` (embedding
//! and chat providers and what they cost), `cli` (the subcommands), and `dev` (benchmark and
//! conformance tooling, only with the `dev-tools` feature).

pub mod app;
pub mod cli;
pub mod data;
#[cfg(feature = "dev-tools")]
pub mod dev;
pub mod models;
pub mod protocol;
