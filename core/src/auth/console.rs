//! The console's browser session: the bearer token carried in an HttpOnly cookie instead of an
//! `Authorization` header, so page scripts never hold it.
//!
//! A cookie rides along on any request the browser makes, including ones another site triggers,
//! so it counts as a credential only on requests that also carry [`CONSOLE_HEADER`]: a header
//! that cross-site forms cannot send and cross-site scripts cannot add without a CORS preflight
//! we never grant (OWASP's custom-request-header defence, on top of `SameSite=Strict`).

/// The cookie the origin sets at sign-in (`POST /console/session`).
pub const SESSION_COOKIE: &str = "agentplane_session";

/// The header the console adds to every call it makes with its session cookie. Not an
/// `x-agentplane-*` name: the edge drops those, and the origin checks this one again.
pub const CONSOLE_HEADER: &str = "agentplane-console";

/// The session token of a console request: the [`SESSION_COOKIE`] value, when the request says
/// it comes from the console. `None` for any other request, which then needs `Authorization`.
pub fn session_token(headers: &http::HeaderMap) -> Option<&str> {
    headers.get(CONSOLE_HEADER)?;
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `name` in a request's `Cookie` headers (RFC 6265 section 5.4), if it is
/// there and not empty.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_counts_only_with_the_console_header() {
        let cookie = "theme=dark; agentplane_session=abc.def.ghi; other=1";
        assert_eq!(session_token(&headers(&[("cookie", cookie), (CONSOLE_HEADER, "1")])), Some("abc.def.ghi"));
        // A cross-site form post carries the cookie (were it not SameSite) but not the header.
        assert_eq!(session_token(&headers(&[("cookie", cookie)])), None);
        assert_eq!(session_token(&headers(&[(CONSOLE_HEADER, "1")])), None);
        let split = headers(&[("cookie", "a=1"), ("cookie", "agentplane_session=t"), (CONSOLE_HEADER, "1")]);
        assert_eq!(session_token(&split), Some("t"));
        let empty = headers(&[("cookie", "agentplane_session="), (CONSOLE_HEADER, "1")]);
        assert_eq!(session_token(&empty), None);
        let lookalike = headers(&[("cookie", "xagentplane_session=t"), (CONSOLE_HEADER, "1")]);
        assert_eq!(session_token(&lookalike), None);
    }
}
