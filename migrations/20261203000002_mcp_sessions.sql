-- MCP sessions (the 2025 revisions' `Mcp-Session-Id`) in the database, so that every origin
-- replica can serve every session: the row holds who opened it and the `initialize` parameters
-- that a replica replays to rebuild the session in its own memory. A session's standalone (GET)
-- stream is logged in `mcp_session_events`, so a notification caused on one replica reaches the
-- client's stream on another, and `Last-Event-ID` resumes it on any replica.
--
-- Both tables are tenant data under the same row-level security as the rest. Only the sweep of
-- idle sessions crosses tenants, through a SECURITY DEFINER function that returns ids.

CREATE TABLE mcp_sessions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    -- The token subject that opened the session: only that subject of that tenant may use it.
    subject      text NOT NULL,
    -- The client's `initialize` params as sent (protocol version, capabilities, client info).
    initialize   jsonb NOT NULL CHECK (jsonb_typeof(initialize) = 'object'),
    -- The level `logging/setLevel` chose; NULL until the client sets one.
    log_level    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Refreshed by the replicas that serve the session (at most about once a minute each), so
    -- the sweep can end sessions nobody used for the configured idle time.
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_sessions_last_seen ON mcp_sessions (last_seen_at);
CREATE INDEX mcp_sessions_tenant ON mcp_sessions (tenant_id);

CREATE TABLE mcp_session_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    session_id  uuid NOT NULL REFERENCES mcp_sessions (id) ON DELETE CASCADE,
    -- The SSE event as rmcp sends it: the JSON-RPC message, or only a retry hint (priming).
    message     jsonb,
    retry_ms    integer,
    -- The writing transaction: identity ids are taken at insert, not at commit, so a reader goes
    -- by (xid, id) and reads only rows of transactions that ended (older than its snapshot's
    -- xmin); a row that commits late is then never skipped.
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_session_events_session ON mcp_session_events (session_id, xid, id);

-- What a client answers to a server's request (sampling, elicitation, roots), on whichever replica
-- its POST landed: the replica whose tool call waits for it reads it here, on a notification on
-- `mcp_session_inbox` (`session:id`).
CREATE TABLE mcp_session_inbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    session_id  uuid NOT NULL REFERENCES mcp_sessions (id) ON DELETE CASCADE,
    message     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_session_inbox_created ON mcp_session_inbox (created_at);

ALTER TABLE mcp_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_sessions
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- For the sweep function, which runs as this migration's role (see a2a_claim_tasks).
CREATE POLICY session_sweep ON mcp_sessions TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE mcp_session_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_session_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_session_events
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY session_sweep ON mcp_session_events TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE mcp_session_inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_session_inbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_session_inbox
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY session_sweep ON mcp_session_inbox TO CURRENT_USER USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_sessions TO agentplane_app;
GRANT SELECT, INSERT ON mcp_session_inbox TO agentplane_app;
GRANT SELECT, INSERT ON mcp_session_events TO agentplane_app;

-- Ends sessions idle for longer than `idle`, and trims every stream's log to what a client
-- could still resume (events younger than `keep`). Ended sessions are announced on
-- `mcp_sessions_closed` (payload `id:0`), as a DELETE by a client is, so every replica drops its
-- copy. Returns how many sessions ended.
CREATE FUNCTION mcp_sweep_sessions(idle interval, keep interval)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
    DECLARE
        ended integer := 0;
        gone uuid;
    BEGIN
        FOR gone IN DELETE FROM mcp_sessions WHERE last_seen_at < now() - idle RETURNING id LOOP
            PERFORM pg_notify('mcp_sessions_closed', gone::text || ':0');
            ended := ended + 1;
        END LOOP;
        DELETE FROM mcp_session_events WHERE created_at < now() - keep;
        DELETE FROM mcp_session_inbox WHERE created_at < now() - keep;
        RETURN ended;
    END
    $$;
REVOKE ALL ON FUNCTION mcp_sweep_sessions(interval, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mcp_sweep_sessions(interval, interval) TO agentplane_app;
