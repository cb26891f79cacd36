//! Every MCP and A2A method this service knows, and where each one goes: answered at the edge or
//! forwarded to which origin endpoint, streamed or not, cacheable for how long, and behind which
//! scope.
//!
//! MCP methods are tagged with the revisions (2025-06-18, 2025-11-25, 2026-07-28) that define them,
//! so a 2026-07-28 client calling `initialize` (removed in that revision) gets "method not found".
//! A2A has two disjoint name sets, 0.3 (`message/send`) and 1.0 (`SendMessage`), picked by the
//! `A2A-Version` header.
//!
//! [`route`] gives a [`Route`]: the [`Target`] (`EdgePong` or an origin [`Endpoint`]),
//! [`Streaming`], the cache rule, the required scope and whether a successful call writes.
//! `tools/call` takes its scope, cache lifetime and write flag from [`ToolPolicies`] by tool name.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::{CacheRule, CacheScope};
use crate::jsonrpc::{ErrorObject, Message};

/// The two protocols, told apart by the endpoint a message arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Mcp,
    A2a,
}

/// MCP protocol revisions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum McpRevision {
    /// Accepted for older clients; routed like 2025-06-18 (it defines no method the later
    /// session-era revisions lack).
    #[serde(rename = "2025-03-26")]
    V2025_03_26,
    #[serde(rename = "2025-06-18")]
    V2025_06_18,
    #[serde(rename = "2025-11-25")]
    V2025_11_25,
    #[serde(rename = "2026-07-28")]
    V2026_07_28,
}

impl McpRevision {
    pub const ALL: [McpRevision; 4] = [Self::V2025_03_26, Self::V2025_06_18, Self::V2025_11_25, Self::V2026_07_28];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// The 2026-07-28 revision has no sessions and checks `Mcp-Method`/`Mcp-Name` headers.
    pub fn is_stateless(self) -> bool {
        self >= Self::V2026_07_28
    }

    fn bit(self) -> u8 {
        match self {
            Self::V2025_03_26 | Self::V2025_06_18 => R0618,
            Self::V2025_11_25 => R1125,
            Self::V2026_07_28 => R0728,
        }
    }
}

/// A2A protocol versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum A2aVersion {
    #[serde(rename = "0.3")]
    V0_3,
    #[serde(rename = "1.0")]
    V1_0,
}

impl A2aVersion {
    /// Reads an `A2A-Version` header (or query parameter). The specification says an absent or
    /// empty value means 0.3.
    pub fn from_header(value: Option<&str>) -> Result<Self, ErrorObject> {
        match value.map(str::trim).unwrap_or_default() {
            "" | "0.3" | "0.3.0" => Ok(Self::V0_3),
            "1.0" | "1.0.0" => Ok(Self::V1_0),
            other => Err(ErrorObject::new(
                crate::jsonrpc::code::A2A_VERSION_NOT_SUPPORTED,
                format!(
                    "A2A version {:?} is not supported; supported: 0.3, 1.0",
                    other.chars().take(32).collect::<String>()
                ),
            )
            .with_data(serde_json::json!({ "supported": ["0.3", "1.0"] }))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3 => "0.3",
            Self::V1_0 => "1.0",
        }
    }
}

/// Which protocol and version a message is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `None` when the client sent no `MCP-Protocol-Version` (an `initialize`, or a client older
    /// than 2025-06-18): the session-era revisions apply.
    Mcp(Option<McpRevision>),
    A2a(A2aVersion),
}

impl Dialect {
    pub fn protocol(self) -> Protocol {
        match self {
            Dialect::Mcp(_) => Protocol::Mcp,
            Dialect::A2a(_) => Protocol::A2a,
        }
    }

    /// A short stable tag for cache keys and logs, e.g. `mcp/2025-11-25` or `a2a/1.0`.
    pub fn tag(self) -> Cow<'static, str> {
        match self {
            Dialect::Mcp(None) => Cow::Borrowed("mcp/unversioned"),
            Dialect::Mcp(Some(r)) => Cow::Owned(format!("mcp/{}", r.as_str())),
            Dialect::A2a(v) => Cow::Owned(format!("a2a/{}", v.as_str())),
        }
    }
}

/// The console's session endpoint; the rest of `/console` is its public pages and assets.
pub const CONSOLE_SESSION_PATH: &str = "/console/session";

/// Origin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Mcp,
    A2a,
    /// The console's session (`/console/session`): who the cookie's token is, sign-in, sign-out.
    Console,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Mcp => "/mcp",
            Endpoint::A2a => "/a2a",
            Endpoint::Console => CONSOLE_SESSION_PATH,
        }
    }
}

/// Who answers a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The edge answers `ping` itself: an empty result.
    EdgePong,
    Origin(Endpoint),
}

/// Whether the response is a stream of server-sent events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streaming {
    /// A single JSON body (or `202 Accepted` for notifications and responses).
    Never,
    /// MCP Streamable HTTP: the origin picks JSON or SSE per request.
    Negotiated,
    /// Always SSE (A2A `message/stream`, `SubscribeToTask`, MCP `subscriptions/listen`).
    Always,
}

/// The scope a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeRule {
    /// Any verified token.
    None,
    Fixed(&'static str),
    /// `tools/call`: looked up by tool name in [`ToolPolicies`].
    PerTool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Notification,
    /// Sent by servers only; a client sending it gets "method not found".
    ServerToClient,
}

const R0618: u8 = 1;
const R1125: u8 = 2;
const R0728: u8 = 4;
const SESSION_ERA: u8 = R0618 | R1125;
const ALL_REVS: u8 = R0618 | R1125 | R0728;

#[derive(Debug)]
struct McpMethod {
    name: &'static str,
    revisions: u8,
    kind: Kind,
    target: Target,
    streaming: Streaming,
    cache: Option<CacheRule>,
    scope: ScopeRule,
}

const fn mcp(name: &'static str, revisions: u8, kind: Kind) -> McpMethod {
    let streaming = match kind {
        Kind::Request => Streaming::Negotiated,
        _ => Streaming::Never,
    };
    McpMethod {
        name,
        revisions,
        kind,
        target: Target::Origin(Endpoint::Mcp),
        streaming,
        cache: None,
        scope: ScopeRule::None,
    }
}

const fn cached(mut m: McpMethod, max_ttl_ms: u64, scope: CacheScope) -> McpMethod {
    m.cache = Some(CacheRule { max_ttl_ms, scope });
    m
}

const fn scoped(mut m: McpMethod, scope: &'static str) -> McpMethod {
    m.scope = ScopeRule::Fixed(scope);
    m
}

/// The document scopes. Resources are documents, so reading them needs the search scope.
pub const SCOPE_SEARCH_READ: &str = "search:read";
pub const SCOPE_DOCS_WRITE: &str = "docs:write";
pub const SCOPE_TASKS_RUN: &str = "tasks:run";

use Kind::{Notification as N, Request as Q, ServerToClient as S};

static MCP_METHODS: &[McpMethod] = &[
    mcp("initialize", SESSION_ERA, Q),
    McpMethod { target: Target::EdgePong, streaming: Streaming::Never, ..mcp("ping", SESSION_ERA, Q) },
    mcp("completion/complete", ALL_REVS, Q),
    mcp("logging/setLevel", SESSION_ERA, Q),
    cached(mcp("prompts/list", ALL_REVS, Q), 60_000, CacheScope::Shared),
    mcp("prompts/get", ALL_REVS, Q),
    scoped(cached(mcp("resources/list", ALL_REVS, Q), 30_000, CacheScope::Shared), SCOPE_SEARCH_READ),
    cached(mcp("resources/templates/list", ALL_REVS, Q), 60_000, CacheScope::Shared),
    scoped(cached(mcp("resources/read", ALL_REVS, Q), 30_000, CacheScope::Shared), SCOPE_SEARCH_READ),
    scoped(mcp("resources/subscribe", SESSION_ERA, Q), SCOPE_SEARCH_READ),
    scoped(mcp("resources/unsubscribe", SESSION_ERA, Q), SCOPE_SEARCH_READ),
    // What tools/list shows depends on the token's scopes, so it is cached per token.
    cached(mcp("tools/list", ALL_REVS, Q), 60_000, CacheScope::Private),
    McpMethod { scope: ScopeRule::PerTool, ..mcp("tools/call", ALL_REVS, Q) },
    cached(mcp("server/discover", R0728, Q), 300_000, CacheScope::Shared),
    McpMethod { streaming: Streaming::Always, ..mcp("subscriptions/listen", R0728, Q) },
    mcp("tasks/get", R1125 | R0728, Q),
    mcp("tasks/result", R1125, Q),
    mcp("tasks/list", R1125, Q),
    mcp("tasks/cancel", R1125 | R0728, Q),
    mcp("tasks/update", R0728, Q),
    mcp("notifications/initialized", SESSION_ERA, N),
    mcp("notifications/cancelled", ALL_REVS, N),
    mcp("notifications/progress", SESSION_ERA, N),
    mcp("notifications/roots/list_changed", SESSION_ERA, N),
    mcp("notifications/tasks/status", R1125, N),
    mcp("sampling/createMessage", SESSION_ERA, S),
    mcp("roots/list", SESSION_ERA, S),
    mcp("elicitation/create", SESSION_ERA, S),
    mcp("notifications/message", ALL_REVS, S),
    mcp("notifications/resources/updated", ALL_REVS, S),
    mcp("notifications/resources/list_changed", ALL_REVS, S),
    mcp("notifications/tools/list_changed", ALL_REVS, S),
    mcp("notifications/prompts/list_changed", ALL_REVS, S),
    mcp("notifications/elicitation/complete", R1125, S),
    mcp("notifications/subscriptions/acknowledged", R0728, S),
];

/// The A2A operations, whatever their name in the client's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum A2aOperation {
    SendMessage,
    SendStreamingMessage,
    GetTask,
    ListTasks,
    CancelTask,
    SubscribeToTask,
    CreatePushConfig,
    GetPushConfig,
    ListPushConfigs,
    DeletePushConfig,
    GetExtendedCard,
}

#[derive(Debug)]
struct A2aMethod {
    op: A2aOperation,
    v03: Option<&'static str>,
    v10: Option<&'static str>,
    streaming: Streaming,
    scope: ScopeRule,
}

const fn a2a(op: A2aOperation, v03: Option<&'static str>, v10: Option<&'static str>, streaming: bool) -> A2aMethod {
    A2aMethod {
        op,
        v03,
        v10,
        streaming: if streaming { Streaming::Always } else { Streaming::Never },
        scope: ScopeRule::Fixed(SCOPE_TASKS_RUN),
    }
}

static A2A_METHODS: &[A2aMethod] = &[
    a2a(A2aOperation::SendMessage, Some("message/send"), Some("SendMessage"), false),
    a2a(A2aOperation::SendStreamingMessage, Some("message/stream"), Some("SendStreamingMessage"), true),
    a2a(A2aOperation::GetTask, Some("tasks/get"), Some("GetTask"), false),
    a2a(A2aOperation::ListTasks, None, Some("ListTasks"), false),
    a2a(A2aOperation::CancelTask, Some("tasks/cancel"), Some("CancelTask"), false),
    a2a(A2aOperation::SubscribeToTask, Some("tasks/resubscribe"), Some("SubscribeToTask"), true),
    a2a(
        A2aOperation::CreatePushConfig,
        Some("tasks/pushNotificationConfig/set"),
        Some("CreateTaskPushNotificationConfig"),
        false,
    ),
    a2a(
        A2aOperation::GetPushConfig,
        Some("tasks/pushNotificationConfig/get"),
        Some("GetTaskPushNotificationConfig"),
        false,
    ),
    a2a(
        A2aOperation::ListPushConfigs,
        Some("tasks/pushNotificationConfig/list"),
        Some("ListTaskPushNotificationConfigs"),
        false,
    ),
    a2a(
        A2aOperation::DeletePushConfig,
        Some("tasks/pushNotificationConfig/delete"),
        Some("DeleteTaskPushNotificationConfig"),
        false,
    ),
    A2aMethod {
        scope: ScopeRule::None,
        ..a2a(
            A2aOperation::GetExtendedCard,
            Some("agent/getAuthenticatedExtendedCard"),
            Some("GetExtendedAgentCard"),
            false,
        )
    },
];

/// The name of `op` in `version`. An operation the version lacks (0.3 has no `ListTasks`) gets
/// its 1.0 name, which that version's routing does not know: "method not found".
pub fn a2a_method_name(op: A2aOperation, version: A2aVersion) -> &'static str {
    let Some(m) = A2A_METHODS.iter().find(|m| m.op == op) else { return "" };
    let named = match version {
        A2aVersion::V0_3 => m.v03,
        A2aVersion::V1_0 => m.v10,
    };
    named.or(m.v10).unwrap_or_default()
}

/// What the gateway needs to know of one MCP tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// The scope a caller needs; `None` lets any verified token call it.
    #[serde(default)]
    pub scope: Option<String>,
    /// How long a result may be served from the edge cache; zero means never cached. Results are
    /// shared by all callers of one tenant, so only tools whose results depend on nothing but the
    /// tenant's data and the arguments may set this.
    #[serde(default)]
    pub cache_ttl_ms: u64,
    /// A call changes the tenant's data: afterwards every cached result of the tenant is stale.
    #[serde(default)]
    pub writes: bool,
}

/// Per-tool policies, and the policy of tools not listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicies {
    pub tools: BTreeMap<String, ToolPolicy>,
    /// For tools not listed: by default no scope at the edge (the origin decides), never cached,
    /// and treated as writing, since nothing says otherwise.
    pub unknown: ToolPolicy,
}

impl Default for ToolPolicies {
    fn default() -> Self {
        let read = |ttl| ToolPolicy { scope: Some(SCOPE_SEARCH_READ.into()), cache_ttl_ms: ttl, writes: false };
        let write = ToolPolicy { scope: Some(SCOPE_DOCS_WRITE.into()), cache_ttl_ms: 0, writes: true };
        Self {
            tools: BTreeMap::from([
                ("hybrid_search".to_owned(), read(30_000)),
                ("get_document".to_owned(), read(30_000)),
                ("list_documents".to_owned(), read(10_000)),
                ("upsert_document".to_owned(), write.clone()),
                ("delete_document".to_owned(), write),
                ("usage".to_owned(), ToolPolicy { scope: None, cache_ttl_ms: 0, writes: false }),
                // Runs on the A2A task engine: the scope of sending A2A tasks.
                (
                    "research".to_owned(),
                    ToolPolicy { scope: Some(SCOPE_TASKS_RUN.into()), cache_ttl_ms: 0, writes: false },
                ),
            ]),
            unknown: ToolPolicy { scope: None, cache_ttl_ms: 0, writes: true },
        }
    }
}

/// Where one message goes and under which rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub dialect: Dialect,
    /// The method, or `None` for a JSON-RPC response the client sends back to the server.
    pub method: Option<&'a str>,
    pub target: Target,
    pub streaming: Streaming,
    pub cache: Option<CacheRule>,
    /// The scope the caller needs, if any.
    pub scope: Option<&'a str>,
    /// A successful call changes the tenant's data.
    pub writes: bool,
    /// The tool name of a `tools/call`.
    pub tool: Option<&'a str>,
    /// The A2A operation, for A2A methods.
    pub a2a: Option<A2aOperation>,
}

/// Routes one parsed message. Unknown methods, server-only methods and methods outside the
/// client's revision are -32601; a `tools/call` without a string `name` is -32602.
pub fn route<'a>(message: &'a Message, dialect: Dialect, tools: &'a ToolPolicies) -> Result<Route<'a>, ErrorObject> {
    let Some(method) = message.method() else {
        // Replies to server-initiated requests (elicitation, sampling) go back to the session.
        let endpoint = match dialect {
            Dialect::Mcp(_) => Endpoint::Mcp,
            Dialect::A2a(_) => Endpoint::A2a,
        };
        return Ok(Route {
            dialect,
            method: None,
            target: Target::Origin(endpoint),
            streaming: Streaming::Never,
            cache: None,
            scope: None,
            writes: false,
            tool: None,
            a2a: None,
        });
    };
    let is_notification = matches!(message, Message::Notification(_));
    match dialect {
        Dialect::Mcp(revision) => route_mcp(method, message.params(), revision, is_notification, dialect, tools),
        Dialect::A2a(version) => route_a2a(method, message.params(), version, is_notification, dialect),
    }
}

fn route_mcp<'a>(
    method: &'a str,
    params: Option<&'a Value>,
    revision: Option<McpRevision>,
    is_notification: bool,
    dialect: Dialect,
    tools: &'a ToolPolicies,
) -> Result<Route<'a>, ErrorObject> {
    let mask = revision.map_or(SESSION_ERA, McpRevision::bit);
    let spec = MCP_METHODS
        .iter()
        .find(|m| m.name == method && m.revisions & mask != 0)
        .filter(|m| match m.kind {
            Kind::Request => !is_notification,
            Kind::Notification => is_notification,
            Kind::ServerToClient => false,
        })
        .ok_or_else(|| ErrorObject::method_not_found(method))?;
    let mut route = Route {
        dialect,
        method: Some(method),
        target: spec.target,
        streaming: spec.streaming,
        cache: spec.cache,
        scope: None,
        writes: false,
        tool: None,
        a2a: None,
    };
    match spec.scope {
        ScopeRule::None => {}
        ScopeRule::Fixed(s) => route.scope = Some(s),
        ScopeRule::PerTool => {
            let name = tool_name(params)?;
            let policy = tools.tools.get(name).unwrap_or(&tools.unknown);
            route.tool = Some(name);
            route.scope = policy.scope.as_deref();
            route.writes = policy.writes;
            route.cache = (policy.cache_ttl_ms > 0)
                .then_some(CacheRule { max_ttl_ms: policy.cache_ttl_ms, scope: CacheScope::Shared });
        }
    }
    Ok(route)
}

fn route_a2a<'a>(
    method: &'a str,
    params: Option<&Value>,
    version: A2aVersion,
    is_notification: bool,
    dialect: Dialect,
) -> Result<Route<'a>, ErrorObject> {
    let spec = A2A_METHODS
        .iter()
        .find(|m| match version {
            A2aVersion::V0_3 => m.v03 == Some(method),
            A2aVersion::V1_0 => m.v10 == Some(method),
        })
        .ok_or_else(|| ErrorObject::method_not_found(method))?;
    if is_notification {
        // What is wrong with its parameters comes before that it lacks an id.
        check_a2a_params(spec.op, version, params)?;
        // A2A has no notifications: the method exists, the message lacks its id.
        return Err(ErrorObject::new(
            crate::jsonrpc::code::INVALID_REQUEST,
            format!("Invalid Request: {method} is a request and needs an id (A2A has no notifications)"),
        ));
    }
    Ok(Route {
        dialect,
        method: Some(method),
        target: Target::Origin(Endpoint::A2a),
        streaming: spec.streaming,
        cache: None,
        scope: match spec.scope {
            ScopeRule::Fixed(s) => Some(s),
            ScopeRule::None | ScopeRule::PerTool => None,
        },
        writes: false,
        tool: None,
        a2a: Some(spec.op),
    })
}

/// The parameters an A2A operation cannot run without, by their JSON names: `message` an object,
/// the rest strings. The origin checks everything else.
fn required_a2a_params(op: A2aOperation, version: A2aVersion) -> &'static [&'static str] {
    use A2aOperation as Op;
    match (op, version) {
        (Op::SendMessage | Op::SendStreamingMessage, _) => &["message"],
        (Op::GetTask | Op::CancelTask | Op::SubscribeToTask, _) => &["id"],
        (Op::CreatePushConfig, A2aVersion::V0_3) => &["taskId"],
        (Op::CreatePushConfig | Op::ListPushConfigs, A2aVersion::V1_0) => &["taskId"],
        (Op::GetPushConfig | Op::DeletePushConfig, A2aVersion::V1_0) => &["taskId", "id"],
        (Op::GetPushConfig | Op::ListPushConfigs | Op::DeletePushConfig, A2aVersion::V0_3) => &["id"],
        (Op::ListTasks | Op::GetExtendedCard, _) => &[],
    }
}

/// Whether an A2A call has the parameters its operation cannot run without (see
/// [`required_a2a_params`]); -32602 if not. Run after the scope check, so a call that could never
/// run is refused before any origin work.
pub fn check_a2a_params(op: A2aOperation, version: A2aVersion, params: Option<&Value>) -> Result<(), ErrorObject> {
    let required = required_a2a_params(op, version);
    for &name in required {
        // ProtoJSON readers take a field's proto name too (`task_id` for `taskId`).
        let value = params.and_then(|p| p.get(name).or_else(|| p.get(proto_name(name).as_str())));
        let ok = match (name, value) {
            ("message", Some(v)) => v.is_object(),
            (_, Some(v)) => v.is_string(),
            (_, None) => false,
        };
        if !ok {
            let kind = if name == "message" { "an object" } else { "a string" };
            return Err(ErrorObject::invalid_params(format!("Invalid params: {name} is required and must be {kind}")));
        }
    }
    Ok(())
}

/// `taskId` → `task_id`.
fn proto_name(json_name: &str) -> String {
    let mut out = String::with_capacity(json_name.len() + 4);
    for c in json_name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `params.name` of a `tools/call`.
fn tool_name(params: Option<&Value>) -> Result<&str, ErrorObject> {
    match params.and_then(|p| p.get("name")) {
        Some(Value::String(name)) if !name.is_empty() => Ok(name),
        Some(_) => Err(ErrorObject::invalid_params("params.name must be a non-empty string (the tool to call)")
            .with_data(serde_json::json!({ "field": "name" }))),
        None => Err(ErrorObject::invalid_params("params.name is required (the tool to call)")
            .with_data(serde_json::json!({ "field": "name" }))),
    }
}

/// The value a 2026-07-28 client must mirror in `Mcp-Name`: the tool or prompt name, or the
/// resource URI.
pub fn mcp_name_param<'a>(method: &str, params: Option<&'a Value>) -> Option<&'a str> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params.and_then(|p| p.get(field)).and_then(Value::as_str)
}

/// Every method name the catalogue knows, for documentation and tests:
/// `(protocol, version or revisions, name, accepted from clients)`.
pub fn all_methods() -> impl Iterator<Item = (Protocol, Vec<&'static str>, &'static str, bool)> {
    let mcp = MCP_METHODS.iter().map(|m| {
        let revs = McpRevision::ALL.iter().filter(|r| m.revisions & r.bit() != 0).map(|r| r.as_str()).collect();
        (Protocol::Mcp, revs, m.name, m.kind != Kind::ServerToClient)
    });
    let a2a = A2A_METHODS.iter().flat_map(|m| {
        [(m.v03, "0.3"), (m.v10, "1.0")]
            .into_iter()
            .filter_map(|(name, v)| name.map(|n| (Protocol::A2a, vec![v], n, true)))
    });
    mcp.chain(a2a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{Limits, code, parse};

    fn msg(s: &str) -> Message {
        parse(s.as_bytes(), &Limits::default()).unwrap()
    }

    fn req(method: &str, params: &str) -> Message {
        msg(&format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#))
    }

    const V0618: Dialect = Dialect::Mcp(Some(McpRevision::V2025_06_18));
    const V1125: Dialect = Dialect::Mcp(Some(McpRevision::V2025_11_25));
    const V0728: Dialect = Dialect::Mcp(Some(McpRevision::V2026_07_28));

    #[test]
    fn every_client_method_of_every_revision_routes() {
        let tools = ToolPolicies::default();
        for (protocol, versions, name, from_client) in all_methods() {
            for v in versions {
                let dialect = match protocol {
                    Protocol::Mcp => Dialect::Mcp(McpRevision::parse(v)),
                    Protocol::A2a => Dialect::A2a(A2aVersion::from_header(Some(v)).unwrap()),
                };
                let m = if name.starts_with("notifications/") {
                    msg(&format!(r#"{{"jsonrpc":"2.0","method":"{name}"}}"#))
                } else {
                    req(
                        name,
                        r#"{"name":"hybrid_search","uri":"agentplane://documents/x","message":{},"id":"t","taskId":"t"}"#,
                    )
                };
                let r = route(&m, dialect, &tools);
                assert_eq!(r.is_ok(), from_client, "{protocol:?} {v} {name}: {r:?}");
            }
        }
    }

    #[test]
    fn revisions_gate_methods() {
        let tools = ToolPolicies::default();
        let init = req("initialize", "{}");
        assert!(route(&init, V0618, &tools).is_ok());
        assert!(route(&init, Dialect::Mcp(None), &tools).is_ok());
        assert_eq!(route(&init, V0728, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        let discover = req("server/discover", "{}");
        assert_eq!(route(&discover, V1125, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        assert!(route(&discover, V0728, &tools).unwrap().cache.is_some());
        assert_eq!(route(&req("tasks/list", "{}"), V0618, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        assert!(route(&req("tasks/list", "{}"), V1125, &tools).is_ok());
        let ping_msg = req("ping", "{}");
        let ping = route(&ping_msg, V1125, &tools).unwrap();
        assert_eq!(ping.target, Target::EdgePong);
        assert_eq!(route(&req("ping", "{}"), V0728, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
    }

    #[test]
    fn unknown_and_server_only_methods_are_not_found() {
        let tools = ToolPolicies::default();
        for m in ["nope", "sampling/createMessage", "elicitation/create", ""] {
            assert_eq!(route(&req(m, "{}"), V1125, &tools).unwrap_err().code, code::METHOD_NOT_FOUND, "{m}");
        }
        // A request may not use a notification's name, nor the reverse.
        let n = msg(r#"{"jsonrpc":"2.0","method":"tools/list"}"#);
        assert_eq!(route(&n, V1125, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        assert_eq!(
            route(&req("notifications/initialized", "{}"), V1125, &tools).unwrap_err().code,
            code::METHOD_NOT_FOUND
        );
    }

    #[test]
    fn tools_call_scope_cache_and_writes_come_from_the_tool() {
        let tools = ToolPolicies::default();
        let search_msg = req("tools/call", r#"{"name":"hybrid_search"}"#);
        let search = route(&search_msg, V1125, &tools).unwrap();
        assert_eq!(search.scope, Some(SCOPE_SEARCH_READ));
        assert_eq!(search.tool, Some("hybrid_search"));
        assert_eq!(search.cache, Some(CacheRule { max_ttl_ms: 30_000, scope: CacheScope::Shared }));
        assert!(!search.writes);
        let upsert_msg = req("tools/call", r#"{"name":"upsert_document"}"#);
        let upsert = route(&upsert_msg, V1125, &tools).unwrap();
        assert_eq!((upsert.scope, upsert.cache, upsert.writes), (Some(SCOPE_DOCS_WRITE), None, true));
        let other_msg = req("tools/call", r#"{"name":"test_simple_text"}"#);
        let other = route(&other_msg, V1125, &tools).unwrap();
        assert_eq!((other.scope, other.cache, other.writes), (None, None, true));
        for bad in [r#"{}"#, r#"{"name":7}"#, r#"{"name":""}"#] {
            let e_msg = req("tools/call", bad);
            let e = route(&e_msg, V1125, &tools).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMS, "{bad}");
        }
        let e_msg = msg(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#);
        let e = route(&e_msg, V1125, &tools).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
    }

    #[test]
    fn a2a_versions_have_disjoint_names() {
        let tools = ToolPolicies::default();
        let v03 = Dialect::A2a(A2aVersion::V0_3);
        let v10 = Dialect::A2a(A2aVersion::V1_0);
        let full = r#"{"message":{},"id":"t","taskId":"t"}"#;
        let stream_msg = req("message/stream", full);
        let stream = route(&stream_msg, v03, &tools).unwrap();
        assert_eq!((stream.streaming, stream.scope), (Streaming::Always, Some(SCOPE_TASKS_RUN)));
        assert_eq!(route(&req("message/stream", full), v10, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        assert_eq!(route(&req("SendStreamingMessage", full), v10, &tools).unwrap().streaming, Streaming::Always);
        assert_eq!(route(&req("SendStreamingMessage", full), v03, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
        assert_eq!(route(&req("ListTasks", "{}"), v10, &tools).unwrap().streaming, Streaming::Never);
        assert_eq!(route(&req("SubscribeToTask", full), v10, &tools).unwrap().streaming, Streaming::Always);
        // A2A has no notifications: a known method without an id is an invalid request, not an
        // unknown method; with parameters it could never run with, it is told that first.
        let notification = msg(r#"{"jsonrpc":"2.0","method":"message/send","params":{"message":{}}}"#);
        assert_eq!(route(&notification, v03, &tools).unwrap_err().code, code::INVALID_REQUEST);
        let hopeless = msg(r#"{"jsonrpc":"2.0","method":"message/send","params":{"":"not_a_dict"}}"#);
        assert_eq!(route(&hopeless, v03, &tools).unwrap_err().code, code::INVALID_PARAMS);
        let unknown = msg(r#"{"jsonrpc":"2.0","method":"message/nope"}"#);
        assert_eq!(route(&unknown, v03, &tools).unwrap_err().code, code::METHOD_NOT_FOUND);
    }

    #[test]
    fn both_a2a_name_sets_map_to_the_same_operations() {
        let tools = ToolPolicies::default();
        let (v03, v10) = (Dialect::A2a(A2aVersion::V0_3), Dialect::A2a(A2aVersion::V1_0));
        let op = |name: &str, d| {
            route(&req(name, r#"{"message":{},"id":"t","taskId":"t"}"#), d, &tools).ok().and_then(|r| r.a2a)
        };
        assert_eq!(op("message/send", v03), Some(A2aOperation::SendMessage));
        assert_eq!(op("SendMessage", v10), Some(A2aOperation::SendMessage));
        assert_eq!(op("ListTaskPushNotificationConfigs", v10), Some(A2aOperation::ListPushConfigs));
        assert_eq!(op("tasks/pushNotificationConfig/set", v03), Some(A2aOperation::CreatePushConfig));
        assert_eq!(op("agent/getAuthenticatedExtendedCard", v03), Some(A2aOperation::GetExtendedCard));
        assert_eq!(route(&req("tools/list", "{}"), V1125, &tools).unwrap().a2a, None);
    }

    #[test]
    fn a2a_calls_without_their_required_params_are_refused() {
        let tools = ToolPolicies::default();
        let (v03, v10) = (Dialect::A2a(A2aVersion::V0_3), Dialect::A2a(A2aVersion::V1_0));
        let code_of = |name: &str, params: &str, d| {
            let m = req(name, params);
            let r = route(&m, d, &tools).unwrap();
            let Dialect::A2a(v) = d else { unreachable!() };
            check_a2a_params(r.a2a.unwrap(), v, m.params()).err().map(|e| e.code)
        };
        assert_eq!(code_of("SendMessage", "{}", v10), Some(code::INVALID_PARAMS));
        assert_eq!(code_of("SendMessage", r#"{"message":"hi"}"#, v10), Some(code::INVALID_PARAMS));
        assert_eq!(code_of("GetTask", r#"{"id":7}"#, v10), Some(code::INVALID_PARAMS));
        assert_eq!(code_of("GetTask", r#"{"id":"t"}"#, v10), None);
        // ProtoJSON's proto names are read too.
        assert_eq!(code_of("GetTaskPushNotificationConfig", r#"{"task_id":"t","id":"c"}"#, v10), None);
        assert_eq!(code_of("GetTaskPushNotificationConfig", r#"{"id":"c"}"#, v10), Some(code::INVALID_PARAMS));
        assert_eq!(code_of("tasks/pushNotificationConfig/get", r#"{"id":"t"}"#, v03), None);
        assert_eq!(code_of("ListTasks", "[]", v10), None);
    }

    #[test]
    fn a2a_version_header() {
        assert_eq!(A2aVersion::from_header(None), Ok(A2aVersion::V0_3));
        assert_eq!(A2aVersion::from_header(Some("")), Ok(A2aVersion::V0_3));
        assert_eq!(A2aVersion::from_header(Some("1.0")), Ok(A2aVersion::V1_0));
        assert_eq!(A2aVersion::from_header(Some("2.0")).unwrap_err().code, code::A2A_VERSION_NOT_SUPPORTED);
    }

    #[test]
    fn responses_from_the_client_go_back_to_the_origin() {
        let tools = ToolPolicies::default();
        let r_msg = msg(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#);
        let r = route(&r_msg, V1125, &tools).unwrap();
        assert_eq!((r.target, r.method, r.scope), (Target::Origin(Endpoint::Mcp), None, None));
    }
}
