-- Task claiming fair across tenants (issue 12, point 9). The first version handed out the
-- oldest runnable tasks of any tenant, so one tenant's backlog of a thousand tasks ran before
-- another tenant's first. Now the tenant with the fewest tasks running goes first, and between
-- equals the one served least recently: a newcomer's first task waits for at most one task of a
-- busy tenant per free executor.

-- When each tenant last had a task claimed. Written only by a2a_claim_tasks, which runs as the
-- owner: as for a2a_tasks, the owner has a policy of its own (FORCE binds it too, and an owner
-- that is not a superuser would be refused), and the service role has none and no grant.
CREATE TABLE a2a_claim_turns (
    tenant_id        uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_claimed_at  timestamptz NOT NULL
);
ALTER TABLE a2a_claim_turns ENABLE ROW LEVEL SECURITY;
ALTER TABLE a2a_claim_turns FORCE ROW LEVEL SECURITY;
CREATE POLICY executor_claim ON a2a_claim_turns TO CURRENT_USER USING (true) WITH CHECK (true);

CREATE INDEX a2a_tasks_active_by_tenant ON a2a_tasks (tenant_id, created_at, id)
    WHERE state IN ('submitted', 'working');

CREATE OR REPLACE FUNCTION a2a_claim_tasks(owner uuid, lease interval, max_tasks integer)
    RETURNS TABLE (id uuid, tenant_id uuid)
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
        WITH running AS (
            SELECT t.tenant_id, count(*) AS n FROM a2a_tasks t
             WHERE t.state IN ('submitted', 'working') AND t.lease_expires_at >= now()
             GROUP BY t.tenant_id
        ),
        waiting AS (
            SELECT t.id, t.tenant_id, t.created_at,
                   row_number() OVER (PARTITION BY t.tenant_id ORDER BY t.created_at, t.id) AS place
              FROM a2a_tasks t
             WHERE t.state IN ('submitted', 'working')
               AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now())
        ),
        runnable AS (
            SELECT t.id FROM a2a_tasks t
              JOIN waiting w ON w.id = t.id
              LEFT JOIN running r ON r.tenant_id = w.tenant_id
              LEFT JOIN a2a_claim_turns c ON c.tenant_id = w.tenant_id
             WHERE t.state IN ('submitted', 'working')
               AND (t.lease_expires_at IS NULL OR t.lease_expires_at < now())
             ORDER BY coalesce(r.n, 0) + w.place, c.last_claimed_at NULLS FIRST, w.created_at, t.id
             LIMIT greatest(max_tasks, 0)
               FOR UPDATE OF t SKIP LOCKED
        ),
        claimed AS (
            UPDATE a2a_tasks t
               SET lease_owner = owner, lease_expires_at = now() + lease, claims = t.claims + 1
              FROM runnable
             WHERE t.id = runnable.id
            RETURNING t.id, t.tenant_id
        ),
        served AS (
            INSERT INTO a2a_claim_turns (tenant_id, last_claimed_at)
            SELECT DISTINCT claimed.tenant_id, now() FROM claimed
            ON CONFLICT ON CONSTRAINT a2a_claim_turns_pkey
                DO UPDATE SET last_claimed_at = excluded.last_claimed_at
        )
        SELECT claimed.id, claimed.tenant_id FROM claimed
    $$;
