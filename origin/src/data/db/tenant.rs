//! `TenantId`, the tenant a transaction is scoped to (`Database::tenant_tx`), and where one may
//! come from.

use agentplane_core::auth::Principal;
use uuid::Uuid;

/// A tenant id. A request gets one only from its verified principal ([`TenantId::of`]), so
/// request arguments have no way in; the few paths with no request behind them name themselves
/// ([`TenantId::for_system_task`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantId(Uuid);

/// The work the origin does for a tenant with no request behind it, and where each takes the
/// tenant from. Nothing else may make a [`TenantId`] without a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SystemTask {
    /// `agentplane ingest --tenant`: the operator names the tenant.
    Ingest,
    /// The embedding back-fill: the tenants the SECURITY DEFINER function `embedding_backlog()`
    /// lists.
    Backfill,
    /// An A2A executor running a task it claimed: the tenant `a2a_claim_tasks` returned with it.
    ClaimedTask,
    /// `serve --demo`: the demo corpus's fixed tenant.
    DemoSeed,
    /// `agentplane eval`: the collection's own tenant, derived from its directory.
    #[cfg(feature = "dev-tools")]
    Evaluation,
}

impl TenantId {
    /// The tenant of a verified token: how every request reaches tenant data.
    pub fn of(principal: &Principal) -> Self {
        Self(principal.tenant)
    }

    /// The tenant of work with no request behind it; `task` names which (see [`SystemTask`]).
    pub(crate) fn for_system_task(id: Uuid, task: SystemTask) -> Self {
        tracing::trace!(tenant = %id, ?task, "acting for a tenant without a request");
        Self(id)
    }

    /// For the tests, which make tenants of their own. Only in `dev-tools` builds.
    #[cfg(feature = "dev-tools")]
    pub fn for_tests(id: Uuid) -> Self {
        Self(id)
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}
