//! Tasks, their event logs and artifacts in PostgreSQL. Every function runs inside the caller's
//! tenant transaction, so row-level security decides what exists; ids and values are bound.
//!
//! An event takes the task's next sequence number under the task row's lock, in the same
//! transaction as the change it reports, and `pg_notify` fires only when that transaction
//! commits: a listener is never told of an event it cannot read.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::wire::{Artifact, Message, TaskState};

pub type Tx = Transaction<'static, Postgres>;

/// The NOTIFY channel of new events; the payload is `task_id:seq`.
pub const EVENTS_CHANNEL: &str = "a2a_events";

/// The NOTIFY channel executors wait on: a task became runnable (it was created, or the reply
/// to its question came); the payload is `task_id:0`.
pub const RUNNABLE_CHANNEL: &str = "a2a_runnable";

/// Tells executors (on commit) that `task` can run.
async fn announce_runnable(tx: &mut Tx, task: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(RUNNABLE_CHANNEL).bind(format!("{task}:0")).execute(&mut **tx).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error("stored task data is malformed: {0}")]
    Corrupt(String),
}

/// One task row, decoded.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub context_id: String,
    pub subject: String,
    pub tier: String,
    pub workflow: String,
    pub input: Message,
    /// The messages after `input`, in order (questions the agent asked, the user's replies).
    pub history: Vec<Message>,
    pub state: TaskState,
    pub status_message: Option<Message>,
    pub status_at: DateTime<Utc>,
    pub step: i32,
    pub checkpoint: Value,
    pub attempt: i32,
    pub claims: i32,
    pub lease_owner: Option<Uuid>,
    pub cancel_requested: bool,
    pub last_seq: i64,
    pub created_at: DateTime<Utc>,
}

const TASK_COLUMNS: &str = "id, tenant_id, context_id, subject, tier, workflow, input, history, state, status_message, \
     status_at, step, checkpoint, attempt, claims, lease_owner, cancel_requested, last_seq, created_at";

fn task_row(row: &sqlx::postgres::PgRow) -> Result<TaskRow, StoreError> {
    let state: String = row.try_get("state")?;
    let input: Value = row.try_get("input")?;
    let history: Value = row.try_get("history")?;
    let status_message: Option<Value> = row.try_get("status_message")?;
    Ok(TaskRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        context_id: row.try_get("context_id")?,
        subject: row.try_get("subject")?,
        tier: row.try_get("tier")?,
        workflow: row.try_get("workflow")?,
        input: serde_json::from_value(input).map_err(|e| StoreError::Corrupt(format!("input: {e}")))?,
        history: serde_json::from_value(history).map_err(|e| StoreError::Corrupt(format!("history: {e}")))?,
        state: TaskState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("state {state:?}")))?,
        status_message: status_message
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("status message: {e}")))?,
        status_at: row.try_get("status_at")?,
        step: row.try_get("step")?,
        checkpoint: row.try_get("checkpoint")?,
        attempt: row.try_get("attempt")?,
        claims: row.try_get("claims")?,
        lease_owner: row.try_get("lease_owner")?,
        cancel_requested: row.try_get("cancel_requested")?,
        last_seq: row.try_get("last_seq")?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A task about to be created.
#[derive(Debug, Clone)]
pub struct NewTask<'a> {
    pub context_id: &'a str,
    pub subject: &'a str,
    pub tier: &'a str,
    pub workflow: &'a str,
    pub input: &'a Message,
}

/// Across tenants, through `a2a_queue_stats()` (counts only): the runnable tasks no executor
/// holds, and how long the longest-waiting has waited, in seconds.
pub async fn queue_stats(pool: &sqlx::PgPool) -> Result<(i64, f64), StoreError> {
    Ok(sqlx::query_as("SELECT depth, oldest_wait_seconds FROM a2a_queue_stats()").fetch_one(pool).await?)
}

/// The transaction's tenant's tasks that are submitted or working. Takes the tenant's task lock
/// first (held to the end of the transaction), so that concurrent sends count each other's new
/// tasks and a cap checked with this holds exactly.
pub async fn count_active_tasks(tx: &mut Tx) -> Result<usize, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('a2a_tasks:' || app_current_tenant()::text, 0))")
        .execute(&mut **tx)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM a2a_tasks WHERE state IN ('submitted', 'working')")
        .fetch_one(&mut **tx)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Creates a task in the transaction's tenant and logs its first event (the submitted task).
pub async fn create_task(tx: &mut Tx, new: NewTask<'_>) -> Result<TaskRow, StoreError> {
    crate::data::db::ensure_tenant(tx).await?;
    let id = Uuid::new_v4();
    let mut input = new.input.clone();
    input.task_id = Some(id.to_string());
    input.context_id = Some(new.context_id.to_owned());
    sqlx::query(
        "INSERT INTO a2a_tasks (id, context_id, subject, tier, workflow, input) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(new.context_id)
    .bind(new.subject)
    .bind(new.tier)
    .bind(new.workflow)
    .bind(to_json(&input)?)
    .execute(&mut **tx)
    .await?;
    append_event(tx, id, EventKind::Task, json!({ "state": TaskState::Submitted })).await?;
    announce_runnable(tx, id).await?;
    get_task(tx, id).await?.ok_or_else(|| StoreError::Corrupt("task vanished after insert".into()))
}

/// Adds the user's `message` to `task`'s conversation (the row locked by the caller). A task
/// waiting for input takes the agent's question into its history first and becomes runnable
/// again (submitted, a logged status), from the step that asked. Returns the task as it is now.
pub async fn continue_task(tx: &mut Tx, task: &TaskRow, message: &Message) -> Result<TaskRow, StoreError> {
    let mut message = message.clone();
    message.task_id = Some(task.id.to_string());
    message.context_id = Some(task.context_id.clone());
    let waiting = task.state == TaskState::InputRequired;
    let mut added: Vec<&Message> = Vec::with_capacity(2);
    if waiting && let Some(question) = &task.status_message {
        added.push(question);
    }
    added.push(&message);
    // A reply runs the step that asked again, from its first attempt.
    sqlx::query(
        "UPDATE a2a_tasks SET history = history || $2, attempt = CASE WHEN $3 THEN 0 ELSE attempt END, \
         updated_at = now() WHERE id = $1",
    )
    .bind(task.id)
    .bind(to_json(&added)?)
    .bind(waiting)
    .execute(&mut **tx)
    .await?;
    if waiting {
        set_state(tx, task.id, TaskState::Submitted, None).await?;
        announce_runnable(tx, task.id).await?;
    }
    get_task(tx, task.id).await?.ok_or_else(|| StoreError::Corrupt("task vanished while continued".into()))
}

/// Puts the task to wait for the user: input-required with the agent's `question`, its lease
/// given up (no executor runs it until a reply makes it runnable), its step kept so the step that
/// asked runs again.
pub async fn ask(tx: &mut Tx, task: Uuid, question: &Message) -> Result<(), StoreError> {
    set_state(tx, task, TaskState::InputRequired, Some(question)).await?;
    release(tx, task).await
}

pub async fn get_task(tx: &mut Tx, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
    select_task(tx, id, "").await
}

/// The task with its row locked until the transaction ends.
pub async fn lock_task(tx: &mut Tx, id: Uuid) -> Result<Option<TaskRow>, StoreError> {
    select_task(tx, id, " FOR UPDATE").await
}

async fn select_task(tx: &mut Tx, id: Uuid, lock: &'static str) -> Result<Option<TaskRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM a2a_tasks WHERE id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(task_row).transpose()
}

pub async fn artifacts(tx: &mut Tx, task: Uuid) -> Result<Vec<Artifact>, StoreError> {
    let rows: Vec<(String, String, String, Value)> = sqlx::query_as(
        "SELECT artifact_id, name, description, parts FROM a2a_artifacts WHERE task_id = $1 ORDER BY created_at, artifact_id",
    )
    .bind(task)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(artifact_id, name, description, parts)| {
            Ok(Artifact {
                artifact_id,
                name,
                description: (!description.is_empty()).then_some(description),
                parts: serde_json::from_value(parts)
                    .map_err(|e| StoreError::Corrupt(format!("artifact parts: {e}")))?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The task as created (submitted); the first event of every task.
    Task,
    Status,
    Artifact,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Task => "task",
            EventKind::Status => "status",
            EventKind::Artifact => "artifact",
        }
    }
}

/// One logged event.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub kind: EventKind,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// The state this event puts the task in, if it is a status change.
    pub fn state(&self) -> Option<TaskState> {
        match self.kind {
            EventKind::Task | EventKind::Status => {
                self.payload.get("state").and_then(Value::as_str).and_then(TaskState::parse)
            }
            EventKind::Artifact => None,
        }
    }
}

/// Appends an event to the task's log; the notification goes out when the transaction commits.
pub async fn append_event(tx: &mut Tx, task: Uuid, kind: EventKind, payload: Value) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE a2a_tasks SET last_seq = last_seq + 1, updated_at = now() WHERE id = $1 RETURNING last_seq",
    )
    .bind(task)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO a2a_task_events (task_id, seq, kind, payload) VALUES ($1, $2, $3, $4)")
        .bind(task)
        .bind(seq)
        .bind(kind.as_str())
        .bind(&payload)
        .execute(&mut **tx)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(format!("{task}:{seq}"))
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// Events with a sequence number above `after`, oldest first, at most `limit`.
pub async fn events_after(tx: &mut Tx, task: Uuid, after: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    let rows: Vec<(i64, String, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT seq, kind, payload, created_at FROM a2a_task_events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(task)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|(seq, kind, payload, created_at)| {
            let kind = match kind.as_str() {
                "task" => EventKind::Task,
                "status" => EventKind::Status,
                "artifact" => EventKind::Artifact,
                other => return Err(StoreError::Corrupt(format!("event kind {other:?}"))),
            };
            Ok(Event { seq, kind, payload, created_at })
        })
        .collect()
}

/// Moves a task to `state` with an optional agent message, logging the change. The caller holds
/// the row (locked, or fenced by its lease).
pub async fn set_state(tx: &mut Tx, task: Uuid, state: TaskState, msg: Option<&Message>) -> Result<i64, StoreError> {
    let msg_json = msg.map(to_json).transpose()?;
    sqlx::query(
        "UPDATE a2a_tasks SET state = $2, status_message = $3, status_at = now(), updated_at = now() \
         WHERE id = $1",
    )
    .bind(task)
    .bind(state.as_str())
    .bind(&msg_json)
    .execute(&mut **tx)
    .await?;
    if state.is_terminal() {
        sqlx::query("UPDATE a2a_tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1")
            .bind(task)
            .execute(&mut **tx)
            .await?;
    }
    append_event(tx, task, EventKind::Status, json!({ "state": state, "message": msg_json })).await
}

/// Stores an artifact unless the task already has one with this id (a step that ran again after
/// a crash), and logs it only when it is new. Returns whether it was new.
pub async fn put_artifact(tx: &mut Tx, task: Uuid, a: &Artifact) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO a2a_artifacts (task_id, artifact_id, name, description, parts) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (task_id, artifact_id) DO NOTHING",
    )
    .bind(task)
    .bind(&a.artifact_id)
    .bind(&a.name)
    .bind(a.description.as_deref().unwrap_or(""))
    .bind(to_json(&a.parts)?)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        append_event(tx, task, EventKind::Artifact, json!({ "artifact": to_json(a)? })).await?;
    }
    Ok(inserted)
}

/// Filters and page of `ListTasks`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub context_id: Option<String>,
    pub state: Option<TaskState>,
    pub status_after: Option<DateTime<Utc>>,
    /// Keyset position: tasks strictly older than this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
    /// Only this subject's tasks; `None` lists the tenant's (a `tasks:admin` caller).
    pub subject: Option<String>,
}

const LIST_FILTERS: &str = "($1::text IS NULL OR context_id = $1) AND ($2::text IS NULL OR state = $2) \
     AND ($3::timestamptz IS NULL OR status_at >= $3) AND ($4::text IS NULL OR subject = $4)";

/// The number of tasks matching `f`'s filters, whatever the page.
pub async fn count_tasks(tx: &mut Tx, f: &ListFilter) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM a2a_tasks WHERE {LIST_FILTERS}"))
        .bind(&f.context_id)
        .bind(f.state.map(TaskState::as_str))
        .bind(f.status_after)
        .bind(&f.subject)
        .fetch_one(&mut **tx)
        .await?)
}

/// One page of the tasks matching `f`, newest first.
pub async fn list_tasks(tx: &mut Tx, f: &ListFilter) -> Result<Vec<TaskRow>, StoreError> {
    let state = f.state.map(TaskState::as_str);
    let (before_at, before_id) = f.before.unzip();
    let rows = sqlx::query(&format!(
        "SELECT {TASK_COLUMNS} FROM a2a_tasks WHERE {LIST_FILTERS} \
         AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6)) \
         ORDER BY created_at DESC, id DESC LIMIT $7"
    ))
    .bind(&f.context_id)
    .bind(state)
    .bind(f.status_after)
    .bind(&f.subject)
    .bind(before_at)
    .bind(before_id)
    .bind(f.limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(task_row).collect()
}

/// Asks a task to stop. A task no executor holds is canceled on the spot; a running one stops
/// at its next step boundary. `Err(state)` when the task had already ended.
pub async fn request_cancel(tx: &mut Tx, task: &TaskRow) -> Result<Result<(), TaskState>, StoreError> {
    if task.state.is_terminal() {
        return Ok(Err(task.state));
    }
    let held: bool = sqlx::query_scalar(
        "UPDATE a2a_tasks SET cancel_requested = true, updated_at = now() WHERE id = $1 \
         RETURNING lease_owner IS NOT NULL AND lease_expires_at > now()",
    )
    .bind(task.id)
    .fetch_one(&mut **tx)
    .await?;
    if !held {
        set_state(tx, task.id, TaskState::Canceled, None).await?;
    }
    Ok(Ok(()))
}

/// Claims up to `n` runnable tasks of any tenant for `owner` (the migration's SECURITY DEFINER
/// function; the only cross-tenant access there is). Returns (task, tenant) pairs.
pub async fn claim(
    pool: &sqlx::PgPool,
    owner: Uuid,
    lease: std::time::Duration,
    n: usize,
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(sqlx::query_as("SELECT id, tenant_id FROM a2a_claim_tasks($1, make_interval(secs => $2), $3)")
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(i32::try_from(n).unwrap_or(i32::MAX))
        .fetch_all(pool)
        .await?)
}

/// The task, locked, if `owner` still holds its lease: every executor write starts here, so a
/// process whose lease passed to another can change nothing.
pub async fn hold(tx: &mut Tx, task: Uuid, owner: Uuid) -> Result<Option<TaskRow>, StoreError> {
    let row =
        sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM a2a_tasks WHERE id = $1 AND lease_owner = $2 FOR UPDATE"))
            .bind(task)
            .bind(owner)
            .fetch_optional(&mut **tx)
            .await?;
    row.as_ref().map(task_row).transpose()
}

/// Extends `owner`'s lease; false when it no longer holds it.
pub async fn renew_lease(tx: &mut Tx, task: Uuid, owner: Uuid, lease: std::time::Duration) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE a2a_tasks SET lease_expires_at = now() + make_interval(secs => $3) WHERE id = $1 AND lease_owner = $2",
    )
    .bind(task)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

/// Counts one more attempt of the current step; returns the attempt number.
pub async fn begin_attempt(tx: &mut Tx, task: Uuid) -> Result<i32, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE a2a_tasks SET attempt = attempt + 1, updated_at = now() WHERE id = $1 RETURNING attempt",
    )
    .bind(task)
    .fetch_one(&mut **tx)
    .await?)
}

/// Checkpoints a finished step: the next step index and the outputs so far.
pub async fn advance(tx: &mut Tx, task: Uuid, step: i32, checkpoint: &Value) -> Result<(), StoreError> {
    sqlx::query("UPDATE a2a_tasks SET step = $2, checkpoint = $3, attempt = 0, updated_at = now() WHERE id = $1")
        .bind(task)
        .bind(step)
        .bind(checkpoint)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Gives the task back (shutdown): another executor may claim it at once.
pub async fn release(tx: &mut Tx, task: Uuid) -> Result<(), StoreError> {
    sqlx::query("UPDATE a2a_tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1")
        .bind(task)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A webhook a client registered for a task, version-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    pub id: String,
    pub task_id: Uuid,
    pub url: String,
    pub token: Option<String>,
    /// `{"scheme": .., "credentials": ..}`, sent as `Authorization: <scheme> <credentials>`.
    pub authentication: Option<Value>,
    /// "0.3" or "1.0": the shapes notifications are sent in.
    pub protocol_version: String,
    pub delivered_seq: i64,
}

type PushRow = (String, Uuid, String, Option<String>, Option<Value>, String, i64);

fn push_config((id, task_id, url, token, authentication, protocol_version, delivered_seq): PushRow) -> PushConfig {
    PushConfig { id, task_id, url, token, authentication, protocol_version, delivered_seq }
}

const PUSH_COLUMNS: &str = "id, task_id, url, token, authentication, protocol_version, delivered_seq";

/// Creates or replaces a task's webhook. A new one starts after the task's current last event:
/// it hears of what happens from now on.
pub async fn put_push_config(tx: &mut Tx, c: &PushConfig) -> Result<PushConfig, StoreError> {
    let row: PushRow = sqlx::query_as(&format!(
        "INSERT INTO a2a_push_configs (task_id, id, url, token, authentication, protocol_version, delivered_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (task_id, id) DO UPDATE SET url = EXCLUDED.url, token = EXCLUDED.token, \
             authentication = EXCLUDED.authentication, protocol_version = EXCLUDED.protocol_version \
         RETURNING {PUSH_COLUMNS}"
    ))
    .bind(c.task_id)
    .bind(&c.id)
    .bind(&c.url)
    .bind(&c.token)
    .bind(&c.authentication)
    .bind(&c.protocol_version)
    .bind(c.delivered_seq)
    .fetch_one(&mut **tx)
    .await?;
    Ok(push_config(row))
}

pub async fn push_configs(tx: &mut Tx, task: Uuid) -> Result<Vec<PushConfig>, StoreError> {
    let rows: Vec<PushRow> = sqlx::query_as(&format!(
        "SELECT {PUSH_COLUMNS} FROM a2a_push_configs WHERE task_id = $1 ORDER BY created_at, id"
    ))
    .bind(task)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(push_config).collect())
}

pub async fn delete_push_config(tx: &mut Tx, task: Uuid, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM a2a_push_configs WHERE task_id = $1 AND id = $2")
        .bind(task)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Leases the task's webhooks that have undelivered events for `lease`; ones another process
/// holds a lease on are skipped. The lease, not a row lock, keeps two processes from
/// interleaving: delivery runs with no transaction open.
pub async fn lease_push_configs(
    tx: &mut Tx,
    task: Uuid,
    lease: std::time::Duration,
) -> Result<Vec<PushConfig>, StoreError> {
    // Rows are taken in one order and skipped when another process is taking them, so two
    // passes neither wait on nor deadlock with each other.
    let rows: Vec<PushRow> = sqlx::query_as(&format!(
        "WITH due AS ( \
             SELECT p.task_id AS due_task, p.id AS due_id FROM a2a_push_configs p \
             WHERE p.task_id = $1 AND p.delivered_seq < (SELECT last_seq FROM a2a_tasks t WHERE t.id = p.task_id) \
               AND (p.delivering_until IS NULL OR p.delivering_until < now()) \
             ORDER BY p.created_at, p.id FOR UPDATE SKIP LOCKED) \
         UPDATE a2a_push_configs p SET delivering_until = now() + make_interval(secs => $2) \
         FROM due WHERE p.task_id = due.due_task AND p.id = due.due_id \
         RETURNING {PUSH_COLUMNS}"
    ))
    .bind(task)
    .bind(lease.as_secs_f64())
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(push_config).collect())
}

/// Records that events up to `seq` reached the webhook and extends its lease by `lease`.
pub async fn mark_delivered(
    tx: &mut Tx,
    task: Uuid,
    id: &str,
    seq: i64,
    lease: std::time::Duration,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE a2a_push_configs SET delivered_seq = greatest(delivered_seq, $3), \
             delivering_until = now() + make_interval(secs => $4) WHERE task_id = $1 AND id = $2",
    )
    .bind(task)
    .bind(id)
    .bind(seq)
    .bind(lease.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Gives up the lease on a webhook: the next event is delivered at once, by any process.
pub async fn end_delivery(tx: &mut Tx, task: Uuid, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE a2a_push_configs SET delivering_until = NULL WHERE task_id = $1 AND id = $2")
        .bind(task)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many webhooks the task has, and how many the tenant has on tasks still running, not
/// counting config `id` of the task (which a put would replace).
pub async fn count_push_configs(tx: &mut Tx, task: Uuid, id: &str) -> Result<(i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE p.task_id = $1), count(*) FROM a2a_push_configs p \
         JOIN a2a_tasks t ON t.id = p.task_id \
         WHERE NOT (p.task_id = $1 AND p.id = $2) \
           AND (p.task_id = $1 OR t.state IN ('submitted', 'working', 'input-required', 'auth-required'))",
    )
    .bind(task)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?)
}
