//! The fixture tools, prompts and resources the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`) calls. Off unless `conformance_fixtures` is set; the
//! texts are the ones the suite checks.
#![allow(deprecated)] // logging and sampling are deprecated in MCP 2026-07-28 but tested for older revisions

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn object(v: Value) -> Arc<JsonObject> {
    Arc::new(match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    })
}

fn no_args() -> Arc<JsonObject> {
    object(json!({"type": "object", "properties": {}}))
}

pub fn tools() -> Vec<Tool> {
    let string_arg = |name: &str, d: &str| {
        object(
            json!({"type": "object", "properties": {name: {"type": "string", "description": d}}, "required": [name]}),
        )
    };
    vec![
        Tool::new("test_simple_text", "Returns a simple text response", no_args()),
        Tool::new("test_image_content", "Returns an image", no_args()),
        Tool::new("test_audio_content", "Returns audio", no_args()),
        Tool::new("test_embedded_resource", "Returns an embedded resource", no_args()),
        Tool::new("test_multiple_content_types", "Returns text, an image and a resource", no_args()),
        Tool::new("test_tool_with_logging", "Sends log messages while running", no_args()),
        Tool::new("test_tool_with_progress", "Reports progress while running", no_args()),
        Tool::new("test_error_handling", "Always fails with isError", no_args()),
        Tool::new("test_sampling", "Asks the client's model", string_arg("prompt", "The prompt to send")),
        Tool::new("test_elicitation", "Asks the user for input", string_arg("message", "What to ask")),
        Tool::new("test_elicitation_sep1034_defaults", "Elicitation with default values", no_args()),
        Tool::new("test_elicitation_sep1330_enums", "Elicitation with enum forms", no_args()),
        Tool::new(
            "json_schema_2020_12_tool",
            "A tool whose input schema uses JSON Schema 2020-12 features",
            object(json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                "additionalProperties": false
            })),
        ),
    ]
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s.into())])
}

fn schema(v: Value) -> Result<ElicitationSchema, McpError> {
    serde_json::from_value(v).map_err(|e| McpError::internal_error(e.to_string(), None))
}

async fn elicit(
    ctx: &RequestContext<RoleServer>,
    message: &str,
    requested_schema: ElicitationSchema,
) -> CallToolResult {
    let params = ElicitRequestParams::FormElicitationParams { meta: None, message: message.into(), requested_schema };
    match ctx.peer.create_elicitation(params).await {
        Ok(r) => text(format!("User response: action={:?}, content={}", r.action, r.content.unwrap_or_default())),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("elicitation failed: {e}"))]),
    }
}

pub async fn call(name: &str, args: &JsonObject, ctx: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(match name {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => CallToolResult::success(vec![ContentBlock::image(PNG, "image/png")]),
        "test_audio_content" => CallToolResult::success(vec![ContentBlock::audio(WAV, "audio/wav")]),
        "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text("This is an embedded resource content.", "test://embedded-resource")
                .with_mime_type("text/plain"),
        )]),
        "test_multiple_content_types" => CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(r#"{"test":"data","value":123}"#, "test://mixed-content-resource")
                    .with_mime_type("application/json"),
            ),
        ]),
        "test_tool_with_logging" => {
            for m in ["Tool execution started", "Tool processing data", "Tool execution completed"] {
                let _ = ctx
                    .peer
                    .notify_logging_message(LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(m)))
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            text("Logging test completed")
        }
        "test_tool_with_progress" => {
            if let Some(token) = ctx.meta.get_progress_token() {
                for p in [0.0, 50.0, 100.0] {
                    let _ = ctx
                        .peer
                        .notify_progress(ProgressNotificationParam::new(token.clone(), p).with_total(100.0))
                        .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            text("Progress test completed")
        }
        "test_error_handling" => {
            CallToolResult::error(vec![ContentBlock::text("This tool intentionally returns an error for testing")])
        }
        "test_sampling" => {
            let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(arg("prompt"))], 100);
            match ctx.peer.create_message(params).await {
                Ok(r) => {
                    text(format!("LLM response: {}", serde_json::to_string(&r.message.content).unwrap_or_default()))
                }
                Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("sampling failed: {e}"))]),
            }
        }
        "test_elicitation" => {
            let s = schema(json!({"type": "object", "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"}},
                "required": ["username", "email"]}))?;
            elicit(ctx, &arg("message"), s).await
        }
        "test_elicitation_sep1034_defaults" => {
            let s = schema(json!({"type": "object", "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "score": {"type": "number", "default": 95.5},
                "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "default": true}}}))?;
            elicit(ctx, "Please review and update the form fields with defaults", s).await
        }
        "test_elicitation_sep1330_enums" => {
            let s = schema(json!({"type": "object", "properties": {
                "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "oneOf": [
                    {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "items": {"anyOf": [
                    {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}}}))?;
            elicit(ctx, "Please select options from the enum fields", s).await
        }
        "json_schema_2020_12_tool" => text("ok"),
        other => return Err(McpError::invalid_params(format!("Unknown tool: {other}"), Some(json!({"tool": other})))),
    })
}

pub fn resources() -> Vec<Resource> {
    vec![
        Resource::new("test://static-text", "static-text")
            .with_description("A static text resource")
            .with_mime_type("text/plain"),
        Resource::new("test://static-binary", "static-binary")
            .with_description("A static binary resource")
            .with_mime_type("image/png"),
        Resource::new("test://watched-resource", "watched-resource")
            .with_description("A resource to subscribe to")
            .with_mime_type("text/plain"),
    ]
}

pub fn resource_templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("test://template/{id}/data", "template-data")
            .with_description("Data by id")
            .with_mime_type("application/json"),
    ]
}

/// Reads a fixture resource, or `None` if `uri` is not one.
pub fn read(uri: &str) -> Option<ResourceContents> {
    Some(match uri {
        "test://static-text" => {
            ResourceContents::text("This is the content of the static text resource.", uri).with_mime_type("text/plain")
        }
        "test://static-binary" => ResourceContents::blob(PNG, uri).with_mime_type("image/png"),
        "test://watched-resource" => {
            ResourceContents::text("Watched resource content.", uri).with_mime_type("text/plain")
        }
        _ => {
            let id = uri.strip_prefix("test://template/")?.strip_suffix("/data")?;
            let body = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
            ResourceContents::text(body.to_string(), uri).with_mime_type("application/json")
        }
    })
}

pub fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new("test_simple_prompt", Some("A simple prompt without arguments"), None),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with arguments"),
            Some(vec![
                PromptArgument::new("arg1").with_description("First test argument").with_required(true),
                PromptArgument::new("arg2").with_description("Second test argument").with_required(true),
            ]),
        ),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt with an embedded resource"),
            Some(vec![
                PromptArgument::new("resourceUri").with_description("URI of the resource to embed").with_required(true),
            ]),
        ),
        Prompt::new("test_prompt_with_image", Some("A prompt with an image"), None),
    ]
}

pub fn get_prompt(name: &str, args: &JsonObject) -> Option<GetPromptResult> {
    let arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(match name {
        "test_simple_prompt" => {
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, "This is a simple prompt for testing.")])
        }
        "test_prompt_with_arguments" => GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2")),
        )]),
        "test_prompt_with_embedded_resource" => GetPromptResult::new(vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::resource(
                    ResourceContents::text("Embedded resource content for testing.", arg("resourceUri"))
                        .with_mime_type("text/plain"),
                ),
            ),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]),
        "test_prompt_with_image" => GetPromptResult::new(vec![
            PromptMessage::new(Role::User, ContentBlock::image(PNG, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]),
        _ => return None,
    })
}
