//! Conformance mode (`serve --conformance-fixtures`): the official MCP suite sends no token, so
//! its requests act as a fixed principal of a tenant of their own. Loopback addresses only.

use agentplane_core::auth::{Principal, Scopes};
use uuid::Uuid;

use crate::app::config::Config;

/// The tenant the conformance fixtures act for (no token, by the suite's design).
pub const CONFORMANCE_TENANT: Uuid = Uuid::from_u128(0x0c0f_0000_0000_4000_8000_0000_0000_0001);

/// The principal of requests without an `Authorization` header: `None` unless conformance mode
/// is on, and an error if it is on anywhere but a loopback address.
pub fn anonymous_principal(config: &Config) -> anyhow::Result<Option<Principal>> {
    if !config.conformance_fixtures {
        return Ok(None);
    }
    anyhow::ensure!(
        config.listen.ip().is_loopback(),
        "conformance fixtures accept unauthenticated requests; they only run on a loopback address"
    );
    tracing::warn!("conformance fixtures on: requests without a token act as the conformance tenant");
    Ok(Some(Principal {
        tenant: CONFORMANCE_TENANT,
        subject: "conformance-suite".into(),
        scopes: Scopes::new(["search:read", "docs:write", "tasks:run"]),
        tier: Some("enterprise".into()),
        token_id: None,
        expires_at: u64::MAX,
    }))
}
