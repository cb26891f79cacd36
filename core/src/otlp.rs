//! An edge's own span, as OTLP/HTTP JSON (`POST <collector>/v1/traces`, `Content-Type:
//! application/json`): the OpenTelemetry SDKs do not run in Workers or Spin components, and one
//! span per request needs no more than this. The ids are the ones the edge forwards in
//! `traceparent`, so the origin's spans hang under this one. The adapter sends the bytes (after
//! the response where the runtime allows); the core only builds them.

use serde_json::{Value, json};

use crate::time::Timestamp;
use crate::trace::TraceParent;

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    /// Its trace, and its own id as `parent_id` (what the next hop's `traceparent` names).
    pub span: TraceParent,
    /// The caller's span, when the request came inside a trace.
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// String attributes (OpenTelemetry semantic convention names).
    pub attributes: Vec<(&'static str, String)>,
    /// The response's status: a 5xx marks the span as failed.
    pub status: u16,
}

/// The `ExportTraceServiceRequest` of `spans`, as `service`, in OTLP's JSON encoding (ids in hex,
/// times as decimal strings of Unix nanoseconds, enums as numbers).
pub fn export_json(service: &str, spans: &[SpanRecord]) -> Vec<u8> {
    let spans: Vec<Value> = spans.iter().map(span_json).collect();
    let body = json!({ "resourceSpans": [{
        "resource": { "attributes": [attribute("service.name", service)] },
        "scopeSpans": [{ "scope": { "name": "agentplane-core" }, "spans": spans }],
    }]});
    serde_json::to_vec(&body).unwrap_or_default()
}

fn span_json(s: &SpanRecord) -> Value {
    let mut span = json!({
        "traceId": crate::digest::hex(&s.span.trace_id),
        "spanId": crate::digest::hex(&s.span.parent_id),
        "name": s.name,
        // SPAN_KIND_SERVER
        "kind": 2,
        "startTimeUnixNano": s.start.as_unix_nanos().to_string(),
        "endTimeUnixNano": s.end.as_unix_nanos().max(s.start.as_unix_nanos()).to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
        // STATUS_CODE_ERROR for a server failure, else unset (0): a 4xx is the caller's.
        "status": { "code": if s.status >= 500 { 2 } else { 0 } },
    });
    if let (Some(parent), Some(fields)) = (s.parent, span.as_object_mut()) {
        fields.insert("parentSpanId".into(), Value::String(crate::digest::hex(&parent)));
    }
    span
}

fn attribute(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_encoded_as_otlp_json_with_its_parent() {
        let caller = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let span = TraceParent::next_hop(Some(&caller), &[7; 24]);
        let record = SpanRecord {
            span,
            parent: Some(caller.parent_id),
            name: "edge tools/call".into(),
            start: Timestamp::from_unix_millis(1_000),
            end: Timestamp::from_unix_millis(1_005),
            attributes: vec![("http.request.method", "POST".into())],
            status: 502,
        };
        let v: Value = serde_json::from_slice(&export_json("agentplane-edge", &[record])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(s["spanId"], "0707070707070707");
        assert_eq!(
            (s["startTimeUnixNano"].as_str(), s["endTimeUnixNano"].as_str()),
            (Some("1000000000"), Some("1005000000"))
        );
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "agentplane-edge");
    }
}
