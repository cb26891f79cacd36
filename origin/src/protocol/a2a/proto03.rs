//! A2A 0.3's HTTP+JSON binding speaks the protobuf JSON of 0.3's `a2a.proto`, not 0.3's
//! JSON-RPC shapes; it is close to 1.0's JSON (also protobuf JSON), so a 0.3 REST call runs on
//! the engine in 1.0 and only these differences are rewritten: a message's `content` (1.0
//! `parts`), file parts as `file {fileWithUri | fileWithBytes, mimeType, name}` and data parts as
//! `data {data}`, `TASK_STATE_CANCELLED` (1.0 `CANCELED`), `final` on status updates, the send
//! configuration's `blocking` and `pushNotification`, and push configs as
//! `{name, pushNotificationConfig}` with `authentication.schemes`.

use agentplane_core::catalogue::A2aOperation;
use serde_json::{Map, Value, json};

/// A 0.3 request's parameters (protobuf JSON under JSON names, ids already 1.0-named by the
/// gateway) as 1.0's.
pub fn params(op: A2aOperation, params: &Value) -> Value {
    let Some(fields) = params.as_object() else { return params.clone() };
    let mut out = fields.clone();
    match op {
        A2aOperation::SendMessage | A2aOperation::SendStreamingMessage => {
            if let Some(m) = fields.get("message") {
                out.insert("message".into(), message_in(m));
            }
            let configuration = fields.get("configuration").and_then(Value::as_object);
            let mut c = Map::new();
            if let Some(modes) = configuration.and_then(|c| c.get("acceptedOutputModes")) {
                c.insert("acceptedOutputModes".into(), modes.clone());
            }
            if let Some(n) = configuration.and_then(|c| c.get("historyLength")) {
                c.insert("historyLength".into(), n.clone());
            }
            // 0.3 answers at once unless asked to block.
            let blocking = configuration.and_then(|c| c.get("blocking")).and_then(Value::as_bool).unwrap_or(false);
            c.insert("returnImmediately".into(), Value::Bool(!blocking));
            if let Some(p) = configuration.and_then(|c| c.get("pushNotification")).filter(|p| p.is_object()) {
                c.insert("taskPushNotificationConfig".into(), push_in(p));
            }
            out.insert("configuration".into(), Value::Object(c));
        }
        A2aOperation::CreatePushConfig => {
            // The SDK sends `{parent, configId, config: {name, pushNotificationConfig}}`; a bare
            // `TaskPushNotificationConfig` is read too.
            let inner = fields
                .get("config")
                .and_then(|c| c.get("pushNotificationConfig"))
                .or_else(|| fields.get("pushNotificationConfig"));
            if let Some(Value::Object(config)) = inner.map(push_in) {
                out.retain(|k, _| k == "taskId");
                out.extend(config);
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// A 1.0 result as 0.3's protobuf JSON.
pub fn result(op: A2aOperation, v: Value) -> Value {
    match op {
        A2aOperation::SendMessage | A2aOperation::SendStreamingMessage | A2aOperation::SubscribeToTask => {
            stream_response(v)
        }
        A2aOperation::GetTask | A2aOperation::CancelTask | A2aOperation::ListTasks => task_out(v),
        A2aOperation::CreatePushConfig | A2aOperation::GetPushConfig => push_config_out(v),
        A2aOperation::ListPushConfigs => {
            let mut v = v;
            if let Some(Value::Array(configs)) = v.get_mut("configs") {
                for c in configs.iter_mut() {
                    *c = push_config_out(c.take());
                }
            }
            v
        }
        A2aOperation::DeletePushConfig | A2aOperation::GetExtendedCard => v,
    }
}

/// One 1.0 `StreamResponse` (or `SendMessageResponse`) as 0.3's.
pub fn stream_response(v: Value) -> Value {
    let Value::Object(mut fields) = v else { return v };
    if let Some(t) = fields.remove("task") {
        fields.insert("task".into(), task_out(t));
    }
    if let Some(m) = fields.remove("message") {
        fields.insert("message".into(), message_out(m));
    }
    if let Some(Value::Object(mut u)) = fields.remove("statusUpdate") {
        let state = u.get("status").and_then(|s| s.get("state")).and_then(Value::as_str).unwrap_or_default();
        // 0.3 marks the last event of a stream; 1.0 ends the stream instead.
        let last = matches!(
            state,
            "TASK_STATE_COMPLETED"
                | "TASK_STATE_FAILED"
                | "TASK_STATE_CANCELED"
                | "TASK_STATE_REJECTED"
                | "TASK_STATE_INPUT_REQUIRED"
                | "TASK_STATE_AUTH_REQUIRED"
        );
        if let Some(s) = u.remove("status") {
            u.insert("status".into(), status_out(s));
        }
        u.insert("final".into(), Value::Bool(last));
        fields.insert("statusUpdate".into(), Value::Object(u));
    }
    if let Some(Value::Object(mut u)) = fields.remove("artifactUpdate") {
        if let Some(a) = u.remove("artifact") {
            u.insert("artifact".into(), artifact_out(a));
        }
        fields.insert("artifactUpdate".into(), Value::Object(u));
    }
    Value::Object(fields)
}

fn task_out(v: Value) -> Value {
    let Value::Object(mut t) = v else { return v };
    if let Some(s) = t.remove("status") {
        t.insert("status".into(), status_out(s));
    }
    if let Some(Value::Array(items)) = t.get_mut("artifacts") {
        for a in items.iter_mut() {
            *a = artifact_out(a.take());
        }
    }
    if let Some(Value::Array(items)) = t.get_mut("history") {
        for m in items.iter_mut() {
            *m = message_out(m.take());
        }
    }
    Value::Object(t)
}

fn status_out(v: Value) -> Value {
    let Value::Object(mut s) = v else { return v };
    if s.get("state").and_then(Value::as_str) == Some("TASK_STATE_CANCELED") {
        s.insert("state".into(), json!("TASK_STATE_CANCELLED"));
    }
    if let Some(m) = s.remove("message") {
        s.insert("message".into(), message_out(m));
    }
    Value::Object(s)
}

fn artifact_out(v: Value) -> Value {
    let Value::Object(mut a) = v else { return v };
    if let Some(Value::Array(parts)) = a.remove("parts") {
        a.insert("parts".into(), Value::Array(parts.into_iter().map(part_out).collect()));
    }
    Value::Object(a)
}

fn message_out(v: Value) -> Value {
    let Value::Object(mut m) = v else { return v };
    if let Some(Value::Array(parts)) = m.remove("parts") {
        m.insert("content".into(), Value::Array(parts.into_iter().map(part_out).collect()));
    }
    Value::Object(m)
}

fn message_in(v: &Value) -> Value {
    let Some(m) = v.as_object() else { return v.clone() };
    let mut out = m.clone();
    if let Some(Value::Array(parts)) = out.remove("content") {
        out.insert("parts".into(), Value::Array(parts.iter().map(part_in).collect()));
    }
    Value::Object(out)
}

fn part_out(v: Value) -> Value {
    let Value::Object(mut p) = v else { return v };
    let mut file = Map::new();
    if let Some(url) = p.remove("url") {
        file.insert("fileWithUri".into(), url);
    }
    if let Some(raw) = p.remove("raw") {
        file.insert("fileWithBytes".into(), raw);
    }
    if let Some(media) = p.remove("mediaType") {
        file.insert("mimeType".into(), media);
    }
    if let Some(name) = p.remove("filename") {
        file.insert("name".into(), name);
    }
    if file.contains_key("fileWithUri") || file.contains_key("fileWithBytes") {
        p.insert("file".into(), Value::Object(file));
    }
    if let Some(data) = p.remove("data") {
        p.insert("data".into(), json!({ "data": data }));
    }
    Value::Object(p)
}

fn part_in(v: &Value) -> Value {
    let Some(p) = v.as_object() else { return v.clone() };
    let mut out = p.clone();
    if let Some(Value::Object(file)) = out.remove("file") {
        let renamed =
            [("fileWithUri", "url"), ("fileWithBytes", "raw"), ("mimeType", "mediaType"), ("name", "filename")];
        for (from, to) in renamed {
            if let Some(x) = file.get(from) {
                out.insert(to.into(), x.clone());
            }
        }
    }
    if let Some(Value::Object(mut data)) = out.remove("data") {
        out.insert("data".into(), data.remove("data").unwrap_or(Value::Object(data)));
    }
    Value::Object(out)
}

/// 0.3's `PushNotificationConfig` as 1.0's flat config.
fn push_in(v: &Value) -> Value {
    let Some(c) = v.as_object() else { return v.clone() };
    let mut out = c.clone();
    if let Some(Value::Object(mut auth)) = out.remove("authentication") {
        let scheme = auth.remove("schemes").and_then(|s| s.as_array().and_then(|a| a.first().cloned()));
        if let Some(scheme) = scheme {
            auth.insert("scheme".into(), scheme);
        }
        out.insert("authentication".into(), Value::Object(auth));
    }
    Value::Object(out)
}

/// 1.0's push config as 0.3's `TaskPushNotificationConfig`.
fn push_config_out(v: Value) -> Value {
    let Value::Object(mut c) = v else { return v };
    let task = c.remove("taskId").and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
    let id = c.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    if let Some(Value::Object(mut auth)) = c.remove("authentication") {
        if let Some(scheme) = auth.remove("scheme") {
            auth.insert("schemes".into(), json!([scheme]));
        }
        c.insert("authentication".into(), Value::Object(auth));
    }
    json!({ "name": format!("tasks/{task}/pushNotificationConfigs/{id}"), "pushNotificationConfig": c })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_03_send_reads_as_10() {
        let p = json!({
            "message": {"messageId": "m", "role": "ROLE_USER", "content": [
                {"text": "hi"},
                {"file": {"fileWithUri": "https://x/y", "mimeType": "text/plain", "name": "y"}},
                {"data": {"data": {"k": 1}}},
            ]},
            "configuration": {"blocking": true, "pushNotification": {"url": "https://h", "authentication": {"schemes": ["Bearer"]}}},
        });
        let v = params(A2aOperation::SendMessage, &p);
        assert_eq!(v["message"]["parts"][0], json!({"text": "hi"}));
        assert_eq!(v["message"]["parts"][1], json!({"url": "https://x/y", "mediaType": "text/plain", "filename": "y"}));
        assert_eq!(v["message"]["parts"][2], json!({"data": {"k": 1}}));
        assert_eq!(v["configuration"]["returnImmediately"], false);
        assert_eq!(v["configuration"]["taskPushNotificationConfig"]["authentication"]["scheme"], "Bearer");
        assert_eq!(
            params(A2aOperation::SendMessage, &json!({"message": {}}))["configuration"]["returnImmediately"],
            true
        );
    }

    #[test]
    fn a_10_result_reads_as_03() {
        let task = json!({"task": {"id": "t", "status": {"state": "TASK_STATE_CANCELED",
            "message": {"role": "ROLE_AGENT", "parts": [{"text": "x"}]}},
            "artifacts": [{"artifactId": "a", "parts": [{"data": {"k": 1}}]}]}});
        let v = result(A2aOperation::SendMessage, task);
        assert_eq!(v["task"]["status"]["state"], "TASK_STATE_CANCELLED");
        assert_eq!(v["task"]["status"]["message"]["content"][0]["text"], "x");
        assert_eq!(v["task"]["artifacts"][0]["parts"][0], json!({"data": {"data": {"k": 1}}}));
        let update =
            stream_response(json!({"statusUpdate": {"taskId": "t", "status": {"state": "TASK_STATE_COMPLETED"}}}));
        assert_eq!(update["statusUpdate"]["final"], true);
        let config =
            push_config_out(json!({"taskId": "t", "id": "c", "url": "u", "authentication": {"scheme": "Bearer"}}));
        assert_eq!(config["name"], "tasks/t/pushNotificationConfigs/c");
        assert_eq!(config["pushNotificationConfig"]["authentication"]["schemes"], json!(["Bearer"]));
    }
}
