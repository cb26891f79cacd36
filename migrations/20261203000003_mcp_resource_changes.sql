-- Resource change notifications that reach every subscriber whichever process changed the
-- documents: an MCP tool on any replica, `agentplane ingest`, the console, plain SQL. Triggers
-- on `documents` (one run per statement, so a bulk COPY is one change, not one per row) write
--
--   * one row of `mcp_resource_changes` per tenant and statement, announced on
--     `mcp_resource_changes` (`tenant:id`): what 2026-07-28 `subscriptions/listen` streams read;
--   * for the 2025 revisions' sessions, the notifications themselves into each session's
--     stream log (`mcp_session_events`, announced as any logged event): `resources/updated` to
--     the sessions subscribed to a changed document, `resources/list_changed` to every session
--     of the tenant when documents were added or removed. Not debounced: a dropped notification
--     would be a change the client never hears of, and a bulk load is one per batch statement,
--     not one per document.
--
-- An embedding back-fill or a metadata-only update changes nothing a client reads through
-- `resources/read` (title and content), so it notifies nobody.

-- `resources/subscribe` of the 2025 revisions, per session.
CREATE TABLE mcp_session_subscriptions (
    tenant_id   uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    session_id  uuid NOT NULL REFERENCES mcp_sessions (id) ON DELETE CASCADE,
    uri         text NOT NULL CHECK (length(uri) <= 2048),
    PRIMARY KEY (session_id, uri)
);
CREATE INDEX mcp_session_subscriptions_uri ON mcp_session_subscriptions (tenant_id, uri);

CREATE TABLE mcp_resource_changes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The changed documents' resource URIs.
    uris          text[] NOT NULL,
    -- Whether documents were added or removed (the resource list changed).
    list_changed  boolean NOT NULL,
    -- The writing transaction, read as mcp_session_events.xid is.
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mcp_resource_changes_tenant ON mcp_resource_changes (tenant_id, xid, id);
CREATE INDEX mcp_resource_changes_created ON mcp_resource_changes (created_at);

ALTER TABLE mcp_session_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_session_subscriptions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_session_subscriptions
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
-- The trigger function below runs as this migration's role.
CREATE POLICY resource_changes ON mcp_session_subscriptions TO CURRENT_USER USING (true) WITH CHECK (true);

ALTER TABLE mcp_resource_changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_resource_changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_resource_changes
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
CREATE POLICY resource_changes ON mcp_resource_changes TO CURRENT_USER USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, DELETE ON mcp_session_subscriptions TO agentplane_app;
GRANT SELECT ON mcp_resource_changes TO agentplane_app;

-- `changed`: the statement's changed documents (tenant_id, id); `list_changed`: whether they were
-- added or removed.
CREATE FUNCTION mcp_announce_resource_changes(changed jsonb, list_changed boolean)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
    DECLARE
        t uuid;
        change bigint;
        s uuid;
        e bigint;
    BEGIN
        -- A tenant being deleted takes its documents with it (a cascade): nobody to tell.
        FOR t IN SELECT DISTINCT (c ->> 'tenant_id')::uuid FROM jsonb_array_elements(changed) c
                 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = (c ->> 'tenant_id')::uuid) LOOP
            INSERT INTO mcp_resource_changes (tenant_id, uris, list_changed)
                SELECT t, array_agg('agentplane://documents/' || (c ->> 'id')), list_changed
                FROM jsonb_array_elements(changed) c WHERE (c ->> 'tenant_id')::uuid = t
                RETURNING id INTO change;
            PERFORM pg_notify('mcp_resource_changes', t::text || ':' || change::text);

            FOR s, e IN
                INSERT INTO mcp_session_events (tenant_id, session_id, message)
                SELECT DISTINCT ON (sub.session_id, sub.uri) t, sub.session_id, jsonb_build_object(
                    'jsonrpc', '2.0', 'method', 'notifications/resources/updated',
                    'params', jsonb_build_object('uri', sub.uri))
                FROM mcp_session_subscriptions sub
                JOIN jsonb_array_elements(changed) c
                  ON sub.uri = 'agentplane://documents/' || (c ->> 'id')
                WHERE sub.tenant_id = t AND (c ->> 'tenant_id')::uuid = t
                  -- A session being deleted (its client's DELETE, the sweep) is skipped, not
                  -- waited for: the writer never fails or deadlocks on a session ending.
                  AND sub.session_id IN (SELECT id FROM mcp_sessions WHERE tenant_id = t FOR KEY SHARE SKIP LOCKED)
                RETURNING session_id, id
            LOOP
                PERFORM pg_notify('mcp_session_events', s::text || ':' || e::text);
            END LOOP;

            IF list_changed THEN
                FOR s, e IN
                    INSERT INTO mcp_session_events (tenant_id, session_id, message)
                    SELECT t, m.id, jsonb_build_object(
                        'jsonrpc', '2.0', 'method', 'notifications/resources/list_changed')
                    FROM (SELECT id FROM mcp_sessions WHERE tenant_id = t FOR KEY SHARE SKIP LOCKED) m
                    RETURNING session_id, id
                LOOP
                    PERFORM pg_notify('mcp_session_events', s::text || ':' || e::text);
                END LOOP;
            END IF;
        END LOOP;
    END
    $$;
-- Only the trigger function below (which runs as this migration's role) calls it: no caller can
-- name tenants of its choosing.
REVOKE ALL ON FUNCTION mcp_announce_resource_changes(jsonb, boolean) FROM PUBLIC;

CREATE FUNCTION documents_announce_changes()
    RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$
    DECLARE
        changed jsonb;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT jsonb_agg(jsonb_build_object('tenant_id', tenant_id, 'id', id)) INTO changed FROM new_rows;
        ELSIF TG_OP = 'DELETE' THEN
            SELECT jsonb_agg(jsonb_build_object('tenant_id', tenant_id, 'id', id)) INTO changed FROM old_rows;
        ELSE
            -- row_key never changes: it pairs each row's old and new versions.
            SELECT jsonb_agg(jsonb_build_object('tenant_id', n.tenant_id, 'id', n.id)) INTO changed
            FROM new_rows n JOIN old_rows o ON o.row_key = n.row_key
            WHERE n.title IS DISTINCT FROM o.title OR n.content IS DISTINCT FROM o.content OR n.id <> o.id;
        END IF;
        IF changed IS NOT NULL THEN
            PERFORM mcp_announce_resource_changes(changed, TG_OP <> 'UPDATE');
        END IF;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER documents_inserted AFTER INSERT ON documents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION documents_announce_changes();
CREATE TRIGGER documents_updated AFTER UPDATE ON documents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION documents_announce_changes();
CREATE TRIGGER documents_deleted AFTER DELETE ON documents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION documents_announce_changes();

-- The session sweep trims the change feed as it trims the session logs.
CREATE OR REPLACE FUNCTION mcp_sweep_sessions(idle interval, keep interval)
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
        DELETE FROM mcp_resource_changes WHERE created_at < now() - keep;
        RETURN ended;
    END
    $$;
