//! OpenTelemetry traces from a served origin (`OTEL_EXPORTER_OTLP_ENDPOINT`) into a small OTLP
//! receiver: one MCP tool call is one trace, a child of the caller's span (a `traceparent`
//! header, as an edge sends, or MCP `_meta`), with the gate's request span, the tool's span and
//! its SQL statements' spans linked parent to child.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use support::processes::{free_port, fresh_data_dir, mint, serve_with};

const TENANT: &str = "7b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3";

/// Every span the receiver was sent.
type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver (protobuf) on a free port: the base URL to export to.
async fn receiver(spans: Received) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = spans.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let mut all = spans.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        all.extend(scope.spans);
                    }
                }
                ExportTraceServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn search(port: u16, token: &str, traceparent: Option<&str>, meta: Value) -> Value {
    let mut r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "hybrid_search");
    if let Some(t) = traceparent {
        r = r.header("traceparent", t);
    }
    let mut meta_fields = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientCapabilities": {}});
    meta_fields.as_object_mut().unwrap().extend(meta.as_object().unwrap().clone());
    let body: Value = r
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "_meta": meta_fields, "name": "hybrid_search", "arguments": {"query": "lava basalt"}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("error").is_none(), "{body}");
    body
}

/// Every span the test asserts on. Each is exported when it ends, children before parents, so
/// the batch with the SQL spans can leave before the request's span has closed: wait for all.
const EXPECTED: [&str; 5] =
    ["tools/call", "gate", "tool hybrid_search", "search top-N (lexical and vector)", "BEGIN (tenant, search)"];

/// The spans of `trace` (hex), once every span in [`EXPECTED`] has arrived.
async fn trace_of(spans: &Received, trace: &str) -> Vec<Span> {
    for _ in 0..100 {
        let of_trace: Vec<Span> = spans.lock().unwrap().iter().filter(|s| hex(&s.trace_id) == trace).cloned().collect();
        if EXPECTED.iter().all(|name| of_trace.iter().any(|s| s.name == *name)) {
            return of_trace;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no complete trace {trace}: {:?}", spans.lock().unwrap().iter().map(|s| &s.name).collect::<Vec<_>>());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn named<'s>(spans: &'s [Span], name: &str) -> &'s Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
}

/// Whether `span` descends from `ancestor` within `spans`.
fn descends(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        parent = spans.iter().find(|s| s.span_id == parent).map(|s| s.parent_span_id.clone()).unwrap_or_default();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_is_one_trace_under_the_callers_span() {
    let spans = Received::default();
    let collector = receiver(spans.clone()).await;
    let data = fresh_data_dir("traces");
    let port = free_port();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let _origin = serve_with(&data, port, &env).await;
    let token = mint(&data, TENANT);

    // As an edge calls: its span in the `traceparent` header.
    let (trace, edge_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    search(port, &token, Some(&format!("00-{trace}-{edge_span}-01")), json!({})).await;
    let got = trace_of(&spans, trace).await;
    let request = named(&got, "tools/call");
    assert_eq!(hex(&request.parent_span_id), edge_span, "the request span is the edge span's child");
    let tool = named(&got, "tool hybrid_search");
    assert_eq!(tool.parent_span_id, request.span_id, "the tool span is the request's child");
    let gate = named(&got, "gate");
    assert_eq!(gate.parent_span_id, request.span_id);
    let sql = named(&got, "search top-N (lexical and vector)");
    assert!(descends(&got, sql, tool), "the statement's span is under the tool's");
    assert!(descends(&got, named(&got, "BEGIN (tenant, search)"), tool));
    assert!(got.iter().all(|s| !s.attributes.iter().any(|a| format!("{:?}", a.value).contains("lava"))), "no values");

    // Without a header, MCP `_meta` names the caller's span (SEP-414).
    let (trace, client_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    search(port, &token, None, json!({"traceparent": format!("00-{trace}-{client_span}-01")})).await;
    let got = trace_of(&spans, trace).await;
    assert_eq!(hex(&named(&got, "tools/call").parent_span_id), client_span);
}
