//! A2A's HTTP+JSON binding (the REST routes of A2A 1.0 section 11, and 0.3's `/v1/...` form,
//! which shares its paths): a request becomes the JSON-RPC call it stands for, so the gateway
//! routes, limits and scopes it exactly like one; a JSON-RPC answer becomes the binding's own
//! (the bare result, or an AIP-193 error under the status its code maps to).
//!
//! Served under [`PREFIX`]: the 1.0 card's HTTP+JSON interface URL is `<public>/a2a/v1`, and 0.3
//! clients append `/v1/...` to their interface URL `<public>/a2a`, so both land on one route set.
//! Parameters are named as A2A 1.0 names them whatever the client's version; the origin reads
//! 0.3's protobuf JSON into them.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::catalogue::{A2aOperation, A2aVersion};
use crate::jsonrpc::{self, ErrorObject, Id, Limits, Message, Request, code};

/// Where the HTTP+JSON routes live.
pub const PREFIX: &str = "/a2a/v1";

/// The methods some route under [`PREFIX`] takes.
const ANY_ROUTE: [Method; 3] = [Method::GET, Method::POST, Method::DELETE];

/// The methods `path` (with or without [`PREFIX`]) takes, for a 405's `Allow`: read off the route
/// table itself, so the two never disagree. A path that is no route gets every method some
/// route takes.
pub fn allowed(path: &str) -> String {
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let takes = |m: &Method| !matches!(operation(m, rest), Err(RestError::MethodNotAllowed | RestError::NotFound));
    let methods: Vec<&str> = ANY_ROUTE.iter().filter(|m| takes(m)).map(Method::as_str).collect();
    let methods = if methods.is_empty() { ANY_ROUTE.iter().map(Method::as_str).collect() } else { methods };
    methods.join(", ")
}

/// Whether `path` (without its query) is one of the binding's.
pub fn is_rest_path(path: &str) -> bool {
    path.strip_prefix(PREFIX).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The id the JSON-RPC call made from a REST request carries; it never reaches a client.
pub fn call_id() -> Id {
    Id::from(0)
}

/// Query parameters read as numbers or booleans; all others are strings.
const INTEGER_PARAMS: &[&str] = &["historyLength", "pageSize"];
const BOOLEAN_PARAMS: &[&str] = &["includeArtifacts"];

/// Which operation a method and path name, and the ids the path carries.
fn operation(method: &Method, path: &str) -> Result<(A2aOperation, Map<String, Value>), RestError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut ids = Map::new();
    let decoded = |s: &str| -> Result<String, RestError> {
        let text = percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map_err(|_| RestError::Invalid("a path segment is not UTF-8".into()))?;
        if text.is_empty() {
            return Err(RestError::Invalid("an id in the path is empty".into()));
        }
        Ok(text.into_owned())
    };
    let post = method == Method::POST;
    let get = method == Method::GET;
    let op = match segments.as_slice() {
        ["message:send"] if post => A2aOperation::SendMessage,
        ["message:stream"] if post => A2aOperation::SendStreamingMessage,
        ["tasks"] if get => A2aOperation::ListTasks,
        ["extendedAgentCard" | "card"] if get => A2aOperation::GetExtendedCard,
        ["tasks", task] => {
            let (task, verb) = match task.rsplit_once(':') {
                Some((t, v)) => (t, Some(v)),
                None => (*task, None),
            };
            ids.insert("id".into(), Value::String(decoded(task)?));
            match verb {
                None if get => A2aOperation::GetTask,
                Some("cancel") if post => A2aOperation::CancelTask,
                // 1.0 subscribes with POST, 0.3 with GET.
                Some("subscribe") if post || get => A2aOperation::SubscribeToTask,
                None | Some("cancel" | "subscribe") => return Err(RestError::MethodNotAllowed),
                Some(_) => return Err(RestError::NotFound),
            }
        }
        ["tasks", task, "pushNotificationConfigs"] => {
            ids.insert("taskId".into(), Value::String(decoded(task)?));
            match *method {
                Method::POST => A2aOperation::CreatePushConfig,
                Method::GET => A2aOperation::ListPushConfigs,
                _ => return Err(RestError::MethodNotAllowed),
            }
        }
        ["tasks", task, "pushNotificationConfigs", config] => {
            ids.insert("taskId".into(), Value::String(decoded(task)?));
            ids.insert("id".into(), Value::String(decoded(config)?));
            match *method {
                Method::GET => A2aOperation::GetPushConfig,
                Method::DELETE => A2aOperation::DeletePushConfig,
                _ => return Err(RestError::MethodNotAllowed),
            }
        }
        ["message:send" | "message:stream" | "tasks" | "extendedAgentCard" | "card"] => {
            return Err(RestError::MethodNotAllowed);
        }
        _ => return Err(RestError::NotFound),
    };
    Ok((op, ids))
}

/// Why a REST request is no call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    #[error("no A2A operation is served at this path")]
    NotFound,
    #[error("this path does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Body(#[from] jsonrpc::ParseError),
}

impl RestError {
    /// The status and JSON-RPC error this is answered with.
    pub fn to_error(&self) -> (StatusCode, ErrorObject) {
        match self {
            RestError::NotFound => (
                StatusCode::NOT_FOUND,
                ErrorObject::new(code::METHOD_NOT_FOUND, "Not found: no A2A operation is served at this path"),
            ),
            RestError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorObject::new(code::METHOD_NOT_FOUND, "Method not allowed on this path"),
            ),
            RestError::Invalid(m) => (StatusCode::BAD_REQUEST, ErrorObject::invalid_params(m.clone())),
            RestError::Body(e) => (e.http_status(), e.to_error_object()),
        }
    }
}

/// The JSON-RPC call a REST request stands for: the operation's name in `version`, its
/// parameters from the body (an object, if any), then the query, then the path's ids, each
/// later source overriding the earlier.
pub fn request(
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    version: A2aVersion,
    limits: &Limits,
) -> Result<Message, RestError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or(path);
    let (op, ids) = operation(method, rest)?;
    let mut params = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match jsonrpc::parse_json(body, limits)? {
            Value::Object(m) => m,
            _ => return Err(RestError::Invalid("the body must be a JSON object".into())),
        }
    };
    // 0.3's SendMessageRequest names its message field `request` (JSON name `message`), and
    // ProtoJSON writers may use either.
    if matches!(op, A2aOperation::SendMessage | A2aOperation::SendStreamingMessage)
        && !params.contains_key("message")
        && let Some(m) = params.remove("request")
    {
        params.insert("message".into(), m);
    }
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = if INTEGER_PARAMS.contains(&k.as_ref()) {
            Value::from(v.trim().parse::<u64>().map_err(|_| RestError::Invalid(format!("{k} must be an integer")))?)
        } else if BOOLEAN_PARAMS.contains(&k.as_ref()) {
            Value::Bool(v.parse::<bool>().map_err(|_| RestError::Invalid(format!("{k} must be true or false")))?)
        } else {
            Value::String(v.into_owned())
        };
        params.insert(k.into_owned(), value);
    }
    params.extend(ids);
    let method = crate::catalogue::a2a_method_name(op, version).to_owned();
    Ok(Message::Request(Request { id: call_id(), method, params: Some(Value::Object(params)) }))
}

/// The binding status of an error sent under `status`: a 200 or a plain 400 takes the status its
/// code maps to; a transport status (401, 413, 429, 503, ...) stays.
pub(crate) fn status_of_error(code: i32, status: StatusCode) -> StatusCode {
    if status == StatusCode::OK || status == StatusCode::BAD_REQUEST { status_of(code) } else { status }
}

/// The HTTP status an A2A error code maps to (A2A 1.0 section 5.4), for errors answered with
/// 200 or a generic 400 in JSON-RPC.
fn status_of(code: i32) -> StatusCode {
    match code {
        -32001 => StatusCode::NOT_FOUND,
        -32002 => StatusCode::CONFLICT,
        code::A2A_CONTENT_TYPE_NOT_SUPPORTED => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        -32006 => StatusCode::BAD_GATEWAY,
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        code::INTERNAL_ERROR => StatusCode::INTERNAL_SERVER_ERROR,
        code::UNAUTHORIZED => StatusCode::UNAUTHORIZED,
        code::FORBIDDEN => StatusCode::FORBIDDEN,
        code::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        code::ORIGIN_UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The canonical gRPC status name AIP-193 puts beside the HTTP code.
pub(crate) fn grpc_status(code: i32, status: StatusCode) -> &'static str {
    match code {
        -32003 | -32004 | code::A2A_VERSION_NOT_SUPPORTED => return "UNIMPLEMENTED",
        -32002 | -32007 | -32008 => return "FAILED_PRECONDITION",
        -32006 => return "INTERNAL",
        _ => {}
    }
    match status {
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "PERMISSION_DENIED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::CONFLICT => "ABORTED",
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => "RESOURCE_EXHAUSTED",
        StatusCode::METHOD_NOT_ALLOWED => "UNIMPLEMENTED",
        StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
        s if s.is_server_error() => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    }
}

/// `error.details`: 1.0's `google.rpc.ErrorInfo` array as it is; any other `data` as the
/// metadata of an ErrorInfo (whose values are strings), so nothing the error said is lost.
fn details(error: &ErrorObject, grpc: &str) -> Value {
    match &error.data {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        Some(Value::Object(fields)) => {
            let metadata: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.as_str().map_or_else(|| v.to_string(), str::to_owned))))
                .collect();
            json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": grpc,
                "domain": "agentplane",
                "metadata": metadata,
            }])
        }
        _ => json!([]),
    }
}

/// The binding's status and AIP-193 body for a JSON-RPC error sent under `status`: a 200 or a
/// plain 400 takes the status the code maps to; a transport status (401, 413, 429, 503, ...)
/// stays.
pub fn error_reply(status: StatusCode, error: &ErrorObject) -> (StatusCode, Vec<u8>) {
    let status = status_of_error(error.code, status);
    let grpc = grpc_status(error.code, status);
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "status": grpc,
            "message": error.message,
            "details": details(error, grpc),
        }
    });
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

/// A JSON-RPC response body (any id, the gateway's id-less refusals included) in the binding's
/// form: the bare result, or the error as [`error_reply`] gives it. `None` when the body is no
/// JSON-RPC response.
pub fn convert(status: StatusCode, body: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    match jsonrpc::outcome_of(body)? {
        Ok(result) => Some((status, serde_json::to_vec(&result).unwrap_or_default())),
        Err(e) => Some(error_reply(status, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        method: &Method,
        path: &str,
        query: Option<&str>,
        body: &str,
        v: A2aVersion,
    ) -> Result<(String, Value), RestError> {
        match request(method, path, query, body.as_bytes(), v, &Limits::default())? {
            Message::Request(r) => Ok((r.method, r.params.unwrap_or_default())),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn paths_name_operations_and_carry_ids() {
        let v1 = A2aVersion::V1_0;
        let (m, p) = call(&Method::POST, "/a2a/v1/message:send", None, r#"{"message":{}}"#, v1).unwrap();
        assert_eq!((m.as_str(), p["message"].is_object()), ("SendMessage", true));
        let (m, p) = call(&Method::GET, "/a2a/v1/tasks/abc", Some("historyLength=2&id=evil"), "", v1).unwrap();
        assert_eq!((m.as_str(), p), ("GetTask", json!({"id": "abc", "historyLength": 2})));
        let (m, p) =
            call(&Method::GET, "/a2a/v1/tasks", Some("contextId=c%201&includeArtifacts=true"), "", v1).unwrap();
        assert_eq!((m.as_str(), p), ("ListTasks", json!({"contextId": "c 1", "includeArtifacts": true})));
        let (m, _) = call(&Method::POST, "/a2a/v1/tasks/abc:cancel", None, "", v1).unwrap();
        assert_eq!(m, "CancelTask");
        let (m, p) = call(&Method::DELETE, "/a2a/v1/tasks/t/pushNotificationConfigs/c%2F1", None, "", v1).unwrap();
        assert_eq!((m.as_str(), p), ("DeleteTaskPushNotificationConfig", json!({"taskId": "t", "id": "c/1"})));
        let (m, p) =
            call(&Method::POST, "/a2a/v1/tasks/t/pushNotificationConfigs", None, r#"{"taskId":"x","url":"u"}"#, v1)
                .unwrap();
        assert_eq!((m.as_str(), p), ("CreateTaskPushNotificationConfig", json!({"taskId": "t", "url": "u"})));
        let (_, p) =
            call(&Method::POST, "/a2a/v1/message:send", None, r#"{"request":{"content":[]}}"#, A2aVersion::V0_3)
                .unwrap();
        assert_eq!(p, json!({"message": {"content": []}}));
        let (m, _) = call(&Method::GET, "/a2a/v1/tasks/t:subscribe", None, "", A2aVersion::V0_3).unwrap();
        assert_eq!(m, "tasks/resubscribe");
        let (m, _) = call(&Method::GET, "/a2a/v1/card", None, "", A2aVersion::V0_3).unwrap();
        assert_eq!(m, "agent/getAuthenticatedExtendedCard");
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_status() {
        let v1 = A2aVersion::V1_0;
        let status = |r: Result<(String, Value), RestError>| r.unwrap_err().to_error().0;
        assert_eq!(status(call(&Method::GET, "/a2a/v1/nothing", None, "", v1)), StatusCode::NOT_FOUND);
        assert_eq!(status(call(&Method::GET, "/a2a/v1/message:send", None, "", v1)), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(call(&Method::DELETE, "/a2a/v1/tasks/t", None, "", v1)), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(status(call(&Method::POST, "/a2a/v1/message:send", None, "[1]", v1)), StatusCode::BAD_REQUEST);
        assert_eq!(status(call(&Method::POST, "/a2a/v1/message:send", None, "{", v1)), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(call(&Method::GET, "/a2a/v1/tasks/t", Some("historyLength=x"), "", v1)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(call(&Method::GET, "/a2a/v1/tasks/%FF", None, "", v1)), StatusCode::BAD_REQUEST);
        assert!(is_rest_path("/a2a/v1/tasks") && is_rest_path("/a2a/v1") && !is_rest_path("/a2a/v10"));
    }

    #[test]
    fn jsonrpc_answers_become_the_bindings() {
        let ok = br#"{"jsonrpc":"2.0","id":0,"result":{"task":{"id":"t"}}}"#;
        assert_eq!(convert(StatusCode::OK, ok).unwrap(), (StatusCode::OK, br#"{"task":{"id":"t"}}"#.to_vec()));
        let not_found = br#"{"jsonrpc":"2.0","id":0,"error":{"code":-32001,"message":"Task not found","data":[{"reason":"TASK_NOT_FOUND"}]}}"#;
        let (status, body) = convert(StatusCode::OK, not_found).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        assert_eq!(body["error"]["details"][0]["reason"], "TASK_NOT_FOUND");
        let limited = br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32012,"message":"Rate limit exceeded","data":{"retryAfterMs":5}}}"#;
        let (status, body) = convert(StatusCode::TOO_MANY_REQUESTS, limited).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((status, body["error"]["code"].as_u64()), (StatusCode::TOO_MANY_REQUESTS, Some(429)));
        assert_eq!(body["error"]["details"][0]["metadata"]["retryAfterMs"], "5");
        let (status, _) = error_reply(StatusCode::OK, &ErrorObject::new(-32002, "no"));
        assert_eq!(status, StatusCode::CONFLICT);
    }
}
