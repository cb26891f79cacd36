//! Development and benchmark tooling, compiled only with the `dev-tools` feature (never into a
//! production server): search-quality evaluation on BEIR collections, the client side of a
//! stateless MCP call (for `agentplane load` and the tests), and the MCP conformance suite's
//! fixtures with the principal its token-less requests act as, and the A2A compatibility kit's.

pub mod a2a_tck;
pub mod beir;
pub mod client;
pub mod conformance;
pub mod eval;
pub mod fixtures;
