//! Any bytes through the JSON-RPC parser and the router: an error or a route, never a panic, and
//! whatever parses serialises and parses back to the same message.
#![no_main]

use agentplane_core::catalogue::{self, A2aVersion, Dialect, McpRevision, ToolPolicies};
use agentplane_core::jsonrpc::{self, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_body_bytes: 64 * 1024, max_depth: 32 };
    let Ok(message) = jsonrpc::parse(data, &limits) else { return };
    let again = jsonrpc::parse(&message.to_vec(), &Limits { max_body_bytes: usize::MAX, max_depth: 64 });
    assert_eq!(again.as_ref().ok(), Some(&message), "round trip changed the message");
    let tools = ToolPolicies::default();
    for dialect in [
        Dialect::Mcp(None),
        Dialect::Mcp(Some(McpRevision::V2026_07_28)),
        Dialect::A2a(A2aVersion::V0_3),
        Dialect::A2a(A2aVersion::V1_0),
    ] {
        let _ = catalogue::route(&message, dialect, &tools);
    }
});
