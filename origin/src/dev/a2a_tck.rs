//! The A2A compatibility kit's fixtures (`serve --a2a-tck-fixtures`, loopback only): what its
//! system-under-test contract (`scenarios/*.feature` in a2aproject/a2a-tck) asks an agent to do
//! for a message whose `messageId` starts with a `tck-` prefix. Such a message runs the `tck`
//! workflow instead of a skill, or, for `tck-message-response`, is answered with a message and
//! no task. Every other message, and every message with the switch off, meets the real skills;
//! with `--a2a-tck-reference-agent` as well, every other message meets the agent the 0.3 kit was
//! written against (its `python-sut`): submitted, working, and after a while its text echoed.

use base64::Engine as _;
use serde_json::json;

use crate::protocol::a2a::wire::{Artifact, Message, Part, Role};
use crate::protocol::a2a::workflow::{Step, StepError, StepInput, StepOutput, Workflow};

/// The workflow the kit's messages run.
pub const WORKFLOW: &str = "tck";

pub static TCK: Workflow =
    Workflow { name: WORKFLOW, steps: &[Step { name: "scenario", run: |i| Box::pin(scenario(i)) }] };

/// How long the 0.3 kit's reference agent works on a task (its `python-sut` takes 1.2 s; the
/// kit's history check sends follow-ups for about as long).
const REFERENCE_AGENT_WORK: std::time::Duration = std::time::Duration::from_millis(2500);

/// Whether `message` is one of the kit's (the switch is checked by the caller).
pub fn is_kit_message(message: &Message) -> bool {
    message.message_id.starts_with("tck-")
}

/// The message `tck-message-response` is answered with, in place of a task.
pub fn message_response(message: &Message) -> Option<Message> {
    if !message.message_id.starts_with("tck-message-response") {
        return None;
    }
    let mut reply = Message::agent(format!("{}-reply", message.message_id), "Direct message response");
    reply.context_id = message.context_id.clone();
    Some(reply)
}

fn file(url: Option<&str>) -> Part {
    Part::File {
        url: url.map(str::to_owned),
        raw: url.is_none().then(|| base64::engine::general_purpose::STANDARD.encode("TCK file content")),
        media_type: Some("text/plain".into()),
        filename: Some("output.txt".into()),
        metadata: None,
    }
}

fn artifact(part: Part) -> Artifact {
    Artifact { artifact_id: "tck-artifact".into(), name: "tck".into(), description: None, parts: vec![part] }
}

/// One scenario of the kit's contract, by the prefix of the user's latest message (a reply to
/// `tck-input-required` names what happens next). Prefixes that extend another come first
/// (`tck-artifact-file-url` before `tck-artifact-file`).
async fn scenario(i: StepInput) -> Result<StepOutput, StepError> {
    let latest = i.history.iter().rev().find(|m| m.role == Role::User).unwrap_or(&i.input);
    let id = latest.message_id.as_str();
    let done = |part: Option<Part>, answer: &str| StepOutput {
        value: json!({ "scenario": id }),
        artifacts: part.map(artifact).into_iter().collect(),
        answer: Some(answer.to_owned()),
        ask: None,
    };
    let text = |t: &str| Some(Part::text(t));
    Ok(match id {
        // The 0.3 kit's reference agent; its checks send follow-ups while the task still works.
        _ if !id.starts_with("tck-") => {
            tokio::time::sleep(REFERENCE_AGENT_WORK).await;
            done(text(&latest.text()), "done")
        }
        _ if id.starts_with("tck-input-required") => {
            StepOutput { ask: Some("The kit asked for input.".into()), ..StepOutput::default() }
        }
        _ if id.starts_with("tck-reject-task") => return Err(StepError::Rejected("rejected".into())),
        _ if id.starts_with("tck-artifact-text") => done(text("Generated text content"), "done"),
        _ if id.starts_with("tck-artifact-file-url") => {
            done(Some(file(Some("https://example.com/output.txt"))), "done")
        }
        _ if id.starts_with("tck-artifact-file") => done(Some(file(None)), "done"),
        _ if id.starts_with("tck-artifact-data") => {
            done(Some(Part::data(json!({"key": "value", "count": 42}))), "done")
        }
        _ if id.starts_with("tck-stream-001") => done(text("Stream hello from TCK"), "done"),
        _ if id.starts_with("tck-stream-003") => done(text("Stream task lifecycle"), "done"),
        _ if id.starts_with("tck-stream-ordering") => done(text("Ordered output"), "done"),
        _ if id.starts_with("tck-stream-artifact-text") => done(text("Streamed text content"), "done"),
        _ if id.starts_with("tck-stream-artifact-file") => done(Some(file(None)), "done"),
        _ if id.starts_with("tck-stream") => done(None, "done"),
        // `tck-complete-task` and every prefix without a scenario of its own.
        _ => done(None, "Hello from TCK"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kit_s_prefix_is_its_and_the_message_response_keeps_the_context() {
        let mut m = Message::agent("tck-message-response-1".into(), "hi");
        m.context_id = Some("ctx".into());
        assert!(is_kit_message(&m));
        let reply = message_response(&m).unwrap();
        assert_eq!((reply.context_id.as_deref(), reply.text()), (Some("ctx"), "Direct message response".into()));
        assert!(message_response(&Message::agent("tck-complete-task-1".into(), "hi")).is_none());
        assert!(!is_kit_message(&Message::agent("user-1".into(), "tck-looking text")));
    }
}
