//! A2A's errors and the JSON-RPC error objects each version gives them: the codes of both
//! specifications (-32001 TaskNotFound ... -32007), and in 1.0 a `google.rpc.ErrorInfo` in `data`.

use agentplane_core::catalogue::A2aVersion;
use agentplane_core::jsonrpc::{ErrorObject, code};
use serde_json::json;

use super::store::StoreError;

/// The JSON-RPC code of a request refused because a daily budget is spent.
pub const BUDGET_EXCEEDED: i32 = -32013;

/// The `Retry-After` of [`A2aError::TooManyTasks`]: tasks take seconds to minutes.
pub const TASK_RETRY_AFTER_SECS: u64 = 10;

/// A2A's errors, with the codes both versions give them.
#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    #[error("Task not found")]
    TaskNotFound,
    #[error("Task cannot be canceled: it is already {0}")]
    TaskNotCancelable(&'static str),
    #[error("Push notifications are not supported by this agent")]
    PushNotificationNotSupported,
    #[error("Push notification config not found")]
    PushConfigNotFound,
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ContentTypeNotSupported(String),
    #[error("Invalid params: {0}")]
    InvalidParams(String),
    /// A spending limit is reached: no task is created.
    #[error("Budget exceeded: {0}")]
    BudgetExceeded(#[from] crate::models::budget::Exceeded),
    /// The tenant has its cap of submitted and working tasks: no task is created. Answered with
    /// 429 and `Retry-After`.
    #[error("Too many active tasks: this tenant has {limit} submitted or working; retry when one ends")]
    TooManyTasks { limit: usize },
    #[error("Internal error")]
    Internal(#[from] StoreError),
}

impl From<sqlx::Error> for A2aError {
    fn from(e: sqlx::Error) -> Self {
        A2aError::Internal(StoreError::Sql(e))
    }
}

impl A2aError {
    pub fn code(&self) -> i32 {
        match self {
            A2aError::TaskNotFound => -32001,
            A2aError::TaskNotCancelable(_) => -32002,
            A2aError::PushNotificationNotSupported => -32003,
            // A2A has no code of its own for this; the config is a parameter that names nothing.
            A2aError::PushConfigNotFound => code::INVALID_PARAMS,
            A2aError::UnsupportedOperation(_) => -32004,
            A2aError::ContentTypeNotSupported(_) => -32005,
            A2aError::InvalidParams(_) => code::INVALID_PARAMS,
            // agentplane's own server error, next to the gateway's -32010..-32012 (A2A's codes
            // end at -32009); documented in the README.
            A2aError::BudgetExceeded(_) => BUDGET_EXCEEDED,
            // The gateway's own code for a limit reached, as for its rate limit.
            A2aError::TooManyTasks { .. } => code::RATE_LIMITED,
            A2aError::Internal(_) => code::INTERNAL_ERROR,
        }
    }

    /// The refusal a cap or budget made, for `/metrics`; `None` for every other failure.
    pub fn refusal(&self) -> Option<crate::app::metrics::Refusal> {
        use crate::app::metrics::Refusal;
        match self {
            A2aError::BudgetExceeded(_) => Some(Refusal::BudgetExhausted),
            A2aError::TooManyTasks { .. } => Some(Refusal::TooManyTasks),
            _ => None,
        }
    }

    /// The `google.rpc.ErrorInfo` reason 1.0 attaches to its own errors.
    fn reason(&self) -> Option<&'static str> {
        Some(match self {
            A2aError::TaskNotFound => "TASK_NOT_FOUND",
            A2aError::TaskNotCancelable(_) => "TASK_NOT_CANCELABLE",
            A2aError::PushNotificationNotSupported => "PUSH_NOTIFICATION_NOT_SUPPORTED",
            A2aError::UnsupportedOperation(_) => "UNSUPPORTED_OPERATION",
            A2aError::ContentTypeNotSupported(_) => "CONTENT_TYPE_NOT_SUPPORTED",
            A2aError::InvalidParams(_)
            | A2aError::PushConfigNotFound
            | A2aError::BudgetExceeded(_)
            | A2aError::TooManyTasks { .. }
            | A2aError::Internal(_) => return None,
        })
    }

    pub fn to_error_object(&self, version: A2aVersion) -> ErrorObject {
        let e = ErrorObject::new(self.code(), self.to_string());
        if let A2aError::BudgetExceeded(exceeded) = self {
            return e.with_data(exceeded.data());
        }
        if let A2aError::TooManyTasks { limit } = self {
            return e.with_data(json!({ "limit": limit, "retryAfterMs": TASK_RETRY_AFTER_SECS * 1000 }));
        }
        match (version, self.reason()) {
            (A2aVersion::V1_0, Some(reason)) => e.with_data(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
            }])),
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_errors_carry_error_info() {
        let e = A2aError::TaskNotFound.to_error_object(A2aVersion::V1_0);
        assert_eq!(e.code, -32001);
        assert_eq!(e.data.as_ref().unwrap()[0]["reason"], "TASK_NOT_FOUND");
        assert!(A2aError::TaskNotFound.to_error_object(A2aVersion::V0_3).data.is_none());
        assert_eq!(A2aError::TaskNotCancelable("completed").code(), -32002);
    }
}
