-- The BM25 index holds title and content as one field, `title || ' ' || content`, the text BEIR's
-- BM25 baselines index, instead of two. A query then scans each of its terms' postings once
-- instead of once per field: on SciFact the statement hybrid_search sends took 6.1 ms instead of
-- 9.6 ms over 100 claims (psql), at the same nDCG@10 (BENCHMARKS.md, search section).
-- Queries must name the same expression on the left of `|||` (data/search/mod.rs).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = 'documents' AND indexname = 'documents_bm25') THEN
        DROP INDEX documents_bm25;
        EXECUTE $sql$
            CREATE INDEX documents_bm25 ON documents USING bm25 (
                row_key,
                ((title || ' ' || content)::pdb.simple('alias=text', 'stemmer=english', 'stopwords_language=english')),
                tenant_id
            ) WITH (key_field = 'row_key', mutable_segment_rows = 100, layer_sizes = '100KB, 1MB, 4MB, 16MB', background_layer_sizes = '64MB, 256MB, 1GB, 4GB')
        $sql$;
    END IF;
END
$$;
