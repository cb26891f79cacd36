//! How an authentication or authorisation failure is told to the client: status, a
//! `WWW-Authenticate: Bearer` challenge (RFC 6750 section 3, with RFC 9728's `resource_metadata`),
//! and a JSON-RPC error.

use super::verify::VerifyError;
use crate::jsonrpc::{ErrorObject, code};

/// Why a request was not let through on account of its credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header: the client should go and get a token.
    #[error("authorization required")]
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    NotBearer,
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// A valid token without the scope the method needs.
    #[error("insufficient scope: {required} is required")]
    InsufficientScope { required: String },
}

impl AuthError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            AuthError::InsufficientScope { .. } => http::StatusCode::FORBIDDEN,
            AuthError::NotBearer => http::StatusCode::BAD_REQUEST,
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// The OAuth error code of the challenge, if any. RFC 6750 says a request that carried no
    /// credentials at all gets a challenge without one.
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::NotBearer => Some("invalid_request"),
            AuthError::Invalid(_) => Some("invalid_token"),
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(&self, resource_metadata: &str) -> String {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(error) = self.oauth_error() {
            params.push(("error", error.to_owned()));
            params.push(("error_description", self.to_string()));
        }
        if let AuthError::InsufficientScope { required } = self {
            params.push(("scope", required.clone()));
        }
        params.push(("resource_metadata", resource_metadata.to_owned()));
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}=\"{}\"", quote_safe(v))).collect();
        format!("Bearer {}", rendered.join(", "))
    }

    pub fn to_error_object(&self) -> ErrorObject {
        let code = match self {
            AuthError::InsufficientScope { .. } => code::FORBIDDEN,
            _ => code::UNAUTHORIZED,
        };
        ErrorObject::new(code, self.to_string())
    }
}

/// RFC 6750 restricts `error_description` to printable ASCII without `"` and `\`; anything else is
/// replaced so a hostile `kid` cannot break the header.
fn quote_safe(s: &str) -> String {
    s.chars().map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750_and_9728() {
        let md = "https://edge.example/.well-known/oauth-protected-resource";
        assert_eq!(AuthError::Missing.challenge(md), format!("Bearer resource_metadata=\"{md}\""));
        assert_eq!(AuthError::Missing.status(), http::StatusCode::UNAUTHORIZED);
        let expired = AuthError::Invalid(VerifyError::Expired);
        assert_eq!(
            expired.challenge(md),
            format!("Bearer error=\"invalid_token\", error_description=\"token expired\", resource_metadata=\"{md}\"")
        );
        let scope = AuthError::InsufficientScope { required: "docs:write".into() };
        assert_eq!(scope.status(), http::StatusCode::FORBIDDEN);
        assert!(scope.challenge(md).contains("error=\"insufficient_scope\""));
        assert!(scope.challenge(md).contains("scope=\"docs:write\""));
        assert_eq!(scope.to_error_object().code, code::FORBIDDEN);
        assert_eq!(AuthError::NotBearer.status(), http::StatusCode::BAD_REQUEST);
        let hostile = AuthError::Invalid(VerifyError::UnknownKey { kid: "a\"b\\c\u{e9}".into() });
        assert!(hostile.challenge(md).contains("no key with kid ?a??b??c??"));
    }
}
