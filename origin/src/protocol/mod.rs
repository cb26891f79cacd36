//! The protocols the origin serves behind the gate: MCP (rmcp's Streamable HTTP) and A2A.

pub mod a2a;
pub mod mcp;
