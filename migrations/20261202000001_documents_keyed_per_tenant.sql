-- Document ids are a tenant's own: the primary key becomes (tenant_id, id), so two tenants may
-- hold the same id, and no answer to one tenant depends on another's ids (a global key made an
-- insert under another tenant's id conflict with a row the caller cannot see: an existence
-- oracle, and a way to pre-claim the ids another tenant's ingest derives).
--
-- pg_search's BM25 index needs one unique key column; `row_key` is that key, internal to the
-- database and never shown to clients. Existing rows keep their ids and get a row_key each.

ALTER TABLE documents ADD COLUMN row_key bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE documents ADD CONSTRAINT documents_row_key UNIQUE (row_key);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = 'documents' AND indexname = 'documents_bm25') THEN
        DROP INDEX documents_bm25;
        -- As in the first migration, keyed by row_key instead of id.
        EXECUTE $sql$
            CREATE INDEX documents_bm25 ON documents USING bm25 (
                row_key,
                (title::pdb.simple('stemmer=english', 'stopwords_language=english')),
                (content::pdb.simple('stemmer=english', 'stopwords_language=english')),
                tenant_id
            ) WITH (key_field = 'row_key', mutable_segment_rows = 100, layer_sizes = '100KB, 1MB, 4MB, 16MB', background_layer_sizes = '64MB, 256MB, 1GB, 4GB')
        $sql$;
    END IF;
END
$$;

ALTER TABLE documents DROP CONSTRAINT documents_pkey;
ALTER TABLE documents ADD CONSTRAINT documents_pkey PRIMARY KEY (tenant_id, id);
-- The new primary key's index is the same (tenant_id, id) index.
DROP INDEX documents_tenant_id;
