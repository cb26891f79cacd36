//! JSON-RPC 2.0 envelopes: parsing one message under size and depth limits, and serialising
//! results and errors.
//!
//! MCP's Streamable HTTP and A2A's JSON-RPC binding both carry exactly one message per POST, so a
//! batch (a JSON array) is refused as an invalid request rather than unpacked.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// JSON-RPC error codes. The standard ones come from the JSON-RPC 2.0 specification; the
/// gateway's own sit in `-32010..=-32019`: MCP reserves `-32020..=-32099` and A2A uses
/// `-32001..=-32009`, so these clash with neither on either endpoint.
pub mod code {
    pub const PARSE_ERROR: i32 = -32700;
    pub const INVALID_REQUEST: i32 = -32600;
    pub const METHOD_NOT_FOUND: i32 = -32601;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL_ERROR: i32 = -32603;
    /// No credentials, or credentials that did not verify (HTTP 401).
    pub const UNAUTHORIZED: i32 = -32010;
    /// Verified credentials without the scope the method needs (HTTP 403).
    pub const FORBIDDEN: i32 = -32011;
    /// The tenant's rate limit is exhausted (HTTP 429).
    pub const RATE_LIMITED: i32 = -32012;
    // -32013 is the origin's A2A "Budget exceeded" (`origin::protocol::a2a::error::BUDGET_EXCEEDED`).
    /// The edge could not reach the origin, or the origin's answer broke off (HTTP 502).
    pub const ORIGIN_UNAVAILABLE: i32 = -32014;
    /// MCP 2026-07-28: an `Mcp-Method`/`Mcp-Name` header is missing or disagrees with the body.
    pub const MCP_HEADER_MISMATCH: i32 = -32020;
    /// MCP: the `MCP-Protocol-Version` header names a revision this server does not speak.
    pub const MCP_UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;
    /// A2A 1.0: the `A2A-Version` the client asked for is not served here.
    pub const A2A_VERSION_NOT_SUPPORTED: i32 = -32009;
    /// A2A's `ContentTypeNotSupportedError`.
    pub const A2A_CONTENT_TYPE_NOT_SUPPORTED: i32 = -32005;
}

/// A request id: a string or a number, echoed back exactly as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(serde_json::Number),
    String(String),
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Number(n.into())
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id::String(s.to_owned())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(code::METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    /// An object or an array; `None` when the member was absent or `null`.
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Id,
    pub outcome: Result<Value, ErrorObject>,
}

/// One parsed JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }

    pub fn id(&self) -> Option<&Id> {
        match self {
            Message::Request(r) => Some(&r.id),
            Message::Notification(_) => None,
            Message::Response(r) => Some(&r.id),
        }
    }

    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request(r) => r.params.as_ref(),
            Message::Notification(n) => n.params.as_ref(),
            Message::Response(_) => None,
        }
    }

    /// The message as JSON text.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("jsonrpc".into(), Value::from("2.0"));
        match self {
            Message::Request(r) => {
                obj.insert("id".into(), id_value(Some(&r.id)));
                obj.insert("method".into(), Value::from(r.method.clone()));
                if let Some(p) = &r.params {
                    obj.insert("params".into(), p.clone());
                }
            }
            Message::Notification(n) => {
                obj.insert("method".into(), Value::from(n.method.clone()));
                if let Some(p) = &n.params {
                    obj.insert("params".into(), p.clone());
                }
            }
            Message::Response(r) => {
                obj.insert("id".into(), id_value(Some(&r.id)));
                match &r.outcome {
                    Ok(result) => obj.insert("result".into(), result.clone()),
                    Err(e) => obj.insert("error".into(), error_value(e)),
                };
            }
        }
        // Serialising a `Value` cannot fail: every map key is a string.
        serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
    }
}

fn id_value(id: Option<&Id>) -> Value {
    match id {
        Some(Id::Number(n)) => Value::Number(n.clone()),
        Some(Id::String(s)) => Value::String(s.clone()),
        None => Value::Null,
    }
}

fn error_value(e: &ErrorObject) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// A success response's bytes.
pub fn success_bytes(id: &Id, result: &Value) -> Vec<u8> {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": id_value(Some(id)), "result": result });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// An error response's bytes; `id` is `null` when the request's id could not be read.
pub fn error_bytes(id: Option<&Id>, error: &ErrorObject) -> Vec<u8> {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": id_value(id), "error": error_value(error) });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The result or error a response body carries, whatever its id (the gateway answers some
/// refusals with a null one); `None` for a body that is neither.
pub fn outcome_of(body: &[u8]) -> Option<Result<Value, ErrorObject>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let fields = v.as_object_mut()?;
    if let Some(result) = fields.remove("result") {
        return Some(Ok(result));
    }
    serde_json::from_value(fields.remove("error")?).ok().map(Err)
}

/// Bounds on what the parser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects, the envelope itself counting as one.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, max_depth: 64 }
    }
}

/// Why a body is not a usable JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    #[error("body of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("JSON nests deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("batch requests are not supported; send one message per request")]
    Batch,
    #[error("a JSON-RPC message must be a JSON object")]
    NotAnObject,
    #[error("\"jsonrpc\" must be \"2.0\"")]
    BadVersion,
    #[error("\"id\" must be a string or a number")]
    BadId,
    #[error("\"method\" must be a string")]
    BadMethod,
    #[error("\"params\" must be an object or an array")]
    BadParams,
    #[error("a response must carry exactly one of \"result\" and \"error\"")]
    BadResponse,
    #[error("message is neither a request, a notification nor a response")]
    Unclassifiable,
}

/// A parse failure together with the request id when it could be read, so the error response can
/// echo it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub id: Option<Id>,
}

impl ParseError {
    fn new(kind: ParseErrorKind) -> Self {
        Self { kind, id: None }
    }

    /// The JSON-RPC error this failure is reported as.
    pub fn to_error_object(&self) -> ErrorObject {
        let code = match self.kind {
            ParseErrorKind::InvalidJson(_) => code::PARSE_ERROR,
            _ => code::INVALID_REQUEST,
        };
        let prefix = if code == code::PARSE_ERROR { "Parse error" } else { "Invalid Request" };
        ErrorObject::new(code, format!("{prefix}: {}", self.kind))
    }

    /// The HTTP status this failure is reported with.
    pub fn http_status(&self) -> http::StatusCode {
        match self.kind {
            ParseErrorKind::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Parses one JSON-RPC 2.0 message.
pub fn parse(body: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    from_value(parse_json(body, limits)?)
}

/// Parses any JSON document under the same size and depth limits (A2A's REST bodies).
pub fn parse_json(body: &[u8], limits: &Limits) -> Result<Value, ParseError> {
    if body.len() > limits.max_body_bytes {
        return Err(ParseError::new(ParseErrorKind::TooLarge { size: body.len(), limit: limits.max_body_bytes }));
    }
    if exceeds_depth(body, limits.max_depth) {
        return Err(ParseError::new(ParseErrorKind::TooDeep { limit: limits.max_depth }));
    }
    serde_json::from_slice(body).map_err(|e| ParseError::new(ParseErrorKind::InvalidJson(e.to_string())))
}

/// The id of a message of at most `max_bytes`, read without keeping anything else of it; `None`
/// for a larger body, one that is not a JSON object, or one without a usable id. For answering
/// a request refused before it was parsed.
pub fn peek_id(body: &[u8], max_bytes: usize) -> Option<Id> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<Id>,
    }
    // A derived struct also reads from an array (`[1]` would be id 1): only objects qualify.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if body.len() > max_bytes || !is_object {
        return None;
    }
    serde_json::from_slice::<IdOnly>(body).ok()?.id
}

/// Classifies an already-parsed JSON value as a JSON-RPC message.
pub fn from_value(value: Value) -> Result<Message, ParseError> {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(ParseError::new(ParseErrorKind::Batch)),
        _ => return Err(ParseError::new(ParseErrorKind::NotAnObject)),
    };
    // Read the id first so that every later error can echo it.
    let id = match obj.remove("id") {
        None => None,
        Some(Value::String(s)) => Some(Id::String(s)),
        Some(Value::Number(n)) => Some(Id::Number(n)),
        // MCP forbids a null id and JSON-RPC discourages it; neither can be answered usefully.
        Some(_) => return Err(ParseError::new(ParseErrorKind::BadId)),
    };
    let fail = |kind| ParseError { kind, id: id.clone() };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(fail(ParseErrorKind::BadVersion));
    }
    let params = match obj.remove("params") {
        None | Some(Value::Null) => None,
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
        Some(_) => return Err(fail(ParseErrorKind::BadParams)),
    };
    match obj.remove("method") {
        Some(Value::String(method)) => {
            if obj.contains_key("result") || obj.contains_key("error") {
                return Err(fail(ParseErrorKind::Unclassifiable));
            }
            Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification(Notification { method, params }),
            })
        }
        Some(_) => Err(fail(ParseErrorKind::BadMethod)),
        None => {
            let Some(id) = id.clone() else {
                return Err(fail(ParseErrorKind::Unclassifiable));
            };
            let outcome = match (obj.remove("result"), obj.remove("error")) {
                (Some(result), None) => Ok(result),
                (None, Some(error)) => {
                    Err(serde_json::from_value::<ErrorObject>(error).map_err(|_| fail(ParseErrorKind::BadResponse))?)
                }
                _ => return Err(fail(ParseErrorKind::BadResponse)),
            };
            Ok(Message::Response(Response { id, outcome }))
        }
    }
}

/// Whether arrays and objects nest deeper than `limit`, found by one pass over the bytes before
/// any allocation. Brackets inside strings do not count. Malformed input is left for the JSON
/// parser to report.
fn exceeds_depth(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse_str(s: &str) -> Result<Message, ParseError> {
        parse(s.as_bytes(), &Limits::default())
    }

    fn err_code(s: &str) -> (i32, Option<Id>) {
        let e = parse_str(s).unwrap_err();
        (e.to_error_object().code, e.id)
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let m = parse_str(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).unwrap();
        assert_eq!(m, Message::Request(Request { id: 7.into(), method: "tools/list".into(), params: None }));
        let m = parse_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification(n) if n.method == "notifications/initialized"));
        let m = parse_str(r#"{"jsonrpc":"2.0","id":"a","result":{"ok":true}}"#).unwrap();
        assert_eq!(m, Message::Response(Response { id: "a".into(), outcome: Ok(json!({"ok":true})) }));
        let m = parse_str(r#"{"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"x"}}"#).unwrap();
        assert!(matches!(m, Message::Response(Response { outcome: Err(e), .. }) if e.code == -1));
    }

    #[test]
    fn null_params_are_treated_as_absent() {
        let m = parse_str(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#).unwrap();
        assert_eq!(m.params(), None);
    }

    #[test]
    fn error_paths_have_exact_codes_and_echo_the_id() {
        assert_eq!(err_code("{not json"), (code::PARSE_ERROR, None));
        assert_eq!(err_code(""), (code::PARSE_ERROR, None));
        assert_eq!(err_code("[]"), (code::INVALID_REQUEST, None));
        assert_eq!(err_code("42"), (code::INVALID_REQUEST, None));
        assert_eq!(err_code(r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#), (code::INVALID_REQUEST, Some(3.into())));
        assert_eq!(err_code(r#"{"id":3,"method":"x"}"#), (code::INVALID_REQUEST, Some(3.into())));
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#), (code::INVALID_REQUEST, None));
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#), (code::INVALID_REQUEST, None));
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","id":"q","method":5}"#), (code::INVALID_REQUEST, Some("q".into())));
        assert_eq!(
            err_code(r#"{"jsonrpc":"2.0","id":"q","method":"x","params":"s"}"#),
            (code::INVALID_REQUEST, Some("q".into()))
        );
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","id":1}"#), (code::INVALID_REQUEST, Some(1.into())));
        assert_eq!(
            err_code(r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1,"message":"m"}}"#),
            (code::INVALID_REQUEST, Some(1.into()))
        );
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","id":1,"error":"bad"}"#), (code::INVALID_REQUEST, Some(1.into())));
        assert_eq!(err_code(r#"{"jsonrpc":"2.0","method":"x","result":1}"#), (code::INVALID_REQUEST, None));
        assert_eq!(err_code(r#"{"jsonrpc":"2.0"}"#), (code::INVALID_REQUEST, None));
    }

    #[test]
    fn ids_are_peeked_from_small_bodies_only() {
        let body = br#"{"jsonrpc":"2.0","id":"a","method":"m","params":{"x":[1,2]}}"#;
        assert_eq!(peek_id(body, 1024), Some(Id::from("a")));
        assert_eq!(peek_id(body, 10), None);
        assert_eq!(peek_id(br#"{"jsonrpc":"2.0","method":"m"}"#, 1024), None);
        assert_eq!(peek_id(b"[1]", 1024), None);
    }

    #[test]
    fn size_and_depth_limits() {
        let limits = Limits { max_body_bytes: 10, max_depth: 64 };
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &limits).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::TooLarge { size: 40, limit: 10 }));
        assert_eq!(e.http_status(), http::StatusCode::PAYLOAD_TOO_LARGE);

        let limits = Limits { max_body_bytes: 1 << 20, max_depth: 3 };
        let ok = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[1]}}"#;
        assert!(parse(ok, &limits).is_ok());
        let deep = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":[[1]]}}"#;
        assert!(matches!(parse(deep, &limits).unwrap_err().kind, ParseErrorKind::TooDeep { limit: 3 }));
        // Brackets inside strings, including after escaped quotes, do not count.
        let strings = br#"{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":"[[[[\"[[[{{{"}}"#;
        assert!(parse(strings, &limits).is_ok());
    }

    #[test]
    fn serialises_results_and_errors() {
        let ok: Value = serde_json::from_slice(&success_bytes(&"x".into(), &json!({}))).unwrap();
        assert_eq!(ok, json!({"jsonrpc":"2.0","id":"x","result":{}}));
        let err = ErrorObject::invalid_params("name is required").with_data(json!({"field":"name"}));
        let v: Value = serde_json::from_slice(&error_bytes(None, &err)).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"name is required","data":{"field":"name"}}})
        );
    }

    fn arb_id() -> impl Strategy<Value = Id> {
        prop_oneof![
            any::<i64>().prop_map(Id::from),
            any::<u64>().prop_map(|n| Id::Number(n.into())),
            ".{0,16}".prop_map(Id::String)
        ]
    }

    fn arb_params() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            crate::testing::arb_json().prop_map(|v| Some(json!({ "v": v }))),
            proptest::collection::vec(crate::testing::arb_json(), 0..4).prop_map(|v| Some(Value::Array(v))),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let error = (any::<i32>(), ".{0,20}", proptest::option::of(crate::testing::arb_json()))
            // `"data": null` and no `data` read back the same.
            .prop_map(|(code, message, data)| ErrorObject { code, message, data: data.filter(|d| !d.is_null()) });
        prop_oneof![
            (arb_id(), "[a-z/]{1,20}", arb_params()).prop_map(|(id, method, params)| Message::Request(Request {
                id,
                method,
                params
            })),
            ("[a-z/]{1,20}", arb_params())
                .prop_map(|(method, params)| Message::Notification(Notification { method, params })),
            (arb_id(), crate::testing::arb_json())
                .prop_map(|(id, result)| Message::Response(Response { id, outcome: Ok(result) })),
            (arb_id(), error).prop_map(|(id, e)| Message::Response(Response { id, outcome: Err(e) })),
        ]
    }

    proptest! {
        /// Serialising any message and parsing it back gives the same message.
        #[test]
        fn round_trip(m in arb_message()) {
            let bytes = m.to_vec();
            prop_assert_eq!(parse(&bytes, &Limits::default()).unwrap(), m);
        }

        /// Any byte string parses or fails with a JSON-RPC error; nothing panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse(&bytes, &Limits::default()) {
                let code = e.to_error_object().code;
                prop_assert!(code == code::PARSE_ERROR || code == code::INVALID_REQUEST);
            }
        }
    }

    /// Found by the fuzzer: without serde_json's `float_roundtrip`, this integer literal too large
    /// for u64 read back from its re-serialised form as a different float.
    #[test]
    fn floats_survive_a_round_trip() {
        let big = "6".repeat(96) + "4";
        let m = parse_str(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"x":{big},"y":-3.602}}}}"#))
            .unwrap();
        assert_eq!(parse(&m.to_vec(), &Limits::default()).unwrap(), m);
    }

    #[test]
    fn ids_keep_their_exact_number_form() {
        let m = parse_str(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#).unwrap();
        let v: Value = serde_json::from_slice(&m.to_vec()).unwrap();
        assert_eq!(v["id"].to_string(), "18446744073709551615");
    }
}
