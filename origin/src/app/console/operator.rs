//! The operator's page: readiness, the lexical backend, the embedding provider and its circuit,
//! the tiers, and the busiest tenants of this replica. Behind the operator's credential
//! (`operator_token`), kept like the tenant session in an HttpOnly cookie scoped to these paths;
//! served at the origin only (an edge answers 404, as it does for `/ready/details`).

use agentplane_core::auth::console::{CONSOLE_HEADER, cookie};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::session::{is_https, set_cookie};
use crate::app::AppError;
use crate::app::http::{AppState, bearer};

const OPERATOR_COOKIE: &str = "agentplane_operator";
const OPERATOR_PATH: &str = "/console/operator";
/// How long an operator's console session lasts.
const OPERATOR_SESSION_SECS: u64 = 8 * 3600;
/// How many tenants the page lists.
const TOP_TENANTS: usize = 50;

/// `POST /console/operator/session` with `Authorization: Bearer <operator_token>`.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let given = bearer(&headers).unwrap_or_default();
    state.check_operator(given)?;
    let cookie = set_cookie(OPERATOR_COOKIE, given, OPERATOR_PATH, OPERATOR_SESSION_SECS, is_https(&headers))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn sign_out(headers: HeaderMap) -> Result<Response, AppError> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, "", OPERATOR_PATH, 0, is_https(&headers))?);
    Ok(response)
}

/// `GET /console/operator/details`: the cookie (with the console's header, as for the tenant
/// session) or the credential itself.
pub async fn details(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, AppError> {
    let from_cookie = headers.get(CONSOLE_HEADER).and_then(|_| cookie(&headers, OPERATOR_COOKIE));
    state.check_operator(bearer(&headers).or(from_cookie).unwrap_or_default())?;
    let readiness = crate::app::http::readiness_details(&state).await;
    let (tenants, uncounted) = state.metrics.tenants.busiest(TOP_TENANTS);
    let tenants: Vec<Value> = tenants
        .into_iter()
        .map(|(tenant, t)| json!({ "tenant": tenant, "requests": t.requests, "errors": t.errors }))
        .collect();
    Ok(Json(json!({
        "readiness": readiness,
        "tiers": state.tiers,
        "budgets": { "tiers": state.budgets.tiers, "per_user_micros": state.budgets.per_user_micros },
        "tenants": tenants,
        "uncounted_requests": uncounted,
    })))
}
