//! A2A's JSON shapes in both versions, and the version-neutral form the database stores.
//!
//! 0.3 discriminates objects with `kind` (`task`, `message`, `status-update`, `artifact-update`,
//! parts `text`/`file`/`data`), writes states in kebab case (`input-required`) and roles in lower
//! case. 1.0 is ProtoJSON: no `kind`, enum names (`TASK_STATE_WORKING`, `ROLE_AGENT`), parts as a
//! oneof `text | raw | url | data` with `mediaType` and `filename`, send results and stream events
//! wrapped (`{"task": ..}`, `{"statusUpdate": ..}`), and no `final` flag on status updates.

use agentplane_core::catalogue::A2aVersion;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A task's lifecycle state. The database stores [`TaskState::as_str`], the 0.3 spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskState {
    Submitted,
    Working,
    InputRequired,
    Completed,
    Canceled,
    Failed,
    Rejected,
    AuthRequired,
}

impl TaskState {
    pub const ALL: [TaskState; 8] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::InputRequired,
        TaskState::Completed,
        TaskState::Canceled,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::AuthRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::InputRequired => "input-required",
            TaskState::Completed => "completed",
            TaskState::Canceled => "canceled",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::AuthRequired => "auth-required",
        }
    }

    fn v1_name(self) -> &'static str {
        match self {
            TaskState::Submitted => "TASK_STATE_SUBMITTED",
            TaskState::Working => "TASK_STATE_WORKING",
            TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
            TaskState::Completed => "TASK_STATE_COMPLETED",
            TaskState::Canceled => "TASK_STATE_CANCELED",
            TaskState::Failed => "TASK_STATE_FAILED",
            TaskState::Rejected => "TASK_STATE_REJECTED",
            TaskState::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A state as a client of `version` writes it.
    pub fn from_wire(version: A2aVersion, s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.wire(version) == s)
    }

    pub fn wire(self, version: A2aVersion) -> &'static str {
        match version {
            A2aVersion::V0_3 => self.as_str(),
            A2aVersion::V1_0 => self.v1_name(),
        }
    }

    /// Completed, canceled, failed and rejected: nothing changes the task afterwards.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Completed | TaskState::Canceled | TaskState::Failed | TaskState::Rejected)
    }

    /// Where a blocking send stops waiting: terminal, or waiting for the client.
    pub fn is_settled(self) -> bool {
        self.is_terminal() || matches!(self, TaskState::InputRequired | TaskState::AuthRequired)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Agent,
}

/// One part of a message or artifact, version-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Part {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    Data {
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    File {
        /// Where the content is, or the content itself in base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
}

impl Part {
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text { text: text.into(), metadata: None }
    }

    pub fn data(data: Value) -> Self {
        Part::Data { data, metadata: None }
    }
}

/// A message, version-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message_id: String,
    pub role: Role,
    pub parts: Vec<Part>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Message {
    /// The text parts, joined by blank lines.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }

    pub fn agent(message_id: String, text: impl Into<String>) -> Self {
        Message {
            message_id,
            role: Role::Agent,
            parts: vec![Part::text(text)],
            context_id: None,
            task_id: None,
            metadata: None,
        }
    }
}

/// A task output, version-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub artifact_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub parts: Vec<Part>,
}

/// Why a client's message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

fn bad(msg: impl Into<String>) -> WireError {
    WireError(msg.into())
}

fn opt_string(v: &Value, key: &str) -> Result<Option<String>, WireError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

fn opt_object(v: &Value, key: &str) -> Result<Option<Map<String, Value>>, WireError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(bad(format!("{key} must be an object"))),
    }
}

/// The most parts a client's message may have.
pub const MAX_PARTS: usize = 32;
/// The most text (bytes of all text parts together) a client's message may carry. A question to
/// a workflow is a few sentences; every byte of it goes on to full-text search, the embedder and
/// the chat model, so the body's size cap alone would let one client's message cost everyone.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// 1.0 params with every field under its JSON name: ProtoJSON readers accept a field's proto
/// name too (`task_id` for `taskId`), and 1.0 clients send either. Keys a user chose (the
/// `metadata` structs, a data part's `data`) stay as they are. Params that already use JSON
/// names (nearly all) are borrowed, not copied: a message can be tens of kilobytes.
pub fn json_names(v: &Value) -> std::borrow::Cow<'_, Value> {
    if has_proto_names(v) { std::borrow::Cow::Owned(renamed(v)) } else { std::borrow::Cow::Borrowed(v) }
}

/// A user-keyed struct: its keys are data, not field names.
fn user_keyed(field: &str) -> bool {
    matches!(field, "metadata" | "data")
}

fn has_proto_names(v: &Value) -> bool {
    match v {
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('_') || (!user_keyed(k) && has_proto_names(v))),
        Value::Array(items) => items.iter().any(has_proto_names),
        _ => false,
    }
}

fn renamed(v: &Value) -> Value {
    match v {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = if user_keyed(k) { v.clone() } else { renamed(v) };
                    (lower_camel(k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(renamed).collect()),
        other => other.clone(),
    }
}

/// `task_id` → `taskId`; a name without underscores is unchanged.
fn lower_camel(name: &str) -> String {
    if !name.contains('_') {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = !out.is_empty(),
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Reads a client's message. Both versions' role spellings are accepted; parts follow `version`.
/// A message over [`MAX_PARTS`] parts or [`MAX_TEXT_BYTES`] of text is refused, naming the limit.
pub fn parse_message(version: A2aVersion, v: &Value) -> Result<Message, WireError> {
    if !v.is_object() {
        return Err(bad("message must be an object"));
    }
    let message_id = opt_string(v, "messageId")?.ok_or_else(|| bad("message.messageId is required"))?;
    let role = match v.get("role").and_then(Value::as_str) {
        Some("user" | "ROLE_USER") => Role::User,
        Some("agent" | "ROLE_AGENT") => Role::Agent,
        _ => return Err(bad("message.role must be the user or agent role")),
    };
    let parts = v.get("parts").and_then(Value::as_array).ok_or_else(|| bad("message.parts must be an array"))?;
    if parts.is_empty() {
        return Err(bad("message.parts must not be empty"));
    }
    if parts.len() > MAX_PARTS {
        return Err(bad(format!("message.parts has {} parts; the limit is {MAX_PARTS}", parts.len())));
    }
    let parts = parts.iter().map(|p| parse_part(version, p)).collect::<Result<Vec<_>, _>>()?;
    let text_bytes: usize = parts
        .iter()
        .map(|p| match p {
            Part::Text { text, .. } => text.len(),
            _ => 0,
        })
        .sum();
    if text_bytes > MAX_TEXT_BYTES {
        return Err(bad(format!("the message's text is {text_bytes} bytes; the limit is {MAX_TEXT_BYTES} bytes")));
    }
    Ok(Message {
        message_id,
        role,
        parts,
        context_id: opt_string(v, "contextId")?,
        task_id: opt_string(v, "taskId")?,
        metadata: opt_object(v, "metadata")?,
    })
}

fn parse_part(version: A2aVersion, p: &Value) -> Result<Part, WireError> {
    let metadata = opt_object(p, "metadata")?;
    match version {
        A2aVersion::V0_3 => match p.get("kind").and_then(Value::as_str) {
            Some("text") => {
                let text = p.get("text").and_then(Value::as_str).ok_or_else(|| bad("text part without text"))?;
                Ok(Part::Text { text: text.to_owned(), metadata })
            }
            Some("data") => Ok(Part::Data { data: p.get("data").cloned().unwrap_or(Value::Null), metadata }),
            Some("file") => {
                let file = p.get("file").ok_or_else(|| bad("file part without file"))?;
                Ok(Part::File {
                    url: opt_string(file, "uri")?,
                    raw: opt_string(file, "bytes")?,
                    media_type: opt_string(file, "mimeType")?,
                    filename: opt_string(file, "name")?,
                    metadata,
                })
            }
            _ => Err(bad("part.kind must be text, file or data")),
        },
        A2aVersion::V1_0 => {
            let media_type = opt_string(p, "mediaType")?;
            let filename = opt_string(p, "filename")?;
            if let Some(text) = p.get("text") {
                let text = text.as_str().ok_or_else(|| bad("part.text must be a string"))?;
                Ok(Part::Text { text: text.to_owned(), metadata })
            } else if let Some(data) = p.get("data") {
                Ok(Part::Data { data: data.clone(), metadata })
            } else if p.get("raw").is_some() || p.get("url").is_some() {
                Ok(Part::File {
                    url: opt_string(p, "url")?,
                    raw: opt_string(p, "raw")?,
                    media_type,
                    filename,
                    metadata,
                })
            } else {
                Err(bad("a part needs one of text, raw, url or data"))
            }
        }
    }
}

fn put_metadata(o: &mut Map<String, Value>, metadata: &Option<Map<String, Value>>) {
    if let Some(m) = metadata {
        o.insert("metadata".into(), Value::Object(m.clone()));
    }
}

pub fn part(version: A2aVersion, p: &Part) -> Value {
    let mut o = Map::new();
    let v03 = version == A2aVersion::V0_3;
    match p {
        Part::Text { text, metadata } => {
            if v03 {
                o.insert("kind".into(), json!("text"));
            }
            o.insert("text".into(), json!(text));
            put_metadata(&mut o, metadata);
        }
        Part::Data { data, metadata } => {
            if v03 {
                o.insert("kind".into(), json!("data"));
            }
            o.insert("data".into(), data.clone());
            if !v03 {
                o.insert("mediaType".into(), json!("application/json"));
            }
            put_metadata(&mut o, metadata);
        }
        Part::File { url, raw, media_type, filename, metadata } => {
            // The same four fields under each version's names; 0.3 nests them in `file`.
            let names =
                if v03 { ["uri", "bytes", "mimeType", "name"] } else { ["url", "raw", "mediaType", "filename"] };
            let mut f = Map::new();
            for (name, value) in names.into_iter().zip([url, raw, media_type, filename]) {
                if let Some(v) = value {
                    f.insert(name.into(), json!(v));
                }
            }
            if v03 {
                o.insert("kind".into(), json!("file"));
                o.insert("file".into(), Value::Object(f));
            } else {
                o = f;
            }
            put_metadata(&mut o, metadata);
        }
    }
    Value::Object(o)
}

pub fn message(version: A2aVersion, m: &Message) -> Value {
    let mut o = Map::new();
    if version == A2aVersion::V0_3 {
        o.insert("kind".into(), json!("message"));
    }
    o.insert("messageId".into(), json!(m.message_id));
    let role = match (version, m.role) {
        (A2aVersion::V0_3, Role::User) => "user",
        (A2aVersion::V0_3, Role::Agent) => "agent",
        (A2aVersion::V1_0, Role::User) => "ROLE_USER",
        (A2aVersion::V1_0, Role::Agent) => "ROLE_AGENT",
    };
    o.insert("role".into(), json!(role));
    o.insert("parts".into(), Value::Array(m.parts.iter().map(|p| part(version, p)).collect()));
    if let Some(c) = &m.context_id {
        o.insert("contextId".into(), json!(c));
    }
    if let Some(t) = &m.task_id {
        o.insert("taskId".into(), json!(t));
    }
    put_metadata(&mut o, &m.metadata);
    Value::Object(o)
}

pub fn artifact(version: A2aVersion, a: &Artifact) -> Value {
    let mut o = Map::new();
    o.insert("artifactId".into(), json!(a.artifact_id));
    o.insert("name".into(), json!(a.name));
    if let Some(d) = &a.description {
        o.insert("description".into(), json!(d));
    }
    o.insert("parts".into(), Value::Array(a.parts.iter().map(|p| part(version, p)).collect()));
    Value::Object(o)
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A `TaskStatus`.
pub fn status(version: A2aVersion, state: TaskState, msg: Option<&Message>, at: DateTime<Utc>) -> Value {
    let mut o = Map::new();
    o.insert("state".into(), json!(state.wire(version)));
    if let Some(m) = msg {
        o.insert("message".into(), message(version, m));
    }
    o.insert("timestamp".into(), json!(timestamp(at)));
    Value::Object(o)
}

/// What a `Task` object is made of.
#[derive(Debug, Clone)]
pub struct TaskView<'a> {
    pub id: &'a str,
    pub context_id: &'a str,
    pub state: TaskState,
    pub status_message: Option<&'a Message>,
    pub status_at: DateTime<Utc>,
    pub history: Vec<&'a Message>,
    pub artifacts: &'a [Artifact],
    pub metadata: Value,
}

pub fn task(version: A2aVersion, t: &TaskView<'_>) -> Value {
    let mut o = Map::new();
    if version == A2aVersion::V0_3 {
        o.insert("kind".into(), json!("task"));
    }
    o.insert("id".into(), json!(t.id));
    o.insert("contextId".into(), json!(t.context_id));
    o.insert("status".into(), status(version, t.state, t.status_message, t.status_at));
    if !t.artifacts.is_empty() {
        o.insert("artifacts".into(), Value::Array(t.artifacts.iter().map(|a| artifact(version, a)).collect()));
    }
    o.insert("history".into(), Value::Array(t.history.iter().map(|m| message(version, m)).collect()));
    if !t.metadata.is_null() {
        o.insert("metadata".into(), t.metadata.clone());
    }
    Value::Object(o)
}

/// A `TaskStatusUpdateEvent`. 0.3 marks the last one `final`; 1.0 ends the stream instead.
pub fn status_update(version: A2aVersion, task_id: &str, context_id: &str, status_value: Value, last: bool) -> Value {
    match version {
        A2aVersion::V0_3 => json!({
            "kind": "status-update", "taskId": task_id, "contextId": context_id,
            "status": status_value, "final": last,
        }),
        A2aVersion::V1_0 => json!({"taskId": task_id, "contextId": context_id, "status": status_value}),
    }
}

/// A `TaskArtifactUpdateEvent` carrying one whole artifact.
pub fn artifact_update(version: A2aVersion, task_id: &str, context_id: &str, a: &Artifact) -> Value {
    let mut v = json!({
        "taskId": task_id, "contextId": context_id, "artifact": artifact(version, a),
        "append": false, "lastChunk": true,
    });
    if version == A2aVersion::V0_3 {
        v["kind"] = json!("artifact-update");
    }
    v
}

/// One stream event as sent: 0.3 sends the object itself (it carries `kind`), 1.0 wraps it in a
/// `StreamResponse` under `field` (`task`, `message`, `statusUpdate`, `artifactUpdate`).
pub fn stream_response(version: A2aVersion, field: &str, value: Value) -> Value {
    match version {
        A2aVersion::V0_3 => value,
        A2aVersion::V1_0 => json!({ field: value }),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn proto_names_become_json_names_but_user_keys_do_not() {
        let v = json!({"task_id": "t", "push_notification_config": {"url": "u"}, "metadata": {"my_key": 1},
            "parts": [{"data": {"a_b": 2}, "media_type": "x"}]});
        assert_eq!(
            *json_names(&v),
            json!({"taskId": "t", "pushNotificationConfig": {"url": "u"}, "metadata": {"my_key": 1},
            "parts": [{"data": {"a_b": 2}, "mediaType": "x"}]})
        );
        assert!(matches!(
            json_names(&json!({"taskId": "t", "metadata": {"my_key": 1}})),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(lower_camel("_x"), "x");
        assert_eq!(lower_camel("already"), "already");
    }

    use super::*;

    #[test]
    fn states_round_trip_in_both_spellings() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
            for v in [A2aVersion::V0_3, A2aVersion::V1_0] {
                assert_eq!(TaskState::from_wire(v, s.wire(v)), Some(s));
            }
        }
        assert_eq!(TaskState::InputRequired.wire(A2aVersion::V0_3), "input-required");
        assert_eq!(TaskState::InputRequired.wire(A2aVersion::V1_0), "TASK_STATE_INPUT_REQUIRED");
        assert!(TaskState::Rejected.is_terminal() && !TaskState::AuthRequired.is_terminal());
    }

    #[test]
    fn messages_read_and_render_per_version() {
        let v03 = json!({"kind": "message", "messageId": "m1", "role": "user",
            "parts": [{"kind": "text", "text": "hello"}, {"kind": "data", "data": {"a": 1}}],
            "metadata": {"skill": "research"}});
        let m = parse_message(A2aVersion::V0_3, &v03).unwrap();
        assert_eq!(m.text(), "hello");
        assert_eq!(message(A2aVersion::V0_3, &m), v03);
        let v1 = message(A2aVersion::V1_0, &m);
        assert_eq!(v1["role"], "ROLE_USER");
        assert_eq!(v1["parts"][0], json!({"text": "hello"}));
        assert!(v1.get("kind").is_none());
        assert_eq!(parse_message(A2aVersion::V1_0, &v1).unwrap(), m);

        for bad in [
            json!({"role": "user", "parts": [{"kind": "text", "text": "x"}]}),
            json!({"messageId": "m", "role": "system", "parts": [{"kind": "text", "text": "x"}]}),
            json!({"messageId": "m", "role": "user", "parts": []}),
            json!({"messageId": "m", "role": "user", "parts": [{"kind": "video"}]}),
        ] {
            assert!(parse_message(A2aVersion::V0_3, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_differ_by_version() {
        let s = json!({"state": "completed"});
        assert_eq!(status_update(A2aVersion::V0_3, "t", "c", s.clone(), true)["final"], true);
        assert!(status_update(A2aVersion::V1_0, "t", "c", s, true).get("final").is_none());
        let a = Artifact { artifact_id: "a".into(), name: "n".into(), description: None, parts: vec![Part::text("x")] };
        assert_eq!(artifact_update(A2aVersion::V0_3, "t", "c", &a)["kind"], "artifact-update");
        let wrapped =
            stream_response(A2aVersion::V1_0, "artifactUpdate", artifact_update(A2aVersion::V1_0, "t", "c", &a));
        assert_eq!(wrapped["artifactUpdate"]["artifact"]["parts"][0]["text"], "x");
    }
}
