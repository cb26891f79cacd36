-- Budgets reserved atomically (issue 12, point 9). Checking the ledger before a paid call let
-- concurrent tasks of one tenant all pass on the same total and all spend. Now a paid call first
-- reserves what it may cost, under the tenant's budget lock: it may start only while the day's
-- spend plus the open reservations is under the limit, so concurrent calls see each other. The
-- call's ledger row replaces its reservation; the reservation of a process that died expires.
CREATE TABLE budget_reservations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    subject     text NOT NULL,
    micros      bigint NOT NULL CHECK (micros >= 0),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX budget_reservations_tenant ON budget_reservations (tenant_id, expires_at);

ALTER TABLE budget_reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE budget_reservations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON budget_reservations
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
GRANT SELECT, INSERT, DELETE ON budget_reservations TO agentplane_app;
