//! JSON logs on stderr through `tracing`, and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the same spans as OpenTelemetry traces over
//! OTLP over HTTP (protobuf, or JSON with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), with the
//! standard `OTEL_*` variables for headers, timeout and the service's name and attributes. `RUST_LOG` filters both (default `info`).
//!
//! Spans worth a trace: `request` (the gate, a child of the caller's `traceparent` or MCP
//! `_meta` trace context), `gate`, `tool` and `a2a.step`, `embedding`, and `sql` (one per
//! statement, named by what it does, never with values).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Flushes and stops the trace exporter when dropped (at the end of `serve`).
#[derive(Debug)]
#[must_use = "dropping it stops exporting traces"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "flushing the last traces failed");
        }
    }
}

pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rmcp=warn"));
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stderr);
    let (provider, failure) = match exporter() {
        Ok(provider) => (provider, None),
        Err(e) => (None, Some(e)),
    };
    let traces = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("agentplane-origin")));
    let _ = tracing_subscriber::registry().with(filter).with(logs).with(traces).try_init();
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    match (&provider, failure) {
        (Some(_), _) => tracing::info!("exporting traces over OTLP"),
        // Serving matters more than tracing: say why there are no traces and go on.
        (None, Some(e)) => tracing::error!(error = %e, "the OTLP trace exporter cannot be built; no traces"),
        (None, None) => {}
    }
    Telemetry { provider }
}

/// The OTLP pipeline, when an endpoint is configured.
fn exporter() -> Result<Option<SdkTracerProvider>, opentelemetry_otlp::ExporterBuildError> {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    // Protobuf unless asked otherwise, as the OTLP exporter specification has it (the crate's
    // own default turns to JSON once its JSON encoding is compiled in).
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(protocol).build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("agentplane-origin");
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    Ok(Some(provider))
}

/// The span of one SQL statement, named by what it does; it never carries values.
pub fn sql_span(statement: &'static str) -> tracing::Span {
    tracing::info_span!("sql", otel.name = statement, otel.kind = "client", db.system.name = "postgresql")
}

/// Makes `span` a child of the caller's span (a `traceparent` from the edge or the client, or
/// MCP `_meta`), so the trace continues across the hop.
pub fn continue_trace(span: &tracing::Span, caller: &agentplane_core::trace::TraceParent) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let remote = SpanContext::new(
        TraceId::from_bytes(caller.trace_id),
        SpanId::from_bytes(caller.parent_id),
        TraceFlags::new(caller.flags),
        true,
        TraceState::default(),
    );
    // Fails only for a span that is already closed, which this is not.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}
