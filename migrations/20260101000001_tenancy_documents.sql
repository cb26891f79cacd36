-- Tenants, documents and the usage ledger, each isolated per tenant by row-level security.
--
-- The tenant of a transaction is `app.tenant_id`, set by the service with
-- `set_config('app.tenant_id', $1, true)` from a verified token. `NULLIF(.., '')` matters: once a
-- pooled connection has set the variable in any transaction, it reads '' (not NULL) afterwards,
-- and ''::uuid would raise instead of matching nothing.

CREATE EXTENSION IF NOT EXISTS vector;

-- ParadeDB's BM25 index where the server has it (the embedded default does); managed servers
-- usually do not, and get the built-in full-text ranking instead (see the end of this file).
-- `agentplane.lexical_backend = 'ts_rank_cd'` on the migrating session (AGENTPLANE_LEXICAL_BACKEND)
-- chooses the built-in ranking even where pg_search is available.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_search')
       AND coalesce(current_setting('agentplane.lexical_backend', true), '') <> 'ts_rank_cd' THEN
        CREATE EXTENSION IF NOT EXISTS pg_search;
    END IF;
END
$$;

-- The role the service works as. It owns nothing and cannot bypass RLS; logins are granted it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentplane_app') THEN
        CREATE ROLE agentplane_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    -- The caller's own id for the document (a BEIR `_id`, a file path): ingest is idempotent on it.
    external_id     text,
    title           text NOT NULL DEFAULT '',
    content         text NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    embedding       vector(384),
    embedding_model text,
    content_hash    bytea NOT NULL,
    search_text     tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('english', title), 'A') ||
                        setweight(to_tsvector('english', content), 'B')) STORED,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_embedding_model CHECK ((embedding IS NULL) = (embedding_model IS NULL))
);

CREATE UNIQUE INDEX documents_tenant_external_id ON documents (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX documents_tenant_id ON documents (tenant_id, id);
CREATE INDEX documents_metadata ON documents USING gin (metadata jsonb_path_ops);
-- Cosine HNSW. Queries set hnsw.iterative_scan so a tenant filter still yields k rows.
CREATE INDEX documents_embedding_hnsw ON documents USING hnsw (embedding vector_cosine_ops);

CREATE TABLE usage_ledger (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      uuid NOT NULL DEFAULT app_current_tenant() REFERENCES tenants (id) ON DELETE CASCADE,
    subject        text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('embedding', 'chat')),
    provider       text NOT NULL,
    model          text NOT NULL,
    input_tokens   bigint NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens  bigint NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    -- Price in millionths of a currency unit, so sums are exact.
    cost_micros    bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, created_at);

-- Row-level security, enabled and forced on every tenant-owned table.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

ALTER TABLE usage_ledger ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_ledger FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_ledger
    USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());

GRANT USAGE ON SCHEMA public TO agentplane_app;
GRANT SELECT, INSERT ON tenants TO agentplane_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON documents TO agentplane_app;
GRANT SELECT, INSERT ON usage_ledger TO agentplane_app;
GRANT EXECUTE ON FUNCTION app_current_tenant() TO agentplane_app;
-- /ready compares applied migrations with the ones the binary carries.
GRANT SELECT ON _sqlx_migrations TO agentplane_app;
-- PostgreSQL 17's MAINTAIN lets the service compact its search index (REINDEX, VACUUM) without
-- owning the table; it grants no access to rows.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON documents TO agentplane_app';
    END IF;
END
$$;

-- The lexical index: BM25 where pg_search is installed, else GIN over the tsvector ranked by
-- ts_rank_cd. The service detects which one exists at start and reports it on /ready.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_search') THEN
        -- English stemming and stop words on both text fields, as Lucene's English analyzer does;
        -- tenant_id is indexed so the RLS tenant filter is pushed into the BM25 scan.
        -- Query cost grows with the number of segments and with the rows in the mutable segment
        -- (measured on SciFact: 2.6 ms in one segment, 35 ms with a 183-row mutable segment), so
        -- the mutable segment is kept small and small segments merge in the foreground; the
        -- origin's maintenance task compacts what is left (db/maintenance.rs).
        EXECUTE $sql$
            CREATE INDEX documents_bm25 ON documents USING bm25 (
                id,
                (title::pdb.simple('stemmer=english', 'stopwords_language=english')),
                (content::pdb.simple('stemmer=english', 'stopwords_language=english')),
                tenant_id
            ) WITH (key_field = 'id', mutable_segment_rows = 100, layer_sizes = '100KB, 1MB, 4MB, 16MB', background_layer_sizes = '64MB, 256MB, 1GB, 4GB')
        $sql$;
        GRANT USAGE ON SCHEMA paradedb TO agentplane_app;
    ELSE
        EXECUTE 'CREATE INDEX documents_search_text ON documents USING gin (search_text)';
    END IF;
END
$$;
