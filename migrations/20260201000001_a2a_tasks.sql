-- A2A tasks: the task rows, their ordered event logs, their artifacts and push-notification
-- configurations, each isolated per tenant by row-level security exactly as in the first migration.
--
-- Executors in every origin process claim runnable tasks of all tenants through one SECURITY
-- DEFINER function (`a2a_claim_tasks`), which hands out only (id, tenant_id) pairs under a lease;
-- everything else an executor reads or writes goes through an ordinary tenant transaction.

CREATE TABLE a2a_tasks (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    context_id        text NOT NULL,
    -- The token subject that submitted the task and its tier: usage is metered to the subject,
    -- and budgets are checked for both.
    subject           text NOT NULL,
    tier              text NOT NULL DEFAULT '',
    workflow          text NOT NULL,
    -- The client's message, in the version-neutral form of origin/src/a2a/wire.rs.
    input             jsonb NOT NULL,
    state             text NOT NULL DEFAULT 'submitted' CHECK (state IN (
                          'submitted', 'working', 'input-required', 'completed', 'canceled', 'failed',
                          'rejected', 'auth-required')),
    -- The agent's message accompanying the current state (the answer, the failure reason).
    status_message    jsonb,
    status_at         timestamptz NOT NULL DEFAULT now(),
    -- The index of the next step to run, and the outputs of the steps before it.
    step              integer NOT NULL DEFAULT 0 CHECK (step >= 0),
    checkpoint        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(checkpoint) = 'object'),
    -- Attempts of the current step so far, and how often the task has been claimed.
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    claims            integer NOT NULL DEFAULT 0 CHECK (claims >= 0),
    lease_owner       uuid,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    -- The sequence number of the newest event; the next event takes last_seq + 1 under this
    -- row's lock, so a task's sequence has no gaps.
    last_seq          bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT a2a_tasks_lease CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);
CREATE INDEX a2a_tasks_tenant_created ON a2a_tasks (tenant_id, created_at DESC, id DESC);
CREATE INDEX a2a_tasks_tenant_context ON a2a_tasks (tenant_id, context_id);
-- What the claim scans: only tasks that still have work.
CREATE INDEX a2a_tasks_runnable ON a2a_tasks (created_at) WHERE state IN ('submitted', 'working');

CREATE TABLE a2a_task_events (
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    task_id     uuid NOT NULL REFERENCES a2a_tasks (id) ON DELETE CASCADE,
    seq         bigint NOT NULL CHECK (seq > 0),
    kind        text NOT NULL CHECK (kind IN ('task', 'status', 'artifact')),
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, seq)
);

CREATE TABLE a2a_artifacts (
    tenant_id    uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    task_id      uuid NOT NULL REFERENCES a2a_tasks (id) ON DELETE CASCADE,
    artifact_id  text NOT NULL,
    name         text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    parts        jsonb NOT NULL CHECK (jsonb_typeof(parts) = 'array'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- A step that runs again after a crash writes the same artifact id: it cannot duplicate.
    UNIQUE (task_id, artifact_id)
);

CREATE TABLE a2a_push_configs (
    tenant_id       uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    task_id         uuid NOT NULL REFERENCES a2a_tasks (id) ON DELETE CASCADE,
    id              text NOT NULL,
    url             text NOT NULL,
    token           text,
    authentication  jsonb,
    -- The A2A version the client spoke when it set the config: notifications use its shapes.
    protocol_version text NOT NULL DEFAULT '0.3' CHECK (protocol_version IN ('0.3', '1.0')),
    -- Events up to this sequence number have been delivered to `url`.
    delivered_seq   bigint NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, id)
);

ALTER TABLE a2a_tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_tasks
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- The claim function runs as this migration's role (the tables' owner). FORCE makes the tenant
-- policy bind the owner too, and an owner that is not a superuser would see no rows in it, so the
-- owner gets a policy of its own. The owner could switch RLS off anyway; the service role
-- (agentplane_app) is not the owner and this policy does not apply to it.
CREATE POLICY executor_claim ON a2a_tasks TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE a2a_task_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_task_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_task_events
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

ALTER TABLE a2a_artifacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_artifacts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_artifacts
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

ALTER TABLE a2a_push_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_push_configs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON a2a_push_configs
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

GRANT SELECT, INSERT, UPDATE ON a2a_tasks TO agentplane_app;
GRANT SELECT, INSERT ON a2a_task_events TO agentplane_app;
GRANT SELECT, INSERT ON a2a_artifacts TO agentplane_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON a2a_push_configs TO agentplane_app;

-- Hands up to `max_tasks` runnable tasks of any tenant to `owner` for `lease`: tasks never
-- claimed, and tasks whose owner stopped renewing (a dead process). SKIP LOCKED lets executors in
-- many processes claim at once without waiting on each other or taking the same task. Returns
-- ids and tenants only; the executor reads the task itself in a transaction of that tenant.
CREATE FUNCTION a2a_claim_tasks(owner uuid, lease interval, max_tasks integer)
    RETURNS TABLE (id uuid, tenant_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        WITH runnable AS (
            SELECT t.id FROM a2a_tasks t
            WHERE t.state IN ('submitted', 'working')
              AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now())
            ORDER BY t.created_at
            LIMIT greatest(max_tasks, 0)
            FOR UPDATE SKIP LOCKED
        )
        UPDATE a2a_tasks t
           SET lease_owner = owner, lease_expires_at = now() + lease, claims = t.claims + 1
          FROM runnable
         WHERE t.id = runnable.id
        RETURNING t.id, t.tenant_id
    $$;
REVOKE ALL ON FUNCTION a2a_claim_tasks(uuid, interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION a2a_claim_tasks(uuid, interval, integer) TO agentplane_app;
