//! The MCP server on rmcp's Streamable HTTP transport: agentplane's tools, document resources and
//! prompt, plus (in `dev-tools` builds, when switched on) the conformance suite's fixtures.
//!
//! The gate in front of this service has already verified the token, checked the envelope and the
//! scope; handlers read the verified [`Principal`] from the request's extensions and scope every
//! database access to its tenant.
//!
//! Why rmcp: the official Rust SDK implements Streamable HTTP for 2025-06-18, 2025-11-25 (sessions)
//! and the stateless 2026-07-28 revision, Host checks, SSE keep-alive and resumption, and passes
//! the official conformance suite with our fixtures; what it does not know (our tokens, tenants,
//! scopes, limits) stays in the gate. Sessions (2025 revisions) are rows in PostgreSQL that any
//! replica serves (`sessions.rs`, `fleet.rs`), their standalone streams a log any replica
//! delivers (`events.rs`); 2026-07-28 clients are stateless.

mod args;
pub mod events;
pub mod fleet;
pub mod sessions;
mod subscriptions;
mod tasks;
mod tasks_2025;
pub mod tools;

use std::sync::Arc;
use std::time::Duration;

use agentplane_core::auth::Principal;
use agentplane_core::catalogue::ToolPolicies;
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::json;
use uuid::Uuid;

use crate::data::db::{Database, TenantId};
use crate::data::docs::{self, DocError};
#[cfg(feature = "dev-tools")]
use crate::dev::fixtures;

const DOCUMENT_URI: &str = "agentplane://documents/";
const ANSWER_PROMPT: &str = "answer_with_citations";

/// What every MCP handler shares.
#[derive(Debug)]
pub struct McpState {
    pub db: Database,
    pub tools: ToolPolicies,
    /// Whether the conformance suite's fixtures are served too.
    #[cfg(feature = "dev-tools")]
    pub fixtures: bool,
    /// Makes query and document vectors; `None` means lexical search only.
    pub embedder: Option<crate::models::embed::Embedder>,
    /// Where searches record their phases.
    pub metrics: std::sync::Arc<crate::app::metrics::Metrics>,
    /// The task engine A2A runs on, which runs `research` as MCP tasks too.
    pub a2a: Arc<crate::protocol::a2a::A2a>,
    /// Every tool this server offers (fixtures included when on), built once: rmcp asks for a
    /// tool's definition on every 2026-07-28 call, and the schemas are not cheap to build.
    definitions: Vec<Tool>,
}

impl McpState {
    pub fn new(
        db: Database,
        tools: ToolPolicies,
        embedder: Option<crate::models::embed::Embedder>,
        a2a: Arc<crate::protocol::a2a::A2a>,
    ) -> Self {
        let mut definitions = tools::definitions();
        definitions.extend(tasks::definitions(a2a.test_workflows()));
        Self {
            db,
            tools,
            #[cfg(feature = "dev-tools")]
            fixtures: false,
            embedder,
            metrics: std::sync::Arc::default(),
            a2a,
            definitions,
        }
    }

    /// Records into `metrics` (the process's `/metrics`) rather than a registry of its own.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::app::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves the conformance suite's fixture tools, prompts and resources too.
    #[cfg(feature = "dev-tools")]
    pub fn with_conformance_fixtures(mut self) -> Self {
        self.fixtures = true;
        self.definitions.extend(fixtures::tools());
        self
    }
}

/// `list`, followed by the fixtures' items when `on`.
#[cfg(feature = "dev-tools")]
fn with_fixtures<T>(on: bool, mut list: Vec<T>, fixtures: impl FnOnce() -> Vec<T>) -> Vec<T> {
    if on {
        list.extend(fixtures());
    }
    list
}

#[derive(Debug, Clone)]
pub struct Server {
    state: Arc<McpState>,
    /// The tenants' resource change feed, for `subscriptions/listen`.
    changes: Arc<crate::data::db::listen::Hub>,
    /// Session rows, for what a session keeps (its log level).
    sessions: Arc<sessions::Sessions>,
}

/// How the process keeps MCP sessions.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub sessions: Arc<sessions::Sessions>,
    /// Sessions idle this long end everywhere.
    pub idle: Duration,
    pub hubs: Hubs,
}

/// The database channels MCP follows.
#[derive(Debug, Clone)]
pub struct Hubs {
    /// Session stream events.
    events: Arc<crate::data::db::listen::Hub>,
    /// Ended sessions.
    closed: Arc<crate::data::db::listen::Hub>,
    /// Client answers to server requests.
    inbox: Arc<crate::data::db::listen::Hub>,
    /// Tenants' resource changes.
    changes: Arc<crate::data::db::listen::Hub>,
}

impl Hubs {
    pub fn register(listener: &mut crate::data::db::listen::Listener, timing: crate::data::db::listen::Timing) -> Self {
        Self {
            events: listener.hub(events::EVENTS_CHANNEL, timing),
            closed: listener.hub(sessions::CLOSED_CHANNEL, timing),
            inbox: listener.hub(fleet::INBOX_CHANNEL, timing),
            changes: listener.hub(subscriptions::CHANGES_CHANNEL, timing),
        }
    }
}

/// The MCP endpoint, to be nested at `/mcp` behind the gate: rmcp's service, with the 2025-11-25
/// revision's tasks in front (`tasks_2025.rs`). Starts the process's session upkeep: dropping
/// sessions another replica ended, sweeping idle ones.
pub fn service(
    state: Arc<McpState>,
    settings: SessionSettings,
    allowed_hosts: &[String],
    cancel: tokio_util::sync::CancellationToken,
) -> axum::Router {
    let tasks = Arc::new(tasks_2025::Tasks2025 { state: state.clone(), sessions: settings.sessions.clone() });
    axum::Router::new()
        .fallback_service(rmcp_service(state, settings, allowed_hosts, cancel))
        .layer(axum::middleware::from_fn_with_state(tasks, tasks_2025::layer))
}

fn rmcp_service(
    state: Arc<McpState>,
    settings: SessionSettings,
    allowed_hosts: &[String],
    cancel: tokio_util::sync::CancellationToken,
) -> StreamableHttpService<Server, fleet::Fleet> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    hosts.extend(allowed_hosts.iter().cloned());
    let Hubs { events: hub, closed, inbox, changes } = settings.hubs;
    let log = events::SessionEvents::new(state.db.clone(), settings.sessions.clone(), hub, closed.clone());
    let manager = Arc::new(fleet::Fleet::new(state.db.clone(), settings.sessions.clone(), log, inbox));
    tokio::spawn(manager.clone().deliver_answers(cancel.child_token()));
    tokio::spawn(drop_closed_sessions(closed, settings.sessions.clone(), manager.clone(), cancel.child_token()));
    tokio::spawn(sweep_idle_sessions(settings.sessions.clone(), settings.idle, cancel.child_token()));
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        // A stateless (2026-07-28) call that emits nothing before its answer gets plain JSON,
        // which the edge can cache; one that sends progress first still streams as SSE.
        .with_json_response(true)
        .with_cancellation_token(cancel);
    config.session_store = Some(settings.sessions.clone());
    let sessions = settings.sessions.clone();
    StreamableHttpService::new(
        move || Ok(Server { state: state.clone(), changes: changes.clone(), sessions: sessions.clone() }),
        manager,
        config,
    )
}

/// Ends this process's worker of every session that ended elsewhere (a `DELETE` on another
/// replica, the sweep).
async fn drop_closed_sessions(
    closed: Arc<crate::data::db::listen::Hub>,
    sessions: Arc<sessions::Sessions>,
    manager: Arc<fleet::Fleet>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut rx = closed.subscribe();
    loop {
        let id = tokio::select! {
            () = cancel.cancelled() => return,
            r = rx.recv() => match r {
                Ok((id, _)) => id,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        sessions.forget(id);
        let sid: rmcp::transport::streamable_http_server::session::SessionId = id.to_string().into();
        if let Err(e) = manager.close_session(&sid).await {
            tracing::warn!(error = %e, session = %id, "closing an ended MCP session failed");
        }
    }
}

/// Ends idle sessions of every tenant; every replica runs it, which costs one small statement
/// per replica and interval.
async fn sweep_idle_sessions(
    sessions: Arc<sessions::Sessions>,
    idle: Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match sessions.sweep(idle).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(ended = n, "idle MCP sessions ended"),
            Err(e) => tracing::warn!(error = %e, "sweeping idle MCP sessions failed"),
        }
    }
}

fn principal(ctx: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        // The gate inserts a principal into every request it lets through; a request without one
        // did not come through the gate.
        .ok_or_else(|| McpError::internal_error("request carries no verified principal", None))
}

/// The session a 2025-revision request belongs to (`Mcp-Session-Id`, checked by the gate).
fn session_of(ctx: &RequestContext<RoleServer>) -> Result<Uuid, McpError> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::try_parse(v).ok())
        .ok_or_else(|| McpError::invalid_request("this method needs a session (Mcp-Session-Id)", None))
}

fn may_call(tools: &ToolPolicies, principal: &Principal, name: &str) -> bool {
    let policy = tools.tools.get(name).unwrap_or(&tools.unknown);
    // Task tools start A2A tasks, whatever a policy table says.
    policy.scope.as_deref().is_none_or(|s| principal.scopes.contains(s))
        && (!tasks::NAMES.contains(&name) || tasks::may_run(principal))
}

/// A call of a tool this server does not offer: invalid params, naming it.
fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(format!("unknown tool: {name}"), Some(json!({ "field": "name", "tool": name })))
}

/// A call of a tool the token may not use (the gate refuses most before they get here).
fn lacks_scope(name: &str) -> McpError {
    McpError::invalid_request(format!("token lacks the scope {name} needs"), None)
}

fn document_uri(id: Uuid) -> String {
    format!("{DOCUMENT_URI}{id}")
}

fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found(format!("resource not found: {uri}"), Some(json!({ "uri": uri })))
}

/// A known tool's invalid arguments are a failed tool execution (`isError`, with a message a model
/// can act on), as the 2025-11-25 revision asks; unknown tools and malformed requests stay
/// protocol errors.
fn argument_error<T: From<CallToolResult>>(e: McpError) -> Result<T, McpError> {
    if e.code == ErrorCode::INVALID_PARAMS {
        return Ok(CallToolResult::error(vec![ContentBlock::text(e.message.into_owned())]).into());
    }
    Err(e)
}

fn db_error(e: &sqlx::Error) -> McpError {
    tracing::error!(error = %e, "database error");
    McpError::internal_error("database error", None)
}

impl Server {
    /// A tool call, uncounted (`call_tool` counts it).
    async fn run_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
        principal: &Principal,
    ) -> Result<CallToolResponse, McpError> {
        let args = req.arguments.clone().unwrap_or_default();
        let name = req.name.as_ref();
        let offered = self.state.definitions.iter().any(|t| t.name == name);
        if offered && tasks::NAMES.contains(&name) {
            if !may_call(&self.state.tools, principal, name) {
                return Err(lacks_scope(name));
            }
            return tasks::call(&self.state.a2a, principal, name, &args, &ctx).await.or_else(argument_error);
        }
        if tools::NAMES.contains(&name) {
            // The gate refused missing scopes already; this keeps the handler safe on its own.
            if !may_call(&self.state.tools, principal, name) {
                return Err(lacks_scope(name));
            }
            match tools::call(&self.state, principal, name, &args).await {
                Ok(Some(result)) => return Ok(result.into()),
                Ok(None) => {}
                Err(e) => return argument_error(e),
            }
        }
        #[cfg(feature = "dev-tools")]
        if self.state.fixtures && self.state.definitions.iter().any(|t| t.name == name) {
            return Ok(fixtures::call(name, &args, &ctx).await?.into());
        }
        Err(unknown_tool(name))
    }
}

impl ServerHandler for Server {
    // Logging is deprecated in 2026-07-28 but the session-era revisions (and their conformance
    // scenarios) still use it.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_logging()
            .enable_completions()
            .enable_tasks()
            .build();
        self.info(caps)
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal(&ctx)?;
        // Fixture tools carry no scope, so the filter always keeps them.
        let list: Vec<Tool> = self
            .state
            .definitions
            .iter()
            .filter(|t| may_call(&self.state.tools, &principal, &t.name))
            .cloned()
            .collect();
        Ok(ListToolsResult::with_all_items(list))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.definitions.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = principal(&ctx)?;
        let offered = self.state.definitions.iter().any(|t| t.name == req.name);
        // A name no tool has is the client's to choose, so it is never a label.
        let tool = if offered { req.name.to_string() } else { "other".to_owned() };
        let started = std::time::Instant::now();
        // rmcp runs this on a task of its own: the gate's request span is the parent.
        let request = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<crate::app::gate::RequestSpan>())
            .map(|s| s.0.clone());
        let span = match &request {
            Some(parent) => {
                tracing::info_span!(parent: parent, "tool", otel.name = format!("tool {tool}"), tool = %tool)
            }
            None => tracing::info_span!("tool", otel.name = format!("tool {tool}"), tool = %tool),
        };
        let result = tracing::Instrument::instrument(self.run_tool(req, ctx, &principal), span).await;
        let ok = match &result {
            Ok(CallToolResponse::Complete(r)) => r.is_error != Some(true),
            Ok(_) => true,
            Err(_) => false,
        };
        self.state.metrics.observe_tool(&tool, &principal, ok, started.elapsed());
        result
    }

    async fn list_resources(
        &self,
        req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let principal = principal(&ctx)?;
        let after = match req.and_then(|r| r.cursor) {
            Some(c) => Some(Uuid::try_parse(&c).map_err(|_| {
                McpError::invalid_params("cursor is not one this server issued", Some(json!({"field": "cursor"})))
            })?),
            None => None,
        };
        let mut tx = self.state.db.tenant_tx(TenantId::of(&principal)).await.map_err(|e| db_error(&e))?;
        let (page, next) = docs::list(&mut tx, after, 100, None).await.map_err(|e| match e {
            DocError::Sql(e) => db_error(&e),
            DocError::NotFound => McpError::internal_error("unexpected", None),
        })?;
        let list: Vec<Resource> = page
            .into_iter()
            .map(|d| {
                let name = if d.title.is_empty() { d.id.to_string() } else { d.title.clone() };
                Resource::new(document_uri(d.id), name)
                    .with_description("A document of this tenant")
                    .with_mime_type("text/plain")
            })
            .collect();
        #[cfg(feature = "dev-tools")]
        let list = with_fixtures(self.state.fixtures && after.is_none(), list, fixtures::resources);
        let mut result = ListResourcesResult::with_all_items(list);
        result.next_cursor = next.map(|id| id.to_string());
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let list = vec![
            ResourceTemplate::new(format!("{DOCUMENT_URI}{{id}}"), "document")
                .with_description("A document by id; the text is its content")
                .with_mime_type("text/plain"),
        ];
        #[cfg(feature = "dev-tools")]
        let list = with_fixtures(self.state.fixtures, list, fixtures::resource_templates);
        Ok(ListResourceTemplatesResult::with_all_items(list))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = req.uri.as_str();
        if let Some(id) = uri.strip_prefix(DOCUMENT_URI) {
            let principal = principal(&ctx)?;
            let id = Uuid::try_parse(id).map_err(|_| not_found(uri))?;
            let mut tx = self.state.db.tenant_tx(TenantId::of(&principal)).await.map_err(|e| db_error(&e))?;
            let doc = docs::get(&mut tx, id).await.map_err(|e| match e {
                DocError::NotFound => not_found(uri),
                DocError::Sql(e) => db_error(&e),
            })?;
            let contents = ResourceContents::text(doc.content, uri).with_mime_type("text/plain");
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        #[cfg(feature = "dev-tools")]
        if self.state.fixtures
            && let Some(contents) = fixtures::read(uri)
        {
            return Ok(ReadResourceResult::new(vec![contents]).into());
        }
        Err(not_found(uri))
    }

    #[allow(deprecated)]
    async fn subscribe(&self, req: SubscribeRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let principal = principal(&ctx)?;
        let session = session_of(&ctx)?;
        subscriptions::subscribe(&self.state.db, TenantId::of(&principal), session, &req.uri).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        req: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = principal(&ctx)?;
        let session = session_of(&ctx)?;
        subscriptions::unsubscribe(&self.state.db, TenantId::of(&principal), session, &req.uri).await
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(subscriptions::accepted(requested))
    }

    async fn listen(&self, ctx: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let principal = principal(ctx.request_context())?;
        subscriptions::listen(&self.state.db, &self.changes, TenantId::of(&principal), ctx).await
    }

    async fn get_task(&self, req: GetTaskParams, ctx: RequestContext<RoleServer>) -> Result<GetTaskResult, McpError> {
        let principal = principal(&ctx)?;
        Ok(GetTaskResult::new(tasks::get(&self.state.a2a, &principal, &req.task_id).await?))
    }

    async fn cancel_task(&self, req: CancelTaskParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let principal = principal(&ctx)?;
        tasks::cancel(&self.state.a2a, &principal, &req.task_id).await
    }

    async fn list_prompts(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let list = vec![Prompt::new(
            ANSWER_PROMPT,
            Some("Answer a question from this tenant's documents, citing each claim by document id"),
            Some(vec![PromptArgument::new("question").with_description("The question to answer").with_required(true)]),
        )];
        #[cfg(feature = "dev-tools")]
        let list = with_fixtures(self.state.fixtures, list, fixtures::prompts);
        Ok(ListPromptsResult::with_all_items(list))
    }

    async fn get_prompt(
        &self,
        req: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = req.arguments.unwrap_or_default();
        if req.name == ANSWER_PROMPT {
            let question =
                args.get("question").and_then(|v| v.as_str()).filter(|q| !q.trim().is_empty()).ok_or_else(|| {
                    McpError::invalid_params("argument question is required", Some(json!({ "field": "question" })))
                })?;
            let text = format!(
                "Answer the question below using only this tenant's documents.\n\
                 1. Call the hybrid_search tool with the question (or sharper sub-queries).\n\
                 2. Read the best hits (get_document for full text when a snippet is not enough).\n\
                 3. Answer in a few sentences. After every claim, cite its source as [document id].\n\
                 4. If the documents do not answer the question, say so; do not guess.\n\n\
                 Question: {question}"
            );
            let result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description("Answer with citations");
            return Ok(result.into());
        }
        #[cfg(feature = "dev-tools")]
        if self.state.fixtures
            && let Some(result) = fixtures::get_prompt(&req.name, &args)
        {
            return Ok(result.into());
        }
        Err(McpError::invalid_params(format!("unknown prompt: {}", req.name), Some(json!({ "field": "name" }))))
    }

    async fn complete(
        &self,
        _req: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let info = CompletionInfo::new(Vec::new()).map_err(|e| McpError::internal_error(e, None))?;
        Ok(CompleteResult::new(info))
    }

    #[allow(deprecated)]
    async fn set_level(&self, req: SetLevelRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let principal = principal(&ctx)?;
        // Outside a session (2026-07-28, where the method is deprecated) there is nothing to keep.
        let Ok(session) = session_of(&ctx) else { return Ok(()) };
        let level =
            serde_json::to_value(req.level).ok().and_then(|v| v.as_str().map(str::to_owned)).ok_or_else(|| {
                McpError::invalid_params("level is not a logging level", Some(json!({ "field": "level" })))
            })?;
        self.sessions.set_log_level(session, &principal, &level).await.map_err(|e| db_error(&e))
    }
}

impl Server {
    fn info(&self, caps: ServerCapabilities) -> ServerConfig {
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("agentplane", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "agentplane serves this tenant's documents. Use hybrid_search to find passages, get_document to read \
                 one, and the answer_with_citations prompt to answer questions with sources.",
            )
    }
}
