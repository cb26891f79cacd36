//! Development and benchmark tooling: search-quality evaluation on BEIR collections, the client
//! side of a stateless MCP call (for `agentplane load` and the tests), and the MCP conformance
//! suite's fixtures.

pub mod beir;
pub mod client;
pub mod eval;
pub mod fixtures;
