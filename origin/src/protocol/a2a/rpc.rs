//! The A2A methods: each reads its parameters in the client's version, works in transactions of
//! the caller's tenant, and answers in the client's version.

use std::time::Duration;

use agentplane_core::catalogue::A2aVersion;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::A2aError;
use super::store::{self, TaskRow};
use super::stream::{self, Start, StreamRequest};
use super::wire::{self, Role, TaskState};
use super::{A2a, push, ssrf, workflow};
use crate::data::db::TenantId;

/// The scope that lets a caller see, cancel and configure every task of its tenant.
pub const TASK_ADMIN_SCOPE: &str = "tasks:admin";

/// How long `CancelTask` waits for the executor to reach its next step boundary.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// The most messages one task takes (its first, the agent's questions, the user's replies and
/// follow-ups): a conversation that long belongs in a new task, and the row stays small.
const MAX_TASK_MESSAGES: usize = 64;

/// What a method answers: a result, an SSE stream of results, or (gRPC) the stream's results
/// themselves with their sequence numbers.
pub(super) enum Outcome {
    Result(Value),
    Stream(Response),
    Events(tokio::sync::mpsc::Receiver<(i64, Value)>),
}

/// One call, with who made it.
pub(super) struct Call<'a> {
    pub a2a: &'a A2a,
    pub version: A2aVersion,
    pub tenant: TenantId,
    pub subject: String,
    /// Whether the caller may see every task of its tenant (scope [`TASK_ADMIN_SCOPE`]); others
    /// see only the tasks they submitted.
    pub task_admin: bool,
    /// The caller's tier, for budgets.
    pub tier: String,
    /// How stream events are framed: as responses to the JSON-RPC call, or bare (HTTP+JSON).
    pub framing: stream::Framing,
    /// `Last-Event-ID`, for a subscribe that resumes a dropped stream.
    pub last_event_id: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> A2aError {
    A2aError::InvalidParams(msg.into())
}

/// A task id from the client: anything that is not one of our ids is simply not found.
fn task_id(params: &Value) -> Result<Uuid, A2aError> {
    let id = params.get("id").and_then(Value::as_str).ok_or_else(|| invalid("id is required"))?;
    Uuid::parse_str(id).map_err(|_| A2aError::TaskNotFound)
}

fn opt_usize(params: &Value, key: &str) -> Result<Option<usize>, A2aError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
            .ok_or_else(|| invalid(format!("{key} must be a non-negative integer"))),
    }
}

fn opt_bool(v: Option<&Value>, key: &str) -> Result<Option<bool>, A2aError> {
    match v.and_then(|c| c.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{key} must be a boolean"))),
    }
}

/// The skill a message asks for: `metadata.skill` on the message, else on the request.
fn skill(message: &wire::Message, params: &Value) -> Result<Option<String>, A2aError> {
    let from_message = message.metadata.as_ref().and_then(|m| m.get("skill"));
    let from_request = params.get("metadata").and_then(|m| m.get("skill"));
    match from_message.or(from_request) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid("metadata.skill must be a string")),
    }
}

const PAGE_DEFAULT: usize = 50;
const PAGE_MAX: usize = 100;

fn page_token(row: &TaskRow) -> String {
    format!("{}_{}", row.created_at.timestamp_micros(), row.id)
}

fn parse_page_token(token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = token.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, Uuid::parse_str(id).ok()?))
}

impl Call<'_> {
    /// The task, if the caller may see it: its own, or any of the tenant's for a task admin.
    /// Another user's task is simply not found, exactly like one that does not exist.
    async fn task(&self, tx: &mut store::Tx, id: Uuid) -> Result<TaskRow, A2aError> {
        self.visible(store::get_task(tx, id).await?)
    }

    fn visible(&self, row: Option<TaskRow>) -> Result<TaskRow, A2aError> {
        row.filter(|r| self.task_admin || r.subject == self.subject).ok_or(A2aError::TaskNotFound)
    }

    pub(super) async fn load(&self, id: Uuid) -> Result<(TaskRow, Vec<wire::Artifact>), A2aError> {
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = self.task(&mut tx, id).await?;
        let artifacts = store::artifacts(&mut tx, id).await?;
        tx.commit().await?;
        Ok((row, artifacts))
    }

    fn stream(&self, task: TaskRow, artifacts: Vec<wire::Artifact>, start: Start) -> Outcome {
        let request = StreamRequest {
            db: self.a2a.db.clone(),
            hub: self.a2a.hub.clone(),
            shutdown: self.a2a.shutdown.clone(),
            version: self.version,
            framing: self.framing.clone(),
            tenant: self.tenant,
            task,
            artifacts,
            start,
        };
        match self.framing {
            stream::Framing::Grpc => Outcome::Events(stream::events(request)),
            _ => Outcome::Stream(stream::sse(request)),
        }
    }

    pub(super) async fn send(&self, params: &Value, streaming: bool) -> Result<Outcome, A2aError> {
        let message = params.get("message").ok_or_else(|| invalid("message is required"))?;
        let message = wire::parse_message(self.version, message).map_err(|e| invalid(e.0))?;
        if message.role != Role::User {
            return Err(invalid("message.role must be the user role"));
        }
        if message.text().trim().is_empty() {
            return Err(A2aError::ContentTypeNotSupported(
                "this agent reads text parts only; the message has none".into(),
            ));
        }
        let configuration = params.get("configuration").filter(|c| !c.is_null());
        let (blocking, push) = match self.version {
            // 0.3: `blocking` asks to wait; absent means answer at once.
            A2aVersion::V0_3 => (
                opt_bool(configuration, "blocking")?.unwrap_or(false),
                configuration.and_then(|c| c.get("pushNotificationConfig")),
            ),
            // 1.0: wait unless `returnImmediately`.
            A2aVersion::V1_0 => (
                !opt_bool(configuration, "returnImmediately")?.unwrap_or(false),
                configuration.and_then(|c| c.get("taskPushNotificationConfig")),
            ),
        };
        let push = push.filter(|p| !p.is_null());
        // The task id is not known yet; it is filled in below.
        let push = push.map(|p| push::config_from(self.version, p, Uuid::nil()).map_err(invalid)).transpose()?;
        if let Some(p) = &push {
            self.check_webhook(&p.url).await?;
        }
        let history_length = match configuration {
            Some(c) => opt_usize(c, "historyLength")?,
            None => None,
        };
        #[cfg(feature = "dev-tools")]
        if self.a2a.ctx.tck_fixtures
            && message.task_id.is_none()
            && let Some(reply) = crate::dev::a2a_tck::message_response(&message)
        {
            let reply = wire::message(self.version, &reply);
            return Ok(Outcome::Result(match self.version {
                A2aVersion::V0_3 => reply,
                A2aVersion::V1_0 => json!({ "message": reply }),
            }));
        }
        let row = match &message.task_id {
            Some(existing) => {
                let row = self.continue_task(existing, &message, push).await?;
                if streaming {
                    // The task as it is now, then what the reply sets going.
                    return Ok(self.stream(row, Vec::new(), Start::Snapshot));
                }
                row
            }
            None => {
                let skill = match self.fixture_workflow(&message) {
                    Some(fixture) => fixture.to_owned(),
                    None => {
                        let named = skill(&message, params)?.unwrap_or_else(|| workflow::DEFAULT.to_owned());
                        if !workflow::is_skill(&named) || workflow::find(&named, self.a2a.ctx.test_workflows).is_none()
                        {
                            return Err(invalid(format!(
                                "unknown skill {named:?}; this agent offers rag_answer and research"
                            )));
                        }
                        named
                    }
                };
                let row = self.create(&message, &skill, push).await?;
                if streaming {
                    return Ok(self.stream(row, Vec::new(), Start::After(0)));
                }
                row
            }
        };
        let (row, artifacts) = if blocking {
            stream::wait_settled(&self.a2a.db, &self.a2a.hub, self.tenant, &row, self.a2a.blocking_wait).await?;
            self.load(row.id).await?
        } else {
            (row, Vec::new())
        };
        let task = stream::task_value(self.version, &row, &artifacts, history_length);
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => task,
            A2aVersion::V1_0 => json!({ "task": task }),
        }))
    }

    /// The authenticated extended card: the public card and this caller's limits (its tier's
    /// request quota, the daily budgets, the tenant's task cap).
    pub(super) fn extended_card(&self) -> Outcome {
        let quota = self.a2a.tiers.tiers.get(&self.tier);
        let limits = json!({
            "tier": self.tier,
            "requests": quota.map(|q| json!({"count": q.count(), "periodSecs": q.period_secs(), "burst": q.burst()})),
            // null: no such limit.
            "dailyBudgetMicros": {
                "tenant": self.a2a.ctx.budgets.tiers.get(&self.tier),
                "perUser": Some(self.a2a.ctx.budgets.per_user_micros).filter(|&m| m > 0),
            },
            "maxActiveTasks": self.a2a.max_active_tasks_per_tenant,
        });
        Outcome::Result(self.a2a.card.extended(self.version, limits))
    }

    /// The compatibility kit's workflow, for one of its messages when its fixtures are on.
    fn fixture_workflow(&self, message: &wire::Message) -> Option<&'static str> {
        #[cfg(feature = "dev-tools")]
        if self.a2a.ctx.tck_fixtures
            && (self.a2a.ctx.tck_reference_agent || crate::dev::a2a_tck::is_kit_message(message))
        {
            return Some(crate::dev::a2a_tck::WORKFLOW);
        }
        let _ = message;
        None
    }

    /// A message for an existing task (`taskId`): the user's reply to a task waiting for input,
    /// which runs again with it, or a follow-up to one still running, which joins its history
    /// (the workflow reads the conversation when it next runs a step that asks). A task that
    /// ended takes no more messages; a `contextId` must be the task's.
    async fn continue_task(
        &self,
        task: &str,
        message: &wire::Message,
        push: Option<store::PushConfig>,
    ) -> Result<TaskRow, A2aError> {
        let id = Uuid::parse_str(task).map_err(|_| A2aError::TaskNotFound)?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = self.visible(store::lock_task(&mut tx, id).await?)?;
        if row.state.is_terminal() {
            return Err(A2aError::UnsupportedOperation(format!(
                "task {id} is already {}; send a new message without taskId to start another",
                row.state.as_str()
            )));
        }
        if let Some(context) = &message.context_id
            && *context != row.context_id
        {
            return Err(invalid(format!("contextId {context:?} is not the context of task {id}")));
        }
        if row.history.len() + 3 > MAX_TASK_MESSAGES {
            return Err(invalid(format!(
                "task {id} has taken its {MAX_TASK_MESSAGES} messages; send a new message without taskId"
            )));
        }
        if row.state == TaskState::InputRequired {
            // The reply makes the task runnable again: it takes an executor like a new task would,
            // so it answers to the same budget and cap.
            self.within_budget_and_cap(&mut tx).await?;
        }
        let row = store::continue_task(&mut tx, &row, message).await?;
        if let Some(mut p) = push {
            p.task_id = id;
            p.delivered_seq = row.last_seq;
            within_push_caps(&mut tx, &p).await?;
            store::put_push_config(&mut tx, &p).await?;
        }
        tx.commit().await?;
        self.a2a.pusher.notify(self.tenant, id);
        Ok(row)
    }

    /// Refuses work that would put the caller over its budget or its tenant over the active-task
    /// cap; the cap's count holds the tenant's task lock to the end of `tx`, so it holds exactly.
    async fn within_budget_and_cap(&self, tx: &mut store::Tx) -> Result<(), A2aError> {
        self.a2a.ctx.budgets.check(tx, &self.tier, &self.subject).await??;
        let limit = self.a2a.max_active_tasks_per_tenant;
        if store::count_active_tasks(tx).await? >= limit {
            return Err(A2aError::TooManyTasks { limit });
        }
        Ok(())
    }

    /// Creates a task of `workflow` for `message`, within the caller's budget and its tenant's task
    /// cap, with its first push config if one came with it; executors pick it up from there.
    pub(super) async fn create(
        &self,
        message: &wire::Message,
        workflow: &str,
        push: Option<store::PushConfig>,
    ) -> Result<TaskRow, A2aError> {
        let context_id = message.context_id.clone().unwrap_or_else(|| Uuid::new_v4().to_string());
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        // Over budget or over the tenant's task cap: refused before any work, and no task is created.
        self.within_budget_and_cap(&mut tx).await?;
        let row = store::create_task(
            &mut tx,
            store::NewTask {
                context_id: &context_id,
                subject: &self.subject,
                tier: &self.tier,
                workflow,
                input: message,
            },
        )
        .await?;
        if let Some(mut p) = push {
            // From the first event on: the client asked for it with the task itself.
            p.task_id = row.id;
            p.delivered_seq = 0;
            within_push_caps(&mut tx, &p).await?;
            store::put_push_config(&mut tx, &p).await?;
        }
        tx.commit().await?;
        self.a2a.pusher.notify(self.tenant, row.id);
        Ok(row)
    }

    /// Asks the task's executor to stop at its next step boundary; the task as it was then.
    pub(super) async fn request_cancel(&self, id: Uuid) -> Result<TaskRow, A2aError> {
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = self.visible(store::lock_task(&mut tx, id).await?)?;
        if let Err(state) = store::request_cancel(&mut tx, &row).await? {
            return Err(A2aError::TaskNotCancelable(state.as_str()));
        }
        tx.commit().await?;
        self.a2a.pusher.notify(self.tenant, id);
        Ok(row)
    }

    pub(super) async fn get(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let history_length = opt_usize(params, "historyLength")?;
        let (row, artifacts) = self.load(id).await?;
        Ok(Outcome::Result(stream::task_value(self.version, &row, &artifacts, history_length)))
    }

    pub(super) async fn list(&self, params: &Value) -> Result<Outcome, A2aError> {
        let page_size = opt_usize(params, "pageSize")?.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&page_size) {
            return Err(invalid(format!("pageSize must be between 1 and {PAGE_MAX}")));
        }
        let text = |key: &str| -> Result<Option<String>, A2aError> {
            match params.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("{key} must be a string"))),
            }
        };
        let state = match text("status")? {
            None => None,
            Some(s) if s == "TASK_STATE_UNSPECIFIED" => None,
            Some(s) => {
                Some(TaskState::from_wire(self.version, &s).ok_or_else(|| invalid(format!("unknown status {s:?}")))?)
            }
        };
        let before = match text("pageToken")? {
            None => None,
            Some(t) => Some(parse_page_token(&t).ok_or_else(|| invalid("pageToken is not one this server issued"))?),
        };
        let status_after = match text("statusTimestampAfter")? {
            None => None,
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|_| invalid("statusTimestampAfter must be an RFC 3339 timestamp"))?
                    .with_timezone(&Utc),
            ),
        };
        let history_length = opt_usize(params, "historyLength")?;
        let include_artifacts = opt_bool(Some(params), "includeArtifacts")?.unwrap_or(false);
        let filter = store::ListFilter {
            context_id: text("contextId")?,
            state,
            status_after,
            before,
            limit: i64::try_from(page_size + 1).unwrap_or(i64::MAX),
            subject: (!self.task_admin).then(|| self.subject.clone()),
        };
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let total = store::count_tasks(&mut tx, &filter).await?;
        let mut rows = store::list_tasks(&mut tx, &filter).await?;
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        let mut tasks = Vec::with_capacity(rows.len());
        for row in &rows {
            let artifacts = if include_artifacts { store::artifacts(&mut tx, row.id).await? } else { Vec::new() };
            tasks.push(stream::task_value(self.version, row, &artifacts, history_length));
        }
        tx.commit().await?;
        let next = if more { rows.last().map(page_token).unwrap_or_default() } else { String::new() };
        Ok(Outcome::Result(json!({
            "tasks": tasks,
            "nextPageToken": next,
            "pageSize": page_size,
            "totalSize": total,
        })))
    }

    /// One page of the caller's tasks (a task admin's: the tenant's), newest first, and the token
    /// of the next page if there is one: MCP's `tasks/list`.
    pub(super) async fn page(
        &self,
        token: Option<&str>,
        size: usize,
    ) -> Result<(Vec<TaskRow>, Option<String>), A2aError> {
        let before = match token {
            None => None,
            Some(t) => Some(parse_page_token(t).ok_or_else(|| invalid("cursor is not one this server issued"))?),
        };
        let filter = store::ListFilter {
            context_id: None,
            state: None,
            status_after: None,
            before,
            limit: i64::try_from(size.saturating_add(1)).unwrap_or(i64::MAX),
            subject: (!self.task_admin).then(|| self.subject.clone()),
        };
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let mut rows = store::list_tasks(&mut tx, &filter).await?;
        tx.commit().await?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more { rows.last().map(page_token) } else { None };
        Ok((rows, next))
    }

    pub(super) async fn cancel(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let row = self.request_cancel(id).await?;
        // A running task stops at its next step boundary; give it a moment to get there.
        stream::wait_settled(&self.a2a.db, &self.a2a.hub, self.tenant, &row, CANCEL_WAIT).await?;
        let (row, artifacts) = self.load(id).await?;
        Ok(Outcome::Result(stream::task_value(self.version, &row, &artifacts, None)))
    }

    /// Refuses a webhook that points inside the network now, rather than at delivery time only.
    /// A host that does not resolve yet is taken: nothing can be learnt from it now, and every
    /// delivery vets the address it connects to.
    async fn check_webhook(&self, url: &str) -> Result<(), A2aError> {
        match ssrf::vet(url, self.a2a.pusher.allow_loopback()).await {
            Ok(_) | Err(ssrf::Refused::Unresolvable(_)) => Ok(()),
            Err(e) => Err(invalid(format!("push notification url refused: {e}"))),
        }
    }

    /// The task named by a push-config call: `taskId` (1.0, and 0.3's set), or `id` (0.3's
    /// get, list and delete).
    fn push_task(&self, params: &Value, set: bool) -> Result<Uuid, A2aError> {
        let key = match (self.version, set) {
            (A2aVersion::V0_3, false) => "id",
            _ => "taskId",
        };
        let id = params.get(key).and_then(Value::as_str).ok_or_else(|| invalid(format!("{key} is required")))?;
        Uuid::parse_str(id).map_err(|_| A2aError::TaskNotFound)
    }

    /// The config id of a get or delete: 0.3 `pushNotificationConfigId`, 1.0 `id`.
    fn push_config_id<'p>(&self, params: &'p Value) -> Option<&'p str> {
        let key = match self.version {
            A2aVersion::V0_3 => "pushNotificationConfigId",
            A2aVersion::V1_0 => "id",
        };
        params.get(key).and_then(Value::as_str)
    }

    pub(super) async fn push_set(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, true)?;
        let mut config = push::parse_config(self.version, params, task).map_err(invalid)?;
        self.check_webhook(&config.url).await?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        let row = self.task(&mut tx, task).await?;
        config.delivered_seq = row.last_seq;
        within_push_caps(&mut tx, &config).await?;
        let stored = store::put_push_config(&mut tx, &config).await?;
        tx.commit().await?;
        Ok(Outcome::Result(push::config_value(self.version, &stored, push::Secrets::Shown)))
    }

    async fn push_configs(&self, task: Uuid) -> Result<Vec<store::PushConfig>, A2aError> {
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        self.task(&mut tx, task).await?;
        let configs = store::push_configs(&mut tx, task).await?;
        tx.commit().await?;
        Ok(configs)
    }

    pub(super) async fn push_get(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let wanted = self.push_config_id(params);
        let configs = self.push_configs(task).await?;
        // 0.3 lets the config id be left out when the task has one config.
        let found = match wanted {
            Some(id) => configs.iter().find(|c| c.id == id),
            None if self.version == A2aVersion::V0_3 => configs.first(),
            None => return Err(invalid("id is required")),
        };
        let config = found.ok_or(A2aError::PushConfigNotFound)?;
        Ok(Outcome::Result(push::config_value(self.version, config, push::Secrets::Withheld)))
    }

    pub(super) async fn push_list(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let configs: Vec<Value> = self
            .push_configs(task)
            .await?
            .iter()
            .map(|c| push::config_value(self.version, c, push::Secrets::Withheld))
            .collect();
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => Value::Array(configs),
            A2aVersion::V1_0 => json!({ "configs": configs, "nextPageToken": "" }),
        }))
    }

    pub(super) async fn push_delete(&self, params: &Value) -> Result<Outcome, A2aError> {
        let task = self.push_task(params, false)?;
        let id = self.push_config_id(params).ok_or_else(|| invalid("the config id is required"))?;
        let mut tx = self.a2a.db.tenant_tx(self.tenant).await?;
        self.task(&mut tx, task).await?;
        // Deleting is idempotent: a config already gone is as deleted as one removed now (the
        // task itself must still be the caller's).
        store::delete_push_config(&mut tx, task, id).await?;
        tx.commit().await?;
        Ok(Outcome::Result(match self.version {
            A2aVersion::V0_3 => Value::Null,
            A2aVersion::V1_0 => json!({}),
        }))
    }

    pub(super) async fn subscribe(&self, params: &Value) -> Result<Outcome, A2aError> {
        let id = task_id(params)?;
        let (row, artifacts) = self.load(id).await?;
        let start = match self.last_event_id {
            // A reconnect: everything after the last event the client saw, even if the task
            // has ended since.
            // An id past the log's end (not one we sent) counts as "seen everything".
            Some(seq) => Start::After(seq.clamp(0, row.last_seq)),
            None if row.state.is_terminal() => {
                return Err(A2aError::UnsupportedOperation(format!(
                    "the task is already {}; there is nothing to subscribe to",
                    row.state.as_str()
                )));
            }
            None => Start::Snapshot,
        };
        Ok(self.stream(row, artifacts, start))
    }
}

/// Refuses a webhook that would take its task or its tenant past their caps (a replaced config
/// does not count twice).
async fn within_push_caps(tx: &mut store::Tx, config: &store::PushConfig) -> Result<(), A2aError> {
    let (on_task, on_tenant) = store::count_push_configs(tx, config.task_id, &config.id).await?;
    if on_task >= push::MAX_CONFIGS_PER_TASK {
        return Err(invalid(format!(
            "a task has at most {} push notification configs; delete one first",
            push::MAX_CONFIGS_PER_TASK
        )));
    }
    if on_tenant >= push::MAX_CONFIGS_PER_TENANT {
        return Err(invalid(format!(
            "a tenant has at most {} push notification configs on running tasks",
            push::MAX_CONFIGS_PER_TENANT
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let id = Uuid::from_u128(5);
        assert_eq!(parse_page_token(&format!("{}_{id}", at.timestamp_micros())), Some((at, id)));
        assert_eq!(parse_page_token("garbage"), None);
    }
}
