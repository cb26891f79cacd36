//! Label sets and the functions that bound their values. Every value is from a closed set (a
//! configured tier, a catalogue method, a tool this server offers), never a path, tenant or
//! subject a client chose: a scrape stays the same size whatever clients send.

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RpcLabels {
    pub endpoint: &'static str,
    pub method: String,
    pub tier: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RpcTimeLabels {
    pub endpoint: &'static str,
    pub method: String,
    pub tier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ToolLabels {
    pub tool: String,
    pub tier: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ToolTimeLabels {
    pub tool: String,
    pub tier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RefusalLabels {
    pub reason: &'static str,
    pub tier: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PhaseLabels {
    pub phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct LookupLabels {
    pub source: &'static str,
}

/// How a call ended, as an error-rate alert wants it: a server error is ours to fix, a client
/// error is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    ClientError,
    ServerError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
        }
    }

    pub fn of_status(status: http::StatusCode) -> Self {
        if status.is_server_error() {
            Outcome::ServerError
        } else if status.is_client_error() {
            Outcome::ClientError
        } else {
            Outcome::Ok
        }
    }

    /// A JSON-RPC error code's side: internal errors and an unavailable dependency are the
    /// server's, everything else (bad params, unknown task, limits) the client's.
    pub fn of_jsonrpc_code(code: i64) -> Self {
        use agentplane_core::jsonrpc::code;
        if code == i64::from(code::INTERNAL_ERROR) || code == i64::from(code::ORIGIN_UNAVAILABLE) {
            Outcome::ServerError
        } else {
            Outcome::ClientError
        }
    }

    /// A gRPC status code's side (`grpc-status`), as the gRPC status-code guide assigns them.
    pub fn of_grpc_status(status: u32) -> Self {
        match status {
            0 => Outcome::Ok,
            // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS
            2 | 4 | 12 | 13 | 14 | 15 => Outcome::ServerError,
            _ => Outcome::ClientError,
        }
    }
}

/// Why the gate (or the task engine, for its caps) refused a request before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unauthenticated,
    Forbidden,
    RateLimited,
    BudgetExhausted,
    TooManyStreams,
    TooManyTasks,
    Unavailable,
    Invalid,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Forbidden => "forbidden",
            Refusal::RateLimited => "rate_limited",
            Refusal::BudgetExhausted => "budget_exhausted",
            Refusal::TooManyStreams => "too_many_streams",
            Refusal::TooManyTasks => "too_many_tasks",
            Refusal::Unavailable => "unavailable",
            Refusal::Invalid => "invalid",
        }
    }

    /// The reason of a refusal the core's pipeline answered, by its status.
    pub fn of_status(status: http::StatusCode) -> Self {
        match status.as_u16() {
            401 => Refusal::Unauthenticated,
            403 => Refusal::Forbidden,
            429 => Refusal::RateLimited,
            502..=504 => Refusal::Unavailable,
            _ => Refusal::Invalid,
        }
    }
}

/// A bounded set of label values: paths are client-chosen, so they are never labels themselves.
pub(super) fn endpoint(path: &str) -> &'static str {
    match path {
        "/mcp" => "mcp",
        "/a2a" | "/a2a/" => "a2a",
        p if agentplane_core::a2a_rest::is_rest_path(p) => "a2a_rest",
        p if agentplane_core::a2a_grpc::is_grpc_path(p) => "a2a_grpc",
        "/health" | "/ready" | "/ready/details" => "health",
        "/metrics" => "metrics",
        p if p.starts_with("/.well-known/") => "well_known",
        _ => "other",
    }
}
