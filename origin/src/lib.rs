//! The agentplane origin: MCP over Streamable HTTP at `/mcp`, A2A at `/a2a`, backed by PostgreSQL with row-level
//! security, hybrid search, and the CLI around it. See ARCHITECTURE.md for the map.

pub mod a2a;
pub mod beir;
pub mod breaker;
pub mod budget;
pub mod chat;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod devkeys;
pub mod docs;
pub mod embed;
pub mod eval;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod mcp;
pub mod metrics;
pub mod runtime;
pub mod search;
pub mod server;
pub mod telemetry;
pub mod usage;
