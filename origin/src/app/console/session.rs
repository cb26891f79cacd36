//! The console's session: signing in turns a pasted token into an HttpOnly, `SameSite=Strict`
//! cookie, so the page's script never holds it (nor puts it in storage); signing out clears it.
//! Sign-in and whoami reach here only past the gate: the token verified, the tenant's limit
//! applied (`Endpoint::Console` in the core).

use agentplane_core::auth::Principal;
use agentplane_core::auth::console::SESSION_COOKIE;
use axum::Extension;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppError;

/// Who the session is: `GET /console/session` with the cookie.
pub async fn whoami(principal: Option<Extension<Principal>>) -> Result<Json<Value>, AppError> {
    let Some(Extension(p)) = principal else { return Err(AppError::Internal) };
    Ok(Json(describe(&p)))
}

/// `POST /console/session` with `Authorization: Bearer <token>`: the token the gate verified
/// becomes the session's cookie, for as long as the token is valid.
pub async fn sign_in(principal: Option<Extension<Principal>>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(Extension(p)) = principal else { return Err(AppError::Internal) };
    // A session comes from a pasted token only, not from another session's cookie.
    let token =
        crate::app::http::bearer(&headers).ok_or(AppError::NotFound("sign in with Authorization: Bearer <token>"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let max_age = p.expires_at.saturating_sub(now);
    let cookie = set_cookie(SESSION_COOKIE, token, "/", max_age, is_https(&headers))?;
    let mut response = Json(describe(&p)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `DELETE /console/session`: the cookie is cleared, whatever it held.
pub async fn sign_out(headers: HeaderMap) -> Result<Response, AppError> {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", 0, is_https(&headers))?);
    Ok(response)
}

fn describe(p: &Principal) -> Value {
    json!({
        "tenant": p.tenant,
        "subject": p.subject,
        "scopes": p.scopes.iter().collect::<Vec<_>>(),
        "tier": p.tier,
        "expires_at": p.expires_at,
    })
}

/// A `Set-Cookie` value the page's script cannot read and no other site's request carries.
/// `Secure` when the page was served over HTTPS (directly or behind a proxy that says so); a
/// plain-HTTP local run would otherwise have no session at all.
pub(super) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    secure: bool,
) -> Result<HeaderValue, CookieError> {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    // A token is base64url and dots; anything else is no token this server verified.
    HeaderValue::from_str(&cookie).map_err(|_| CookieError)
}

/// A cookie value that cannot be a header: never a token this server verified.
#[derive(Debug)]
pub(super) struct CookieError;

impl From<CookieError> for AppError {
    fn from(_: CookieError) -> Self {
        AppError::Internal
    }
}

pub(super) fn is_https(headers: &HeaderMap) -> bool {
    let value = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    value(header::ORIGIN.as_str()).is_some_and(|o| o.starts_with("https://"))
        || value("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = set_cookie("agentplane_session", "a.b.c", "/", 60, true).unwrap();
        assert_eq!(c, "agentplane_session=a.b.c; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure");
        let mut h = HeaderMap::new();
        assert!(!is_https(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://agents.example"));
        assert!(is_https(&h));
        assert!(set_cookie("agentplane_session", "a\nb", "/", 60, false).is_err());
    }
}
