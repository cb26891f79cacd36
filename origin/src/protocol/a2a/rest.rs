//! `/a2a/v1/...`: A2A's HTTP+JSON binding. The gate has read the request as the JSON-RPC call it
//! stands for (`agentplane_core::a2a_rest`); this runs it on the engine behind `/a2a` and
//! answers in the binding's form: the bare result, SSE events that are bare `StreamResponse`s,
//! errors in AIP-193's shape under the status their code maps to. A 0.3 client (no
//! `A2A-Version: 1.0`) speaks 0.3's protobuf JSON, read and written by [`super::proto03`].

use std::sync::Arc;

use agentplane_core::a2a_rest;
use agentplane_core::catalogue::{A2aOperation, A2aVersion};
use agentplane_core::jsonrpc::{ErrorObject, code};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use super::rpc::Outcome;
use super::{A2a, Routed, admitted, dispatch, last_event_id, proto03, refusal, stream, wire};
use crate::app::AppError;

fn identity(v: Value) -> Value {
    v
}

pub async fn handle(State(a2a): State<Arc<A2a>>, request: Request) -> Response {
    let (principal, version, message, op) = match admitted(&request) {
        Ok(Routed::Call(principal, version, message, op)) => (principal, version, message, op),
        // The gateway makes a call of every REST request it admits.
        Ok(Routed::NoCall) => return error_response(AppError::Internal),
        Err((_, error)) => return aip193(StatusCode::OK, &error),
    };
    let params = message.params.as_ref().unwrap_or(&Value::Null);
    // 0.3 runs in 1.0 and is rewritten, except its card, which is 0.3's own document.
    let (engine, params, rewrite): (A2aVersion, Value, fn(Value) -> Value) = match version {
        A2aVersion::V0_3 if op == A2aOperation::GetExtendedCard => (A2aVersion::V0_3, params.clone(), identity),
        A2aVersion::V0_3 => {
            (A2aVersion::V1_0, proto03::params(op, &wire::json_names(params)), proto03::stream_response)
        }
        A2aVersion::V1_0 => (A2aVersion::V1_0, wire::json_names(params).into_owned(), identity),
    };
    let call = a2a.call(engine, principal, stream::Framing::Rest(rewrite), last_event_id(&request));
    match dispatch(&call, op, &params).await {
        Ok(Outcome::Result(v)) => {
            let v = if version == A2aVersion::V0_3 { proto03::result(op, v) } else { v };
            let body = serde_json::to_vec(&v).unwrap_or_default();
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok(Outcome::Stream(r)) => r,
        Ok(Outcome::Events(_)) => error_response(AppError::Internal),
        Err(e) => error_response(refusal(&e, engine, &message.method, None)),
    }
}

/// An error of the origin's as the binding answers it: AIP-193 under the status its code maps
/// to, `Retry-After` and challenges kept.
pub fn error_response(e: AppError) -> Response {
    match e {
        AppError::Rpc { status, error, .. } => aip193(status, &error),
        AppError::RetryLater { status, error, retry_after_secs, .. } => {
            let mut r = aip193(status, &error);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            r
        }
        AppError::Core(mut reply) => {
            if let Some((status, body)) = a2a_rest::convert(reply.status, &reply.body) {
                reply.status = status;
                reply.body = body;
            }
            AppError::Core(reply).into_response()
        }
        AppError::Internal => {
            aip193(StatusCode::INTERNAL_SERVER_ERROR, &ErrorObject::new(code::INTERNAL_ERROR, "Internal error"))
        }
        other => other.into_response(),
    }
}

fn aip193(status: StatusCode, error: &ErrorObject) -> Response {
    let (status, body) = a2a_rest::error_reply(status, error);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
