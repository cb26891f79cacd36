//! The client side of one stateless MCP 2026-07-28 call over Streamable HTTP, for the load
//! generator and the black-box tests: the headers and `_meta` that revision requires, and reading
//! the JSON-RPC response from either a JSON body or an SSE stream.

use base64::Engine as _;
use serde_json::{Value, json};

pub const PROTOCOL_VERSION: &str = "2026-07-28";

/// A POST of `method` with `params`, carrying the protocol version in `_meta` and the
/// `Mcp-Method`/`Mcp-Name` headers (`Mcp-Name` in base64 form when the name is not plain ASCII).
pub fn request(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    id: i64,
    method: &str,
    mut params: Value,
) -> reqwest::RequestBuilder {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let name = agentplane_core::catalogue::mcp_name_param(method, Some(&params)).map(|n| {
        if n.bytes().all(|b| (0x20..0x7f).contains(&b)) && n.trim() == n {
            n.to_owned()
        } else {
            format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(n))
        }
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut req = http
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", PROTOCOL_VERSION)
        .header("Mcp-Method", method)
        .json(&body);
    if let Some(n) = name {
        req = req.header("Mcp-Name", n);
    }
    req
}

/// The JSON-RPC response in a body: the JSON itself, or the first response on an SSE stream.
pub fn response_in(content_type: Option<&str>, body: &str) -> Option<Value> {
    if content_type.is_some_and(|c| c.starts_with("text/event-stream")) {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some()))
    } else {
        serde_json::from_str(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_sse_bodies() {
        let sse = "id: 0\nretry: 3000\ndata:\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";
        assert_eq!(response_in(Some("text/event-stream"), sse), Some(json!({"jsonrpc": "2.0", "id": 1, "result": {}})));
        assert_eq!(response_in(Some("application/json"), "{\"id\":1}"), Some(json!({"id": 1})));
        assert_eq!(response_in(None, "nope"), None);
    }
}
