-- The embedding back-fill: rows stored without a vector (provider down, embeddings off at the
-- time) are found by a partial index and embedded in the background.
--
-- Workers read and update rows in ordinary tenant transactions under RLS. Only finding which
-- tenants have such rows needs to look across tenants; `embedding_backlog()` answers exactly that
-- (tenant ids and counts, no content) as a SECURITY DEFINER function, so the service role itself
-- never gains a cross-tenant read.

CREATE INDEX documents_missing_embedding ON documents (tenant_id, id) WHERE embedding IS NULL;

CREATE FUNCTION embedding_backlog() RETURNS TABLE (tenant_id uuid, pending bigint)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    AS $$ SELECT tenant_id, count(*) FROM documents WHERE embedding IS NULL GROUP BY tenant_id ORDER BY tenant_id $$;

REVOKE ALL ON FUNCTION embedding_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION embedding_backlog() TO agentplane_app;
